//! The published description of the stream for consumers in any language
//! (docs/design.md#the-event-model): a JSON Schema per event type (`openapi/events/<type>.json`)
//! and an AsyncAPI 3 document (`openapi/asyncapi.json`) with every subject, the CloudEvents headers
//! and the payloads. Both are generated from the Rust types (`onair schemas`) and a test fails when
//! the committed files differ from them.

use schemars::JsonSchema;
use serde_json::{Value, json};

use super::*;

/// One event type as published.
pub struct EventSchema {
    /// `ce-type`, e.g. `onair.viewer.joined.v1`.
    pub event_type: &'static str,
    /// The NATS subject, `{aggregateId}` standing for the encoded aggregate id.
    pub subject: String,
    /// What the aggregate id is.
    pub aggregate: &'static str,
    /// The payload's JSON Schema (draft 2020-12).
    pub schema: Value,
}

fn payload<T: JsonSchema>(event_type: &str) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).expect("schemas serialize");
    schema["$id"] = json!(format!("urn:onair:events:{event_type}"));
    schema["title"] = json!(event_type);
    schema
}

macro_rules! catalog {
    ($( $ty:ty, $event_type:literal, $subject:expr, $aggregate:literal; )*) => {
        vec![$(EventSchema {
            event_type: $event_type,
            subject: $subject.to_owned(),
            aggregate: $aggregate,
            schema: payload::<$ty>($event_type),
        }),*]
    };
}

/// Every event type onair writes.
pub fn catalog() -> Vec<EventSchema> {
    let pool = |event: &str| format!("onair.pool.{POOL_ID}.{event}");
    let of = |context: &str, event: &str| format!("onair.{context}.{{aggregateId}}.{event}");
    catalog![
        StageCreated, "onair.stage.created.v1", pool("stage_created"), "the pool";
        StageRenamed, "onair.stage.renamed.v1", pool("stage_renamed"), "the pool";
        StageDrainStarted, "onair.stage.drain_started.v1", pool("stage_drain_started"), "the pool";
        StageDrainEnded, "onair.stage.drain_ended.v1", pool("stage_drain_ended"), "the pool";
        StageDeleted, "onair.stage.deleted.v1", pool("stage_deleted"), "the pool";
        ViewerJoined, "onair.viewer.joined.v1", pool("viewer_joined"), "the pool";
        ViewerTokenRenewed, "onair.viewer.token_renewed.v1", pool("viewer_token_renewed"), "the pool";
        ViewerLeft, "onair.viewer.left.v1", pool("viewer_left"), "the pool";
        ViewerExpired, "onair.viewer.expired.v1", pool("viewer_expired"), "the pool";
        ViewerHeartbeatRecorded, "onair.viewer.heartbeat_recorded.v1", of("viewer", "heartbeat_recorded"), "the user id";
        ViewerHeartbeatsRecorded, "onair.viewer.heartbeats_recorded.v1", format!("onair.viewer.{POOL_ID}.heartbeats_recorded"), "the pool";
        PublisherTokenIssued, "onair.publisher.token_issued.v1", of("publisher", "token_issued"), "the user id";
        StreamStarted, "onair.stream.started.v1", of("stream", "started"), "the stage ARN";
        StreamEnded, "onair.stream.ended.v1", of("stream", "ended"), "the stage ARN";
        MemberRegistered, "onair.member.registered.v1", of("member", "registered"), "the member id";
        MemberEdited, "onair.member.edited.v1", of("member", "edited"), "the member id";
        MemberLoggedIn, "onair.member.logged_in.v1", of("member", "logged_in"), "the member id";
        GiftDefined, "onair.gift_catalog.defined.v1", of("gift_catalog", "defined"), "the gift id";
        RoomInfoSet, "onair.room.info_set.v1", of("room", "info_set"), "the streamer's member id";
        BroadcastStarted, "onair.broadcast.started.v1", of("broadcast", "started"), "the streamer's member id";
        BroadcastEnded, "onair.broadcast.ended.v1", of("broadcast", "ended"), "the streamer's member id";
        StreamerFollowed, "onair.follow.followed.v1", of("follow", "followed"), "\"<follower> <streamer>\"";
        StreamerUnfollowed, "onair.follow.unfollowed.v1", of("follow", "unfollowed"), "\"<follower> <streamer>\"";
        room::GiftSentV1, "onair.gift.sent.v1", of("gift", "sent"), "the streamer's member id (v1: upcast to v2 on read)";
        GiftSent, "onair.gift.sent.v2", of("gift", "sent"), "the streamer's member id";
        PopularityChanged, "onair.popularity.changed.v1", of("popularity", "changed"), "the streamer's member id";
        RoomNoticePublished, "onair.notice.published_to_room.v1", of("notice", "published_to_room"), "the chat room name";
        FollowerNoticePublished, "onair.notice.published_to_followers.v1", of("notice", "published_to_followers"), "the streamer's member id";
        AllRoomsNoticePublished, "onair.notice.published_to_all_rooms.v1", "onair.notice.all.published_to_all_rooms", "\"all\"";
        ChatMessagePosted, "onair.chat.message_posted.v1", of("chat", "message_posted"), "the chat room name";
        MemberJoinedRoom, "onair.chat.member_joined_room.v1", of("chat", "member_joined"), "the chat room name";
        MemberLeftRoom, "onair.chat.member_left_room.v1", of("chat", "member_left"), "the chat room name";
        MemberModerated, "onair.moderation.member_moderated.v1", of("moderation", "member_moderated"), "the chat room name";
        MaintenanceModeSet, "onair.system.maintenance_mode_set.v1", "onair.system.maintenance.maintenance_mode_set", "\"maintenance\"";
    ]
}

