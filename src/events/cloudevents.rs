//! CloudEvents NATS protocol binding, binary content mode: the event's attributes travel as
//! `ce-*` headers, its data as the message payload (`application/json`).

use async_nats::HeaderMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{DecodeError, Event, EventEnvelope};

/// CloudEvents spec version header; always `1.0`.
pub const SPEC_VERSION: &str = "ce-specversion";
/// Event id header: a UUID (v7, or derived where retries or instances must agree on one event).
pub const ID: &str = "ce-id";
/// Writer header, e.g. `/onair/stage-api` or `/onair/cli`.
pub const SOURCE: &str = "ce-source";
/// Event type header, `onair.<context>.<event>.v<N>` ([`Event::event_type`]).
pub const TYPE: &str = "ce-type";
/// When the fact happened: RFC 3339, UTC, milliseconds ([`format_time`]).
pub const TIME: &str = "ce-time";
/// The aggregate id, not encoded ([`Event::aggregate_id`]).
pub const SUBJECT: &str = "ce-subject";
/// Payload media type header; always `application/json`.
pub const DATA_CONTENT_TYPE: &str = "ce-datacontenttype";
/// JetStream's de-duplication header; always equal to `ce-id`.
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";

/// Formats a UTC time as RFC 3339 with milliseconds, e.g. `2025-10-19T12:00:00.000Z` (the seed's
/// timestamp shape).
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The headers of one event message.
pub fn headers(id: Uuid, occurred_at: OffsetDateTime, source: &str, event: &Event) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SPEC_VERSION, "1.0");
    headers.insert(ID, id.to_string().as_str());
    headers.insert(NATS_MSG_ID, id.to_string().as_str());
    headers.insert(SOURCE, source);
    headers.insert(TYPE, event.event_type());
    headers.insert(TIME, format_time(occurred_at).as_str());
    headers.insert(SUBJECT, event.aggregate_id().as_ref());
    headers.insert(DATA_CONTENT_TYPE, "application/json");
    headers
}

/// Reads an event back from its headers, payload and stream sequence.
pub fn decode(
    headers: Option<&HeaderMap>,
    payload: &[u8],
    sequence: u64,
) -> Result<EventEnvelope, DecodeError> {
    let headers = headers.ok_or(DecodeError::InvalidHeader(TYPE))?;
    let get = |name: &'static str| {
        headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .ok_or(DecodeError::InvalidHeader(name))
    };
    let event_type = get(TYPE)?;
    let id = Uuid::parse_str(&get(ID)?).map_err(|_| DecodeError::InvalidHeader(ID))?;
    let occurred_at = OffsetDateTime::parse(&get(TIME)?, &Rfc3339)
        .map_err(|_| DecodeError::InvalidHeader(TIME))?;
    Ok(EventEnvelope {
        id,
        occurred_at,
        sequence,
        event: Event::decode(&event_type, payload)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ViewerHeartbeatRecorded;
    use time::macros::datetime;

    #[test]
    fn time_has_milliseconds_and_z() {
        assert_eq!(
            format_time(datetime!(2025-10-19 12:00:00.5 UTC)),
            "2025-10-19T12:00:00.500Z"
        );
        assert_eq!(
            format_time(datetime!(2025-10-19 14:00:00 +2)),
            "2025-10-19T12:00:00.000Z"
        );
    }

    #[test]
    fn headers_round_trip() {
        let event = Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
            user_id: "viewer 1".into(),
            stage_arn: "arn".into(),
        });
        let id = Uuid::now_v7();
        let at = datetime!(2025-10-19 12:00:00.123 UTC);
        let h = headers(id, at, "/onair", &event);
        assert_eq!(h.get(NATS_MSG_ID).unwrap().as_str(), id.to_string());
        let envelope = decode(Some(&h), &event.to_json(), 7).unwrap();
        assert_eq!(envelope.id, id);
        assert_eq!(envelope.occurred_at, at);
        assert_eq!(envelope.sequence, 7);
        assert_eq!(envelope.event, event);
    }
}
