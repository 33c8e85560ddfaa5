//! A room's gift ranking and the `giftRank` chat message it produces (seeds/gateway-chat.md
//! "禮物排行榜訊息格式"; issue 4 §4).
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

/// How many entries a `giftRank` message lists by default. The seed names no length; ten is what a
/// room's gift board commonly shows, and keeps each message near 1 KB however many presenters a
/// room has (the ranking itself keeps everyone).
pub const DEFAULT_TOP_N: usize = 10;

/// How an entry moved since the previous snapshot; on the wire `UP`, `DOWN`, `PLATEAU`, `NEW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RankState {
    /// `UP`: a better rank than in the previous snapshot.
    Up,
    /// `DOWN`: a worse rank than in the previous snapshot.
    Down,
    /// `PLATEAU`: the same rank as in the previous snapshot.
    Plateau,
    /// `NEW`: absent from the previous snapshot (a first gift in this ranking).
    New,
}

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

/// What one gift does to the ranking: the seed's `giftRank` message without its `type`
/// (`{rankState, rankingList}`; DESIGN.md §6: `rankState`, not the seed's typo `rankStateL`).
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
mod tests {
    use super::*;

    fn member(account: &str) -> MemberId {
        MemberId::parse(&format!("{account}@mabu.mabumaster"), "memberID").unwrap()
    }

    /// Given gifts `(presenter, points, count)` in order.
    fn given(gifts: &[(&str, u32, u32)]) -> GiftRanking {
        given_with(GiftRanking::default(), gifts)
    }

    fn given_with(mut ranking: GiftRanking, gifts: &[(&str, u32, u32)]) -> GiftRanking {
        for (who, points, count) in gifts {
            ranking
                .apply_gift(&member(who), &who.to_uppercase(), *points, *count)
                .unwrap();
        }
        ranking
    }

    /// When `who` gives.
    fn when(ranking: &mut GiftRanking, who: &str, points: u32, count: u32) -> RankingUpdate {
        ranking
            .apply_gift(&member(who), &who.to_uppercase(), points, count)
            .unwrap()
    }

    /// Then the list reads `(account, rank, state, rise, score)`.
    fn list(update: &RankingUpdate) -> Vec<(String, u32, RankState, u32, u64)> {
        update
            .ranking_list
            .iter()
            .map(|e| {
                (
                    e.member_id.account().to_owned(),
                    e.rank,
                    e.state,
                    e.rise,
                    e.score,
                )
            })
            .collect()
    }

    fn row(
        account: &str,
        rank: u32,
        state: RankState,
        rise: u32,
        score: u64,
    ) -> (String, u32, RankState, u32, u64) {
        (account.to_owned(), rank, state, rise, score)
    }

    use RankState::{Down, New, Plateau, Up};

    #[test]
    fn the_first_gift_is_new_at_rank_1_scored_points_times_count() {
        let mut ranking = given(&[]);
        let update = when(&mut ranking, "ann", 50, 3);
        assert_eq!(update.rank_state, New);
        assert_eq!(list(&update), vec![row("ann", 1, New, 0, 150)]);
        assert_eq!(update.ranking_list[0].nick_name, "ANN");
    }

    #[test]
    fn a_newcomer_below_the_leader_is_new_and_the_leader_plateaus() {
        let mut ranking = given(&[("ann", 100, 1)]);
        let update = when(&mut ranking, "bob", 10, 1);
        assert_eq!(update.rank_state, New);
        assert_eq!(
            list(&update),
            vec![row("ann", 1, Plateau, 0, 100), row("bob", 2, New, 0, 10)]
        );
    }

    #[test]
    fn overtaking_gives_up_1_to_the_giver_and_down_1_to_the_one_passed() {
        let mut ranking = given(&[("ann", 100, 1), ("bob", 10, 1)]);
        let update = when(&mut ranking, "bob", 100, 1);
        assert_eq!(update.rank_state, Up);
        assert_eq!(
            list(&update),
            vec![row("bob", 1, Up, 1, 110), row("ann", 2, Down, 1, 100)]
        );
    }