/// The CloudEvents headers every message carries (NATS binding, binary mode).
fn headers_schema() -> Value {
    let text = |description: &str| json!({"type": "string", "description": description});
    json!({
        "type": "object",
        "required": ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject",
                     "ce-datacontenttype", "Nats-Msg-Id"],
        "properties": {
            "ce-specversion": text("Always 1.0"),
            "ce-id": text("Event id: a UUID (v7, or derived where retries must agree)"),
            "ce-source": text("The writer, e.g. /onair/stage-api"),
            "ce-type": text("onair.<context>.<event>.v<N>"),
            "ce-time": text("When it happened: RFC 3339, UTC, milliseconds"),
            "ce-subject": text("The aggregate id, not encoded"),
            "ce-datacontenttype": text("Always application/json"),
            "Nats-Msg-Id": text("Equal to ce-id: JetStream's de-duplication key"),
        }
    })
}

/// The AsyncAPI 3 document of the stream.
pub fn asyncapi() -> Value {
    let mut channels = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    let mut messages = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for event in catalog() {
        let key = event.event_type.replace('.', "_");
        let mut payload = event.schema.clone();
        if let Value::Object(map) = &mut payload {
            map.remove("$schema");
            map.remove("$id");
        }
        schemas.insert(key.clone(), payload);
        messages.insert(
            key.clone(),
            json!({
                "name": event.event_type,
                "title": event.event_type,
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
                "payload": {"$ref": format!("#/components/schemas/{key}")},
            }),
        );
        channels.insert(
            key.clone(),
            json!({
                "address": event.subject,
                "description": format!("{{aggregateId}} is {}, encoded as one subject token \
                    ([A-Za-z0-9_-]{{1,64}} as is, else ~ + base64url).", event.aggregate),
                "messages": {key.clone(): {"$ref": format!("#/components/messages/{key}")}},
            }),
        );
        operations.insert(
            format!("receive_{key}"),
            json!({
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{key}")},
            }),
        );
    }
    schemas.insert("CloudEventHeaders".into(), headers_schema());
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "onair event stream",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every fact onair knows, one CloudEvent per message on the JetStream \
                stream ONAIR (subjects onair.>). Headers follow the CloudEvents NATS binding in \
                binary mode; the payload is the event's data as camelCase JSON.",
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "localhost:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    })
}

/// The files `onair schemas` writes, relative to `openapi/`: `(path, content)`.
pub fn files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = catalog()
        .into_iter()
        .map(|e| {
            (
                format!("events/{}.json", e.event_type),
                serde_json::to_string_pretty(&e.schema).expect("schemas serialize") + "\n",
            )
        })
        .collect();
    out.push((
        "asyncapi.json".into(),
        serde_json::to_string_pretty(&asyncapi()).expect("asyncapi serializes") + "\n",
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_schema_and_its_subject() {
        let catalog = catalog();
        let types: std::collections::BTreeSet<_> = catalog.iter().map(|e| e.event_type).collect();
        assert_eq!(types.len(), catalog.len(), "no type twice");
        // Every type the decoder knows is in the catalog.
        for e in &catalog {
            let error = Event::decode(e.event_type, b"{}");
            assert!(
                !matches!(error, Err(DecodeError::UnknownType(_))),
                "{} is not decodable",
                e.event_type
            );
            assert!(e.subject.starts_with("onair."), "{}", e.subject);
            assert_eq!(e.schema["type"], "object", "{}", e.event_type);
        }
    }
}
