-- Chat instances announce themselves here every third of ONAIR_CHAT_INSTANCE_TIMEOUT_MS; the
-- presence reactor publishes the leaves of members on instances silent for longer
-- (src/reactors/presence.rs). Operational state, not a read model.
CREATE TABLE chat_instances (
    instance_id text PRIMARY KEY,
    last_seen timestamptz NOT NULL
);

-- Projection `room_activity`: the instance holding each connection (NULL for joins published
-- before instances were recorded).
ALTER TABLE rm_room_presence ADD COLUMN instance_id text;
CREATE INDEX rm_room_presence_instance ON rm_room_presence (instance_id);
