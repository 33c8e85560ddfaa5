//! The back-office gateway (seeds/gateway-chat.md "API Gateway"): `POST /api/backoffice/{action}`
//! with the operator's `website` and `key` in the JSON body (operators are managed with
//! `onair operator`). Actions: `CreateMember`, `EditMember` (the renamed UpdateStreamer),
//! `SetGift`, `ListGifts`, `getGiftRecord`. Wrong or missing credentials: 401 `UNAUTHORIZED`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};

use super::api_error::ApiError;
use super::envelope::{Envelope, timestamp};
use super::field::{Checked, Loose};
use super::gateway::MemberView;
use super::{ApiTags, AppState, write_response};
use crate::commands::gift_catalog::{self, Gift};
use crate::commands::members::{self, MemberEdit, NewMember};
use crate::domain::member::{MemberFilter, MemberId, Role};
use crate::domain::operator::{OperatorScope, ScopeError};
use crate::read_models::gift_records::{self, AgentScope, GiftRecordQuery};

/// Longest period one `getGiftRecord` may cover, in days.
pub const MAX_RECORD_DAYS: i64 = 93;
/// Largest `pagelimit` of `getGiftRecord`.
pub const MAX_PAGE_LIMIT: i64 = 500;

/// The operator's website and scope, or 401 `UNAUTHORIZED`.
async fn authenticate(
    state: &AppState,
    website: Checked<String>,
    key: Checked<String>,
) -> Result<(String, OperatorScope), ApiError> {
    let website = website.get("website")?;
    let key = key.get("key")?;
    // Every operator's website is printable ASCII (`onair operator create`); anything else is
    // unknown without asking the database (which could not even compare a NUL).
    if !website.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::unauthorized("unknown website or wrong key"));
    }
    match crate::records::operators::verify(&state.db, &website, &key).await? {
        Some(scope) => Ok((website, scope)),
        None => Err(ApiError::unauthorized("unknown website or wrong key")),
    }
}

impl From<ScopeError> for ApiError {
    fn from(e: ScopeError) -> Self {
        ApiError::forbidden(e.to_string())
    }
}

/// `CreateMember`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreateMemberRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// `account@agent.masterAgent`.
    #[oai(rename = "memberID")]
    pub member_id: Checked<String>,
    /// 8 to 128 characters; stored as an Argon2id hash.
    pub password: Checked<String>,
    /// `member` (default) or `streamer`.
    pub role: Option<String>,
    /// 1 to 50 characters.
    pub nickname: Checked<String>,
    /// Avatar URL, at most 2048 characters; empty by default.
    pub avatar: Option<String>,
    /// VIP level, free text of at most 256 characters; empty by default.
    pub vip: Option<String>,
    /// Badge shown in chat (the seed's `equipmentBar`), at most 256 characters; empty by
    /// default.
    pub equipment_bar: Option<String>,
    /// Defaults to the account part of `memberID`.
    #[oai(rename = "accountID")]
    pub account_id: Option<String>,
}

/// `EditMember`: absent fields keep their value.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct EditMemberRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// The member to edit: `account@agent.masterAgent`.
    #[oai(rename = "memberID")]
    pub member_id: Checked<String>,
    /// A new password (8 to 128 characters); tokens issued before it are revoked (401 TOKEN_REVOKED).
    pub password: Option<String>,
    /// `member` or `streamer`.
    pub role: Option<String>,
    /// New display name, 1 to 50 characters.
    pub nickname: Option<String>,
    /// New avatar URL, at most 2048 characters (`""` clears it).
    pub avatar: Option<String>,
    /// New VIP level, at most 256 characters (`""` clears it).
    pub vip: Option<String>,
    /// New badge (`equipmentBar`), at most 256 characters (`""` clears it).
    pub equipment_bar: Option<String>,
    /// New `accountID`, 1 to 256 characters.
    #[oai(rename = "accountID")]
    pub account_id: Option<String>,
}

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

/// Operator credentials only (`ListGifts`).
#[derive(Object, Debug)]
pub struct CredentialsRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
}

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

