-- Per-API-key rate limits (seeds/ivs-api.md: 100 requests per minute per key; the limit itself is
-- `api_keys.rate_limit_per_minute`). One row per key that has made a counted request: its GCRA
-- "theoretical arrival time" (src/rate_limit.rs). Shared by every instance, so the limit holds
-- across any number of them.
--
-- UNLOGGED: the row is rewritten on almost every request, and losing it costs nothing worth a WAL
-- flush: after a crash (or on a promoted standby) the table is empty and every key starts with its
-- full burst again.
CREATE UNLOGGED TABLE api_key_rate_limits (
    api_key_id uuid PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    tat timestamptz NOT NULL
);
