//! The back office's `getGiftRecord` over `rm_gift_records`: filters, paging (newest first) and
//! totals.

use sqlx::{PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::member::MemberFilter;

/// Which agent line the records belong to (`uppername`): one agent `agent.masterAgent`, or every
/// agent of a master agent (`masterAgent`, no dot). Matched against the room's `agentID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentScope {
    /// One agent line, `agent.masterAgent`: records whose `agentID` is exactly this.
    Agent(String),
    /// Every agent of a master agent: records whose streamer's master agent is this.
    MasterAgent(String),
}

impl AgentScope {
    /// Reads `uppername`: `agent.masterAgent` names one agent line, `masterAgent` (no dot) a
    /// master agent. Anything else (`a.b.c`, an empty part, spaces) is an error message naming
    /// `uppername`, since it could match no record.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts: Vec<&str> = raw.split('.').collect();
        let well_formed = parts.len() <= 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && !p
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
            });
        if !well_formed {
            return Err(format!(
                "uppername must be agent.masterAgent or masterAgent, got {raw:?}"
            ));
        }
        Ok(if parts.len() == 2 {
            Self::Agent(raw.to_owned())
        } else {
            Self::MasterAgent(raw.to_owned())
        })
    }
}

/// The filters of one query; every time is UTC, `from` inclusive, `until` exclusive.
#[derive(Clone, Debug)]
pub struct GiftRecordQuery {
    /// The agent line asked about (`uppername`).
    pub scope: AgentScope,
    /// Earliest send time included.
    pub from: OffsetDateTime,
    /// First send time no longer included.
    pub until: OffsetDateTime,
    /// `streamerAccount`: only gifts to matching streamers.
    pub streamer: Option<MemberFilter>,
    /// `account`: only gifts from matching presenters.
    pub presenter: Option<MemberFilter>,
    /// `giftID`: only this catalog gift.
    pub gift_id: Option<i64>,
    /// 1-based.
    pub page: i64,
    /// Records per page (`getGiftRecord` accepts 1 to 500, default 20).
    pub page_limit: i64,
}

/// One gift record.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GiftRecordRow {
    /// Id of the `gift.sent` event: the record id (`recordID`).
    pub event_id: Uuid,
    /// Stream sequence of the `gift.sent` event; orders records sent at the same time.
    pub sequence: i64,
    /// When the gift was sent (event time, UTC).
    pub sent_at: OffsetDateTime,
    /// The catalog gift (`giftID`).
    pub gift_id: i64,
    /// The gift's catalog name when sent.
    pub gift_name: String,
    /// Points per gift, from the catalog when sent.
    pub points: i32,
    /// How many were sent (1 to 9999).
    pub gift_count: i32,
    /// `points × gift_count`.
    pub score: i64,
    /// The presenter's (sender's) member id.
    pub presenter_id: String,
    /// The presenter's nickname when sent.
    pub presenter_nickname: String,
    /// The receiving streamer's member id (the seed's `gameID`).
    pub streamer_id: String,
    /// The room's `agentID` (`agent.masterAgent`), the streamer's agent.
    pub agent_id: String,
}

/// A page of records and the totals over every matching record.
#[derive(Clone, Debug)]
pub struct GiftRecordPage {
    /// The requested page, newest first.
    pub rows: Vec<GiftRecordRow>,
    /// How many records match.
    pub total: i64,
    /// Sum of `gift_count` over every matching record.
    pub total_gift_count: i64,
    /// Sum of `score` over every matching record.
    pub total_score: i64,
}

fn push_member_filter(q: &mut QueryBuilder<Postgres>, prefix: &str, filter: &Option<MemberFilter>) {
    let Some(filter) = filter else { return };
    q.push(format!(" AND {prefix}_account = "))
        .push_bind(filter.account().to_owned());
    if let Some(agent) = filter.agent() {
        q.push(format!(" AND {prefix}_agent = "))
            .push_bind(agent.to_owned());
    }
    if let Some(master) = filter.master_agent() {
        q.push(format!(" AND {prefix}_master_agent = "))
            .push_bind(master.to_owned());
    }
}

fn push_filters(q: &mut QueryBuilder<Postgres>, query: &GiftRecordQuery) {
    q.push(" WHERE sent_at >= ")
        .push_bind(query.from)
        .push(" AND sent_at < ")
        .push_bind(query.until);
    match &query.scope {
        AgentScope::Agent(agent) => {
            q.push(" AND agent_id = ").push_bind(agent.clone());
        }
        AgentScope::MasterAgent(master) => {
            q.push(" AND streamer_master_agent = ")
                .push_bind(master.clone());
        }
    }
    push_member_filter(q, "streamer", &query.streamer);
    push_member_filter(q, "presenter", &query.presenter);
    if let Some(gift_id) = query.gift_id {
        q.push(" AND gift_id = ").push_bind(gift_id);
    }
}

/// Runs a query.
pub async fn query(db: &PgPool, query: &GiftRecordQuery) -> Result<GiftRecordPage, sqlx::Error> {
    let mut totals = QueryBuilder::new(
        "SELECT count(*), COALESCE(sum(gift_count), 0)::bigint, COALESCE(sum(score), 0)::bigint
         FROM rm_gift_records",
    );
    push_filters(&mut totals, query);
    let (total, total_gift_count, total_score): (i64, i64, i64) =
        totals.build_query_as().fetch_one(db).await?;

    let mut page = QueryBuilder::new(
        "SELECT event_id, sequence, sent_at, gift_id, gift_name, points, gift_count, score,
                presenter_id, presenter_nickname, streamer_id, agent_id
         FROM rm_gift_records",
    );
    push_filters(&mut page, query);
    page.push(" ORDER BY sent_at DESC, sequence DESC OFFSET ")
        .push_bind((query.page - 1).saturating_mul(query.page_limit))
        .push(" LIMIT ")
        .push_bind(query.page_limit);
    let rows = page.build_query_as().fetch_all(db).await?;
    Ok(GiftRecordPage {
        rows,
        total,
        total_gift_count,
        total_score,
    })
}

/// The stream sequence of the gift record whose `gift.sent` event has id `event_id`, once the
/// gifts projection has it (a `sendGift` retried with its `Idempotency-Key`).
pub async fn recorded_sequence(db: &PgPool, event_id: Uuid) -> Result<Option<u64>, sqlx::Error> {
    let recorded: Option<(i64,)> =
        sqlx::query_as("SELECT sequence FROM rm_gift_records WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(db)
            .await?;
    Ok(recorded.map(|(sequence,)| sequence as u64))
}
