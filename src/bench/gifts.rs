//! `onair bench gifts`: a gift storm into one live room. A streamer and `--members` members are
//! created and logged in, a bench gift is put in the catalog (`SetGift`, gift 900001, 1 point),
//! the streamer goes live (`startStream`), a guest socket listens in the room, and the members
//! send gifts in turn (`sendGift`). Measures gifts/s and latency, and when the room's
//! `giftRank` notices arrive relative to the gifts' answers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::args::GiftsArgs;
use super::chat_socket as socket;
use super::report::{GiftFigures, Report};
use super::runner::{drive, http_client, send};
use super::scrape::Sampler;
use super::{reference, setup};

/// The catalog gift the bench sends.
const GIFT_ID: i64 = 900_001;

/// First and last answered gift.
#[derive(Default)]
struct Answered {
    first: Option<Instant>,
    last: Option<Instant>,
}

/// `onair bench gifts`.
pub async fn run(args: &GiftsArgs) -> anyhow::Result<Report> {
    let common = &args.common;
    let run = setup::run_id();
    let urls = super::base_urls(common);
    let base = urls[0].clone();
    let client = http_client(args.load.connections);
    let operator = setup::operator(common, &run).await?;
    let streamer = setup::member_id(&run, "star");
    let agent = streamer.split('@').nth(1).unwrap_or_default().to_owned();
    let members: Vec<String> = (0..args.members.max(1))
        .map(|i| setup::member_id(&run, &format!("m{i}")))
        .collect();
    if !common.quiet {
        eprintln!("creating a streamer and {} members", members.len());
    }
    setup::create_members(
        &client,
        &base,
        &operator,
        std::slice::from_ref(&streamer),
        "streamer",
    )
    .await?;
    setup::create_members(&client, &base, &operator, &members, "member").await?;
    let star_token = setup::log_in(&client, &base, std::slice::from_ref(&streamer), true)
        .await?
        .remove(0);
    let tokens = setup::log_in(&client, &base, &members, false).await?;
    let set_gift = client
        .post(format!("{base}/api/backoffice/SetGift"))
        .json(
            &json!({"website": operator.0, "key": operator.1, "giftID": GIFT_ID,
            "name": "Bench gift", "points": 1, "animeUrl": "/anime/bench.webp"}),
        )
        .send()
        .await?;
    anyhow::ensure!(
        set_gift.status().is_success(),
        "SetGift answered {}",
        set_gift.status()
    );
    // The room read model must hold the streamer before it can go live.
    let ready = Instant::now() + Duration::from_secs(30);
    loop {
        let live = setup::action(&client, &base, "startStream", json!({}), &star_token).await;
        match live {
            Ok(_) => break,
            Err(e) if e.to_string().contains("ALREADY_LIVE") => break,
            Err(e) if Instant::now() > ready => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    // A guest in the room notes when each giftRank notice arrives.
    let url = socket::primus_url(&base)?;
    let (addr, source) = socket::addresses(&url, 0, 1).await?;
    let mut ws = socket::connect(&url, addr, source, false).await?;
    socket::join(&mut ws, &setup::room_of(&streamer)?).await?;
    let notices: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let listener = {
        let notices = notices.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(t) = frame
                    && t.contains("\"context\":\"user\"")
                    && t.contains("giftRank")
                {
                    notices.lock().expect("not poisoned").push(Instant::now());
                }
            }
        })
    };

    let plan = super::plan(common, &args.load);
    let answered: Arc<Mutex<Answered>> = Arc::default();
    let sampler = Sampler::start(
        client.clone(),
        super::metrics_url(common),
        common.pids.clone(),
    )
    .await;
    let figures = {
        let (members, tokens, urls, client) = (
            Arc::new(members),
            Arc::new(tokens),
            urls.clone(),
            client.clone(),
        );
        let (streamer, agent, answered) = (streamer.clone(), agent.clone(), answered.clone());
        drive(&plan, "gifts", move |i| {
            let k = i as usize % members.len();
            let query = json!({"Authorization": tokens[k], "giftID": GIFT_ID, "giftCount": 1,
                "memberID": members[k], "gameID": streamer, "agentID": agent});
            let request = client
                .post(format!(
                    "{}/api/action/sendGift",
                    urls[i as usize % urls.len()]
                ))
                .json(&json!({"query": query.to_string()}));
            let answered = answered.clone();
            async move {
                let outcome = send(request).await;
                if outcome.status == Some(200) {
                    let now = Instant::now();
                    let mut a = answered.lock().expect("not poisoned");
                    a.first.get_or_insert(now);
                    a.last = Some(now);
                }
                outcome
            }
        })
        .await
    };
    let finished = sampler
        .finish(
            figures.last_sequence,
            Duration::from_secs_f64(common.catch_up_timeout),
        )
        .await;
    // Notices still on their way: until none came for a second (at most 10 s).
    let settle = Instant::now();
    let mut seen = notices.lock().expect("not poisoned").len();
    while settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = notices.lock().expect("not poisoned").len();
        if now == seen {
            break;
        }
        seen = now;
    }
    listener.abort();
    let _ = setup::action(&client, &base, "endStream", json!({}), &star_token).await;
    let notices = notices.lock().expect("not poisoned").clone();
    let (first, last) = {
        let a = answered.lock().expect("not poisoned");
        (a.first, a.last)
    };
    let ms = |later: Instant, earlier: Instant| {
        later.saturating_duration_since(earlier).as_secs_f64() * 1000.0
    };
    let gifts = GiftFigures {
        gift_rank_notices: notices.len() as u64,
        first_gift_rank_ms: first.and_then(|f| notices.first().map(|n| ms(*n, f))),
        last_gift_rank_ms: last.and_then(|l| notices.last().map(|n| ms(*n, l))),
    };
    let mut report = Report {
        gifts: Some(gifts),
        ..Report::for_http("gifts", &urls, figures, finished)
    };
    reference::attach(&mut report, reference::measure(common, &plan, &run).await?);
    Ok(report)
}
