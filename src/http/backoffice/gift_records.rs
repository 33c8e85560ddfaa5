//! `getGiftRecord`: gifts sent, filtered and paged, newest first, with totals
//! ([`crate::read_models::gift_records`]).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};

use super::credentials::{Operator, operator_credentials};
use crate::app::AppState;
use crate::domain::member::MemberFilter;
use crate::http::api_error::ApiError;
use crate::http::envelope::{Envelope, timestamp};
use crate::http::field::{Checked, Loose};
use crate::http::tags::ApiTags;
use crate::read_models::gift_records::{self, AgentScope, GiftRecordQuery};

/// Longest period one `getGiftRecord` may cover, in days.
pub const MAX_RECORD_DAYS: i64 = 93;
/// Largest `pagelimit` of `getGiftRecord`.
pub const MAX_PAGE_LIMIT: i64 = 500;

/// `getGiftRecord` (as the gateway description has it): required `website, username, uppername,
/// key, startDate, endDate`; optional filters. Values may be strings or numbers; `""` means "not
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

operator_credentials!(GiftRecordRequest);

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

/// The back office's gift record query.
#[derive(Default)]
pub struct GiftRecordsApi;

#[OpenApi(prefix_path = "/api/backoffice", tag = "ApiTags::BackOffice")]
impl GiftRecordsApi {
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
        let operator = Operator::authenticate(&state, &body.0).await?;
        let (website, scope) = (operator.website, operator.scope);
        let GiftRecordRequest {
            username,
            uppername,
            start_date,
            end_date,
            ..
        } = &body.0;
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