    #[test]
    fn a_gift_that_changes_no_order_is_plateau_for_everyone() {
        let mut ranking = given(&[("ann", 100, 1), ("bob", 10, 1), ("cat", 1, 1)]);
        let update = when(&mut ranking, "bob", 10, 2);
        assert_eq!(update.rank_state, Plateau);
        assert_eq!(
            list(&update),
            vec![
                row("ann", 1, Plateau, 0, 100),
                row("bob", 2, Plateau, 0, 30),
                row("cat", 3, Plateau, 0, 1),
            ]
        );
    }

    #[test]
    fn a_newcomer_straight_to_the_top_pushes_everyone_down_one() {
        let mut ranking = given(&[("ann", 20, 1), ("bob", 10, 1)]);
        let update = when(&mut ranking, "cat", 30, 1);
        assert_eq!(update.rank_state, New);
        assert_eq!(
            list(&update),
            vec![
                row("cat", 1, New, 0, 30),
                row("ann", 2, Down, 1, 20),
                row("bob", 3, Down, 1, 10),
            ]
        );
    }

    #[test]
    fn a_climb_over_several_counts_every_place_and_leaves_those_above_alone() {
        let mut ranking = given(&[
            ("ann", 40, 1),
            ("bob", 30, 1),
            ("cat", 20, 1),
            ("dan", 10, 1),
        ]);
        let update = when(&mut ranking, "dan", 25, 1);
        assert_eq!(
            list(&update),
            vec![
                row("ann", 1, Plateau, 0, 40),
                row("dan", 2, Up, 2, 35),
                row("bob", 3, Down, 1, 30),
                row("cat", 4, Down, 1, 20),
            ]
        );
    }

    #[test]
    fn on_a_tie_whoever_reached_the_score_first_ranks_higher() {
        // bob reaches 100 after ann did: he stays second.
        let mut ranking = given(&[("ann", 100, 1), ("bob", 50, 1)]);
        let update = when(&mut ranking, "bob", 50, 1);
        assert_eq!(update.rank_state, Plateau);
        assert_eq!(
            list(&update),
            vec![
                row("ann", 1, Plateau, 0, 100),
                row("bob", 2, Plateau, 0, 100)
            ]
        );
        // A newcomer tying the leader ranks below both.
        let update = when(&mut ranking, "cat", 100, 1);
        assert_eq!(
            list(&update)
                .into_iter()
                .map(|r| (r.0, r.1))
                .collect::<Vec<_>>(),
            vec![("ann".into(), 1), ("bob".into(), 2), ("cat".into(), 3)]
        );
        // ann gives again and leaves the tie at the top; bob now reached 100 before cat.
        when(&mut ranking, "ann", 1, 1);
        assert_eq!(ranking.rank_of(&member("bob")), Some(2));
        assert_eq!(ranking.rank_of(&member("cat")), Some(3));
    }

    #[test]
    fn reaching_a_new_score_later_loses_the_tie_even_to_someone_who_was_behind() {
        // ann 60 reached at gift 1; bob 100 at gift 2; ann +40 -> 100 at gift 3: bob keeps rank 1.
        let mut ranking = given(&[("ann", 60, 1), ("bob", 100, 1)]);
        let update = when(&mut ranking, "ann", 40, 1);
        assert_eq!(
            list(&update),
            vec![
                row("bob", 1, Plateau, 0, 100),
                row("ann", 2, Plateau, 0, 100)
            ]
        );
    }

    #[test]
    fn zero_count_and_zero_points_are_refused_and_change_nothing() {
        let mut ranking = given(&[("ann", 10, 1)]);
        assert_eq!(
            ranking.apply_gift(&member("bob"), "BOB", 10, 0),
            Err(GiftRankingError::ZeroCount)
        );
        assert_eq!(
            ranking.apply_gift(&member("ann"), "ANN", 0, 5),
            Err(GiftRankingError::ZeroPoints)
        );
        assert_eq!(ranking.len(), 1);
        assert_eq!(ranking.score_of(&member("ann")), Some(10));
        assert_eq!(ranking.score_of(&member("bob")), None);
    }

