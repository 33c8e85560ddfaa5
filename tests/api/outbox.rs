//! The transactional outbox: a member's row and its event commit together, and the outbox relay
//! publishes what a crash left between the commit and the publish, exactly once; a projector's
//! chat notices are published by the relay, not by the projector.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use onair::commands::members::{self, MemberEdit, NewMember};
use onair::domain::member::{MemberId, Role};
use onair::event_store::outbox::{self, EncodedEvent};
use onair::events::subject::subject;
use onair::reactors::outbox_relay::relay_due;
use onair::server::config::ServeRole;
use serde_json::{Value, json};

use crate::gateway_support::{Gateway, PASSWORD};
use crate::helpers::{Services, eventually};

const BEN: &str = "ben@mabu.mabumaster";
const STAR: &str = "star@mabu.mabumaster";

/// An instance without the `reactors` role: no relay runs unless the test runs it.
async fn without_relay(services: &Services) -> Gateway {
    Gateway::start_with(services, |s| {
        s.roles = vec![ServeRole::Api, ServeRole::Projectors]
    })
    .await
}

/// Every message stored on `subject`: its headers (name to value) and its payload.
async fn messages_on(gw: &Gateway, subject: &str) -> Vec<(BTreeMap<String, String>, Value)> {
    let stream = gw.app.state.store.stream().await.unwrap();
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.into(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(Duration::from_millis(300), messages.next()).await
    {
        let headers = m
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .map(|(name, values)| (name.to_string(), values[0].as_str().to_owned()))
            .collect();
        out.push((headers, serde_json::from_slice(&m.payload).unwrap()));
    }
    out
}

async fn member_rows(gw: &Gateway, member: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM members WHERE member_id = $1")
        .bind(member)
        .fetch_one(&gw.app.db)
        .await
        .unwrap();
    n
}

/// An outbox row's event: id, subject, headers, payload.
type OutboxRow = (
    uuid::Uuid,
    String,
    sqlx::types::Json<BTreeMap<String, String>>,
    Vec<u8>,
);

/// The unpublished outbox rows, as the relay would publish them.
async fn pending_rows(gw: &Gateway) -> Vec<EncodedEvent> {
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT event_id, subject, headers, payload FROM event_outbox
             WHERE sequence IS NULL ORDER BY position",
    )
    .fetch_all(&gw.app.db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, subject, headers, payload)| EncodedEvent {
            id,
            subject,
            headers: headers.0,
            payload,
        })
        .collect()
}

fn new_member(id: &str) -> NewMember {
    NewMember::new(
        MemberId::parse(id, "memberID").unwrap(),
        Role::Member,
        PASSWORD,
        "Ben",
    )
}

