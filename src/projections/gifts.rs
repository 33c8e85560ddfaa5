//! Projection `gifts` -> tables `rm_gift_records` (one row per gift, for `getGiftRecord`),
//! `rm_gift_rankings` and `rm_gift_ranking_counters` (each room's ranking for the current live
//! session and all time; rules in src/domain/gift_ranking.rs). A stream start empties the room's
//! session ranking. Derives the chat notices `gift` and `giftRank` (the session ranking) to the
//! recipient's room.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::projection::{Notices, ReadModelProjection};
use crate::domain::gift_ranking::{GiftRanking, RankingUpdate, StoredStanding};
use crate::domain::member::MemberId;
use crate::domain::member::room_of;
use crate::events::notice::GiftDetails;
use crate::events::{
    BROADCAST_SUBJECT_FILTER, ChatNotice, Event, EventEnvelope, GIFT_SUBJECT_FILTER, GiftSent,
    RoomNoticePublished,
};

/// The two rankings each room keeps.
pub const SCOPES: [&str; 2] = ["session", "all_time"];

/// The `gifts` projection: `onair.gift.>` and `onair.broadcast.>` into the gift records and
/// rankings; derives `gift` and `giftRank` notices.
#[derive(Default)]
pub struct GiftsProjection {
    notices: Notices,
}

/// Loads a room's ranking of one scope.
pub async fn load_ranking(
    tx: &mut PgConnection,
    streamer: &str,
    scope: &str,
) -> Result<GiftRanking, sqlx::Error> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT member_id, nickname, score, reached_at FROM rm_gift_rankings
         WHERE streamer_id = $1 AND scope = $2",
    )
    .bind(streamer)
    .bind(scope)
    .fetch_all(&mut *tx)
    .await?;
    let gifts: Option<(i64,)> = sqlx::query_as(
        "SELECT gifts FROM rm_gift_ranking_counters WHERE streamer_id = $1 AND scope = $2",
    )
    .bind(streamer)
    .bind(scope)
    .fetch_optional(&mut *tx)
    .await?;
    let standings = rows
        .into_iter()
        .filter_map(|(member, nick, score, reached)| {
            Some(StoredStanding {
                member_id: MemberId::parse(&member, "memberId").ok()?,
                nick_name: nick,
                score: score as u64,
                reached_at: reached as u64,
            })
        });
    Ok(GiftRanking::restore(
        GiftRanking::default().top_n(),
        standings,
        gifts.map_or(0, |g| g.0 as u64),
    ))
}

