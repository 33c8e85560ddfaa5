//! Projection `gifts` -> tables `rm_gift_records` (one row per gift, for `getGiftRecord`),
//! `rm_gift_rankings` and `rm_gift_ranking_counters` (each room's ranking for the current live
//! session and all time; rules in src/domain/gift_ranking.rs). A stream start empties the room's
//! session ranking. Derives the chat notices `gift` and `giftRank` (the session ranking) to the
//! recipient's room.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;

use super::rooms::room_of;
use super::{Notices, Projection};
use crate::domain::gift_ranking::{GiftRanking, RankingUpdate, StoredStanding};
use crate::domain::member::MemberId;
use crate::event_store::NewEvent;
use crate::events::notice::GiftDetails;
use crate::events::{
    BROADCAST_SUBJECT_FILTER, ChatNotice, Event, EventEnvelope, GIFT_SUBJECT_FILTER, GiftSent,
    RoomNoticePublished,
};

/// The two rankings each room keeps.
pub const SCOPES: [&str; 2] = ["session", "all_time"];

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

/// Applies one gift to one scope's ranking and stores the giver's new standing.
async fn rank(
    tx: &mut PgConnection,
    e: &GiftSent,
    scope: &str,
) -> Result<Option<RankingUpdate>, sqlx::Error> {
    let Ok(presenter) = MemberId::parse(&e.presenter, "presenter") else {
        return Ok(None);
    };
    let mut ranking = load_ranking(tx, &e.recipient, scope).await?;
    let Ok(update) = ranking.apply_gift(&presenter, &e.presenter_nickname, e.points, e.count)
    else {
        return Ok(None);
    };
    let stored = ranking.stored(&presenter).expect("the giver is ranked");
    sqlx::query(
        "INSERT INTO rm_gift_rankings (streamer_id, scope, member_id, nickname, score, reached_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (streamer_id, scope, member_id) DO UPDATE SET nickname = EXCLUDED.nickname,
             score = EXCLUDED.score, reached_at = EXCLUDED.reached_at",
    )
    .bind(&e.recipient)
    .bind(scope)
    .bind(&e.presenter)
    .bind(&stored.nick_name)
    .bind(i64::try_from(stored.score).unwrap_or(i64::MAX))
    .bind(stored.reached_at as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO rm_gift_ranking_counters (streamer_id, scope, gifts) VALUES ($1, $2, $3)
         ON CONFLICT (streamer_id, scope) DO UPDATE SET gifts = EXCLUDED.gifts",
    )
    .bind(&e.recipient)
    .bind(scope)
    .bind(ranking.gifts() as i64)
    .execute(&mut *tx)
    .await?;
    Ok(Some(update))
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

impl Projection for GiftsProjection {
    fn name(&self) -> &'static str {
        "gifts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_gift_records",
            "rm_gift_rankings",
            "rm_gift_ranking_counters",
        ]
    }

    fn subjects(&self) -> Vec<String> {
        vec![
            GIFT_SUBJECT_FILTER.to_owned(),
            BROADCAST_SUBJECT_FILTER.to_owned(),
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        envelope: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        async move {
            match &envelope.event {
                Event::BroadcastStarted(e) => {
                    sqlx::query(
                        "DELETE FROM rm_gift_rankings WHERE streamer_id = $1 AND scope = 'session'",
                    )
                    .bind(&e.streamer)
                    .execute(&mut *tx)
                    .await?;
                }
                Event::GiftSent(e) => {
                    let (p_account, p_agent, p_master) = parts(&e.presenter);
                    let (s_account, s_agent, s_master) = parts(&e.recipient);
                    let score = i64::from(e.points) * i64::from(e.count);
                    sqlx::query(
                        "INSERT INTO rm_gift_records (event_id, sequence, sent_at, gift_id,
                             gift_name, points, gift_count, score, presenter_id, presenter_account,
                             presenter_agent, presenter_master_agent, presenter_nickname,
                             streamer_id, streamer_account, streamer_agent, streamer_master_agent,
                             agent_id, session_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                                 $16, $17, $18, $19)
                         ON CONFLICT (event_id) DO NOTHING",
                    )
                    .bind(envelope.id)
                    .bind(envelope.sequence as i64)
                    .bind(envelope.occurred_at)
                    .bind(e.gift_id)
                    .bind(&e.gift_name)
                    .bind(e.points as i32)
                    .bind(e.count as i32)
                    .bind(score)
                    .bind(&e.presenter)
                    .bind(p_account)
                    .bind(p_agent)
                    .bind(p_master)
                    .bind(&e.presenter_nickname)
                    .bind(&e.recipient)
                    .bind(s_account)
                    .bind(s_agent)
                    .bind(s_master)
                    .bind(&e.agent_id)
                    .bind(e.session_id)
                    .execute(&mut *tx)
                    .await?;
                    let session = rank(tx, e, "session").await?;
                    rank(tx, e, "all_time").await?;
                    if let Some(room) = room_of(&e.recipient) {
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
                                        ranking_list: update.ranking_list,
                                    },
                                }),
                            );
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        }
        .boxed()
    }

    fn take_notices(&self) -> Vec<NewEvent> {
        self.notices.take()
    }
}
