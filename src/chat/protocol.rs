//! The actionhero websocket protocol over Primus framing, as `ActionheroWebsocketClient` speaks it
//! (docs/chat.md#protocol-facts). Pure: parses client frames and builds server frames.
//!
//! Every message is one text frame holding `JSON.stringify(value)`: application messages are JSON
//! objects, Primus control messages JSON strings (`"primus::ping::<ms>"`).

use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The welcome text: any non-empty text (an empty one reaches the page as an `api` event).
pub const WELCOME: &str = "Welcome to the onair api";

/// What one client frame is.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// `"primus::pong::<ms>"`: the answer to a ping.
    Pong,
    /// `"primus::id::"`: asks for the connection id.
    IdRequest,
    /// Another `primus::` string: ignored.
    OtherControl,
    /// A JSON object: an actionhero request.
    Request(Request),
    /// Valid JSON that is not an object or a control string: answered as an unknown verb.
    NotAnObject,
    /// Not JSON: dropped, the connection stays (as Primus does).
    Invalid,
}

/// An actionhero request: `{"event": ..., "messageId": ..., ...}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The verb (`roomAdd`, `say`, `action`, ...); `None` when missing or not a string.
    pub event: Option<String>,
    /// Echoed in the answer; a falsy one (missing, 0, "") is replaced by a UUID v4, as
    /// actionhero does.
    pub message_id: Value,
    /// The `room` field; a non-string value as its JSON text, `None` when missing or null.
    pub room: Option<String>,
    /// The frame's other fields (`message`, `params`, ...).
    pub rest: Map<String, Value>,
}

impl Request {
    /// The `say` text: `message` as a string; numbers and booleans as their text, objects as
    /// actionhero would make them (`[object Object]`).
    pub fn message_text(&self) -> Option<String> {
        match self.rest.get("message")? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            Value::Object(_) => Some("[object Object]".into()),
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            other => Some(other.to_string()),
        }
        .filter(|m| !m.is_empty())
    }

    /// The `params` of an `action` request (an empty map when absent).
    pub fn params(&self) -> Map<String, Value> {
        match self.rest.get("params") {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        }
    }
}

fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Incoming {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Incoming::Invalid;
    };
    match value {
        Value::String(s) if s.starts_with("primus::pong::") => Incoming::Pong,
        Value::String(s) if s == "primus::id::" => Incoming::IdRequest,
        Value::String(s) if s.starts_with("primus::") => Incoming::OtherControl,
        Value::Object(mut map) => {
            let event = match map.remove("event") {
                Some(Value::String(e)) => Some(e),
                _ => None,
            };
            let message_id = map.remove("messageId").unwrap_or(Value::Null);
            let message_id = if is_falsy(&message_id) {
                Value::String(Uuid::new_v4().to_string())
            } else {
                message_id
            };
            let room = match map.remove("room") {
                Some(Value::String(r)) => Some(r),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            Incoming::Request(Request {
                event,
                message_id,
                room,
                rest: map,
            })
        }
        _ => Incoming::NotAnObject,
    }
}

/// A Primus control string as a frame.
fn control(text: String) -> String {
    Value::String(text).to_string()
}

/// `"primus::ping::<ms>"`.
pub fn ping(now_ms: i64) -> String {
    control(format!("primus::ping::{now_ms}"))
}

/// `"primus::server::close"`: sent before a close the client must not reconnect after.
pub fn server_close() -> String {
    control("primus::server::close".into())
}

/// `"primus::id::<id>"`.
pub fn id_reply(id: &str) -> String {
    control(format!("primus::id::{id}"))
}

/// `{"welcome": ..., "context": "api"}`.
pub fn welcome() -> String {
    json!({"welcome": WELCOME, "context": "api"}).to_string()
}

/// A verb's success: `{"status":"OK","context":"response","data":...,"messageId":...}` (no
/// `data` for `say`).
pub fn verb_ok(message_id: &Value, data: Option<Value>) -> String {
    let mut frame = json!({"status": "OK", "context": "response", "messageId": message_id});
    if let Some(data) = data {
        frame["data"] = data;
    }
    frame.to_string()
}

