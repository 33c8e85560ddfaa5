-- The transactional outbox (src/event_store/outbox.rs): an event written in the same Postgres
-- transaction as the records it speaks of (a member's row), or as the read-model batch it was
-- derived from (a projection's chat notices), and published to JetStream afterwards with
-- Nats-Msg-Id = event_id, so a second publish of the same row is a duplicate JetStream drops.
CREATE TABLE event_outbox (
    -- The order rows of one ordering_key are published in.
    position bigserial PRIMARY KEY,
    -- ce-id and Nats-Msg-Id of the event.
    event_id uuid NOT NULL UNIQUE,
    -- Rows of one key are published one after the other, in position order: a member id, or
    -- 'notices.<projection>'.
    ordering_key text NOT NULL,
    -- The message as JetStream stores it: subject, headers (name -> value) and payload bytes.
    subject text NOT NULL,
    headers jsonb NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The relay publishes the row from this time on (NULL: at once). A request that publishes its
    -- own row sets it a little ahead, so the relay only picks up rows a crash left behind.
    relay_after timestamptz,
    -- Set once JetStream acknowledged the event: its stream sequence and when it was stored.
    -- Published rows are deleted by their request, or by the relay a minute later.
    sequence bigint,
    published_at timestamptz
);

CREATE INDEX event_outbox_pending ON event_outbox (ordering_key, position) WHERE sequence IS NULL;
CREATE INDEX event_outbox_published ON event_outbox (published_at) WHERE sequence IS NOT NULL;
