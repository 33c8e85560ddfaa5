//! Sending gifts (`sendGift`, docs/api.md#client-gateway): who may send to whom. The catalog, the
//! streamer and the sender's record are loaded by the command; these rules need only the ids.

use crate::domain::member::MemberId;

/// Why a gift is refused before anything is loaded; nothing is published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GiftRuleError {
    /// `memberID` is not the token's member (HTTP 403 `FORBIDDEN`).
    #[error("memberID differs from the member of the Authorization token")]
    NotTheSender,
    /// The sender is the streamer (HTTP 400 `VALIDATION_ERROR`).
    #[error("query.gameID: a member cannot send gifts to themselves")]
    ToSelf,
    /// `agentID` is not the streamer's agent (HTTP 400 `VALIDATION_ERROR`).
    #[error("query.agentID must be the streamer's agent {expected}, got {given:?}")]
    WrongAgent {
        /// The streamer's agent, `agent.masterAgent`.
        expected: String,
        /// The `agentID` given.
        given: String,
    },
}

/// Checks the parties of a gift: `caller` (the token's member) must be the `presenter`, who is
/// not the `streamer`, and `agent_id` must be the streamer's agent.
pub fn check_parties(
    caller: &str,
    presenter: &MemberId,
    streamer: &MemberId,
    agent_id: &str,
) -> Result<(), GiftRuleError> {
    if caller != presenter.as_str() {
        return Err(GiftRuleError::NotTheSender);
    }
    if presenter == streamer {
        return Err(GiftRuleError::ToSelf);
    }
    if agent_id != streamer.agent_id().as_str() {
        return Err(GiftRuleError::WrongAgent {
            expected: streamer.agent_id().to_string(),
            given: agent_id.to_owned(),
        });
    }
    Ok(())
}

/// `points × count`, the score a gift adds to rankings.
pub fn score(points: u32, count: u32) -> u64 {
    u64::from(points) * u64::from(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> MemberId {
        MemberId::parse(raw, "memberID").unwrap()
    }

    #[test]
    fn given_a_member_sending_as_themselves_to_a_streamer_of_the_agent_then_the_gift_is_allowed() {
        let presenter = id("fan@a1.m1");
        let streamer = id("star@a1.m1");
        assert_eq!(
            check_parties("fan@a1.m1", &presenter, &streamer, "a1.m1"),
            Ok(())
        );
    }

    #[test]
    fn given_a_token_of_another_member_then_the_gift_is_forbidden() {
        let presenter = id("fan@a1.m1");
        let streamer = id("star@a1.m1");
        assert_eq!(
            check_parties("other@a1.m1", &presenter, &streamer, "a1.m1"),
            Err(GiftRuleError::NotTheSender)
        );
    }

    #[test]
    fn given_a_gift_to_oneself_or_the_wrong_agent_then_it_is_refused() {
        let star = id("star@a1.m1");
        assert_eq!(
            check_parties("star@a1.m1", &star, &star, "a1.m1"),
            Err(GiftRuleError::ToSelf)
        );
        let fan = id("fan@a1.m1");
        let err = check_parties("fan@a1.m1", &fan, &star, "a2.m1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "query.agentID must be the streamer's agent a1.m1, got \"a2.m1\""
        );
    }

    #[test]
    fn the_score_is_points_times_count_without_overflow() {
        assert_eq!(score(5, 3), 15);
        assert_eq!(score(u32::MAX, 9999), u64::from(u32::MAX) * 9999);
    }
}
