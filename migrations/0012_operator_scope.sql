-- An operator may be scoped to one master agent (src/domain/operator.rs); NULL: every master agent.
ALTER TABLE operators ADD COLUMN master_agent text;
