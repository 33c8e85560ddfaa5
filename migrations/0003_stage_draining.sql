-- Projection `stages`: draining auto-scaled stages take no new viewers (scale-down).
ALTER TABLE rm_stages ADD COLUMN draining boolean NOT NULL DEFAULT false;
CREATE INDEX rm_stages_order ON rm_stages (created_at, stage_arn);
