-- Members, operators and the gift catalog: operator records (never rebuilt from the stream, since
-- they hold secrets). Every change to them is also published as an event, without the secrets.

CREATE TABLE members (
    -- `account@agent.masterAgent`, compared exactly (src/domain/member.rs).
    member_id text PRIMARY KEY,
    account text NOT NULL,
    agent_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('member', 'streamer')),
    -- Argon2id PHC string; the password itself is never stored.
    password_hash text NOT NULL,
    nickname text NOT NULL,
    avatar text NOT NULL DEFAULT '',
    vip text NOT NULL DEFAULT '',
    equipment_bar text NOT NULL DEFAULT '',
    account_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX members_agent ON members (agent_id, role);

-- Back-office operators: `website` + `key` (SHA-256 of the key; the key is shown once).
CREATE TABLE operators (
    website text PRIMARY KEY,
    key_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Gifts members can send: `points` per gift, the ranking score of one (score = points x count).
CREATE TABLE gift_catalog (
    gift_id bigint PRIMARY KEY CHECK (gift_id > 0),
    name text NOT NULL,
    points integer NOT NULL CHECK (points > 0),
    anime_url text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The HMAC secret that signs member `Authorization` tokens; shared by every instance.
CREATE TABLE auth_secrets (
    name text PRIMARY KEY,
    secret bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Read models (rebuildable from the stream).

-- Projection `rooms`: one row per streamer who has had any room event.
CREATE TABLE rm_rooms (
    streamer_id text PRIMARY KEY,
    agent_id text NOT NULL,
    title text NOT NULL DEFAULT '',
    announcement text NOT NULL DEFAULT '',
    cover text NOT NULL DEFAULT '',
    is_live boolean NOT NULL DEFAULT false,
    session_id uuid,
    live_since timestamptz,
    popularity bigint NOT NULL DEFAULT 0,
    viewers integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL
);
CREATE INDEX rm_rooms_live_popularity ON rm_rooms (popularity DESC, streamer_id) WHERE is_live;

-- Projection `followers`.
CREATE TABLE rm_followers (
    streamer_id text NOT NULL,
    follower_id text NOT NULL,
    since timestamptz NOT NULL,
    PRIMARY KEY (streamer_id, follower_id)
);
CREATE INDEX rm_followers_follower ON rm_followers (follower_id);

-- Projection `gifts`: one row per gift sent.
CREATE TABLE rm_gift_records (
    event_id uuid PRIMARY KEY,
    sequence bigint NOT NULL UNIQUE,
    sent_at timestamptz NOT NULL,
    gift_id bigint NOT NULL,
    gift_name text NOT NULL,
    points integer NOT NULL,
    gift_count integer NOT NULL,
    score bigint NOT NULL,
    presenter_id text NOT NULL,
    presenter_account text NOT NULL,
    presenter_agent text NOT NULL,
    presenter_master_agent text NOT NULL,
    presenter_nickname text NOT NULL,
    streamer_id text NOT NULL,
    streamer_account text NOT NULL,
    streamer_agent text NOT NULL,
    streamer_master_agent text NOT NULL,
    agent_id text NOT NULL,
    session_id uuid
);
CREATE INDEX rm_gift_records_time ON rm_gift_records (sent_at, sequence);
CREATE INDEX rm_gift_records_streamer ON rm_gift_records (streamer_account, sent_at);
CREATE INDEX rm_gift_records_presenter ON rm_gift_records (presenter_account, sent_at);

-- Projection `gifts`: each room's rankings. `scope` is 'session' (since the last stream start) or
-- 'all_time'; `reached_at` is the ranking's gift counter when the score reached its value (the tie
-- break, src/domain/gift_ranking.rs).
CREATE TABLE rm_gift_rankings (
    streamer_id text NOT NULL,
    scope text NOT NULL CHECK (scope IN ('session', 'all_time')),
    member_id text NOT NULL,
    nickname text NOT NULL,
    score bigint NOT NULL,
    reached_at bigint NOT NULL,
    PRIMARY KEY (streamer_id, scope, member_id)
);
CREATE INDEX rm_gift_rankings_order ON rm_gift_rankings (streamer_id, scope, score DESC, reached_at);

-- The gift counter per room and scope (never reset, so ties keep their order).
CREATE TABLE rm_gift_ranking_counters (
    streamer_id text NOT NULL,
    scope text NOT NULL,
    gifts bigint NOT NULL,
    PRIMARY KEY (streamer_id, scope)
);

-- Projection `room_activity`: gift points and chat messages per room per 10-second bucket of event
-- time, the inputs of the popularity window (src/domain/popularity.rs).
CREATE TABLE rm_room_activity (
    streamer_id text NOT NULL,
    bucket_start timestamptz NOT NULL,
    gift_points bigint NOT NULL DEFAULT 0,
    chat_messages bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (streamer_id, bucket_start)
);
