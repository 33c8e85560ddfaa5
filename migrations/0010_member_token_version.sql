-- A member's tokens carry the version they were issued under (claim `ver`); a password or role
-- change bumps it, so every earlier token is refused (401 TOKEN_REVOKED).
ALTER TABLE members ADD COLUMN token_version integer NOT NULL DEFAULT 0;
