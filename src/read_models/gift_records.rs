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
    Agent(String),
    MasterAgent(String),
}

impl AgentScope {
    pub fn parse(raw: &str) -> Self {
        if raw.contains('.') {
            Self::Agent(raw.to_owned())
        } else {
            Self::MasterAgent(raw.to_owned())
        }
    }
}

/// The filters of one query; every time is UTC, `from` inclusive, `until` exclusive.
#[derive(Clone, Debug)]
pub struct GiftRecordQuery {
    pub scope: AgentScope,
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
    pub streamer: Option<MemberFilter>,
    pub presenter: Option<MemberFilter>,
    pub gift_id: Option<i64>,
    /// 1-based.
    pub page: i64,
    pub page_limit: i64,
}

/// One gift record.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GiftRecordRow {
    pub event_id: Uuid,
    pub sequence: i64,
    pub sent_at: OffsetDateTime,
    pub gift_id: i64,
    pub gift_name: String,
    pub points: i32,
    pub gift_count: i32,
    pub score: i64,
    pub presenter_id: String,
    pub presenter_nickname: String,
    pub streamer_id: String,
    pub agent_id: String,
}

/// A page of records and the totals over every matching record.
#[derive(Clone, Debug)]
pub struct GiftRecordPage {
    pub rows: Vec<GiftRecordRow>,
    pub total: i64,
    pub total_gift_count: i64,
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
