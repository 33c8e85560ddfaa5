-- When each member's `welcome` was last shown in each room: shown at most once per window
-- (ONAIR_CHAT_WELCOME_WINDOW_SECS), on every instance. Losing it costs one extra welcome.
CREATE UNLOGGED TABLE chat_welcomes (
    room text NOT NULL,
    member_id text NOT NULL,
    shown_at timestamptz NOT NULL,
    PRIMARY KEY (room, member_id)
);
