//! The `viewers` projection's batch of seat changes, folded in memory: the seats the batch touches
//! are read in one statement, each event applied to them in stream order exactly as its own
//! statement would (src/projections/viewers.rs `apply`), and the result written back in one
//! statement per table. A batch of N events about M viewers writes at most M seats.

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::events::{Event, EventEnvelope};

/// A row of `rm_viewer_seats` (its key, `user_id`, is the map's).
#[derive(Clone, Debug, PartialEq)]
struct Seat {
    stage_arn: String,
    participant_id: String,
    joined_at: OffsetDateTime,
    last_heartbeat_at: OffsetDateTime,
}

/// Seats and watch times changed by a batch.
#[derive(Default)]
pub(super) struct SeatBatch {
    /// Per user touched: the seat as read before the batch, and as the batch leaves it.
    seats: HashMap<String, (Option<Seat>, Option<Seat>)>,
    /// Completed `(seconds, sessions)` to add, per (user, stage).
    watch: HashMap<(String, String), (i64, i32)>,
}

impl SeatBatch {
    /// Whether `event` takes, changes or ends a seat (heartbeats only move its time).
    pub(super) fn changes_seats(event: &Event) -> bool {
        matches!(
            event,
            Event::ViewerJoined(_)
                | Event::ViewerTokenRenewed(_)
                | Event::ViewerLeft(_)
                | Event::ViewerExpired(_)
        )
    }

    /// Applies `events` (stream order) to the seats and watch times.
    pub(super) async fn apply(
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        let mut batch = Self::default();
        batch.load(tx, events).await?;
        for envelope in events {
            batch.fold(envelope);
        }
        batch.write(tx).await
    }

    /// Reads the seats of every user the events name.
    async fn load(
        &mut self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        let mut users: Vec<String> = Vec::new();
        let mut name = |user: &str| {
            if !self.seats.contains_key(user) {
                self.seats.insert(user.to_owned(), (None, None));
                users.push(user.to_owned());
            }
        };
        for envelope in events {
            match &envelope.event {
                Event::ViewerJoined(e) => name(&e.user_id),
                Event::ViewerTokenRenewed(e) => name(&e.user_id),
                Event::ViewerLeft(e) => name(&e.user_id),
                Event::ViewerExpired(e) => name(&e.user_id),
                Event::ViewerHeartbeatRecorded(e) => name(&e.user_id),
                Event::ViewerHeartbeatsRecorded(b) => {
                    for beat in &b.heartbeats {
                        name(&beat.user_id);
                    }
                }
                _ => {}
            }
        }
        let rows: Vec<(String, String, String, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
            "SELECT user_id, stage_arn, participant_id, joined_at, last_heartbeat_at
                 FROM rm_viewer_seats WHERE user_id = ANY($1)",
        )
        .bind(&users)
        .fetch_all(&mut *tx)
        .await?;
        for (user, stage_arn, participant_id, joined_at, last_heartbeat_at) in rows {
            let seat = Seat {
                stage_arn,
                participant_id,
                joined_at,
                last_heartbeat_at,
            };
            self.seats.insert(user, (Some(seat.clone()), Some(seat)));
        }
        Ok(())
    }

    /// The user's seat when it is on `stage` (the `WHERE user_id = $1 AND stage_arn = $2` of the
    /// single statements).
    fn seat_on(&mut self, user: &str, stage: &str) -> Option<&mut Option<Seat>> {
        let (_, now) = self.seats.get_mut(user)?;
        match now {
            Some(seat) if seat.stage_arn == stage => Some(now),
            _ => None,
        }
    }

    fn beat(&mut self, user: &str, stage: &str, at: OffsetDateTime) {
        if let Some(Some(seat)) = self.seat_on(user, stage) {
            seat.last_heartbeat_at = seat.last_heartbeat_at.max(at);
        }
    }

