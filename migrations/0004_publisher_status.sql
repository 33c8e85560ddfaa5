-- Projection `publisher`: whether a publisher streams on each stage, from stream status events.
-- `changed_at` is the source's event time: late, out-of-order deliveries (EventBridge is
-- best-effort) never override a newer state.
CREATE TABLE rm_publisher_status (
    stage_arn text PRIMARY KEY,
    is_live boolean NOT NULL,
    participant_id text,
    changed_at timestamptz NOT NULL
);
