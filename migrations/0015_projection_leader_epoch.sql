-- A projection's fencing token (src/projections/mod.rs): every runner that takes a projection's
-- advisory lock raises its epoch before it applies anything, and a batch commits only while the
-- checkpoint row still carries the epoch its runner raised it to. A runner that lost its lock
-- to another is thus refused at its next batch, with one indexed row read instead of a scan of
-- pg_locks per batch.
ALTER TABLE projection_checkpoints ADD COLUMN leader_epoch bigint NOT NULL DEFAULT 0;
