//! The client gateway (docs/api.md#client-gateway): `POST /api/action/{actionName}`
//! with `{"query": "<JSON text>", "Authorization": "<member token>"}`. Each action has its own
//! route so the spec documents its `query` and answer; any other name is 404 `UNKNOWN_ACTION`.
//!
//! The member token may also sit inside `query` (the seed's `sendGift` example). No API key: front
//! ends call these routes as members. A `query` that is not a JSON object, or misses or mistypes a
//! field, is 400 `VALIDATION_ERROR` naming the field (`query.giftID is required`), and nothing is
//! published. Writes answer after JetStream's ack, with `X-Event-Sequence`.
//!
//! One `#[OpenApi]` struct per group of actions, in spec order: [`members`] (login),
//! [`rooms`], [`gifts`], [`moderation`] (and unknown actions); [`action`] parses the body they
//! share, [`answers`] holds their answers.

pub mod action;
pub mod answers;
pub mod gifts;
pub mod members;
pub mod moderation;
pub mod rooms;

/// Every client action, in spec order.
pub type GatewayApi = (
    members::LoginApi,
    rooms::RoomActionsApi,
    gifts::GiftActionsApi,
    moderation::ModerationActionsApi,
);
