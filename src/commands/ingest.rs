//! IVS stream status from Amazon EventBridge (`source: aws.ivs`, the event in `detail.event_name`;
//! delivered best-effort: late, missing or out of order, hence the event's time): an "IVS Stage
//! Update" `Participant Published` / `Participant Unpublished` on the master stage becomes
//! `onair.stream.started.v1` / `onair.stream.ended.v1` at the event's time; anything else is
//! ignored (and acknowledged by the caller, so EventBridge does not retry it).

use time::OffsetDateTime;

use crate::commands::pool::PoolService;
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::{Event, StreamEnded, StreamStarted};

/// The `detail-type` that counts.
pub const STAGE_UPDATE: &str = "IVS Stage Update";

/// An IVS stage event as delivered, its fields checked by the caller.
#[derive(Clone, Debug)]
pub struct IvsStageEvent {
    /// The EventBridge `detail-type`.
    pub detail_type: String,
    /// `resources[0]`: the stage ARN.
    pub stage_arn: String,
    /// `detail.event_name`, e.g. `Participant Published`.
    pub event_name: String,
    /// `detail.participant_id`.
    pub participant_id: Option<String>,
    /// `detail.session_id`.
    pub session_id: Option<String>,
    /// When it happened (`detail.event_time`, else `time`, else now).
    pub at: OffsetDateTime,
}

/// What became of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// Stored as `event_type` at stream `sequence`.
    Stored {
        /// e.g. `onair.stream.started.v1`.
        event_type: String,
        /// The stream sequence.
        sequence: u64,
    },
    /// Not relevant; `reason` says why.
    Ignored {
        /// e.g. `not the master stage`.
        reason: String,
    },
}

/// Why an event was not stored: the event store did not answer (HTTP 503).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The event store did not answer; nothing was stored.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

/// The stream status event `event` stands for on `master` (the master stage's ARN), or why it
/// is ignored.
pub fn decide(event: IvsStageEvent, master: Option<&str>) -> Result<Event, String> {
    if event.detail_type != STAGE_UPDATE {
        return Err(format!("detail-type {:?} is not used", event.detail_type));
    }
    if master != Some(event.stage_arn.as_str()) {
        return Err("not the master stage".to_owned());
    }
    let source = "eventbridge".to_owned();
    match event.event_name.as_str() {
        "Participant Published" => Ok(Event::StreamStarted(StreamStarted {
            stage_arn: event.stage_arn,
            participant_id: event.participant_id,
            session_id: event.session_id,
            source,
        })),
        "Participant Unpublished" => Ok(Event::StreamEnded(StreamEnded {
            stage_arn: event.stage_arn,
            participant_id: event.participant_id,
            session_id: event.session_id,
            source,
        })),
        other => Err(format!("event_name {other:?} is not used")),
    }
}

/// Stores the stream status `event` stands for, or ignores it.
#[tracing::instrument(skip_all, fields(stage.arn = %event.stage_arn, ivs.event = %event.event_name), err)]
pub async fn ingest_stage_event(
    store: &EventStore,
    pool: &PoolService,
    event: IvsStageEvent,
) -> Result<Ingested, IngestError> {
    let master = pool.read(|p| p.master().map(|s| s.arn.clone()));
    let at = event.at;
    let stored = match decide(event, master.as_deref()) {
        Ok(stored) => stored,
        Err(reason) => return Ok(Ingested::Ignored { reason }),
    };
    let event_type = stored.event_type().to_owned();
    let published = store.publish(NewEvent::new(at, stored)).await?;
    Ok(Ingested::Stored {
        event_type,
        sequence: published.sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "arn:aws:ivs:us-east-1:000000000000:stage/master";

    fn event(detail_type: &str, arn: &str, name: &str) -> IvsStageEvent {
        IvsStageEvent {
            detail_type: detail_type.into(),
            stage_arn: arn.into(),
            event_name: name.into(),
            participant_id: Some("p-1".into()),
            session_id: None,
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn given_a_publish_on_the_master_stage_then_the_stream_starts_and_an_unpublish_ends_it() {
        let started = decide(
            event(STAGE_UPDATE, MASTER, "Participant Published"),
            Some(MASTER),
        );
        assert!(
            matches!(started, Ok(Event::StreamStarted(e)) if e.participant_id.as_deref() == Some("p-1"))
        );
        let ended = decide(
            event(STAGE_UPDATE, MASTER, "Participant Unpublished"),
            Some(MASTER),
        );
        assert!(matches!(ended, Ok(Event::StreamEnded(_))));
    }

    #[test]
    fn given_another_detail_type_stage_or_event_name_then_it_is_ignored_with_a_reason() {
        assert_eq!(
            decide(
                event("Other", MASTER, "Participant Published"),
                Some(MASTER)
            )
            .unwrap_err(),
            "detail-type \"Other\" is not used"
        );
        assert_eq!(
            decide(
                event(STAGE_UPDATE, "arn:x", "Participant Published"),
                Some(MASTER)
            )
            .unwrap_err(),
            "not the master stage"
        );
        assert_eq!(
            decide(
                event(STAGE_UPDATE, MASTER, "Participant Joined"),
                Some(MASTER)
            )
            .unwrap_err(),
            "event_name \"Participant Joined\" is not used"
        );
        assert!(decide(event(STAGE_UPDATE, MASTER, "Participant Published"), None).is_err());
    }
}