    fn end(&mut self, user: &str, stage: &str, seconds: u64) {
        if let Some(seat) = self.seat_on(user, stage) {
            *seat = None;
            let watch = self
                .watch
                .entry((user.to_owned(), stage.to_owned()))
                .or_default();
            watch.0 += seconds as i64;
            watch.1 += 1;
        }
    }

    fn fold(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::ViewerJoined(e) => {
                if let Some((_, now)) = self.seats.get_mut(&e.user_id) {
                    *now = Some(Seat {
                        stage_arn: e.stage_arn.clone(),
                        participant_id: e.participant_id.clone(),
                        joined_at: at,
                        last_heartbeat_at: at,
                    });
                }
            }
            Event::ViewerTokenRenewed(e) => {
                if let Some(Some(seat)) = self.seat_on(&e.user_id, &e.stage_arn) {
                    seat.participant_id = e.participant_id.clone();
                    seat.last_heartbeat_at = seat.last_heartbeat_at.max(at);
                }
            }
            Event::ViewerHeartbeatRecorded(e) => self.beat(&e.user_id, &e.stage_arn, at),
            Event::ViewerHeartbeatsRecorded(b) => {
                for beat in &b.heartbeats {
                    self.beat(&beat.user_id, &beat.stage_arn, beat.at);
                }
            }
            Event::ViewerLeft(e) => self.end(&e.user_id, &e.stage_arn, e.watch_duration_seconds),
            Event::ViewerExpired(e) => self.end(&e.user_id, &e.stage_arn, e.watch_duration_seconds),
            _ => {}
        }
    }

    /// Deletes the seats the batch ended, writes those it took or changed, and adds the watch
    /// times.
    async fn write(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut gone = Vec::new();
        let (mut users, mut stages, mut participants, mut joined, mut beats) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (user, (before, now)) in self.seats {
            match now {
                None if before.is_some() => gone.push(user),
                Some(seat) if before.as_ref() != Some(&seat) => {
                    users.push(user);
                    stages.push(seat.stage_arn);
                    participants.push(seat.participant_id);
                    joined.push(seat.joined_at);
                    beats.push(seat.last_heartbeat_at);
                }
                _ => {}
            }
        }
        if !gone.is_empty() {
            sqlx::query("DELETE FROM rm_viewer_seats WHERE user_id = ANY($1)")
                .bind(&gone)
                .execute(&mut *tx)
                .await?;
        }
        if !users.is_empty() {
            sqlx::query(
                "INSERT INTO rm_viewer_seats
                     (user_id, stage_arn, participant_id, joined_at, last_heartbeat_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                      $5::timestamptz[])
                 ON CONFLICT (user_id) DO UPDATE SET stage_arn = EXCLUDED.stage_arn,
                   participant_id = EXCLUDED.participant_id, joined_at = EXCLUDED.joined_at,
                   last_heartbeat_at = EXCLUDED.last_heartbeat_at",
            )
            .bind(&users)
            .bind(&stages)
            .bind(&participants)
            .bind(&joined)
            .bind(&beats)
            .execute(&mut *tx)
            .await?;
        }
        if !self.watch.is_empty() {
            let (mut users, mut stages, mut seconds, mut sessions) =
                (vec![], vec![], vec![], vec![]);
            for ((user, stage), (s, n)) in self.watch {
                users.push(user);
                stages.push(stage);
                seconds.push(s);
                sessions.push(n);
            }
            sqlx::query(
                "INSERT INTO rm_watch_time (user_id, stage_arn, completed_seconds, completed_sessions)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::integer[])
                 ON CONFLICT (user_id, stage_arn) DO UPDATE SET
                   completed_seconds = rm_watch_time.completed_seconds + EXCLUDED.completed_seconds,
                   completed_sessions = rm_watch_time.completed_sessions + EXCLUDED.completed_sessions",
            )
            .bind(&users)
            .bind(&stages)
            .bind(&seconds)
            .bind(&sessions)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}
