//! The back-office gateway (docs/api.md#back-office-gateway): `POST /api/backoffice/{action}`
//! with the operator's `website` and `key` in the JSON body (operators are managed with
//! `onair operator`). Actions: `CreateMember`, `EditMember` (the renamed UpdateStreamer),
//! `SetGift`, `ListGifts`, `getGiftRecord`. Wrong or missing credentials: 401 `UNAUTHORIZED`.
//!
//! One `#[OpenApi]` struct per group of actions, in spec order: [`members`], [`gifts`] (the
//! catalog), [`chat`] (maintenance mode, system messages), [`gift_records`]. Every request carries
//! the operator's credentials; [`credentials`] checks them, in one place.

pub mod chat;
pub mod credentials;
pub mod gift_records;
pub mod gifts;
pub mod members;

/// Every back-office action, in spec order.
pub type BackOfficeApi = (
    members::MemberActionsApi,
    gifts::GiftCatalogApi,
    chat::ChatControlApi,
    gift_records::GiftRecordsApi,
);
