//! What a back-office operator may do. An operator is global, or scoped to one master agent
//! (`onair operator create --master-agent M`): a scoped operator manages the members of `M` only,
//! reads the gift records of `M`'s agent lines only, and broadcasts to `M`'s rooms only; the
//! things every master agent shares (the gift catalog, the chat's maintenance mode, a message to
//! every room) are for global operators.

use super::member::MemberId;

/// The reach of an operator's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorScope {
    /// Every master agent.
    Global,
    /// One master agent.
    MasterAgent(String),
}

/// Why an operator may not do something (answered 403 `FORBIDDEN`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The member or agent line belongs to a master agent other than the operator's.
    #[error("this operator manages master agent {scope} only; {what} belongs to {other}")]
    OtherMasterAgent {
        /// The operator's master agent.
        scope: String,
        /// What was asked for, e.g. `member ben@mabu.mabumaster` or `agent line mabu.mabumaster`.
        what: String,
        /// The master agent it belongs to.
        other: String,
    },
    /// Something every master agent shares (the gift catalog, maintenance mode, a message to every
    /// room): the operator's master agent, and what was asked for.
    #[error(
        "this operator manages master agent {0} only; {1} is for operators of every master agent"
    )]
    GlobalOnly(String, &'static str),
}

impl OperatorScope {
    fn allows_master(&self, master: &str, what: impl FnOnce() -> String) -> Result<(), ScopeError> {
        match self {
            Self::Global => Ok(()),
            Self::MasterAgent(scope) if scope == master => Ok(()),
            Self::MasterAgent(scope) => Err(ScopeError::OtherMasterAgent {
                scope: scope.clone(),
                what: what(),
                other: master.to_owned(),
            }),
        }
    }

    /// May create, edit, or broadcast to the room of, `member`.
    pub fn allows_member(&self, member: &MemberId) -> Result<(), ScopeError> {
        self.allows_master(member.master_agent(), || format!("member {member}"))
    }

    /// May read the agent line `uppername` (`agent.masterAgent`, or a whole `masterAgent`).
    pub fn allows_agent_line(&self, uppername: &str) -> Result<(), ScopeError> {
        let master = uppername
            .split_once('.')
            .map_or(uppername, |(_, master)| master);
        self.allows_master(master, || format!("agent line {uppername}"))
    }

    /// May change what every master agent shares (`what` names it in the error).
    pub fn allows_shared(&self, what: &'static str) -> Result<(), ScopeError> {
        match self {
            Self::Global => Ok(()),
            Self::MasterAgent(scope) => Err(ScopeError::GlobalOnly(scope.clone(), what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> MemberId {
        MemberId::parse(id, "memberID").unwrap()
    }

    #[test]
    fn a_global_operator_may_do_everything() {
        let global = OperatorScope::Global;
        assert!(global.allows_member(&member("a@b.c")).is_ok());
        assert!(global.allows_agent_line("b.c").is_ok());
        assert!(global.allows_agent_line("c").is_ok());
        assert!(global.allows_shared("the gift catalog").is_ok());
    }

    #[test]
    fn a_scoped_operator_stays_within_its_master_agent() {
        let scoped = OperatorScope::MasterAgent("mabumaster".into());
        assert!(scoped.allows_member(&member("ben@mabu.mabumaster")).is_ok());
        assert!(scoped.allows_agent_line("mabu.mabumaster").is_ok());
        assert!(scoped.allows_agent_line("mabumaster").is_ok());

        let other = scoped
            .allows_member(&member("amy@kiki.kikimaster"))
            .unwrap_err();
        assert_eq!(
            other.to_string(),
            "this operator manages master agent mabumaster only; member amy@kiki.kikimaster \
             belongs to kikimaster"
        );
        assert!(scoped.allows_agent_line("kiki.kikimaster").is_err());
        assert!(scoped.allows_agent_line("kikimaster").is_err());
        // Compared exactly, like member ids.
        assert!(scoped.allows_agent_line("MabuMaster").is_err());
        assert!(scoped.allows_shared("the gift catalog").is_err());
    }
}
