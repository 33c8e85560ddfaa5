//! Answers that agree: a workload of viewers joining, beating and leaving (and going
//! silent), gifts, follows and chat, spread over minutes, hours and two days by the test clock;
//! then `onair lake --until-caught-up`, and the guide's queries (docs/analytics.md) in DuckDB and,
//! where chdb installs, ClickHouse. Each result must equal what onair's own API answered for the
//! same period: live stats sampled after every seat change, `/api/viewer/duration`, the gift
//! records and the room's gift ranking, `chatHistory`, the followers of `getRoomInfo`, and the
//! token and stage answers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::chat_support::ChatClient;
use crate::gateway_support::Gateway;
use crate::helpers::{Services, TempDir, encode, run_to_success};
use crate::lake::{guide_queries, lake_command};

const S1: &str = "star@mabu.mabumaster";
const S2: &str = "nova@mabu.mabumaster";
const MEMBERS: [&str; 4] = [
    "m1@mabu.mabumaster",
    "m2@mabu.mabumaster",
    "m3@mabu.mabumaster",
    "m4@mabu.mabumaster",
];

fn room(streamer: &str) -> String {
    format!("chatroomSystem-chatroom-mabu.mabumaster-{streamer}")
}

fn truncate(t: OffsetDateTime, unit: &str) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (h, m) = match unit {
        "minute" => (t.hour(), t.minute()),
        "hour" => (t.hour(), 0),
        _ => (0, 0),
    };
    format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:00Z",
        t.year(),
        u8::from(t.month()),
        t.day()
    )
}

fn parse_time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

/// The workload's driver: the gateway, its clock and what onair answered along the way.
struct Run {
    gw: Gateway,
    tokens: BTreeMap<String, String>,
    /// After every seat change: the minute (clock) and each stage's viewers (`/api/stats`).
    samples: Vec<(String, BTreeMap<String, i64>)>,
    /// `(user, stage)` of every seat taken.
    watched: BTreeSet<(String, String)>,
    /// Per hour: viewer tokens, publisher tokens answered 200.
    tokens_per_hour: BTreeMap<String, (i64, i64)>,
    /// `(streamer, day)` → followers (`getRoomInfo`) after the day's last change.
    followers: BTreeMap<(String, String), i64>,
    /// `(room, minute)` → (messages, chatters), from `chatHistory`.
    chat: BTreeMap<(String, String), (i64, BTreeSet<String>)>,
}

impl Run {
    fn now(&self) -> OffsetDateTime {
        self.gw.app.state.clock.now()
    }

    /// Moves the clock forward by at least `by`, to 5 s past a minute, so a phase's actions
    /// share one minute.
    async fn advance_to_minute(&self, by: Duration) {
        let clock = &self.gw.app.state.clock;
        clock.advance(by);
        let second = clock.now().second() as u64;
        clock.advance(Duration::from_secs((65 - second) % 60));
    }

