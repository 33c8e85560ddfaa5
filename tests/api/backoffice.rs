//! The back-office gateway: operator auth, members, the gift catalog and getGiftRecord with each
//! filter and paging over a few hundred gifts.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::gateway_support::{Gateway, PASSWORD};
use crate::helpers::Services;

#[tokio::test]
async fn operators_manage_members_and_gifts_and_bad_credentials_change_nothing() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let before = gw.app.stream_messages().await;

    let wrong_key = gw
        .app
        .post_public(
            "/api/backoffice/CreateMember",
            &json!({"website": "site-a", "key": "nope", "memberID": "a@b.c",
                    "password": PASSWORD, "nickname": "A"}),
        )
        .await;
    wrong_key.expect_error(401, "UNAUTHORIZED");
    gw.app
        .post_public(
            "/api/backoffice/ListGifts",
            &json!({"website": "site-b", "key": gw.key}),
        )
        .await
        .expect_error(401, "UNAUTHORIZED");
    let missing = gw
        .app
        .post_public("/api/backoffice/ListGifts", &json!({"website": "site-a"}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(missing, "missing required parameter: key");
    gw.backoffice(
        "CreateMember",
        json!({"memberID": "a@b.c", "password": "short", "nickname": "A"}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    gw.backoffice(
        "CreateMember",
        json!({"memberID": "a@b.c", "password": PASSWORD, "nickname": "A", "role": "admin"}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    gw.backoffice("SetGift", json!({"giftID": 1, "name": "Rose", "points": 0}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(gw.app.stream_messages().await, before, "nothing was stored");

    let created = gw
        .backoffice(
            "CreateMember",
            json!({"memberID": "ben@mabu.mabumaster", "password": PASSWORD, "nickname": "Ben",
                   "avatar": "https://cdn.example.com/ben.png", "vip": "3",
                   "equipmentBar": "gold", "accountID": "10086"}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.data()["role"], "member");
    assert_eq!(created.data()["accountID"], "10086");
    assert!(created.body.to_string().find("password").is_none());
    gw.backoffice(
        "CreateMember",
        json!({"memberID": "ben@mabu.mabumaster", "password": PASSWORD, "nickname": "Ben"}),
    )
    .await
    .expect_error(409, "MEMBER_EXISTS");

    // EditMember: a new nickname and password; the old password stops working.
    let edited = gw
        .backoffice(
            "EditMember",
            json!({"memberID": "ben@mabu.mabumaster", "nickname": "Benny",
                   "password": "another-pass", "role": "streamer"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.data()["nickname"], "Benny");
    assert_eq!(
        edited.data()["vip"],
        "3",
        "fields not given keep their value"
    );
    gw.backoffice(
        "EditMember",
        json!({"memberID": "ghost@mabu.mabumaster", "vip": "1"}),
    )
    .await
    .expect_error(404, "MEMBER_NOT_FOUND");
    gw.action(
        "loginStreamer",
        json!({"memberID": "ben@mabu.mabumaster", "password": PASSWORD}),
        None,
    )
    .await
    .expect_error(401, "LOGIN_FAILED");
    let login = gw
        .action(
            "loginStreamer",
            json!({"memberID": "ben@mabu.mabumaster", "password": "another-pass"}),
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);

    gw.set_gift(2, "Rocket", 500).await;
    gw.set_gift(1, "Rose", 10).await;
    let gifts = gw.backoffice("ListGifts", json!({})).await;
    assert_eq!(
        gifts.data(),
        &json!([
            {"giftID": 1, "name": "Rose", "points": 10, "animeUrl": "/anime/1.webp", "enabled": true},
            {"giftID": 2, "name": "Rocket", "points": 500, "animeUrl": "/anime/2.webp", "enabled": true}
        ])
    );

    // Every change is an event, and no event carries a password or its hash.
    let stream = gw.app.state.store.stream().await.unwrap();
    let last = gw.app.stream_messages().await;
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.unwrap();
        let text = String::from_utf8_lossy(&message.payload);
        assert!(
            !text.contains(PASSWORD) && !text.contains("another-pass") && !text.contains("argon2"),
            "{text}"
        );
    }
}

/// A gift sent in the test: (member, streamer, gift id, count).
type SentGift<'a> = (&'a str, &'a str, i64, i64);

const STAR: &str = "star@mabu.mabumaster";
const MOON: &str = "moon@luna.mabumaster";
const OTHER_MASTER: &str = "star@mabu.othermaster";
const MEMBERS: [&str; 3] = [
    "ben@mabu.mabumaster",
    "amy@luna.mabumaster",
    "ben@luna.mabumaster",
];

fn gift_query(extra: Value) -> Value {
    let today = time::OffsetDateTime::now_utc().date();
    let mut body = json!({
        "username": "auditor", "uppername": "mabumaster",
        "startDate": (today - time::Duration::days(1)).to_string(),
        "endDate": today.to_string(),
        "streamerAccount": "", "account": "", "starttime": "", "endtime": "", "giftID": "",
        "page": "", "pagelimit": ""
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn gift_records_filter_page_and_total_over_hundreds_of_gifts() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    for s in [STAR, MOON, OTHER_MASTER] {
        gw.create_member(s, "streamer").await;
    }
    let mut tokens = Vec::new();
    for m in MEMBERS {
        tokens.push(gw.member(m, "member").await);
    }
    gw.set_gift(1, "Rose", 10).await;
    gw.set_gift(2, "Rocket", 500).await;

    // 300 gifts: member i % 3, streamer i % 3, gift 1 or 2, count 1..=4.
    let streamers = [STAR, MOON, OTHER_MASTER];
    let mut expected = Vec::new();
    for chunk in (0..300usize).collect::<Vec<_>>().chunks(25) {
        let answers = futures_util::future::join_all(chunk.iter().map(|&i| {
            let (member, token) = (MEMBERS[i % 3], &tokens[i % 3]);
            let streamer = streamers[(i / 3) % 3];
            let gift = 1 + (i % 2) as i64;
            let count = 1 + (i % 4) as i64;
            expected.push((member, streamer, gift, count));
            gw.send_gift(token, member, streamer, gift, count)
        }))
        .await;
        for a in answers {
            assert_eq!(a.status, 200, "{}", a.body);
        }
    }
    gw.app.wait_for_projections().await;

    let score = |g: i64, c: i64| if g == 1 { 10 * c } else { 500 * c };
    let matching = |f: &dyn Fn(&SentGift) -> bool| {
        let rows: Vec<_> = expected.iter().filter(|e| f(e)).collect();
        (
            rows.len() as i64,
            rows.iter().map(|e| e.3).sum::<i64>(),
            rows.iter().map(|e| score(e.2, e.3)).sum::<i64>(),
        )
    };
    let totals = |a: &crate::helpers::Answer| {
        assert_eq!(a.status, 200, "{}", a.body);
        (
            a.data()["total"].as_i64().unwrap(),
            a.data()["totalGiftCount"].as_i64().unwrap(),
            a.data()["totalScore"].as_i64().unwrap(),
        )
    };

    // uppername: a master agent covers its agents; other master agents are not seen.
    let all = gw.backoffice("getGiftRecord", gift_query(json!({}))).await;
    assert_eq!(totals(&all), matching(&|e| e.1 != OTHER_MASTER));
    let one_agent = gw
        .backoffice(
            "getGiftRecord",
            gift_query(json!({"uppername": "luna.mabumaster"})),
        )
        .await;
    assert_eq!(totals(&one_agent), matching(&|e| e.1 == MOON));

    // Paging: every record in pages of 30, newest first, each once.
    let (total, _, _) = matching(&|e| e.1 != OTHER_MASTER);
    assert!(total > 200);
    let pages = (total + 29) / 30;
    let mut seen = HashSet::new();
    let mut last_time = String::from("9999");
    for page in 1..=pages {
        let a = gw
            .backoffice(
                "getGiftRecord",
                gift_query(json!({"page": page.to_string(), "pagelimit": "30"})),
            )
            .await;
        assert_eq!(a.data()["totalPages"], pages);
        let list = a.data()["list"].as_array().unwrap();
        let expected_len = if page < pages {
            30
        } else {
            total - 30 * (pages - 1)
        };
        assert_eq!(list.len() as i64, expected_len);
        for r in list {
            assert!(seen.insert(r["recordID"].as_str().unwrap().to_owned()));
            let t = r["sentAt"].as_str().unwrap().to_owned();
            assert!(t <= last_time, "newest first");
            last_time = t;
            assert_eq!(
                r["score"],
                r["points"].as_i64().unwrap() * r["giftCount"].as_i64().unwrap()
            );
        }
    }
    assert_eq!(seen.len() as i64, total);

    // streamerAccount in its three forms.
    for (filter, streamers) in [
        ("star", vec![STAR]),
        ("star@mabu", vec![STAR]),
        ("moon@luna.mabumaster", vec![MOON]),
        ("moon@mabu", vec![]),
    ] {
        let a = gw
            .backoffice(
                "getGiftRecord",
                gift_query(json!({"streamerAccount": filter})),
            )
            .await;
        assert_eq!(
            totals(&a),
            matching(&|e| streamers.contains(&e.1) && e.1 != OTHER_MASTER),
            "{filter}"
        );
    }
    // account in its three forms: `ben` is two members at two agents.
    for (filter, members) in [
        ("ben", vec![MEMBERS[0], MEMBERS[2]]),
        ("ben@luna", vec![MEMBERS[2]]),
        ("amy@luna.mabumaster", vec![MEMBERS[1]]),
    ] {
        let a = gw
            .backoffice("getGiftRecord", gift_query(json!({"account": filter})))
            .await;
        assert_eq!(
            totals(&a),
            matching(&|e| members.contains(&e.0) && e.1 != OTHER_MASTER),
            "{filter}"
        );
    }
    // giftID, and filters combined (numbers are accepted as well as strings).
    let a = gw
        .backoffice("getGiftRecord", gift_query(json!({"giftID": 2})))
        .await;
    assert_eq!(totals(&a), matching(&|e| e.2 == 2 && e.1 != OTHER_MASTER));
    let a = gw
        .backoffice(
            "getGiftRecord",
            gift_query(json!({"giftID": "1", "account": "ben", "streamerAccount": "star"})),
        )
        .await;
    assert_eq!(
        totals(&a),
        matching(&|e| e.2 == 1 && e.0.starts_with("ben@") && e.1 == STAR)
    );
    // starttime / endtime narrow the period: a window that ended a minute ago has none.
    let now = time::OffsetDateTime::now_utc();
    let early = (now - time::Duration::minutes(1)).time();
    if early < now.time() {
        let a = gw
            .backoffice(
                "getGiftRecord",
                gift_query(json!({
                    "startDate": now.date().to_string(), "endDate": now.date().to_string(),
                    "starttime": "00:00:00",
                    "endtime": format!("{:02}:{:02}:{:02}", early.hour(), early.minute(), early.second())
                })),
            )
            .await;
        assert_eq!(totals(&a), (0, 0, 0));
    }

    // Errors name the field.
    for (extra, field) in [
        (json!({"username": ""}), "username"),
        (json!({"startDate": "2025/01/01"}), "startDate"),
        (json!({"starttime": "25:00"}), "starttime"),
        (json!({"pagelimit": "501"}), "pagelimit"),
        (json!({"page": "zero"}), "page"),
        (json!({"account": "a@b.c.d"}), "account"),
        (json!({"uppername": "a.b.c"}), "uppername"),
        (json!({"uppername": ".mabumaster"}), "uppername"),
        (
            json!({"startDate": "2025-01-01", "endDate": "2025-12-31"}),
            "93 days",
        ),
        (
            json!({"startDate": "9999-12-31", "endDate": "9999-12-31"}),
            "endDate",
        ),
    ] {
        let message = gw
            .backoffice("getGiftRecord", gift_query(extra.clone()))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        assert!(message.contains(field), "{extra}: {message}");
    }
    let mut no_key = gift_query(json!({}));
    no_key["website"] = json!("site-a");
    no_key["key"] = json!("wrong");
    gw.app
        .post_public("/api/backoffice/getGiftRecord", &no_key)
        .await
        .expect_error(401, "UNAUTHORIZED");
    // A website Postgres could not even compare (a NUL) is just as unknown, not a 503.
    no_key["website"] = json!("site\u{0}a");
    gw.app
        .post_public("/api/backoffice/getGiftRecord", &no_key)
        .await
        .expect_error(401, "UNAUTHORIZED");
}

/// An operator scoped to a master agent manages that master agent's members, agent lines and
/// rooms only; refused requests store nothing; what every master agent shares is for global
/// operators.
#[tokio::test]
async fn an_operator_scoped_to_a_master_agent_stays_within_it() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    gw.create_member(OTHER_MASTER, "streamer").await;
    let key = onair::records::operators::create(&gw.app.db, "site-b", Some("mabumaster"))
        .await
        .unwrap();
    let as_scoped = |name: &'static str, mut body: Value| {
        body["website"] = json!("site-b");
        body["key"] = json!(key);
        let app = &gw.app;
        async move {
            app.post_public(&format!("/api/backoffice/{name}"), &body)
                .await
        }
    };
    let member = |id: &str| json!({"memberID": id, "password": PASSWORD, "nickname": "N"});

    assert_eq!(as_scoped("CreateMember", member(STAR)).await.status, 200);
    let message = as_scoped("CreateMember", member("amy@kiki.othermaster"))
        .await
        .expect_error(403, "FORBIDDEN");
    assert!(message.contains("othermaster"), "{message}");
    as_scoped(
        "EditMember",
        json!({"memberID": OTHER_MASTER, "nickname": "Taken over"}),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    let untouched = onair::commands::members::find(&gw.app.db, OTHER_MASTER)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(untouched.nickname, "Taken over");
    assert!(
        onair::commands::members::find(&gw.app.db, "amy@kiki.othermaster")
            .await
            .unwrap()
            .is_none()
    );

    let records = |uppername: &str| {
        json!({"username": "ops", "uppername": uppername, "startDate": "2026-01-01",
               "endDate": "2026-01-31"})
    };
    assert_eq!(
        as_scoped("getGiftRecord", records("mabumaster"))
            .await
            .status,
        200
    );
    assert_eq!(
        as_scoped("getGiftRecord", records("mabu.mabumaster"))
            .await
            .status,
        200
    );
    as_scoped("getGiftRecord", records("othermaster"))
        .await
        .expect_error(403, "FORBIDDEN");

    assert_eq!(as_scoped("ListGifts", json!({})).await.status, 200);
    as_scoped("SetGift", json!({"giftID": 1, "name": "Rose", "points": 1}))
        .await
        .expect_error(403, "FORBIDDEN");
    as_scoped("SetMaintenance", json!({"enabled": true}))
        .await
        .expect_error(403, "FORBIDDEN");
    as_scoped("BroadcastSystemMessage", json!({"message": "hi all"}))
        .await
        .expect_error(403, "FORBIDDEN");
    as_scoped(
        "BroadcastSystemMessage",
        json!({"message": "hi", "streamerID": OTHER_MASTER}),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    assert_eq!(
        as_scoped(
            "BroadcastSystemMessage",
            json!({"message": "hi", "streamerID": STAR})
        )
        .await
        .status,
        200
    );
    // The global operator still may.
    assert_eq!(
        gw.backoffice("SetMaintenance", json!({"enabled": false}))
            .await
            .status,
        200
    );
}