/// `getGiftRecord` (seeds/gateway-chat.md): required `website, username, uppername, key,
/// startDate, endDate`; optional filters. Values may be strings or numbers; `""` means "not
/// given", as the seed's example sends them.
#[derive(Object, Debug)]
pub struct GiftRecordRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The back-office user asking (logged with the query).
    pub username: Checked<String>,
    /// The agent line asked about: `agent.masterAgent` (one agent) or `masterAgent` (all its
    /// agents); matched against each gift's room agent.
    pub uppername: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// First day, `YYYY-MM-DD` (UTC).
    #[oai(rename = "startDate")]
    pub start_date: Checked<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive; at most 93 days after `startDate`.
    #[oai(rename = "endDate")]
    pub end_date: Checked<String>,
    /// Streamer filter: `account`, `account@agent` or `account@agent.masterAgent`.
    #[oai(rename = "streamerAccount")]
    pub streamer_account: Option<Loose>,
    /// Sender filter: `account`, `account@agent` or `account@agent.masterAgent`.
    pub account: Option<Loose>,
    /// Time of day on `startDate` to start from, `HH:MM[:SS]` (default `00:00:00`).
    pub starttime: Option<Loose>,
    /// Time of day on `endDate` to end at, inclusive, `HH:MM[:SS]` (default the day's end).
    pub endtime: Option<Loose>,
    /// Only this gift.
    #[oai(rename = "giftID")]
    pub gift_id: Option<Loose>,
    /// Page, from 1 (default 1).
    pub page: Option<Loose>,
    /// Records per page, 1 to 500 (default 20).
    pub pagelimit: Option<Loose>,
}

/// One gift record, newest first.
#[derive(Object, Debug)]
pub struct GiftRecordItem {
    /// The record's id: the `gift.sent` event id, as `sendGift` answered it.
    #[oai(rename = "recordID")]
    pub record_id: String,
    /// RFC 3339, UTC, ms.
    #[oai(rename = "sentAt")]
    pub sent_at: String,
    /// The gift's catalog id.
    #[oai(rename = "giftID")]
    pub gift_id: i64,
    /// The gift's catalog name when sent.
    #[oai(rename = "giftName")]
    pub gift_name: String,
    /// Points per gift when sent.
    pub points: i32,
    /// How many were sent, 1 to 9999.
    #[oai(rename = "giftCount")]
    pub gift_count: i32,
    /// `points × giftCount`.
    pub score: i64,
    /// The sender's member id.
    pub account: String,
    /// The sender's nickname when sent.
    pub nickname: String,
    /// The streamer's member id.
    #[oai(rename = "streamerAccount")]
    pub streamer_account: String,
    /// The streamer's agent, `agent.masterAgent`.
    #[oai(rename = "agentID")]
    pub agent_id: String,
}

/// Answer of `getGiftRecord`.
#[derive(Object, Debug)]
pub struct GiftRecordList {
    /// This page's records, newest first.
    pub list: Vec<GiftRecordItem>,
    /// Matching records in all pages.
    pub total: i64,
    /// Sum of `giftCount` over all matching records.
    #[oai(rename = "totalGiftCount")]
    pub total_gift_count: i64,
    /// Sum of `score` over all matching records.
    #[oai(rename = "totalScore")]
    pub total_score: i64,
    /// The page, from 1.
    pub page: i64,
    /// Records per page, 1 to 500.
    pub pagelimit: i64,
    /// Pages of `pagelimit` records; 0 when nothing matches.
    #[oai(rename = "totalPages")]
    pub total_pages: i64,
}

fn parse_role(raw: Option<&str>, field: &str) -> Result<Option<Role>, ApiError> {
    raw.map(|r| {
        r.parse::<Role>()
            .map_err(|e| ApiError::validation(format!("invalid parameter {field}: {e}")))
    })
    .transpose()
}

fn parse_date(raw: &str, field: &str) -> Result<Date, ApiError> {
    Date::parse(raw.trim(), format_description!("[year]-[month]-[day]")).map_err(|_| {
        ApiError::validation(format!(
            "invalid parameter {field}: expected YYYY-MM-DD, found {raw:?}"
        ))
    })
}

