-- A room's viewerCount is read from rm_room_presence when asked (src/read_models/rooms.rs); the
-- copy taken at each popularity change is no longer read. The popularity events keep their
-- `viewers` input.
ALTER TABLE rm_rooms DROP COLUMN viewers;
