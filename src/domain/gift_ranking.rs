//! A room's gift ranking and the `giftRank` chat message it produces (docs/api.md#chat-notices;
//! the ranking's rules: docs/decisions.md).
//!
//! A presenter's score is the sum of `points × count` over their gifts, `points` coming from the
//! gift catalog entry. The ranking is a fold of the room's gift events in stream order: feeding the
//! same gifts to a new [`GiftRanking`] gives the same ranks, states and rises, so a replay rebuilds
//! the messages exactly. The same type keeps the ranking of the current live session (call
//! [`GiftRanking::reset`] when a session starts) and the all-time ranking (never reset).
//!
//! # Rules
//! - **Order**: higher score first; equal scores are ordered by who reached that score first, i.e.
//!   by the gift (in stream order) that brought each presenter to their current score. Ranks start
//!   at 1 and are never shared.
//! - **State and rise** (seed: `state` "與上次排名上升或下降", `rise` "上升或下降的名次"): each
//!   entry's rank is compared with its rank in the previous snapshot, the whole ranking just before
//!   this gift (not only the part that was shown). `UP` / `DOWN` with `rise` = places moved;
//!   `PLATEAU` (same rank) and `NEW` (absent from the previous snapshot) with `rise` 0. The giver
//!   can only rise; everyone they pass drops exactly one place.
//! - **`rankState`** of the message is the giver's state.
//! - **Length**: the message lists the first [`DEFAULT_TOP_N`] entries unless told otherwise; all
//!   presenters are still ranked, so someone climbing from 14th to 3rd shows `UP` 11.
//! - **Nickname**: the one given with the presenter's latest gift.
//! - **Overflow**: `points × count` of two `u32` always fits a `u64`; the running score saturates at
//!   `u64::MAX` instead of wrapping or panicking. A gift that leaves a saturated score unchanged does
//!   not count as reaching it again, so the tie order stays.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::domain::member::MemberId;
pub use crate::events::notice::RankState;

/// How many entries a `giftRank` message lists by default. The seed names no length; ten is what a
/// room's gift board commonly shows, and keeps each message near 1 KB however many presenters a
/// room has (the ranking itself keeps everyone).
pub const DEFAULT_TOP_N: usize = 10;

/// One entry of the seed's `rankingList`: `{memberId, nickName, rank, state, rise, score}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RankingEntry {
    /// The presenter (gift giver).
    pub member_id: MemberId,
    /// The presenter's nickname as given with their latest gift.
    pub nick_name: String,
    /// 1-based.
    pub rank: u32,
    /// Movement since the snapshot just before this gift.
    pub state: RankState,
    /// Places moved up (`UP`) or down (`DOWN`); 0 for `PLATEAU` and `NEW`.
    pub rise: u32,
    /// Sum of `points × count` of the presenter's gifts in this ranking (session or all time).
    pub score: u64,
}

impl From<RankingEntry> for crate::events::notice::RankingEntry {
    /// The entry as a `giftRank` notice carries it.
    fn from(e: RankingEntry) -> Self {
        Self {
            member_id: e.member_id.to_string(),
            nick_name: e.nick_name,
            rank: e.rank,
            state: e.state,
            rise: e.rise,
            score: e.score,
        }
    }
}

/// What one gift does to the ranking: the seed's `giftRank` message without its `type`
/// (`{rankState, rankingList}`; `rankState`, not the typo `rankStateL`:
/// docs/design.md#decided-open-points).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankingUpdate {
    /// The giver's state.
    pub rank_state: RankState,
    /// The first `top_n` entries, rank 1 first.
    pub ranking_list: Vec<RankingEntry>,
}

/// A gift the ranking refuses; the ranking is left as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GiftRankingError {
    /// The gift's count is 0.
    #[error("a gift's count must be at least 1")]
    ZeroCount,
    /// The catalog gift is worth 0 points.
    #[error("a ranked gift must be worth at least 1 point")]
    ZeroPoints,
}