fn parse_time_of_day(raw: &str, field: &str) -> Result<Time, ApiError> {
    let raw = raw.trim();
    Time::parse(raw, format_description!("[hour]:[minute]:[second]"))
        .or_else(|_| Time::parse(raw, format_description!("[hour]:[minute]")))
        .map_err(|_| {
            ApiError::validation(format!(
                "invalid parameter {field}: expected HH:MM or HH:MM:SS, found {raw:?}"
            ))
        })
}

/// The UTC period `[from, until)` of a `getGiftRecord`.
fn period(
    req: &GiftRecordRequest,
    start: &str,
    end: &str,
) -> Result<(OffsetDateTime, OffsetDateTime), ApiError> {
    let start_date = parse_date(start, "startDate")?;
    let end_date = parse_date(end, "endDate")?;
    if end_date < start_date {
        return Err(ApiError::validation("endDate must not be before startDate"));
    }
    if (end_date - start_date).whole_days() >= MAX_RECORD_DAYS {
        return Err(ApiError::validation(format!(
            "startDate to endDate may cover at most {MAX_RECORD_DAYS} days"
        )));
    }
    let start_time = match req.starttime.as_ref().and_then(Loose::text) {
        Some(t) => parse_time_of_day(t, "starttime")?,
        None => Time::MIDNIGHT,
    };
    let from = PrimitiveDateTime::new(start_date, start_time).assume_utc();
    let until = match req.endtime.as_ref().and_then(Loose::text) {
        // Inclusive: the whole last second (or minute) named.
        Some(t) => {
            let time = parse_time_of_day(t, "endtime")?;
            let step = if t.trim().len() <= 5 {
                Duration::minutes(1)
            } else {
                Duration::seconds(1)
            };
            PrimitiveDateTime::new(end_date, time)
                .assume_utc()
                .checked_add(step)
        }
        None => PrimitiveDateTime::new(end_date, Time::MIDNIGHT)
            .assume_utc()
            .checked_add(Duration::days(1)),
    }
    .ok_or_else(|| ApiError::validation("endDate is out of range"))?;
    if until <= from {
        return Err(ApiError::validation(
            "the period from startDate starttime to endDate endtime is empty",
        ));
    }
    Ok((from, until))
}

/// `SetMaintenance`.
#[derive(Object, Debug)]
pub struct MaintenanceRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// `true`: chat messages are refused with 40308 "System is maintaining".
    pub enabled: Checked<bool>,
}

/// `BroadcastSystemMessage`.
#[derive(Object, Debug)]
pub struct SystemMessageRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
    /// The text (1 to 1000 characters), sent as the seed's `{"type":"system","message"}`.
    pub message: Checked<String>,
    /// Only this streamer's room; every room when absent.
    #[oai(rename = "streamerID")]
    pub streamer_id: Option<String>,
}

/// Answer of the chat operator routes.
#[derive(Object, Debug)]
pub struct Published {
    /// The event's stream sequence.
    pub sequence: u64,
}

write_response!(
    MemberResponse,
    MemberView,
    "Stored; `X-Event-Sequence` is the sequence of `member.registered` / `member.edited`."
);
write_response!(
    GiftResponse,
    GiftView,
    "Stored; `X-Event-Sequence` is the sequence of `gift_catalog.defined`."
);
write_response!(
    PublishedResponse,
    Published,
    "Stored; `X-Event-Sequence` is the event's stream sequence."
);

/// Back-office actions.
#[derive(Default)]
pub struct BackOfficeApi;

