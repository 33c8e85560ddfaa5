-- The GCRA buckets of `api_key_rate_limits` also count login attempts per member: such a bucket's
-- id is a UUID derived from the member id (src/http/gateway.rs), not an API key, so the foreign key
-- goes. A revoked key's bucket stays until the next crash empties this UNLOGGED table; it is one
-- small row and is never read again.
ALTER TABLE api_key_rate_limits DROP CONSTRAINT IF EXISTS api_key_rate_limits_api_key_id_fkey;
