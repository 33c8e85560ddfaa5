-- Answers of POST requests sent with an `Idempotency-Key`, kept 24 hours, so a retry gets the
-- first answer again instead of doing the work twice. `status` is NULL while the first request runs.
CREATE TABLE idempotency_records (
    api_key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    route text NOT NULL,
    request_hash bytea NOT NULL,
    status smallint,
    content_type text,
    event_sequence text,
    body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idempotency_key)
);