    #[test]
    fn scores_saturate_instead_of_overflowing() {
        let mut ranking = given(&[("ann", u32::MAX, u32::MAX)]);
        assert_eq!(
            ranking.score_of(&member("ann")),
            Some(u64::from(u32::MAX) * u64::from(u32::MAX))
        );
        when(&mut ranking, "ann", u32::MAX, u32::MAX);
        assert_eq!(ranking.score_of(&member("ann")), Some(u64::MAX));
        // bob saturates later, so ranks below ann; ann giving again at the cap keeps her tie.
        when(&mut ranking, "bob", u32::MAX, u32::MAX);
        when(&mut ranking, "bob", u32::MAX, u32::MAX);
        let update = when(&mut ranking, "ann", u32::MAX, u32::MAX);
        assert_eq!(
            list(&update),
            vec![
                row("ann", 1, Plateau, 0, u64::MAX),
                row("bob", 2, Plateau, 0, u64::MAX)
            ]
        );
        let update = when(&mut ranking, "bob", 1, 1);
        assert_eq!(update.rank_state, Plateau);
    }

    #[test]
    fn the_list_is_capped_at_top_n_but_movement_counts_the_whole_ranking() {
        let names: Vec<String> = (0..12).map(|i| format!("p{i:02}")).collect();
        let gifts: Vec<(&str, u32, u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), 100 - i as u32, 1))
            .collect();
        let mut ranking = given(&gifts);
        assert_eq!(ranking.len(), 12);
        // p11 is 12th with 89; 10 more points make 99, reached after p01's 99: 3rd.
        let update = when(&mut ranking, "p11", 10, 1);
        assert_eq!(update.rank_state, Up);
        assert_eq!(update.ranking_list.len(), DEFAULT_TOP_N);
        assert_eq!(
            list(&update)[2],
            row("p11", 3, Up, 9, 99),
            "from 12th to 3rd"
        );
        assert_eq!(list(&update)[3], row("p02", 4, Down, 1, 98));
        assert_eq!(
            ranking.rank_of(&member("p09")),
            Some(11),
            "pushed off the list"
        );

        let mut all = given_with(GiftRanking::new(None), &gifts);
        assert_eq!(when(&mut all, "p00", 1, 1).ranking_list.len(), 12);
    }

    #[test]
    fn nicknames_follow_the_latest_gift() {
        let mut ranking = given(&[("ann", 10, 1)]);
        let update = ranking.apply_gift(&member("ann"), "Annie", 1, 1).unwrap();
        assert_eq!(update.ranking_list[0].nick_name, "Annie");
    }

    #[test]
    fn a_new_session_starts_from_nothing() {
        let mut session = given(&[("ann", 100, 1), ("bob", 10, 1)]);
        session.reset();
        assert!(session.is_empty());
        let update = when(&mut session, "bob", 1, 1);
        assert_eq!(update.rank_state, New);
        assert_eq!(list(&update), vec![row("bob", 1, New, 0, 1)]);
    }

    #[test]
    fn the_message_uses_the_seeds_field_names() {
        let mut ranking = given(&[("ann", 100, 1)]);
        let update = when(&mut ranking, "bob", 200, 1);
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            serde_json::json!({
                "rankState": "NEW",
                "rankingList": [
                    {"memberId": "bob@mabu.mabumaster", "nickName": "BOB", "rank": 1,
                     "state": "NEW", "rise": 0, "score": 200},
                    {"memberId": "ann@mabu.mabumaster", "nickName": "ANN", "rank": 2,
                     "state": "DOWN", "rise": 1, "score": 100},
                ]
            })
        );
        assert_eq!(
            serde_json::to_string(&[Up, Down, Plateau, New]).unwrap(),
            r#"["UP","DOWN","PLATEAU","NEW"]"#
        );
    }

    #[test]
    fn standings_list_everyone_in_rank_order() {
        let ranking = given(&[("ann", 10, 1), ("bob", 20, 1)]);
        let standings: Vec<_> = ranking
            .standings()
            .map(|s| {
                (
                    s.member_id.account().to_owned(),
                    s.nick_name.to_owned(),
                    s.rank,
                    s.score,
                )
            })
            .collect();
        assert_eq!(
            standings,
            vec![
                ("bob".into(), "BOB".into(), 1, 20),
                ("ann".into(), "ANN".into(), 2, 10)
            ]
        );
    }

    /// A reference ranking: sort everyone from scratch after each gift and compare full ranks.
    #[derive(Default)]
    struct Reference {
        scores: Vec<(MemberId, u64, u64)>,
        gifts: u64,
    }

    impl Reference {
        fn order(&self) -> Vec<MemberId> {
            let mut sorted = self.scores.clone();
            sorted.sort_by_key(|(_, score, reached)| (Reverse(*score), *reached));
            sorted.into_iter().map(|(m, ..)| m).collect()
        }

        fn give(&mut self, who: &MemberId, value: u64) -> Vec<(MemberId, u32, RankState, u32)> {
            let before = self.order();
            self.gifts += 1;
            match self.scores.iter_mut().find(|(m, ..)| m == who) {
                Some((_, score, reached)) => {
                    let new = score.saturating_add(value);
                    if new != *score {
                        *score = new;
                        *reached = self.gifts;
                    }
                }
                None => self.scores.push((who.clone(), value, self.gifts)),
            }
            self.order()
                .into_iter()
                .enumerate()
                .map(|(now, m)| {
                    let (state, rise) = movement(before.iter().position(|b| *b == m), now);
                    (m, now as u32 + 1, state, rise)
                })
                .collect()
        }
    }

    #[test]
    fn every_update_matches_a_full_re_sort_over_many_gifts() {
        for top_n in [None, NonZeroUsize::new(3)] {
            let mut ranking = GiftRanking::new(top_n);
            let mut reference = Reference::default();
            let mut seed: u64 = 0x5eed;
            for gift in 0..600 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let who = member(&format!("m{}", (seed >> 33) % 9));
                // Small values so ties are frequent.
                let points = 1 + ((seed >> 20) % 3) as u32;
                let count = 1 + ((seed >> 40) % 2) as u32;
                if gift == 300 {
                    ranking.reset();
                    reference = Reference::default();
                }
                let update = ranking.apply_gift(&who, "n", points, count).unwrap();
                let expected = reference.give(&who, u64::from(points) * u64::from(count));
                let shown = top_n.map_or(expected.len(), NonZeroUsize::get);
                let got: Vec<_> = update
                    .ranking_list
                    .iter()
                    .map(|e| (e.member_id.clone(), e.rank, e.state, e.rise))
                    .collect();
                let want: Vec<_> = expected.iter().take(shown).cloned().collect();
                assert_eq!(got, want, "gift {gift}");
                let giver = expected.iter().find(|e| e.0 == who).unwrap();
                assert_eq!(update.rank_state, giver.2, "gift {gift}");
            }
        }
    }

    #[test]
    fn a_ranking_restored_from_stored_standings_continues_exactly_like_the_original() {
        let gifts = [
            ("ann", 5, 1),
            ("bob", 5, 1),
            ("cid", 2, 2),
            ("dan", 1, 9),
            ("bob", 1, 1),
            ("ann", 1, 1),
        ];
        let original = given(&gifts);
        let mut stored: Vec<StoredStanding> = original
            .standings()
            .map(|s| original.stored(s.member_id).unwrap())
            .collect();
        stored.reverse();
        let mut restored = GiftRanking::restore(original.top_n(), stored, original.gifts());
        let mut original = original;
        for (who, points, count) in [("cid", 3, 1), ("eve", 6, 1), ("dan", 1, 1)] {
            assert_eq!(
                when(&mut restored, who, points, count),
                when(&mut original, who, points, count),
                "after {who}"
            );
        }
    }
}