/// A presenter's place, as [`GiftRanking::standings`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing<'a> {
    /// The presenter.
    pub member_id: &'a MemberId,
    /// The nickname given with the presenter's latest gift.
    pub nick_name: &'a str,
    /// 1-based.
    pub rank: u32,
    /// Sum of `points × count` of the presenter's gifts in this ranking.
    pub score: u64,
}

#[derive(Clone, Debug)]
struct Presenter {
    nick_name: String,
    score: u64,
    /// The gift (by this ranking's count of gifts) that brought the score to its current value.
    reached_at: u64,
}

impl Presenter {
    /// Sorts ascending into ranking order: higher score first, then who reached it first.
    fn key(&self) -> (Reverse<u64>, u64) {
        (Reverse(self.score), self.reached_at)
    }
}

/// A presenter's state as a read model stores it, to [`GiftRanking::restore`] a ranking without
/// replaying its gifts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredStanding {
    /// The presenter.
    pub member_id: MemberId,
    /// The nickname given with the presenter's latest gift.
    pub nick_name: String,
    /// Sum of `points × count` of the presenter's gifts in this ranking.
    pub score: u64,
    /// The ranking's gift counter when `score` was reached (the tie-break).
    pub reached_at: u64,
}

/// The gift ranking of one room, for a live session or all time (see the module docs).
#[derive(Clone, Debug)]
pub struct GiftRanking {
    top_n: Option<NonZeroUsize>,
    presenters: HashMap<MemberId, Presenter>,
    /// The current ranking, rank 1 first. Before a gift is applied it is the previous snapshot.
    order: Vec<MemberId>,
    /// Gifts applied so far (never reset): the tie-break clock.
    gifts: u64,
}

impl Default for GiftRanking {
    /// A ranking whose messages list the first [`DEFAULT_TOP_N`] entries.
    fn default() -> Self {
        Self::new(NonZeroUsize::new(DEFAULT_TOP_N))
    }
}

