//! Amazon resource names in IVS's format.

use std::sync::LazyLock;

use rand::Rng;
use rand::distr::Alphanumeric;
use regex::Regex;

/// `n` random characters of `[A-Za-z0-9]` (IVS stage ids and participant ids are 12 of them).
pub fn random_id(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// `arn:aws:ivs:<region>:<account>:stage/<id>`.
pub fn stage_arn(region: &str, account_id: &str, stage_id: &str) -> String {
    format!("arn:aws:ivs:{region}:{account_id}:stage/{stage_id}")
}

/// `arn:aws:ivs:<region>:<account>:public-key/<id>`, the `kid` of self-signed tokens.
pub fn public_key_arn(region: &str, account_id: &str, key_id: &str) -> String {
    format!("arn:aws:ivs:{region}:{account_id}:public-key/{key_id}")
}

/// The stage id: the ARN's last segment (the token's `topic` claim).
pub fn stage_id(stage_arn: &str) -> &str {
    stage_arn.rsplit('/').next().unwrap_or(stage_arn)
}

/// The pattern of an AWS IVS stage ARN, `arn:aws:ivs:<region>:<account>:stage/<id>` (the Stage
/// API description's `stageArn`): the one regex of the rule, checked by [`StageArn::parse`] and
/// stated as the `pattern` of every `stageArn` in the spec.
pub const STAGE_ARN_PATTERN: &str = "^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+$";

/// Longest AWS IVS stage ARN, in characters (the Stage API description's `stageArn`).
pub const STAGE_ARN_MAX_CHARS: usize = 128;

/// [`STAGE_ARN_PATTERN`], compiled once.
fn stage_arn_regex() -> &'static Regex {
    static REGEX: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(STAGE_ARN_PATTERN).expect("the stage ARN pattern compiles"));
    &REGEX
}

/// Whether a string is an AWS IVS stage ARN: [`STAGE_ARN_PATTERN`], at most
/// [`STAGE_ARN_MAX_CHARS`] characters.
pub fn is_stage_arn(s: &str) -> bool {
    s.chars().count() <= STAGE_ARN_MAX_CHARS && stage_arn_regex().is_match(s)
}

/// An AWS IVS stage ARN, `arn:aws:ivs:<region>:<account>:stage/<id>` (the Stage API
/// description's `stageArn`: [`STAGE_ARN_PATTERN`], at most [`STAGE_ARN_MAX_CHARS`]
/// characters), checked once where a request names it and carried as is into the commands.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageArn(String);

/// A text that is not an AWS IVS stage ARN (HTTP 400 `VALIDATION_ERROR` naming the field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStageArn {
    /// Empty, or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// Not of the ARN's shape, or too long.
    #[error("must be a stage ARN (arn:aws:ivs:<region>:<account>:stage/<id>), got {0:?}")]
    Malformed(String),
}

impl StageArn {
    /// `raw` when it is an AWS IVS stage ARN ([`is_stage_arn`]).
    pub fn parse(raw: &str) -> Result<Self, InvalidStageArn> {
        if raw.trim().is_empty() {
            return Err(InvalidStageArn::Empty);
        }
        if !is_stage_arn(raw) {
            return Err(InvalidStageArn::Malformed(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The ARN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ARN as an owned text (an event's `stageArn`).
    pub fn into_string(self) -> String {
        self.0
    }

    /// The stage id: the ARN's last segment.
    pub fn stage_id(&self) -> &str {
        stage_id(&self.0)
    }
}

impl std::ops::Deref for StageArn {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StageArn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StageArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StageArn {
    type Err = InvalidStageArn;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_arns_have_ivs_shape() {
        let arn = stage_arn("ap-northeast-1", "125371974421", &random_id(12));
        assert!(is_stage_arn(&arn), "{arn}");
        assert_eq!(stage_id(&arn).len(), 12);
        assert!(is_stage_arn(
            "arn:aws:ivs:ap-northeast-1:125371974421:stage/sWyAydfRqqF8"
        ));
        for bad in [
            "",
            "arn:aws:ivs:ap-northeast-1:12537x:stage/abc",
            "arn:aws:ivs:ap-northeast-1:125371974421:channel/abc",
            "arn:aws:ivs:ap-northeast-1:125371974421:stage/",
            "arn:aws:ivs:ap-northeast-1:125371974421:stage/a.b",
        ] {
            assert!(!is_stage_arn(bad), "{bad}");
        }
    }

    #[test]
    fn a_stage_arn_parses_once_and_keeps_its_text() {
        let raw = "arn:aws:ivs:ap-northeast-1:125371974421:stage/sWyAydfRqqF8";
        let arn = StageArn::parse(raw).unwrap();
        assert_eq!(arn.as_str(), raw);
        assert_eq!(arn.to_string(), raw);
        assert_eq!(arn.stage_id(), "sWyAydfRqqF8");
        assert_eq!(raw.parse::<StageArn>(), Ok(arn));
        let longest = format!("arn:aws:ivs:r:1:stage/{}", "a".repeat(128 - 22));
        assert!(StageArn::parse(&longest).is_ok(), "{}", longest.len());
    }

    #[test]
    fn a_stage_arn_refuses_empty_malformed_and_long_texts() {
        assert_eq!(StageArn::parse(""), Err(InvalidStageArn::Empty));
        assert_eq!(StageArn::parse("  "), Err(InvalidStageArn::Empty));
        for bad in [
            "not-an-arn",
            "arn:aws:ivs:US-EAST-1:1:stage/a",
            "arn:aws:ivs:us-east-1:1:stage/a\n",
            " arn:aws:ivs:us-east-1:1:stage/a",
            "arn:aws:ivs:us-east-1:1:stage/a/b",
            "arn:aws:ivs::1:stage/a",
            "arn:aws:ivs:us-east-1::stage/a",
            "arn:aws:s3:us-east-1:1:stage/a",
        ] {
            assert_eq!(
                StageArn::parse(bad),
                Err(InvalidStageArn::Malformed(bad.to_owned())),
                "{bad:?}"
            );
        }
        let too_long = format!("arn:aws:ivs:r:1:stage/{}", "a".repeat(129 - 22));
        assert!(StageArn::parse(&too_long).is_err());
    }
}
