//! Amazon resource names in IVS's format.

use rand::Rng;
use rand::distr::Alphanumeric;

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

/// Whether a string has the shape of an IVS stage ARN
/// (`arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+`, at most 128 characters).
pub fn is_stage_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:aws:ivs:") else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some(id) = resource.strip_prefix("stage/") else {
        return false;
    };
    s.len() <= 128
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !account.is_empty()
        && account.bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
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
}
