//! The client gateway: every action, its errors, and the chat notices it leads to.

use std::time::Duration;

use serde_json::json;

use crate::gateway_support::{Gateway, PASSWORD};
use crate::helpers::{Services, eventually};

const STAR: &str = "star@mabu.mabumaster";
const BEN: &str = "ben@mabu.mabumaster";
const AMY: &str = "amy@mabu.mabumaster";
const ROOM: &str = "chatroomSystem-chatroom-mabu.mabumaster-star@mabu.mabumaster";

#[tokio::test]
async fn members_and_streamers_log_in_with_their_own_action() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    gw.create_member(BEN, "member").await;
    gw.create_member(STAR, "streamer").await;

    let ok = gw
        .action(
            "loginAction",
            json!({"memberID": BEN, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.data()["Authorization"].as_str().unwrap().len() > 20);
    assert_eq!(ok.data()["member"]["memberID"], BEN);
    assert_eq!(ok.data()["member"]["role"], "member");
    assert_eq!(ok.data()["member"]["accountID"], "ben");
    assert!(ok.event_sequence() > 0);

    let streamer = gw
        .action(
            "loginStreamer",
            json!({"memberID": STAR, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(streamer.status, 200, "{}", streamer.body);
    assert_eq!(streamer.data()["member"]["role"], "streamer");

    gw.action(
        "loginAction",
        json!({"memberID": STAR, "password": PASSWORD}),
        None,
    )
    .await
    .expect_error(403, "FORBIDDEN");
    gw.action(
        "loginStreamer",
        json!({"memberID": BEN, "password": PASSWORD}),
        None,
    )
    .await
    .expect_error(403, "FORBIDDEN");
    let wrong = gw
        .action(
            "loginAction",
            json!({"memberID": BEN, "password": "not-it-at-all"}),
            None,
        )
        .await
        .expect_error(401, "LOGIN_FAILED");
    let unknown = gw
        .action(
            "loginAction",
            json!({"memberID": "nobody@mabu.mabumaster", "password": PASSWORD}),
            None,
        )
        .await
        .expect_error(401, "LOGIN_FAILED");
    assert_eq!(
        wrong, unknown,
        "a failed login does not tell which part was wrong"
    );
}

#[tokio::test]
async fn an_eleventh_login_attempt_within_a_minute_is_refused_with_retry_after() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    gw.create_member(AMY, "member").await;
    gw.create_member(BEN, "member").await;
    let login = |member: &'static str, password: &'static str| {
        let gw = &gw;
        async move {
            gw.action(
                "loginAction",
                json!({"memberID": member, "password": password}),
                None,
            )
            .await
        }
    };

    for attempt in 1..=10 {
        let answer = login(AMY, "guessing-wrong").await;
        assert_eq!(answer.status, 401, "attempt {attempt}: {}", answer.body);
    }
    // Over the limit even the right password is refused, and the answer says when to retry.
    let refused = login(AMY, PASSWORD).await;
    let message = refused.expect_error(429, "TOO_MANY_REQUESTS");
    assert!(message.contains(AMY), "{message}");
    let retry_after: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );

    // The limit is per member id: another member logs in as usual.
    let other = login(BEN, PASSWORD).await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test]
async fn missing_invalid_foreign_and_expired_tokens_are_refused_and_store_nothing() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    gw.create_member(STAR, "streamer").await;
    let token = gw.member(BEN, "member").await;
    let before = gw.app.stream_messages().await;

    let follow = json!({"streamerID": STAR});
    gw.action("follow", follow.clone(), None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    gw.action("follow", follow.clone(), Some("not.a.token"))
        .await
        .expect_error(401, "TOKEN_INVALID");
    let foreign = onair::records::member_auth::MemberTokens::new(b"another secret", 3600).issue(
        BEN,
        onair::domain::member::Role::Member,
        0,
        time::OffsetDateTime::now_utc(),
    );
    gw.action("follow", follow.clone(), Some(&foreign.token))
        .await
        .expect_error(401, "TOKEN_INVALID");
    // A token signed with the server's own secret, issued two hours ago with a one-hour life.
    let (secret,): (Vec<u8>,) =
        sqlx::query_as("SELECT secret FROM auth_secrets WHERE name = 'member-token'")
            .fetch_one(&gw.app.db)
            .await
            .unwrap();
    let expired = onair::records::member_auth::MemberTokens::new(&secret, 3600).issue(
        BEN,
        onair::domain::member::Role::Member,
        0,
        time::OffsetDateTime::now_utc() - time::Duration::hours(2),
    );
    let message = gw
        .action("follow", follow.clone(), Some(&expired.token))
        .await
        .expect_error(401, "TOKEN_EXPIRED");
    assert!(message.contains("log in again"), "{message}");
    assert_eq!(gw.app.stream_messages().await, before, "nothing was stored");

    // The same token works when given as `Bearer`, and inside `query` as the seed's sendGift does.
    let ok = gw
        .action("follow", follow, Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ok = gw
        .action(
            "unfollow",
            json!({"streamerID": STAR, "Authorization": token}),
            None,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn a_short_lived_token_expires_on_the_server() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| s.member_token_ttl_secs = 1).await;
    gw.create_member(STAR, "streamer").await;
    let token = gw.member(BEN, "member").await;
    // Token expiry is judged by the application's clock: moving it past `exp` expires the token
    // at once, with no real waiting.
    gw.app.state.clock.advance(Duration::from_secs(2));
    gw.action("follow", json!({"streamerID": STAR}), Some(&token))
        .await
        .expect_error(401, "TOKEN_EXPIRED");
}

#[tokio::test]
async fn malformed_queries_and_unknown_actions_name_the_problem_and_store_nothing() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    gw.create_member(STAR, "streamer").await;
    gw.set_gift(1, "Rose", 10).await;
    let token = gw.member(BEN, "member").await;
    let before = gw.app.stream_messages().await;

    let not_json = gw
        .app
        .post_public(
            "/api/action/sendGift",
            &json!({"query": "{giftID: 1", "Authorization": token}),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(
        not_json.starts_with("query is not valid JSON"),
        "{not_json}"
    );

    let missing = gw
        .action(
            "sendGift",
            json!({"giftCount": 1, "memberID": BEN, "gameID": STAR, "agentID": "mabu.mabumaster"}),
            Some(&token),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(missing, "query.giftID is required");

    let mistyped = gw
        .action(
            "sendGift",
            json!({"giftID": "one", "giftCount": 1, "memberID": BEN, "gameID": STAR,
                   "agentID": "mabu.mabumaster"}),
            Some(&token),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(
        mistyped.starts_with("query.giftID must be a whole number"),
        "{mistyped}"
    );

    let bad_id = gw
        .action("follow", json!({"streamerID": "no-at-sign"}), Some(&token))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(bad_id.contains("streamerID"), "{bad_id}");

    let no_query = gw
        .app
        .post_public("/api/action/getRoomInfo", &json!({"Authorization": token}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(no_query, "missing required parameter: query");

    let array = gw
        .app
        .post_public("/api/action/getRoomInfo", &json!({"query": "[1,2]"}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(array.contains("JSON object"), "{array}");

    let unknown = gw
        .action("getStreamerInfo", json!({}), Some(&token))
        .await
        .expect_error(404, "UNKNOWN_ACTION");
    assert!(unknown.contains("getStreamerInfo") && unknown.contains("getRoomInfo"));

    assert_eq!(gw.app.stream_messages().await, before, "nothing was stored");
}

#[tokio::test]
async fn a_streamer_sets_room_info_goes_live_and_ends_and_the_room_hears_it() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    gw.create_member("other@mabu.mabumaster", "streamer").await;

    gw.action(
        "getRoomInfo",
        json!({"streamerID": "nobody@mabu.mabumaster"}),
        None,
    )
    .await
    .expect_error(404, "STREAMER_NOT_FOUND");
    gw.action("getRoomInfo", json!({"streamerID": BEN}), None)
        .await
        .expect_error(404, "STREAMER_NOT_FOUND");

    // Only the room's streamer sets its info.
    gw.action("setRoomInfo", json!({"title": "mine now"}), Some(&ben))
        .await
        .expect_error(403, "FORBIDDEN");
    gw.action(
        "setRoomInfo",
        json!({"streamerID": "other@mabu.mabumaster", "title": "x"}),
        Some(&star),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    let message = gw
        .action(
            "setRoomInfo",
            json!({"cover": "javascript:alert(1)"}),
            Some(&star),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(message, "query.cover must be an http or https URL");
    gw.action("setRoomInfo", json!({}), Some(&star))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let set = gw
        .action(
            "setRoomInfo",
            json!({"title": "Late show", "announcement": "Gifts welcome",
                   "cover": "https://cdn.example.com/star.png"}),
            Some(&star),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.data()["title"], "Late show");

    let live = gw.action("startStream", json!({}), Some(&star)).await;
    assert_eq!(live.status, 200, "{}", live.body);
    assert_eq!(live.data()["status"], "start");
    gw.action("startStream", json!({}), Some(&star))
        .await
        .expect_error(409, "ALREADY_LIVE");
    gw.action("startStream", json!({}), Some(&ben))
        .await
        .expect_error(403, "FORBIDDEN");

    let info = eventually(Duration::from_secs(10), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (a.data()["isLive"] == true && a.data()["title"] == "Late show").then_some(a)
    })
    .await;
    assert_eq!(info.data()["room"], ROOM);
    assert_eq!(info.data()["announcement"], "Gifts welcome");
    assert_eq!(info.data()["nickname"], "STAR");
    assert!(info.data()["liveSince"].is_string());

    let list = gw
        .action(
            "getRankingRoomList",
            json!({"page": 1, "pageLimit": 10}),
            None,
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.data()["total"], 1);
    assert_eq!(list.data()["list"][0]["streamerID"], STAR);
    gw.action("getRankingRoomList", json!({"pageLimit": 0}), None)
        .await
        .expect_error(400, "VALIDATION_ERROR");

    let done = gw.action("endStream", json!({}), Some(&star)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.data()["sessionID"], live.data()["sessionID"]);
    gw.action("endStream", json!({}), Some(&star))
        .await
        .expect_error(409, "NOT_LIVE");

    let statuses = gw.notice_of_type("streamStatus", 2).await;
    assert_eq!(statuses[0]["room"], ROOM);
    assert_eq!(
        statuses[0]["message"],
        json!({"type": "streamStatus", "streamer": STAR, "status": "start"})
    );
    assert_eq!(statuses[1]["message"]["status"], "done");
    let subs = gw.notice_of_type("sub", 2).await;
    assert_eq!(subs[0]["streamer"], STAR);
    assert_eq!(
        subs[0]["message"],
        json!({"type": "sub", "streamer": STAR, "status": "start"})
    );
    eventually(Duration::from_secs(10), || async {
        let a = gw.action("getRankingRoomList", json!({}), None).await;
        (a.data()["total"] == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn concurrent_starts_make_one_live_session() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let star = gw.member(STAR, "streamer").await;
    let answers = futures_util::future::join_all(
        (0..8).map(|_| gw.action("startStream", json!({}), Some(&star))),
    )
    .await;
    let started = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 409 && a.body["error"] == "ALREADY_LIVE")
        .count();
    assert_eq!((started, refused), (1, 7));
}

#[tokio::test]
async fn members_follow_and_unfollow_once() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;

    let follow = gw
        .action("follow", json!({"streamerID": STAR}), Some(&ben))
        .await;
    assert_eq!(follow.status, 200, "{}", follow.body);
    assert_eq!(follow.data()["following"], true);
    gw.action("follow", json!({"streamerID": STAR}), Some(&ben))
        .await
        .expect_error(409, "ALREADY_FOLLOWING");
    gw.action("follow", json!({"streamerID": STAR}), Some(&star))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    gw.action(
        "follow",
        json!({"streamerID": "ghost@mabu.mabumaster"}),
        Some(&ben),
    )
    .await
    .expect_error(404, "STREAMER_NOT_FOUND");

    let info = eventually(Duration::from_secs(10), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), Some(&ben))
            .await;
        (a.data()["followers"] == 1).then_some(a)
    })
    .await;
    assert_eq!(info.data()["isFollowing"], true);
    let follows = gw.notice_of_type("follow", 1).await;
    assert_eq!(follows[0]["room"], ROOM);
    assert_eq!(
        follows[0]["message"],
        json!({"type": "follow", "streamer": STAR, "follower": BEN})
    );

    let unfollow = gw
        .action("unfollow", json!({"streamerID": STAR}), Some(&ben))
        .await;
    assert_eq!(unfollow.status, 200, "{}", unfollow.body);
    assert_eq!(unfollow.data()["following"], false);
    gw.action("unfollow", json!({"streamerID": STAR}), Some(&ben))
        .await
        .expect_error(409, "NOT_FOLLOWING");
    eventually(Duration::from_secs(10), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), Some(&ben))
            .await;
        (a.data()["followers"] == 0 && a.data()["isFollowing"] == false).then_some(())
    })
    .await;
}

#[tokio::test]
async fn gifts_reach_the_room_as_gift_and_gift_rank_and_bad_gifts_store_nothing() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| s.popularity_interval_ms = 100).await;
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    let amy = gw.member(AMY, "member").await;
    gw.set_gift(1, "Rose", 10).await;
    gw.set_gift(2, "Rocket", 500).await;
    let live = gw.action("startStream", json!({}), Some(&star)).await;
    assert_eq!(live.status, 200);
    // The start's notices are published by the projector; let them land first.
    gw.notice_of_type("sub", 1).await;
    gw.app.wait_for_projections().await;
    let before = gw.app.stream_messages().await;

    // Refusals first: none of them stores anything.
    let as_other = gw.send_gift(&ben, AMY, STAR, 1, 1).await;
    as_other.expect_error(403, "FORBIDDEN");
    gw.send_gift(&ben, BEN, STAR, 99, 1)
        .await
        .expect_error(404, "GIFT_NOT_FOUND");
    gw.send_gift(&ben, BEN, STAR, 1, 0)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    gw.send_gift(&ben, BEN, STAR, 1, 10_000)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    gw.send_gift(&ben, BEN, "ghost@mabu.mabumaster", 1, 1)
        .await
        .expect_error(404, "STREAMER_NOT_FOUND");
    let wrong_agent = gw
        .action(
            "sendGift",
            json!({"giftID": 1, "giftCount": 1, "memberID": BEN, "gameID": STAR,
                   "agentID": "other.agent"}),
            Some(&ben),
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert!(wrong_agent.contains("agentID"), "{wrong_agent}");
    gw.backoffice(
        "SetGift",
        json!({"giftID": 3, "name": "Retired", "points": 1, "enabled": false}),
    )
    .await;
    let after_catalog = gw.app.stream_messages().await;
    gw.send_gift(&ben, BEN, STAR, 3, 1)
        .await
        .expect_error(404, "GIFT_NOT_FOUND");
    assert_eq!(
        gw.app.stream_messages().await,
        after_catalog,
        "refused gifts store nothing"
    );
    assert_eq!(
        after_catalog,
        before + 1,
        "only the catalog change was stored"
    );

    // Ben gives 3 roses (30), Amy a rocket (500): Amy overtakes.
    let sent = gw.send_gift(&ben, BEN, STAR, 1, 3).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.data()["score"], 30);
    assert_eq!(sent.data()["giftName"], "Rose");
    let sent = gw.send_gift(&amy, AMY, STAR, 2, 1).await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    let gifts = gw.notice_of_type("gift", 2).await;
    assert_eq!(gifts[0]["room"], ROOM);
    assert_eq!(
        gifts[0]["message"],
        json!({"type": "gift", "presenter": BEN, "presenterNickname": "BEN", "recipient": STAR,
               "gift": {"id": 1, "name": "Rose", "animeUrl": "/anime/1.webp", "count": 3}})
    );
    let ranks = gw.notice_of_type("giftRank", 2).await;
    assert_eq!(
        ranks[0]["message"],
        json!({"type": "giftRank", "rankState": "NEW", "rankingList": [
            {"memberId": BEN, "nickName": "BEN", "rank": 1, "state": "NEW", "rise": 0, "score": 30}
        ]})
    );
    assert_eq!(
        ranks[1]["message"],
        json!({"type": "giftRank", "rankState": "NEW", "rankingList": [
            {"memberId": AMY, "nickName": "AMY", "rank": 1, "state": "NEW", "rise": 0, "score": 500},
            {"memberId": BEN, "nickName": "BEN", "rank": 2, "state": "DOWN", "rise": 1, "score": 30}
        ]})
    );

    // The room shows the session ranking, and popularity counts the gift points.
    let info = eventually(Duration::from_secs(10), || async {
        let a = gw
            .action("getRoomInfo", json!({"streamerID": STAR}), None)
            .await;
        (a.data()["popularity"] == 530 && a.data()["giftRanking"][1]["memberId"] == BEN)
            .then_some(a)
    })
    .await;
    assert_eq!(info.data()["giftRanking"][0]["score"], 500);
    let popularity = gw.notice_of_type("popularity", 1).await;
    assert_eq!(
        popularity.last().unwrap()["message"],
        json!({"type": "popularity", "streamer": STAR, "value": 530})
    );

    // A new live session starts its ranking from nothing; all time keeps everything.
    gw.action("endStream", json!({}), Some(&star)).await;
    gw.action("startStream", json!({}), Some(&star)).await;
    let sent = gw.send_gift(&ben, BEN, STAR, 1, 1).await;
    assert_eq!(sent.status, 200);
    let ranks = gw.notice_of_type("giftRank", 3).await;
    assert_eq!(
        ranks[2]["message"]["rankingList"],
        json!([{"memberId": BEN, "nickName": "BEN", "rank": 1, "state": "NEW", "rise": 0,
                "score": 10}])
    );
    gw.app.wait_for_projections().await;
    let all_time: Vec<(String, i64)> = sqlx::query_as(
        "SELECT member_id, score FROM rm_gift_rankings
         WHERE streamer_id = $1 AND scope = 'all_time' ORDER BY score DESC",
    )
    .bind(STAR)
    .fetch_all(&gw.app.db)
    .await
    .unwrap();
    assert_eq!(all_time, vec![(AMY.to_owned(), 500), (BEN.to_owned(), 40)]);
}

/// A gift sent again with its `Idempotency-Key` (a client retrying after a lost answer) is sent
/// once and answered as the first time, within JetStream's duplicate window and after the record
/// is projected; the key is scoped to the member; another gift under the same key is refused.
#[tokio::test]
async fn a_gift_sent_again_with_its_idempotency_key_is_sent_once() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    let amy = gw.member(AMY, "member").await;
    gw.set_gift(1, "Rose", 10).await;
    let send = |token: &str, member: &str, count: u32, key: &str| {
        let body = json!({"query": json!({"Authorization": token, "giftID": 1, "giftCount": count,
            "memberID": member, "gameID": STAR, "agentID": "mabu.mabumaster"}).to_string()});
        let key = key.to_owned();
        let app = &gw.app;
        async move {
            app.post_public_with("/api/action/sendGift", &body, ("Idempotency-Key", &key))
                .await
        }
    };
    let gift_records = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM rm_gift_records")
            .fetch_one(&gw.app.db)
            .await
            .unwrap();
        n
    };

    // Four at once, then one more: one gift, five identical answers.
    let first = futures_util::future::join_all((0..4).map(|_| send(&ben, BEN, 3, "retry-1"))).await;
    let again = send(&ben, BEN, 3, "retry-1").await;
    for answer in first.iter().chain([&again]) {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.data(), first[0].data());
        assert_eq!(answer.event_sequence(), first[0].event_sequence());
    }
    assert_eq!(first[0].data()["giftCount"], 3);
    gw.app.wait_for_projections().await;
    assert_eq!(gift_records().await, 1);

    // After the record is projected, still the first answer.
    let later = send(&ben, BEN, 3, "retry-1").await;
    assert_eq!(later.status, 200);
    assert_eq!(later.data(), first[0].data());
    assert_eq!(later.event_sequence(), first[0].event_sequence());

    // The same key for another count: refused, nothing stored.
    send(&ben, BEN, 4, "retry-1")
        .await
        .expect_error(422, "IDEMPOTENCY_KEY_REUSED");
    // Another member's key of the same text is theirs; a new key is a new gift.
    assert_eq!(send(&amy, AMY, 3, "retry-1").await.status, 200);
    assert_eq!(send(&ben, BEN, 3, "retry-2").await.status, 200);
    // A key that is not 1 to 255 visible ASCII characters.
    send(&ben, BEN, 3, &"k".repeat(256))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    gw.app.wait_for_projections().await;
    assert_eq!(gift_records().await, 3);
}