/// The rankings a batch touches: each loaded once, changed in memory gift by gift, and written
/// back once at the end of the batch (the givers' last standings and the gift counters). Each
/// gift changes only its giver's standing and the counter, so the rows written are those that
/// applying the gifts one by one would leave.
#[derive(Default)]
struct RankingBatch {
    rankings: HashMap<(String, &'static str), GiftRanking>,
    /// Givers whose standing changed, per ranking.
    changed: BTreeSet<(String, &'static str, MemberId)>,
    /// Rankings a gift was applied to (their counters moved).
    counted: BTreeSet<(String, &'static str)>,
}

impl RankingBatch {
    /// Applies one gift to one scope's ranking.
    async fn rank(
        &mut self,
        tx: &mut PgConnection,
        e: &GiftSent,
        scope: &'static str,
    ) -> Result<Option<RankingUpdate>, sqlx::Error> {
        let Ok(presenter) = MemberId::parse(&e.presenter, "presenter") else {
            return Ok(None);
        };
        let key = (e.recipient.clone(), scope);
        let ranking = match self.rankings.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(load_ranking(tx, &e.recipient, scope).await?),
        };
        let Ok(update) = ranking.apply_gift(&presenter, &e.presenter_nickname, e.points, e.count)
        else {
            return Ok(None);
        };
        self.changed.insert((e.recipient.clone(), scope, presenter));
        self.counted.insert((e.recipient.clone(), scope));
        Ok(Some(update))
    }

    /// A stream start: the room's session ranking is emptied (its gift counter goes on).
    async fn start_session(
        &mut self,
        tx: &mut PgConnection,
        streamer: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM rm_gift_rankings WHERE streamer_id = $1 AND scope = 'session'")
            .bind(streamer)
            .execute(&mut *tx)
            .await?;
        if let Some(ranking) = self.rankings.get_mut(&(streamer.to_owned(), "session")) {
            ranking.reset();
        }
        self.changed
            .retain(|(s, scope, _)| !(s == streamer && *scope == "session"));
        Ok(())
    }

    /// Writes the changed standings and the counters of the touched rankings.
    async fn write(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let (mut streamers, mut scopes, mut members, mut nicknames, mut scores, mut reached) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (streamer, scope, member) in &self.changed {
            let Some(stored) = self.rankings[&(streamer.clone(), *scope)].stored(member) else {
                continue;
            };
            streamers.push(streamer.clone());
            scopes.push(*scope);
            members.push(member.to_string());
            nicknames.push(stored.nick_name);
            scores.push(i64::try_from(stored.score).unwrap_or(i64::MAX));
            reached.push(stored.reached_at as i64);
        }
        if !streamers.is_empty() {
            sqlx::query(
                "INSERT INTO rm_gift_rankings
                     (streamer_id, scope, member_id, nickname, score, reached_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                                      $5::bigint[], $6::bigint[])
                 ON CONFLICT (streamer_id, scope, member_id) DO UPDATE
                 SET nickname = EXCLUDED.nickname, score = EXCLUDED.score,
                     reached_at = EXCLUDED.reached_at",
            )
            .bind(&streamers)
            .bind(&scopes)
            .bind(&members)
            .bind(&nicknames)
            .bind(&scores)
            .bind(&reached)
            .execute(&mut *tx)
            .await?;
        }
        let (mut streamers, mut scopes, mut gifts) = (vec![], vec![], vec![]);
        for key in &self.counted {
            streamers.push(key.0.clone());
            scopes.push(key.1);
            gifts.push(self.rankings[&(key.0.clone(), key.1)].gifts() as i64);
        }
        if !streamers.is_empty() {
            sqlx::query(
                "INSERT INTO rm_gift_ranking_counters (streamer_id, scope, gifts)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[])
                 ON CONFLICT (streamer_id, scope) DO UPDATE SET gifts = EXCLUDED.gifts",
            )
            .bind(&streamers)
            .bind(&scopes)
            .bind(&gifts)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

fn parts(id: &str) -> (String, String, String) {
    match MemberId::parse(id, "memberId") {
        Ok(m) => (
            m.account().to_owned(),
            m.agent().to_owned(),
            m.master_agent().to_owned(),
        ),
        Err(_) => (id.to_owned(), String::new(), String::new()),
    }
}

impl GiftsProjection {
    /// The `gift` notice of a gift and, when it moved the session ranking, the `giftRank` one.
    fn push_notices(&self, envelope: &EventEnvelope, e: &GiftSent, session: Option<RankingUpdate>) {
        let Some(room) = room_of(&e.recipient) else {
            return;
        };
        self.notices.push(
            envelope,
            "gift",
            Event::RoomNoticePublished(RoomNoticePublished {
                room: room.clone(),
                message: ChatNotice::Gift {
                    presenter: e.presenter.clone(),
                    presenter_nickname: e.presenter_nickname.clone(),
                    recipient: e.recipient.clone(),
                    gift: GiftDetails {
                        id: e.gift_id,
                        name: e.gift_name.clone(),
                        anime_url: e.anime_url.clone(),
                        count: e.count,
                    },
                },
            }),
        );
        if let Some(update) = session {
            self.notices.push(
                envelope,
                "giftRank",
                Event::RoomNoticePublished(RoomNoticePublished {
                    room,
                    message: ChatNotice::GiftRank {
                        rank_state: update.rank_state,
                        ranking_list: update.ranking_list.into_iter().map(Into::into).collect(),
                    },
                }),
            );
        }
    }
}

/// Rows per `INSERT` of gift records (19 parameters each, under Postgres' 65,535).
const RECORDS_PER_STATEMENT: usize = 1_000;

/// Stores the gift records (a redelivered gift is already there and is skipped).
async fn insert_records(
    tx: &mut PgConnection,
    records: &[(&EventEnvelope, &GiftSent)],
) -> Result<(), sqlx::Error> {
    for chunk in records.chunks(RECORDS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO rm_gift_records (event_id, sequence, sent_at, gift_id, gift_name, points,
                 gift_count, score, presenter_id, presenter_account, presenter_agent,
                 presenter_master_agent, presenter_nickname, streamer_id, streamer_account,
                 streamer_agent, streamer_master_agent, agent_id, session_id) ",
        );
        insert.push_values(chunk, |mut row, (envelope, e)| {
            let (p_account, p_agent, p_master) = parts(&e.presenter);
            let (s_account, s_agent, s_master) = parts(&e.recipient);
            row.push_bind(envelope.id)
                .push_bind(envelope.sequence as i64)
                .push_bind(envelope.occurred_at)
                .push_bind(e.gift_id)
                .push_bind(e.gift_name.clone())
                .push_bind(e.points as i32)
                .push_bind(e.count as i32)
                .push_bind(i64::from(e.points) * i64::from(e.count))
                .push_bind(e.presenter.clone())
                .push_bind(p_account)
                .push_bind(p_agent)
                .push_bind(p_master)
                .push_bind(e.presenter_nickname.clone())
                .push_bind(e.recipient.clone())
                .push_bind(s_account)
                .push_bind(s_agent)
                .push_bind(s_master)
                .push_bind(e.agent_id.clone())
                .push_bind(e.session_id);
        });
        insert.push(" ON CONFLICT (event_id) DO NOTHING");
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

impl ReadModelProjection for GiftsProjection {
    const NAME: &'static str = "gifts";

    const TABLES: &'static [&'static str] = &[
        "rm_gift_records",
        "rm_gift_rankings",
        "rm_gift_ranking_counters",
    ];

    fn subjects() -> Vec<String> {
        vec![
            GIFT_SUBJECT_FILTER.to_owned(),
            BROADCAST_SUBJECT_FILTER.to_owned(),
        ]
    }

    /// One event is a batch of one.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
        self.apply_batch(tx, std::slice::from_ref(envelope)).await
    }

    /// Gifts in stream order against rankings held in memory for the batch (see
    /// [`RankingBatch`]); the records, standings and counters are written in one statement each.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        let mut rankings = RankingBatch::default();
        let mut records = Vec::new();
        for envelope in events {
            match &envelope.event {
                Event::BroadcastStarted(e) => rankings.start_session(tx, &e.streamer).await?,
                Event::GiftSent(e) => {
                    records.push((envelope, e));
                    let session = rankings.rank(tx, e, "session").await?;
                    rankings.rank(tx, e, "all_time").await?;
                    self.push_notices(envelope, e, session);
                }
                _ => {}
            }
        }
        insert_records(tx, &records).await?;
        rankings.write(tx).await
    }

    fn notices(&self) -> Option<&Notices> {
        Some(&self.notices)
    }
}