#[OpenApi(prefix_path = "/api/backoffice", tag = "ApiTags::BackOffice")]
impl BackOfficeApi {
    /// CreateMember: register a member or streamer
    ///
    /// Publishes `member.registered` (without the password). Existing `memberID`: 409
    /// `MEMBER_EXISTS`.
    #[oai(path = "/CreateMember", method = "post", operation_id = "CreateMember")]
    async fn create_member(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<CreateMemberRequest>,
    ) -> Result<MemberResponse, ApiError> {
        let body = body.0;
        let (_, scope) = authenticate(&state, body.website, body.key).await?;
        let member_id = MemberId::parse(&body.member_id.get("memberID")?, "memberID")?;
        scope.allows_member(&member_id)?;
        let password = body.password.get("password")?;
        let nickname = body.nickname.get("nickname")?;
        let role = parse_role(body.role.as_deref(), "role")?.unwrap_or(Role::Member);
        let (profile, sequence) = members::register(
            &state.db,
            &state.store,
            NewMember {
                member_id,
                role,
                password,
                nickname,
                avatar: body.avatar.unwrap_or_default(),
                vip: body.vip.unwrap_or_default(),
                equipment_bar: body.equipment_bar.unwrap_or_default(),
                account_id: body.account_id.filter(|a| !a.is_empty()),
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
        Ok(MemberResponse::Ok(
            Json(Envelope::ok(profile.into())),
            sequence,
        ))
    }

    /// EditMember: change a member's profile, role or password (the renamed UpdateStreamer)
    ///
    /// Publishes `member.edited` (without the password). Unknown `memberID`: 404
    /// `MEMBER_NOT_FOUND`.
    #[oai(path = "/EditMember", method = "post", operation_id = "EditMember")]
    async fn edit_member(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<EditMemberRequest>,
    ) -> Result<MemberResponse, ApiError> {
        let body = body.0;
        let (_, scope) = authenticate(&state, body.website, body.key).await?;
        let member_id = MemberId::parse(&body.member_id.get("memberID")?, "memberID")?;
        scope.allows_member(&member_id)?;
        let edit = MemberEdit {
            role: parse_role(body.role.as_deref(), "role")?,
            password: body.password,
            nickname: body.nickname,
            avatar: body.avatar,
            vip: body.vip,
            equipment_bar: body.equipment_bar,
            account_id: body.account_id,
        };
        let (profile, sequence) = members::edit(
            &state.db,
            &state.store,
            member_id.as_str(),
            edit,
            OffsetDateTime::now_utc(),
        )
        .await?;
        Ok(MemberResponse::Ok(
            Json(Envelope::ok(profile.into())),
            sequence,
        ))
    }

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
        let (_, scope) = authenticate(&state, body.website, body.key).await?;
        scope.allows_shared("the gift catalog")?;
        let gift = Gift {
            gift_id: body.gift_id.get("giftID")?,
            name: body.name.get("name")?,
            points: body.points.get("points")?,
            anime_url: body.anime_url.unwrap_or_default(),
            enabled: body.enabled.unwrap_or(true),
        };
        let (gift, sequence) =
            gift_catalog::define(&state.db, &state.store, gift, OffsetDateTime::now_utc()).await?;
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
        authenticate(&state, body.website, body.key).await?;
        let gifts = gift_catalog::list(&state.db).await?;
        Ok(Json(Envelope::ok(
            gifts.into_iter().map(Into::into).collect(),
        )))
    }

    /// SetMaintenance: switch the chat's maintenance mode
    ///
    /// While on, every chat message is refused with the system message 40308, on every instance.
    #[oai(
        path = "/SetMaintenance",
        method = "post",
        operation_id = "SetMaintenance"
    )]
    async fn set_maintenance(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<MaintenanceRequest>,
    ) -> Result<PublishedResponse, ApiError> {
        let body = body.0;
        let (_, scope) = authenticate(&state, body.website, body.key).await?;
        scope.allows_shared("maintenance mode")?;
        let enabled = body.enabled.get("enabled")?;
        let published = state
            .store
            .publish(crate::event_store::NewEvent::new(
                OffsetDateTime::now_utc(),
                crate::events::Event::MaintenanceModeSet(crate::events::MaintenanceModeSet {
                    enabled,
                }),
            ))
            .await?;
        Ok(PublishedResponse::Ok(
            Json(Envelope::ok(Published {
                sequence: published.sequence,
            })),
            published.sequence,
        ))
    }

    /// BroadcastSystemMessage: a `system` chat message to one room or every room
    #[oai(
        path = "/BroadcastSystemMessage",
        method = "post",
        operation_id = "BroadcastSystemMessage"
    )]
    async fn broadcast_system_message(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<SystemMessageRequest>,
    ) -> Result<PublishedResponse, ApiError> {
        use crate::events::{AllRoomsNoticePublished, ChatNotice, Event, RoomNoticePublished};
        let body = body.0;
        let (_, scope) = authenticate(&state, body.website, body.key).await?;
        let message = body.message.get("message")?;
        if message.trim().is_empty() || message.chars().count() > 1000 {
            return Err(ApiError::validation("message must be 1 to 1000 characters"));
        }
        let notice = ChatNotice::System { message };
        let event = match body.streamer_id.filter(|s| !s.is_empty()) {
            Some(raw) => {
                let streamer = MemberId::parse(&raw, "streamerID")?;
                scope.allows_member(&streamer)?;
                Event::RoomNoticePublished(RoomNoticePublished {
                    room: crate::domain::member::chatroom_name(streamer.agent_id(), &streamer),
                    message: notice,
                })
            }
            None => {
                scope.allows_shared("a message to every room")?;
                Event::AllRoomsNoticePublished(AllRoomsNoticePublished { message: notice })
            }
        };
        let published = state
            .store
            .publish(crate::event_store::NewEvent::new(
                OffsetDateTime::now_utc(),
                event,
            ))
            .await?;
        Ok(PublishedResponse::Ok(
            Json(Envelope::ok(Published {
                sequence: published.sequence,
            })),
            published.sequence,
        ))
    }

    /// getGiftRecord: gifts sent, filtered and paged, newest first, with totals
    #[oai(
        path = "/getGiftRecord",
        method = "post",
        operation_id = "getGiftRecord"
    )]
    async fn get_gift_record(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<GiftRecordRequest>,
    ) -> Result<Json<Envelope<GiftRecordList>>, ApiError> {
        let GiftRecordRequest {
            website,
            key,
            username,
            uppername,
            start_date,
            end_date,
            ..
        } = &body.0;
        let (website, scope) = authenticate(&state, website.clone(), key.clone()).await?;
        let username = username.clone().get("username")?;
        let uppername = uppername.clone().get("uppername")?;
        if username.trim().is_empty() || uppername.trim().is_empty() {
            return Err(ApiError::validation(
                "username and uppername must not be empty",
            ));
        }
        let agent_scope = AgentScope::parse(&uppername).map_err(ApiError::validation)?;
        scope.allows_agent_line(&uppername)?;
        let start = start_date.clone().get("startDate")?;
        let end = end_date.clone().get("endDate")?;
        let req = &body.0;
        let (from, until) = period(req, &start, &end)?;
        let text = |f: &Option<Loose>| f.as_ref().and_then(Loose::text).map(str::to_owned);
        let streamer = MemberFilter::parse_optional(
            text(&req.streamer_account).as_deref(),
            "streamerAccount",
        )?;
        let presenter = MemberFilter::parse_optional(text(&req.account).as_deref(), "account")?;
        let integer = |f: &Option<Loose>, name: &str| match f {
            Some(v) => v.integer(name),
            None => Ok(None),
        };
        let gift_id = integer(&req.gift_id, "giftID")?;
        let page = integer(&req.page, "page")?.unwrap_or(1);
        let page_limit = integer(&req.pagelimit, "pagelimit")?.unwrap_or(20);
        if page < 1 {
            return Err(ApiError::validation("page must be at least 1"));
        }
        if !(1..=MAX_PAGE_LIMIT).contains(&page_limit) {
            return Err(ApiError::validation(format!(
                "pagelimit must be between 1 and {MAX_PAGE_LIMIT}"
            )));
        }
        tracing::info!(%website, %username, %uppername, "getGiftRecord");
        let result = gift_records::query(
            &state.db,
            &GiftRecordQuery {
                scope: agent_scope,
                from,
                until,
                streamer,
                presenter,
                gift_id,
                page,
                page_limit,
            },
        )
        .await?;
        Ok(Json(Envelope::ok(GiftRecordList {
            list: result
                .rows
                .into_iter()
                .map(|r| GiftRecordItem {
                    record_id: r.event_id.to_string(),
                    sent_at: timestamp(r.sent_at),
                    gift_id: r.gift_id,
                    gift_name: r.gift_name,
                    points: r.points,
                    gift_count: r.gift_count,
                    score: r.score,
                    account: r.presenter_id,
                    nickname: r.presenter_nickname,
                    streamer_account: r.streamer_id,
                    agent_id: r.agent_id,
                })
                .collect(),
            total: result.total,
            total_gift_count: result.total_gift_count,
            total_score: result.total_score,
            page,
            pagelimit: page_limit,
            total_pages: (result.total + page_limit - 1) / page_limit,
        })))
    }
}