fn rank_of_index(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn places(from: usize, to: usize) -> u32 {
    u32::try_from(from.abs_diff(to)).unwrap_or(u32::MAX)
}

impl GiftRanking {
    /// A ranking whose messages list the first `top_n` entries, or every entry when `None`.
    pub fn new(top_n: Option<NonZeroUsize>) -> Self {
        Self {
            top_n,
            presenters: HashMap::new(),
            order: Vec::new(),
            gifts: 0,
        }
    }

    /// How many entries each `giftRank` message lists; `None`: every entry.
    pub fn top_n(&self) -> Option<NonZeroUsize> {
        self.top_n
    }

    /// Rebuilds a ranking from stored standings (in any order) and its gift counter; applying the
    /// next gift to it gives what applying it to the original ranking gives.
    pub fn restore(
        top_n: Option<NonZeroUsize>,
        standings: impl IntoIterator<Item = StoredStanding>,
        gifts: u64,
    ) -> Self {
        let mut ranking = Self::new(top_n);
        ranking.gifts = gifts;
        for s in standings {
            ranking.presenters.insert(
                s.member_id.clone(),
                Presenter {
                    nick_name: s.nick_name,
                    score: s.score,
                    reached_at: s.reached_at,
                },
            );
            ranking.order.push(s.member_id);
        }
        let presenters = &ranking.presenters;
        ranking.order.sort_by_key(|m| presenters[m].key());
        ranking
    }

    /// `member`'s stored state, to write back after a gift.
    pub fn stored(&self, member: &MemberId) -> Option<StoredStanding> {
        self.presenters.get(member).map(|p| StoredStanding {
            member_id: member.clone(),
            nick_name: p.nick_name.clone(),
            score: p.score,
            reached_at: p.reached_at,
        })
    }

    /// Gifts applied so far (the tie-break clock; a session reset keeps it).
    pub fn gifts(&self) -> u64 {
        self.gifts
    }

    /// Starts a new live session: every score is dropped, the next giver is `NEW` at rank 1.
    pub fn reset(&mut self) {
        self.presenters.clear();
        self.order.clear();
    }

    /// Applies one gift of `count` × a catalog gift worth `points`, given by `presenter` under
    /// `nick_name`, and returns the `giftRank` message it produces. A gift of count 0 or worth 0
    /// points is refused and changes nothing.
    pub fn apply_gift(
        &mut self,
        presenter: &MemberId,
        nick_name: &str,
        points: u32,
        count: u32,
    ) -> Result<RankingUpdate, GiftRankingError> {
        if count == 0 {
            return Err(GiftRankingError::ZeroCount);
        }
        if points == 0 {
            return Err(GiftRankingError::ZeroPoints);
        }
        self.gifts += 1;
        let value = u64::from(points) * u64::from(count);

        let old_index = self.index_of(presenter);
        if let Some(index) = old_index {
            self.order.remove(index);
        }
        let entry = self
            .presenters
            .entry(presenter.clone())
            .or_insert(Presenter {
                nick_name: String::new(),
                score: 0,
                reached_at: 0,
            });
        entry.nick_name = nick_name.to_owned();
        let score = entry.score.saturating_add(value);
        if score != entry.score || old_index.is_none() {
            entry.score = score;
            entry.reached_at = self.gifts;
        }
        let key = entry.key();
        let new_index = self
            .order
            .partition_point(|m| self.presenters[m].key() < key);
        self.order.insert(new_index, presenter.clone());

        // Only the giver and those they passed changed place: the entries now at
        // new_index+1 ..= old_index (or to the end, for a newcomer) each dropped by one.
        let last_passed = old_index.unwrap_or(self.order.len() - 1);
        let previous_index = |index: usize| -> Option<usize> {
            if index == new_index {
                old_index
            } else if index > new_index && index <= last_passed {
                Some(index - 1)
            } else {
                Some(index)
            }
        };
        let shown = self.top_n.map_or(self.order.len(), NonZeroUsize::get);
        let ranking_list = self
            .order
            .iter()
            .take(shown)
            .enumerate()
            .map(|(index, member)| {
                let p = &self.presenters[member];
                let (state, rise) = movement(previous_index(index), index);
                RankingEntry {
                    member_id: member.clone(),
                    nick_name: p.nick_name.clone(),
                    rank: rank_of_index(index),
                    state,
                    rise,
                    score: p.score,
                }
            })
            .collect();
        Ok(RankingUpdate {
            rank_state: movement(old_index, new_index).0,
            ranking_list,
        })
    }

    /// Where `member` stands now, if they have given in this ranking.
    fn index_of(&self, member: &MemberId) -> Option<usize> {
        let key = self.presenters.get(member)?.key();
        self.order
            .binary_search_by(|m| self.presenters[m].key().cmp(&key))
            .ok()
    }

    /// `member`'s current rank (1-based), if they have given.
    pub fn rank_of(&self, member: &MemberId) -> Option<u32> {
        self.index_of(member).map(rank_of_index)
    }

    /// `member`'s current score, if they have given.
    pub fn score_of(&self, member: &MemberId) -> Option<u64> {
        self.presenters.get(member).map(|p| p.score)
    }

    /// Everyone ranked, rank 1 first (e.g. for a client that joins mid-session).
    pub fn standings(&self) -> impl Iterator<Item = Standing<'_>> {
        self.order.iter().enumerate().map(|(index, member)| {
            let p = &self.presenters[member];
            Standing {
                member_id: member,
                nick_name: &p.nick_name,
                rank: rank_of_index(index),
                score: p.score,
            }
        })
    }

    /// How many presenters are ranked.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nobody is ranked yet (no gift since creation or the last [`reset`](Self::reset)).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// State and rise of an entry that moved from `previous` (index in the previous snapshot) to
/// `now`.
fn movement(previous: Option<usize>, now: usize) -> (RankState, u32) {
    match previous {
        None => (RankState::New, 0),
        Some(p) if p > now => (RankState::Up, places(p, now)),
        Some(p) if p < now => (RankState::Down, places(p, now)),
        Some(_) => (RankState::Plateau, 0),
    }
}

#[cfg(test)]
#[path = "gift_ranking_tests.rs"]
mod tests;
