//! `SetGift` and `ListGifts`: the gift catalog ([`crate::commands::gift_catalog`]).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::credentials::{CredentialsRequest, Operator, operator_credentials};
use crate::app::AppState;
use crate::commands::gift_catalog::{self, Gift};
use crate::http::api_error::ApiError;
use crate::http::common::write_response;
use crate::http::envelope::Envelope;
use crate::http::field::Checked;
use crate::http::tags::ApiTags;

/// `SetGift`: create or replace a catalog entry.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SetGiftRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// 1 or more.
    #[oai(rename = "giftID")]
    pub gift_id: Checked<i64>,
    /// 1 to 100 characters.
    pub name: Checked<String>,
    /// Ranking points per gift (1 or more): a gift of `count` adds `points × count`.
    pub points: Checked<i32>,
    /// Animation URL or partial path.
    pub anime_url: Option<String>,
    /// `false` stops members from sending it (default `true`).
    pub enabled: Option<bool>,
}

operator_credentials!(SetGiftRequest);

/// A catalog entry.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GiftView {
    /// The gift's id (1 or more).
    #[oai(rename = "giftID")]
    pub gift_id: i64,
    /// Gift name, 1 to 100 characters.
    pub name: String,
    /// Ranking points per gift (1 or more).
    pub points: i32,
    /// Animation URL or partial path; empty when none.
    pub anime_url: String,
    /// Whether members may send it.
    pub enabled: bool,
}

impl From<Gift> for GiftView {
    fn from(g: Gift) -> Self {
        Self {
            gift_id: g.gift_id,
            name: g.name,
            points: g.points,
            anime_url: g.anime_url,
            enabled: g.enabled,
        }
    }
}

write_response!(
    GiftResponse,
    GiftView,
    "Stored; `X-Event-Sequence` is the sequence of `gift_catalog.defined`."
);

/// The back office's gift catalog actions.
#[derive(Default)]
pub struct GiftCatalogApi;

#[OpenApi(prefix_path = "/api/backoffice", tag = "ApiTags::BackOffice")]
impl GiftCatalogApi {
    /// SetGift: create or replace a gift of the catalog
    ///
    /// Publishes `gift_catalog.defined`. Gifts already sent keep the name and points they had.
    #[oai(path = "/SetGift", method = "post", operation_id = "SetGift")]
    async fn set_gift(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<SetGiftRequest>,
    ) -> Result<GiftResponse, ApiError> {
        let body = body.0;
        let scope = Operator::authenticate(&state, &body).await?.scope;
        scope.allows_shared("the gift catalog")?;
        let gift = Gift {
            gift_id: body.gift_id.get("giftID")?,
            name: body.name.get("name")?,
            points: body.points.get("points")?,
            anime_url: body.anime_url.unwrap_or_default(),
            enabled: body.enabled.unwrap_or(true),
        };
        let (gift, sequence) =
            gift_catalog::define(&state.db, &state.store, gift, state.clock.now()).await?;
        Ok(GiftResponse::Ok(Json(Envelope::ok(gift.into())), sequence))
    }

    /// ListGifts: the gift catalog, by id
    #[oai(path = "/ListGifts", method = "post", operation_id = "ListGifts")]
    async fn list_gifts(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<CredentialsRequest>,
    ) -> Result<Json<Envelope<Vec<GiftView>>>, ApiError> {
        let body = body.0;
        Operator::authenticate(&state, &body).await?;
        let gifts = gift_catalog::list(&state.db).await?;
        Ok(Json(Envelope::ok(
            gifts.into_iter().map(Into::into).collect(),
        )))
    }
}
