-- Operator records (not rebuildable from the stream; never synchronous_commit=off).

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    -- First characters of the key, shown by `onair apikey list` so operators can tell keys apart.
    key_prefix text NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    key_hash bytea NOT NULL UNIQUE,
    rate_limit_per_minute integer NOT NULL DEFAULT 100 CHECK (rate_limit_per_minute > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- The P-384 key pair that signs participant tokens (one row per purpose).
CREATE TABLE signing_keys (
    name text PRIMARY KEY,
    key_id text NOT NULL UNIQUE,
    private_key_pem text NOT NULL,
    public_key_pem text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Projection checkpoints: the last stream sequence each projection applied, written in the same
-- transaction as the read model rows.
CREATE TABLE projection_checkpoints (
    projection text PRIMARY KEY,
    last_sequence bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Read models (rebuildable from the stream). Times come from the events, never from the clock.

-- Projection `stages`: the pool's stages and their active viewer counts.
CREATE TABLE rm_stages (
    stage_arn text PRIMARY KEY,
    name text NOT NULL,
    auto_scaled boolean NOT NULL,
    is_master boolean NOT NULL,
    tags jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    viewer_count integer NOT NULL DEFAULT 0
);

-- Projection `viewers`: who is seated where, and watch time per user and stage.
CREATE TABLE rm_viewer_seats (
    user_id text PRIMARY KEY,
    stage_arn text NOT NULL,
    participant_id text NOT NULL,
    joined_at timestamptz NOT NULL,
    last_heartbeat_at timestamptz NOT NULL
);
CREATE INDEX rm_viewer_seats_stage ON rm_viewer_seats (stage_arn, joined_at);

CREATE TABLE rm_watch_time (
    user_id text NOT NULL,
    stage_arn text NOT NULL,
    completed_seconds bigint NOT NULL DEFAULT 0,
    completed_sessions integer NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, stage_arn)
);
