//! Given/when/then tests of gift rankings (src/domain/gift_ranking.rs).

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
