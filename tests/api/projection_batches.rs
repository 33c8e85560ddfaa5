//! The projections that apply a batch at once (`gifts`: rankings held in memory for the batch;
//! `room_activity`: sums per room and bucket) leave the same rows and derive the same notices,
//! with the same ids, whether the stream comes one event at a time or in batches of any size.

use onair::events::{
    BroadcastStarted, ChatMessagePosted, Event, EventEnvelope, GiftSent, MemberJoinedRoom,
    MemberLeftRoom,
};
use onair::projections::Projection;
use onair::projections::gifts::GiftsProjection;
use onair::projections::room_activity::RoomActivityProjection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::fresh_database;

const STREAMERS: [&str; 2] = ["star1@a1.m1", "star2@a2.m1"];
const GIVERS: [&str; 5] = [
    "ann@a1.m1",
    "ben@a1.m1",
    "cat@a2.m1",
    "dan@a2.m1",
    "not a member id",
];

fn room(streamer: &str) -> String {
    let agent = streamer.split_once('@').unwrap().1;
    format!("chatroomSystem-chatroom-{agent}-{streamer}")
}

/// A seeded pseudo-random source (a 64-bit LCG): `next(n)` is in `0..n`, the same sequence for
/// the same seed, so the streams below are the same on every run.
fn seeded(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    }
}

/// 600 events: gifts of several sizes (a few of count 0, which rank nothing) from five givers
/// to two streamers, stream starts between them, chat messages, and room joins and leaves, spread
/// over several 10 s buckets.
fn stream() -> Vec<EventEnvelope> {
    let mut next = seeded(0x5eed);
    let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    (1..=600u64)
        .map(|sequence| {
            let streamer = STREAMERS[next(2) as usize].to_owned();
            let event = match next(20) {
                0 => Event::BroadcastStarted(BroadcastStarted {
                    streamer,
                    session_id: Uuid::from_u128(sequence as u128),
                }),
                1..=3 => Event::ChatMessagePosted(ChatMessagePosted {
                    room: room(&streamer),
                    from: format!("c{sequence}"),
                    member_id: GIVERS[0].to_owned(),
                    message: "{}".to_owned(),
                }),
                4 => Event::MemberJoinedRoom(MemberJoinedRoom {
                    room: room(&streamer),
                    member_id: GIVERS[1].to_owned(),
                    connection_id: format!("c{}", next(4)),
                    instance_id: Some(format!("instance-{}", next(2))),
                }),
                5 => Event::MemberLeftRoom(MemberLeftRoom {
                    room: room(&streamer),
                    member_id: GIVERS[1].to_owned(),
                    connection_id: format!("c{}", next(4)),
                }),
                _ => {
                    let points = [1, 5, 20][next(3) as usize];
                    let count = if next(30) == 0 { 0 } else { 1 + next(9) as u32 };
                    Event::GiftSent(GiftSent {
                        gift_id: i64::from(points),
                        gift_name: format!("gift {points}"),
                        anime_url: String::new(),
                        points,
                        count,
                        score: u64::from(points) * u64::from(count),
                        presenter: GIVERS[next(5) as usize].to_owned(),
                        presenter_nickname: format!("nick{}", next(3)),
                        agent_id: streamer.split_once('@').unwrap().1.to_owned(),
                        recipient: streamer,
                        session_id: None,
                    })
                }
            };
            EventEnvelope {
                id: Uuid::from_u128(0xe0e0_0000 + sequence as u128),
                occurred_at: start + time::Duration::milliseconds(sequence as i64 * 700),
                sequence,
                event,
            }
        })
        .collect()
}

type Rows = Vec<Vec<String>>;

/// Applies `events` in batches of `size` to a fresh database; the rows of every table the two
/// projections write, and their notices (id, time, event).
async fn apply_in_batches(events: &[EventEnvelope], size: usize) -> (Rows, Vec<String>) {
    let projections: [Box<dyn Projection>; 2] = [
        Box::new(GiftsProjection::default()),
        Box::new(RoomActivityProjection),
    ];
    apply_each_in_batches(&projections, events, size).await
}

/// Applies `events` in batches of `size` to each of `projections` in a fresh database; `size` 1
/// applies each event on its own (`Projection::apply`), the reference the batches must match.
async fn apply_each_in_batches(
    projections: &[Box<dyn Projection>],
    events: &[EventEnvelope],
    size: usize,
) -> (Rows, Vec<String>) {
    let db = sqlx::PgPool::connect(&fresh_database().await)
        .await
        .unwrap();
    onair::runtime::postgres::migrate(&db).await.unwrap();
    let mut notices = Vec::new();
    for projection in projections {
        for batch in events.chunks(size) {
            let mut tx = db.begin().await.unwrap();
            if size == 1 {
                // One event at a time: each event's own statements.
                projection.apply(&mut tx, &batch[0]).await.unwrap();
            } else {
                projection.apply_batch(&mut tx, batch).await.unwrap();
            }
            tx.commit().await.unwrap();
            notices.extend(
                projection
                    .take_notices()
                    .into_iter()
                    .map(|n| format!("{} {} {:?}", n.id, n.occurred_at, n.event)),
            );
        }
    }
    let mut rows = Vec::new();
    for table in projections.iter().flat_map(|p| p.tables()) {
        let table_rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY 1"
        )))
        .fetch_all(&db)
        .await
        .unwrap();
        rows.push(table_rows.into_iter().map(|r| r.0).collect());
    }
    db.close().await;
    (rows, notices)
}

