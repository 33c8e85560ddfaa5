//! `/dashboard`: the page and its assets, the credentials its JSON routes need, the figures and
//! the event feed; and the page itself driven in headless Chromium (tests/browser/dashboard.py).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::gateway_support::{Gateway, PASSWORD};
use crate::helpers::{Services, eventually, run_to_success};

const STAR: &str = "star@mabu.mabumaster";
const BEN: &str = "ben@mabu.mabumaster";

/// Debian's interpreter, which has python3-selenium (scripts/test: `onair_ensure_chromium`).
fn browser_python() -> tokio::process::Command {
    tokio::process::Command::new(
        std::env::var("ONAIR_BROWSER_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into()),
    )
}

fn repo_path(relative: &str) -> String {
    format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_its_data_needs_an_operators_credentials() {
    let services = Services::start().await;
    let gw = Gateway::start(&services).await;
    let app = &gw.app;
    let client = &app.client;

    let page = client
        .get(format!("{}/dashboard", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("/dashboard/app.js"));
    assert!(
        !html.contains("<script>") && !html.contains("style=\""),
        "nothing inline"
    );
    for (path, media) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
        ("/dashboard/vendor/uPlot.iife.min.js", "text/javascript"),
        ("/dashboard/vendor/uPlot.min.css", "text/css"),
        ("/dashboard/vendor/LICENSE", "text/plain"),
    ] {
        let asset = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        let content_type = asset.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(media), "{path}: {content_type}");
    }

    let overview = |headers: Vec<(&'static str, String)>| {
        let mut request = client.get(format!("{}/dashboard/api/overview", app.address));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = overview(vec![]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "UNAUTHORIZED");
    let (status, _) = overview(vec![("x-api-key", "wrong".into())]).await;
    assert_eq!(status, 401);
    let (status, _) = overview(vec![
        ("x-operator-website", "site-a".into()),
        ("x-operator-key", "wrong".into()),
    ])
    .await;
    assert_eq!(status, 401);
    let scoped = onair::records::operators::create(&app.db, "site-b", Some("mabumaster"))
        .await
        .unwrap();
    let (status, body) = overview(vec![
        ("x-operator-website", "site-b".into()),
        ("x-operator-key", scoped),
    ])
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "FORBIDDEN");
    let (status, by_operator) = overview(vec![
        ("x-operator-website", "site-a".into()),
        ("x-operator-key", gw.key.clone()),
    ])
    .await;
    assert_eq!(status, 200, "{by_operator}");

    // Figures: the master stage, empty rooms, every projection, this instance and its tasks.
    app.viewer_token("v1").await;
    let figures = eventually(Duration::from_secs(10), || async {
        let (_, body) = overview(vec![("x-api-key", app.api_key.clone())]).await;
        (body["totalViewers"] == 1).then_some(body)
    })
    .await;
    assert_eq!(figures["stages"][0]["isMaster"], true);
    assert_eq!(figures["stages"][0]["viewerCount"], 1);
    assert_eq!(figures["stages"][0]["draining"], false);
    assert_eq!(figures["scaleUpThreshold"], 45);
    assert_eq!(figures["maxViewersPerStage"], 50);
    assert_eq!(figures["publisherLive"], false);
    assert_eq!(figures["liveRooms"], 0);
    assert_eq!(figures["rates"]["windowSeconds"], 60);
    let projections = figures["projections"].as_array().unwrap();
    assert_eq!(projections.len(), app.state.projection_names.len());
    assert!(projections.iter().all(|p| p["checkpoint"].is_u64()));
    let instances = figures["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{figures}");
    assert_eq!(instances[0]["thisInstance"], true);
    assert!(
        figures["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "pool-follower" && t["state"] == "running"),
        "{figures}"
    );

    // The feed: refused without credentials; with them, the figures and the tail.
    let refused = client
        .get(format!("{}/dashboard/api/feed", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let mut feed = client
        .get(format!("{}/dashboard/api/feed?type=viewer", app.address))
        .header("x-api-key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    assert_eq!(feed.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !(text.contains("event: overview\n") && text.contains("onair.viewer.joined.v1")) {
            let chunk = feed.chunk().await.unwrap().expect("the feed stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no overview and viewer event in the feed: {text}"));
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|frame| frame.strip_prefix("event: event\ndata: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(!events.is_empty());
    for event in &events {
        assert!(
            event["type"].as_str().unwrap().contains("viewer"),
            "{event}"
        );
        assert!(
            event["sequence"].is_u64() && event["time"].is_string(),
            "{event}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_shows_viewers_rooms_givers_and_events_live_in_chromium() {
    let services = Services::start().await;
    let gw = Gateway::start_with(&services, |s| {
        s.stats_push_interval_ms = 200;
        s.popularity_interval_ms = 200;
    })
    .await;
    let star = gw.member(STAR, "streamer").await;
    let ben = gw.member(BEN, "member").await;
    gw.set_gift(1, "Rose", 10).await;

    let screenshots = repo_path("target/browser");
    let mut child = browser_python()
        .arg(repo_path("tests/browser/dashboard.py"))
        .arg(&gw.app.address)
        .arg(&gw.app.api_key)
        .arg(&screenshots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with selenium (scripts/test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            output.push(line.clone());
            let answer = match line.strip_prefix("STEP ") {
                Some("viewers") => {
                    for user in ["v1", "v2", "v3"] {
                        assert_eq!(gw.app.viewer_token(user).await.status, 200);
                    }
                    json!({"viewers": 3})
                }
                Some("room") => {
                    let live = gw.action("startStream", json!({}), Some(&star)).await;
                    assert_eq!(live.status, 200, "{}", live.body);
                    json!({"streamer": STAR})
                }
                Some("gift") => {
                    let sent = gw.send_gift(&ben, BEN, STAR, 1, 2).await;
                    assert_eq!(sent.status, 200, "{}", sent.body);
                    json!({"giver": "BEN"})
                }
                Some(other) => panic!("unknown step {other}"),
                None => continue,
            };
            stdin
                .write_all(format!("{answer}\n").as_bytes())
                .await
                .unwrap();
            stdin.flush().await.unwrap();
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(90), run).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .ok()
        .and_then(Result::ok);
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(Duration::from_secs(5), err.read_to_string(&mut stderr)).await;
    }
    let output = output.join("\n");
    println!("{output}\n{stderr}");
    assert!(
        finished.is_ok(),
        "the browser test ran over 90 s:\n{output}\n{stderr}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser test failed ({status:?}):\n{output}\n{stderr}"
    );
    assert!(output.lines().any(|l| l == "DONE"), "{output}");
}

const CROSS_ORIGIN_PAGE: &str = include_str!("../browser/cross_origin/index.html");
const CROSS_ORIGIN_SCRIPT: &str = include_str!("../browser/cross_origin/seeds.js");

/// Serves tests/browser/cross_origin/ on a loopback port of its own (another origin than onair's)
/// with `config.js` set from `config` when asked; returns the page's origin.
async fn serve_cross_origin_page(config: Arc<Mutex<String>>) -> String {
    use poem::endpoint::make_sync;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let file = |body: &'static str, content_type: &'static str| {
        make_sync(move |_| {
            poem::Response::builder()
                .content_type(content_type)
                .body(body)
        })
    };
    let page = poem::Route::new()
        .at("/", file(CROSS_ORIGIN_PAGE, "text/html; charset=utf-8"))
        .at("/seeds.js", file(CROSS_ORIGIN_SCRIPT, "text/javascript"))
        .at(
            "/config.js",
            make_sync(move |_| {
                poem::Response::builder()
                    .content_type("text/javascript")
                    .body(config.lock().unwrap().clone())
            }),
        );
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(page));
    origin
}

#[tokio::test]
async fn the_seeds_browser_examples_work_from_another_origin_in_chromium() {
    let config = Arc::new(Mutex::new(String::new()));
    let origin = serve_cross_origin_page(config.clone()).await;
    let services = Services::start().await;
    let cors_origin = origin.clone();
    let gw = Gateway::start_with(&services, move |s| s.cors_origins = vec![cors_origin]).await;
    let star = gw.member(STAR, "streamer").await;
    gw.member(BEN, "member").await;
    gw.set_gift(1, "Rose", 10).await;
    let live = gw.action("startStream", json!({}), Some(&star)).await;
    assert_eq!(live.status, 200, "{}", live.body);
    assert_ne!(origin, gw.app.address, "the page is of another origin");
    *config.lock().unwrap() = format!(
        "window.ONAIR = {};",
        json!({"api": gw.app.address, "apiKey": gw.app.api_key, "memberId": BEN,
               "password": PASSWORD, "streamerId": STAR, "agentId": "mabu.mabumaster",
               "giftId": 1})
    );

    let mut command = browser_python();
    command
        .arg(repo_path("tests/browser/cross_origin.py"))
        .arg(format!("{origin}/"))
        .arg(repo_path("target/browser"));
    let output = run_to_success(command, Duration::from_secs(60), "the cross-origin page").await;
    println!("{output}");
    let results: Value = serde_json::from_str(
        output
            .lines()
            .find_map(|l| l.strip_prefix("RESULTS "))
            .expect("the page's results"),
    )
    .unwrap();
    assert_eq!(results["stageApi"]["ok"], true, "{results}");
    assert_eq!(results["gateway"]["ok"], true, "{results}");
    assert!(output.lines().any(|l| l == "DONE"), "{output}");

    // What the page did happened: a seated viewer and a gift on Ben's session ranking.
    let seated = gw.app.get("/api/stats/viewers").await;
    assert_eq!(seated.data()["totalViewers"], 1, "{}", seated.body);
    eventually(Duration::from_secs(10), || async {
        let ranking = onair::read_models::rooms::ranking(&gw.app.db, STAR, "session", 1)
            .await
            .unwrap();
        ranking
            .first()
            .is_some_and(|r| r.member_id == BEN && r.score == 10)
            .then_some(())
    })
    .await;
}