    /// The stats now, recorded with the clock's minute (the phase must not have run into the next
    /// minute).
    async fn sample(&mut self) {
        self.gw.app.wait_for_projections().await;
        let stats = self.gw.app.get("/api/stats").await;
        assert_eq!(stats.status, 200, "{}", stats.body);
        let now = self.now();
        assert!(now.second() < 58, "a phase ran into the next minute");
        let counts = stats.data()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stageArn"].as_str().unwrap().to_owned(),
                    s["viewerCount"].as_i64().unwrap(),
                )
            })
            .collect();
        self.samples.push((truncate(now, "minute"), counts));
    }

    async fn seat(&mut self, user: &str) -> String {
        let answer = self.gw.app.viewer_token(user).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        self.tokens_per_hour
            .entry(truncate(self.now(), "hour"))
            .or_default()
            .0 += 1;
        let stage = answer.data()["stageArn"].as_str().unwrap().to_owned();
        self.watched.insert((user.to_owned(), stage.clone()));
        self.sample().await;
        stage
    }

    async fn publisher_token(&mut self, user: &str) {
        let answer = self
            .gw
            .app
            .post("/api/token/publisher", &json!({"userId": user}))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        self.tokens_per_hour
            .entry(truncate(self.now(), "hour"))
            .or_default()
            .1 += 1;
    }

    async fn leave(&mut self, user: &str, stage: &str) {
        let answer = self
            .gw
            .app
            .post(
                "/api/viewer/leave",
                &json!({"userId": user, "stageArn": stage}),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        self.sample().await;
    }

    /// Heartbeats of all `seats` at once (so group commit batches some of them).
    async fn heartbeats(&self, seats: &[(&str, &str)]) {
        let answers = futures_util::future::join_all(
            seats
                .iter()
                .map(|(user, stage)| self.gw.app.heartbeat(user, stage)),
        )
        .await;
        for answer in answers {
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
    }

    /// Waits until the stats show `viewers` seated in all, then samples.
    async fn expect_seated(&mut self, viewers: i64) {
        crate::helpers::eventually(Duration::from_secs(10), || async {
            let stats = self.gw.app.get("/api/stats").await;
            (stats.data()["totalViewers"].as_i64() == Some(viewers)).then_some(())
        })
        .await;
        self.sample().await;
    }

    async fn gift(&self, member: &str, streamer: &str, gift_id: i64, count: i64) {
        let token = &self.tokens[member];
        let answer = self
            .gw
            .send_gift(token, member, streamer, gift_id, count)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    async fn follow(&mut self, member: &str, streamer: &str, action: &str) {
        let answer = self
            .gw
            .action(
                action,
                json!({"streamerID": streamer}),
                Some(&self.tokens[member]),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        self.gw.app.wait_for_projections().await;
        let info = self
            .gw
            .action("getRoomInfo", json!({"streamerID": streamer}), None)
            .await;
        let followers = info.data()["followers"].as_i64().unwrap();
        self.followers.insert(
            (streamer.to_owned(), truncate(self.now(), "day")),
            followers,
        );
    }

    /// Says `texts` in `streamer`'s room as `member`, then reads the room's `chatHistory`.
    async fn chat(&mut self, streamer: &str, lines: &[(&str, usize)]) {
        let room = room(streamer);
        let mut clients = Vec::new();
        for (member, count) in lines {
            let mut client =
                ChatClient::verified(&self.gw.app.address, &room, member, &self.tokens[*member])
                    .await;
            for n in 0..*count {
                let said = client.chat(&room, member, &format!("hello {n}")).await;
                assert!(said.get("error").is_none(), "{said}");
            }
            clients.push(client);
        }
        let history = clients[0]
            .action("chatHistory", json!({"chatroom": room, "limit": 100}))
            .await;
        for message in history["messages"].as_array().unwrap() {
            let sent = OffsetDateTime::from_unix_timestamp_nanos(
                message["sentAt"].as_i64().unwrap() as i128 * 1_000_000,
            )
            .unwrap();
            let text: Value = serde_json::from_str(message["message"].as_str().unwrap()).unwrap();
            let entry = self
                .chat
                .entry((room.clone(), truncate(sent, "minute")))
                .or_default();
            entry.0 += 1;
            entry
                .1
                .insert(text["memberID"].as_str().unwrap().to_owned());
        }
    }
}

/// The peaks of each stage per minute the samples show: per minute with a change, the highest of
/// the count it started with and the counts after each change.
fn peaks(samples: &[(String, BTreeMap<String, i64>)]) -> Vec<Value> {
    let mut peaks: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut previous: BTreeMap<String, i64> = BTreeMap::new();
    for (minute, counts) in samples {
        let stages: BTreeSet<&String> = counts.keys().chain(previous.keys()).collect();
        for stage in stages {
            let (before, after) = (
                previous.get(stage).copied().unwrap_or(0),
                counts.get(stage).copied().unwrap_or(0),
            );
            if before != after {
                let peak = peaks
                    .entry((stage.clone(), minute.clone()))
                    .or_insert(before);
                *peak = (*peak).max(before).max(after);
            }
        }
        previous = counts.clone();
    }
    peaks
        .into_iter()
        .map(|((stage, minute), peak)| json!([stage, minute, peak]))
        .collect()
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|r| r.to_string());
    rows
}

#[tokio::test]
async fn the_guides_queries_give_onairs_own_answers() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        s.heartbeat_timeout_secs = 300.0;
        s.expiry_check_interval_ms = 100;
        s.popularity_interval_ms = 3_600_000;
        s.max_viewers_per_stage = 4;
        s.scale_up_threshold = 3;
        s.scale_down_min_age_secs = 31_000_000.0;
        // Heartbeats sent together share a message (group commit), so both heartbeat types occur.
        s.heartbeat_batch_window_us = 100_000;
    })
    .await;
    let mut run = Run {
        gw,
        tokens: BTreeMap::new(),
        samples: Vec::new(),
        watched: BTreeSet::new(),
        tokens_per_hour: BTreeMap::new(),
        followers: BTreeMap::new(),
        chat: BTreeMap::new(),
    };
    for streamer in [S1, S2] {
        let token = run.gw.member(streamer, "streamer").await;
        run.tokens.insert(streamer.to_owned(), token);
    }
    for member in MEMBERS {
        let token = run.gw.member(member, "member").await;
        run.tokens.insert(member.to_owned(), token);
    }
    run.gw.set_gift(1, "Rose", 10).await;
    run.gw.set_gift(2, "Car", 100).await;
    let live = run
        .gw
        .action("startStream", json!({}), Some(&run.tokens[S1]))
        .await;
    assert_eq!(live.status, 200, "{}", live.body);

    // Minute 1: six viewers (two stages), a batch of heartbeats, a leave; follows, gifts, chat.
    run.advance_to_minute(Duration::ZERO).await;
    run.sample().await;
    run.publisher_token("star").await;
    let mut seats = Vec::new();
    for i in 0..6 {
        let user = format!("viewer-{i}");
        let stage = run.seat(&user).await;
        seats.push((user, stage));
    }
    let beating: Vec<(&str, &str)> = seats
        .iter()
        .map(|(u, s)| (u.as_str(), s.as_str()))
        .collect();
    run.heartbeats(&beating).await;
    run.follow(MEMBERS[0], S1, "follow").await;
    run.follow(MEMBERS[1], S1, "follow").await;
    run.follow(MEMBERS[2], S2, "follow").await;
    run.gift(MEMBERS[0], S1, 1, 3).await;
    run.gift(MEMBERS[1], S1, 2, 1).await;
    run.gift(MEMBERS[2], S1, 1, 5).await;
    run.gift(MEMBERS[0], S2, 1, 2).await;
    run.chat(S1, &[(MEMBERS[0], 3), (MEMBERS[1], 2)]).await;
    run.chat(S2, &[(MEMBERS[2], 1)]).await;
    let (user, stage) = seats[1].clone();
    run.leave(&user, &stage).await;

    // Minute 2: more seats and leaves; a renewal.
    run.advance_to_minute(Duration::from_secs(30)).await;
    run.heartbeats(&beating[2..]).await;
    let late = run.seat("viewer-6").await;
    assert_eq!(
        run.seat("viewer-0").await,
        seats[0].1,
        "a renewal keeps the seat"
    );
    let (user, stage) = seats[2].clone();
    run.leave(&user, &stage).await;
    run.leave("viewer-6", &late).await;
    run.gift(MEMBERS[3], S1, 1, 1).await;

    // Minutes 4 and 8: viewers 0 and 3 keep beating, 4 and 5 go silent for 6 minutes and expire.
    run.advance_to_minute(Duration::from_secs(90)).await;
    run.heartbeats(&[(&seats[0].0, &seats[0].1), (&seats[3].0, &seats[3].1)])
        .await;
    run.advance_to_minute(Duration::from_secs(200)).await;
    run.expect_seated(2).await;

    // An hour later: the last two expire; new seats; a new live session and its gifts.
    run.advance_to_minute(Duration::from_secs(3600)).await;
    run.expect_seated(0).await;
    run.publisher_token("star").await;
    let v7 = run.seat("viewer-7").await;
    let v8 = run.seat("viewer-8").await;
    run.heartbeats(&[("viewer-7", &v7)]).await;
    run.gift(MEMBERS[1], S1, 2, 2).await;
    run.gw
        .action("endStream", json!({}), Some(&run.tokens[S1]))
        .await;
    run.gw
        .action("startStream", json!({}), Some(&run.tokens[S1]))
        .await;
    run.gift(MEMBERS[3], S1, 1, 3).await;
    run.gift(MEMBERS[0], S1, 1, 3).await;
    run.gift(MEMBERS[2], S2, 2, 1).await;
    run.leave("viewer-8", &v8).await;

    // The next day: viewer 7 has expired; follows change; viewer 9's session stays open.
    run.advance_to_minute(Duration::from_secs(86_400)).await;
    run.expect_seated(0).await;
    let v9 = run.seat("viewer-9").await;
    run.advance_to_minute(Duration::from_secs(100)).await;
    run.heartbeats(&[("viewer-9", &v9)]).await;
    for member in [MEMBERS[0], MEMBERS[3]] {
        let token = run.gw.member_token(member).await;
        run.tokens.insert(member.to_owned(), token);
    }
    run.follow(MEMBERS[3], S1, "follow").await;
    run.follow(MEMBERS[0], S1, "unfollow").await;
    run.follow(MEMBERS[0], S2, "follow").await;
    run.gw.app.wait_for_projections().await;

    // onair's own answers.
    let mut expected: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    expected.insert("peak_viewers", peaks(&run.samples));
    let mut watch = Vec::new();
    for (user, stage) in &run.watched {
        let answer = run
            .gw
            .app
            .get(&format!(
                "/api/viewer/duration?userId={user}&stageArn={}",
                encode(stage)
            ))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        watch.push(json!([user, stage, answer.data()["watchDuration"]]));
    }
    expected.insert("watch_time", watch);
    let first_day = truncate(parse_time(&run.samples[0].0), "day");
    let records = run
        .gw
        .backoffice(
            "getGiftRecord",
            json!({"username": "analyst", "uppername": "mabumaster",
                   "startDate": &first_day[..10],
                   "endDate": &truncate(run.now(), "day")[..10], "pagelimit": 500}),
        )
        .await;
    assert_eq!(records.status, 200, "{}", records.body);
    let mut points: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for record in records.data()["list"].as_array().unwrap() {
        let hour = truncate(parse_time(record["sentAt"].as_str().unwrap()), "hour");
        let entry = points
            .entry((record["streamerAccount"].as_str().unwrap().to_owned(), hour))
            .or_default();
        entry.0 += record["score"].as_i64().unwrap();
        entry.1 += 1;
    }
    expected.insert(
        "gift_points",
        points
            .into_iter()
            .map(|((s, h), (p, n))| json!([s, h, p, n]))
            .collect(),
    );
    let mut ranking = Vec::new();
    for streamer in [S1, S2] {
        let info = run
            .gw
            .action("getRoomInfo", json!({"streamerID": streamer}), None)
            .await;
        for entry in info.data()["giftRanking"].as_array().unwrap() {
            ranking.push(json!([
                streamer,
                entry["memberId"],
                entry["score"],
                entry["rank"]
            ]));
        }
    }
    expected.insert("top_givers", ranking);
    expected.insert(
        "chat_activity",
        run.chat
            .iter()
            .map(|((room, minute), (n, who))| json!([room, minute, n, who.len()]))
            .collect(),
    );
    let mut growth = Vec::new();
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for ((streamer, day), followers) in &run.followers {
        let before = last.insert(streamer, *followers).unwrap_or(0);
        growth.push(json!([streamer, day, followers - before, followers]));
    }
    expected.insert("follower_growth", growth);
    let stages = run.gw.app.get("/api/stats/stages").await;
    let mut per_hour: BTreeMap<String, (i64, i64, i64)> = run
        .tokens_per_hour
        .iter()
        .map(|(h, (v, p))| (h.clone(), (*v, *p, 0)))
        .collect();
    for stage in stages.data()["stages"].as_array().unwrap() {
        let hour = truncate(parse_time(stage["createdAt"].as_str().unwrap()), "hour");
        per_hour.entry(hour).or_default().2 += 1;
    }
    expected.insert(
        "tokens_and_stages",
        per_hour
            .into_iter()
            .map(|(h, (v, p, s))| json!([h, v, p, s]))
            .collect(),
    );

    // The lake, and the guide's queries on it.
    let root = TempDir::new("onair-lake-answers");
    let dir = root.0.clone();
    if std::env::var_os("ONAIR_TEST_KEEP_LAKE").is_some() {
        eprintln!("the lake is kept in {}", dir.display());
        std::mem::forget(root);
    }
    let out = run_to_success(
        lake_command(&services, &dir.join("lake"), &["--until-caught-up"]),
        Duration::from_secs(120),
        "onair lake --until-caught-up",
    )
    .await;
    assert!(out.contains("events"), "{out}");
    let mut engines = vec!["duckdb"];
    if crate::lake::has_chdb().await {
        engines.push("clickhouse");
    } else {
        eprintln!("chdb is not installed: the ClickHouse half of the test is skipped");
    }
    for engine in engines {
        let results = guide_queries(&dir, engine).await;
        for (name, rows) in &expected {
            let got = results["queries"][name]["rows"]
                .as_array()
                .unwrap_or_else(|| panic!("{engine}: no result for {name}: {results}"))
                .clone();
            assert_eq!(
                sorted(got),
                sorted(rows.clone()),
                "{engine}: query {name} disagrees with onair's answers"
            );
        }
    }
}