/// A password or role change revokes every token issued before it, on the gateway and on the
/// chat socket; a profile change does not; a fresh login works again.
#[tokio::test]
async fn a_password_or_role_change_revokes_earlier_tokens() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    gw.member(STAR, "streamer").await;
    let before = gw.member(BEN, "member").await;
    let follow = json!({"streamerID": STAR});
    assert_eq!(
        gw.action("follow", follow.clone(), Some(&before))
            .await
            .status,
        200
    );

    // A new nickname keeps the token.
    let edit = |changes: serde_json::Value| {
        let mut body = json!({"memberID": BEN});
        body.as_object_mut()
            .unwrap()
            .extend(changes.as_object().unwrap().clone());
        gw.backoffice("EditMember", body)
    };
    assert_eq!(edit(json!({"nickname": "Benny"})).await.status, 200);
    assert_eq!(
        gw.action("unfollow", follow.clone(), Some(&before))
            .await
            .status,
        200
    );

    // A new password revokes it, here and on the chat socket.
    assert_eq!(edit(json!({"password": "a-new-pass-1"})).await.status, 200);
    gw.action("follow", follow.clone(), Some(&before))
        .await
        .expect_error(401, "TOKEN_REVOKED");
    let mut socket = crate::chat_support::ChatClient::connect(&gw.app.address, "").await;
    socket.room_add(ROOM).await;
    let refused = socket.verify(BEN, ROOM, &before).await;
    assert!(refused["error"].is_string(), "{refused}");

    // A fresh login works; a role change revokes that token too.
    let login = gw
        .action(
            "loginAction",
            json!({"memberID": BEN, "password": "a-new-pass-1"}),
            None,
        )
        .await;
    let after = login.data()["Authorization"].as_str().unwrap().to_owned();
    assert_eq!(
        gw.action("follow", follow.clone(), Some(&after))
            .await
            .status,
        200
    );
    let verified = socket.verify(BEN, ROOM, &after).await;
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(edit(json!({"role": "streamer"})).await.status, 200);
    gw.action("unfollow", follow, Some(&after))
        .await
        .expect_error(401, "TOKEN_REVOKED");
}