/// A verb's failure: `{"status":"Error: <msg>","error":"Error: <msg>","context":"response",
/// "data":<leftover fields>,"messageId":...}`.
pub fn verb_error(message_id: &Value, message: &str, leftover: &Map<String, Value>) -> String {
    let text = format!("Error: {message}");
    json!({"status": text, "error": text, "context": "response", "data": leftover,
           "messageId": message_id})
    .to_string()
}

/// An action's result, merged flat with `context` and `messageId`.
pub fn action_result(message_id: &Value, mut result: Map<String, Value>) -> String {
    result.insert("context".into(), json!("response"));
    result.insert("messageId".into(), message_id.clone());
    Value::Object(result).to_string()
}

/// An action's failure: `{"error": <msg>, "context": "response", "messageId": ...}`.
pub fn action_error(message_id: &Value, message: &str) -> String {
    json!({"error": message, "context": "response", "messageId": message_id}).to_string()
}

/// A time as the protocol's Unix milliseconds (`sentAt`, `joinedAt`).
pub fn unix_ms(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A chat broadcast: `{"message","room","from","context":"user","sentAt"}`; `from` is a
/// connection id, or `"0"` for the system; `sentAt` in ms.
pub fn say(message: &str, room: &str, from: &str, sent_at_ms: i64) -> String {
    json!({"message": message, "room": room, "from": from, "context": "user",
           "sentAt": sent_at_ms})
    .to_string()
}

/// A system message: `{"context":"api","data":{"code","message"},"message":{"code","message"}}`
/// (`message` beside `data`, docs/chat.md#server-messages).
pub fn system(code: u32, message: &str) -> String {
    let body = json!({"code": code, "message": message});
    json!({"context": "api", "data": body, "message": body}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_strings_and_invalid_frames() {
        assert_eq!(parse("\"primus::pong::1795328370154\""), Incoming::Pong);
        assert_eq!(parse("\"primus::id::\""), Incoming::IdRequest);
        assert_eq!(parse("\"primus::x::y\""), Incoming::OtherControl);
        assert_eq!(parse("not json"), Incoming::Invalid);
        assert_eq!(parse("[1]"), Incoming::NotAnObject);
        assert_eq!(ping(5), "\"primus::ping::5\"");
        assert_eq!(server_close(), "\"primus::server::close\"");
        assert_eq!(id_reply("abc"), "\"primus::id::abc\"");
    }

    #[test]
    fn requests_keep_their_message_id_or_get_a_uuid() {
        let Incoming::Request(r) = parse(r#"{"event":"roomAdd","room":"R","messageId":2}"#) else {
            panic!()
        };
        assert_eq!(
            (r.event.as_deref(), r.room.as_deref()),
            (Some("roomAdd"), Some("R"))
        );
        assert_eq!(r.message_id, json!(2));
        let Incoming::Request(r) = parse(r#"{"event":"detailsView","messageId":0}"#) else {
            panic!()
        };
        assert!(Uuid::parse_str(r.message_id.as_str().unwrap()).is_ok());
        let Incoming::Request(r) = parse(r#"{"event":"say","room":"R","message":{"a":1}}"#) else {
            panic!()
        };
        assert_eq!(r.message_text().as_deref(), Some("[object Object]"));
    }

    #[test]
    fn server_frames_have_the_wire_shapes() {
        let v: Value = serde_json::from_str(&verb_ok(&json!(7), None)).unwrap();
        assert_eq!(
            v,
            json!({"status": "OK", "context": "response", "messageId": 7})
        );
        let v: Value =
            serde_json::from_str(&verb_error(&json!(3), "room does not exist", &Map::new()))
                .unwrap();
        assert_eq!(v["status"], "Error: room does not exist");
        assert_eq!(v["error"], "Error: room does not exist");
        let v: Value =
            serde_json::from_str(&system(40101, "The account is not logged in")).unwrap();
        assert_eq!(
            v["data"],
            json!({"code": 40101, "message": "The account is not logged in"})
        );
        assert_eq!(v["message"], v["data"]);
        let v: Value = serde_json::from_str(&say("{}", "R", "0", 1603210582540)).unwrap();
        assert_eq!(v["from"], "0");
        assert_eq!(v["sentAt"], 1603210582540i64);
    }
}