#[tokio::test]
async fn a_registration_cut_between_commit_and_publish_is_published_once_by_the_relay() {
    let services = Services::start().await;
    let gw = without_relay(&services).await;
    let (db, store, clock) = (&gw.app.db, &gw.app.state.store, &gw.app.state.clock);
    let registered = subject("member", BEN, "registered");

    // The request commits its member and outbox row, then dies before publishing.
    let recorded = members::record_registration(db, store, new_member(BEN), clock.now())
        .await
        .unwrap();
    assert_eq!(member_rows(&gw, BEN).await, 1);
    assert!(messages_on(&gw, &registered).await.is_empty());
    assert_eq!(outbox::pending(db).await.unwrap(), 1);

    // Within its grace the row is the request's: the relay leaves it.
    assert_eq!(relay_due(db, store, clock.now()).await.unwrap(), 0);
    assert!(messages_on(&gw, &registered).await.is_empty());

    // A relay that dies after its publish and before marking the row: the event is stored...
    let rows = pending_rows(&gw).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, recorded.event_id);
    let first = store.publish_encoded(&rows).await.unwrap();
    assert!(!first[0].duplicate);
    let before = gw.app.stream_messages().await;

    // ...and the relay, run again past the grace, publishes it once more: a duplicate JetStream
    // drops, acknowledged with the first sequence.
    clock.advance(Duration::from_secs(31));
    assert_eq!(relay_due(db, store, clock.now()).await.unwrap(), 1);
    assert_eq!(gw.app.stream_messages().await, before, "no second copy");
    assert_eq!(outbox::pending(db).await.unwrap(), 0);
    let (sequence,): (i64,) =
        sqlx::query_as("SELECT sequence FROM event_outbox WHERE event_id = $1")
            .bind(recorded.event_id)
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(sequence as u64, first[0].sequence);

    // One member, one event, shaped as a directly published event.
    let stored = messages_on(&gw, &registered).await;
    assert_eq!(stored.len(), 1);
    let (headers, payload) = &stored[0];
    assert_eq!(headers["ce-id"], recorded.event_id.to_string());
    assert_eq!(headers["Nats-Msg-Id"], recorded.event_id.to_string());
    assert_eq!(headers["ce-type"], "onair.member.registered.v1");
    assert_eq!(headers["ce-source"], "/onair/stage-api");
    assert_eq!(payload["memberId"], BEN);
    assert_eq!(member_rows(&gw, BEN).await, 1);

    // A registration that runs whole stores the same shape: same headers, same payload fields.
    let amy = "amy@mabu.mabumaster";
    gw.create_member(amy, "member").await;
    let direct = messages_on(&gw, &subject("member", amy, "registered")).await;
    assert_eq!(direct.len(), 1);
    let names = |h: &BTreeMap<String, String>| h.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&direct[0].0), names(headers));
    let fields = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(fields(&direct[0].1), fields(payload));
    assert_eq!(outbox::pending(db).await.unwrap(), 0);

    // The member logs in as any other.
    let login = gw
        .action(
            "loginAction",
            json!({"memberID": BEN, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
}

#[tokio::test]
async fn edits_cut_after_their_commit_reach_the_stream_in_commit_order() {
    let services = Services::start().await;
    let gw = without_relay(&services).await;
    let (db, store, clock) = (&gw.app.db, &gw.app.state.store, &gw.app.state.clock);
    gw.create_member(BEN, "member").await;

    for nickname in ["First", "Second"] {
        let edit = MemberEdit {
            nickname: Some(nickname.into()),
            ..Default::default()
        };
        members::record_edit(db, store, BEN, edit, clock.now())
            .await
            .unwrap();
    }
    let edited = subject("member", BEN, "edited");
    assert!(messages_on(&gw, &edited).await.is_empty());

    // A later edit that runs whole publishes the rows before it first, in order.
    let answer = gw
        .backoffice("EditMember", json!({"memberID": BEN, "nickname": "Third"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let nicknames: Vec<Value> = messages_on(&gw, &edited)
        .await
        .into_iter()
        .map(|(_, payload)| payload["nickname"].clone())
        .collect();
    assert_eq!(nicknames, [json!("First"), json!("Second"), json!("Third")]);
    assert_eq!(outbox::pending(db).await.unwrap(), 0);
    assert_eq!(relay_due(db, store, clock.now()).await.unwrap(), 0);
}

#[tokio::test]
async fn the_running_relay_publishes_a_left_behind_registration_after_its_grace() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let (db, store, clock) = (&gw.app.db, &gw.app.state.store, &gw.app.state.clock);
    members::record_registration(db, store, new_member(BEN), clock.now())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(31));
    let registered = subject("member", BEN, "registered");
    eventually(Duration::from_secs(10), || async {
        (messages_on(&gw, &registered).await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(outbox::pending(db).await.unwrap(), 0);

    // A refused registration (the member exists) stores no row, no outbox row and no event.
    let before = gw.app.stream_messages().await;
    let refused = members::register(db, store, new_member(BEN), clock.now()).await;
    assert!(matches!(refused, Err(members::MemberError::Exists(_))));
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM event_outbox")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(rows, 1, "only the published row, kept for a minute");
    assert_eq!(gw.app.stream_messages().await, before);
    assert_eq!(messages_on(&gw, &registered).await.len(), 1);
}

#[tokio::test]
async fn a_projectors_notices_wait_in_the_outbox_until_the_relay_publishes_them_once() {
    let services = Services::start().await;
    let gw = without_relay(&services).await;
    let (db, store, clock) = (&gw.app.db, &gw.app.state.store, &gw.app.state.clock);
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    gw.action("startStream", json!({}), Some(&star)).await;
    gw.action("follow", json!({"streamerID": STAR}), Some(&ben))
        .await;
    gw.app.wait_for_projections().await;

    // The projections have applied the facts; their notices are committed, not published.
    assert!(gw.notices().await.is_empty());
    let pending = outbox::pending(db).await.unwrap();
    assert!(pending >= 3, "streamStatus, sub and follow: {pending}");

    assert_eq!(
        relay_due(db, store, clock.now()).await.unwrap() as i64,
        pending
    );
    let notices = gw.notices().await;
    assert_eq!(notices.len() as i64, pending);
    let kinds: Vec<&Value> = notices
        .iter()
        .map(|(_, _, d)| &d["message"]["type"])
        .collect();
    for kind in ["streamStatus", "sub", "follow"] {
        assert!(kinds.contains(&&json!(kind)), "{kind} in {kinds:?}");
    }

    // Run again, the relay has nothing to publish, and nothing is published twice.
    assert_eq!(relay_due(db, store, clock.now()).await.unwrap(), 0);
    assert_eq!(gw.notices().await.len(), notices.len());
}

#[tokio::test]
async fn gift_catalog_changes_reach_the_stream_through_the_outbox_in_commit_order() {
    let services = Services::start().await;
    let gw = without_relay(&services).await;
    let db = &gw.app.db;
    // Concurrent changes of one gift: the stream's last event is the catalog's row.
    let changes = (1..=6).map(|points| {
        gw.backoffice(
            "SetGift",
            json!({"giftID": 7, "name": format!("Rose {points}"), "points": points}),
        )
    });
    for answer in futures_util::future::join_all(changes).await {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let stored = messages_on(&gw, &subject("gift_catalog", "7", "defined")).await;
    assert_eq!(stored.len(), 6);
    let (points,): (i32,) = sqlx::query_as("SELECT points FROM gift_catalog WHERE gift_id = 7")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(stored.last().unwrap().1["points"], points);
    assert_eq!(outbox::pending(db).await.unwrap(), 0);
}
