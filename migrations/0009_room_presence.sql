-- Projection `room_activity`: verified members present in each chat room, one row per socket
-- (chat.member_joined_room / chat.member_left_room). The popularity's `viewers` input. Sockets of an
-- instance that crashed stay listed until their members join again or the projection is rebuilt.
CREATE TABLE rm_room_presence (
    room text NOT NULL,
    connection_id text NOT NULL,
    streamer_id text NOT NULL,
    member_id text NOT NULL,
    since timestamptz NOT NULL,
    PRIMARY KEY (room, connection_id)
);
CREATE INDEX rm_room_presence_streamer ON rm_room_presence (streamer_id);