#[tokio::test]
async fn batches_of_any_size_leave_the_rows_and_notices_of_one_event_at_a_time() {
    let events = stream();
    let (rows, notices) = apply_in_batches(&events, 1).await;
    // The stream exercises what it should: rankings of both scopes, records, activity, presence.
    assert!(rows.iter().all(|table| !table.is_empty()), "{rows:?}");
    assert!(notices.iter().any(|n| n.contains("GiftRank")));
    for size in [2, 7, 64, 600] {
        let (batched_rows, batched_notices) = apply_in_batches(&events, size).await;
        assert_eq!(batched_rows, rows, "batches of {size}");
        assert_eq!(batched_notices, notices, "batches of {size}");
    }
}

const STAGES: [&str; 3] = ["arn:stage/a", "arn:stage/b", "arn:stage/c"];

/// 800 pool events and heartbeats: stages created, renamed, drained, deleted and created again;
/// eight viewers joining (again, on another stage), renewing, beating (alone and in batches,
/// some on a stage they do not sit on), leaving and expiring (some for a seat they do not
/// hold), so that one batch holds several kinds of event for the same viewer and stage.
fn pool_stream() -> Vec<EventEnvelope> {
    use onair::events::stage::{
        RecordedHeartbeat, StageCreated, StageDeleted, StageDeletionReason, StageDrainEnded,
        StageDrainStarted, StageRenamed, ViewerExpired, ViewerHeartbeatRecorded,
        ViewerHeartbeatsRecorded, ViewerJoined, ViewerLeft, ViewerTokenRenewed,
    };
    let mut next = seeded(0xbeef);
    let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let created = |arn: &str| {
        Event::StageCreated(StageCreated {
            stage_arn: arn.to_owned(),
            name: format!("stage {arn}"),
            auto_scaled: true,
            is_master: false,
            tags: Default::default(),
        })
    };
    let mut events: Vec<Event> = STAGES.iter().map(|arn| created(arn)).collect();
    for sequence in 0..800u64 {
        let user = format!("user{}", next(8));
        let stage = STAGES[next(3) as usize].to_owned();
        let at = start + time::Duration::milliseconds(sequence as i64 * 500 - next(900) as i64);
        events.push(match next(24) {
            0 => Event::StageRenamed(StageRenamed {
                stage_arn: stage,
                name: format!("renamed {sequence}"),
            }),
            1 => Event::StageDrainStarted(StageDrainStarted {
                stage_arn: stage,
                viewer_count: 0,
            }),
            2 => Event::StageDrainEnded(StageDrainEnded {
                stage_arn: stage,
                viewer_count: 0,
            }),
            3 if sequence % 3 == 0 => Event::StageDeleted(StageDeleted {
                stage_arn: stage,
                reason: StageDeletionReason::ScaleDown,
            }),
            3 => created(&stage),
            4..=8 => Event::ViewerJoined(ViewerJoined {
                user_id: user,
                stage_arn: stage,
                participant_id: format!("p{sequence}"),
                token_expires_at: at,
                attributes: Default::default(),
            }),
            9..=10 => Event::ViewerTokenRenewed(ViewerTokenRenewed {
                user_id: user,
                stage_arn: stage,
                participant_id: format!("r{sequence}"),
                token_expires_at: at,
            }),
            11..=13 => Event::ViewerHeartbeatRecorded(ViewerHeartbeatRecorded {
                user_id: user,
                stage_arn: stage,
            }),
            14..=17 => Event::ViewerHeartbeatsRecorded(ViewerHeartbeatsRecorded {
                heartbeats: (0..1 + next(6))
                    .map(|i| RecordedHeartbeat {
                        user_id: format!("user{}", next(8)),
                        stage_arn: STAGES[next(3) as usize].to_owned(),
                        at: at - time::Duration::milliseconds(i as i64 * 300),
                    })
                    .collect(),
            }),
            18..=20 => Event::ViewerLeft(ViewerLeft {
                user_id: user,
                stage_arn: stage,
                joined_at: start,
                watch_duration_seconds: next(100),
            }),
            _ => Event::ViewerExpired(ViewerExpired {
                user_id: user,
                stage_arn: stage,
                joined_at: start,
                last_seen_at: at,
                watch_duration_seconds: next(100),
            }),
        });
    }
    // Every stage again, and a few joins, so that the stream ends with viewers.
    events.extend(STAGES.iter().map(|arn| created(arn)));
    events.extend((0..6).map(|i| {
        Event::ViewerJoined(ViewerJoined {
            user_id: format!("late{i}"),
            stage_arn: STAGES[i % 3].to_owned(),
            participant_id: format!("late{i}"),
            token_expires_at: start,
            attributes: Default::default(),
        })
    }));
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| EventEnvelope {
            id: Uuid::from_u128(0xb0b0_0000 + i as u128),
            occurred_at: start + time::Duration::milliseconds(i as i64 * 500),
            sequence: i as u64 + 1,
            event,
        })
        .collect()
}

#[tokio::test]
async fn pool_batches_mixing_joins_beats_and_leaves_leave_the_rows_of_one_event_at_a_time() {
    use onair::projections::stages::StagesProjection;
    use onair::projections::viewers::ViewersProjection;
    let events = pool_stream();
    let rows = |size: usize| {
        let events = events.clone();
        async move {
            let projections: [Box<dyn Projection>; 2] =
                [Box::new(StagesProjection), Box::new(ViewersProjection)];
            apply_each_in_batches(&projections, &events, size).await.0
        }
    };
    let one_by_one = rows(1).await;
    // The stream exercises what it should: stages, seats and completed watch time.
    assert!(one_by_one.iter().all(|t| !t.is_empty()), "{one_by_one:?}");
    assert!(
        one_by_one[0]
            .iter()
            .any(|r| !r.contains("\"viewer_count\":0")),
        "some stage has viewers: {:?}",
        one_by_one[0]
    );
    for size in [2, 7, 64, 812] {
        assert_eq!(rows(size).await, one_by_one, "batches of {size}");
    }
}
