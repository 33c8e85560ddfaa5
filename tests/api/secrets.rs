//! No secret reaches the logs: `onair serve` runs as a real process with its own code at `trace`
//! and every dependency at `debug`, and the CLI commands run the same way. A full run (every route
//! of the spec with secrets in its headers and body, right and wrong, the happy paths that mint
//! keys and tokens, errors, the back office, chat's `verify`) leaves no API key, operator key,
//! password, member token, participant token or token-signing secret in what they logged.
//! (Secrets a command is asked to print, such as the key `onair apikey create` shows once, go to
//! standard output, not to the log on standard error.)

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::chat_support::ChatClient;
use crate::helpers::{Services, eventually};

/// Every level a user might turn on: onair's own code at `trace`, the rest at `debug`.
const VERBOSE_LOGS: &str = "debug,onair=trace";

const PASSWORD: &str = "Pa55word-never-logged";

/// An `onair` command with the test services and verbose logs.
fn onair(services: &Services) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_onair"));
    command
        .env("ONAIR_DATABASE_URL", &services.database_url)
        .env("ONAIR_NATS_URL", &services.nats.url)
        .env("ONAIR_LOG", VERBOSE_LOGS)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a CLI command (with `stdin` fed if given); returns its stdout, and appends its log to `log`.
async fn cli(services: &Services, args: &[&str], stdin: Option<&str>, log: &mut String) -> String {
    let mut command = onair(services);
    command.args(args);
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("onair runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "onair {args:?}: {stderr}");
    log.push_str(&stderr);
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Collects a child's output lines into a shared buffer.
fn collect(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut all = into.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
}

/// A key with its last character changed: a wrong key as close to the real one as can be.
fn wrong(key: &str) -> String {
    let mut wrong = key[..key.len() - 1].to_owned();
    wrong.push(if key.ends_with('a') { 'b' } else { 'a' });
    wrong
}

#[tokio::test]
async fn a_full_run_logs_no_key_password_or_token() {
    let services = Services::start().await;
    let mut cli_log = String::new();
    let api_key = cli(
        &services,
        &["apikey", "create", "--name", "ci"],
        None,
        &mut cli_log,
    )
    .await;
    assert!(api_key.starts_with("onair_"), "{api_key}");
    let operator_key = cli(
        &services,
        &["operator", "create", "--website", "site-a"],
        None,
        &mut cli_log,
    )
    .await;
    assert!(operator_key.starts_with("onair_op_"), "{operator_key}");
    cli(&services, &["apikey", "list"], None, &mut cli_log).await;
    cli(&services, &["operator", "list"], None, &mut cli_log).await;

    // The server, with a token-signing secret of its own to look for too.
    let token_secret = format!("signing-secret-{}", uuid::Uuid::new_v4().simple());
    let mut server = onair(&services)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ONAIR_MEMBER_TOKEN_SECRET", &token_secret)
        .spawn()
        .expect("onair serve runs");
    let server_log = Arc::new(Mutex::new(String::new()));
    collect(server.stdout.take().unwrap(), server_log.clone());
    collect(server.stderr.take().unwrap(), server_log.clone());
    let port: u16 = eventually(Duration::from_secs(30), || {
        let log = server_log.clone();
        async move {
            let log = log.lock().unwrap();
            let line = log.lines().find(|l| l.contains("onair is serving"))?;
            line.split("port=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        }
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let post = |path: &str, key: Option<&str>, body: Value| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Happy paths that mint the secrets.
    let (status, publisher) = post(
        "/api/token/publisher",
        Some(&api_key),
        json!({"userId": "broadcaster-1"}),
    )
    .await;
    assert_eq!(status, 200, "{publisher}");
    let publisher_token = publisher["data"]["token"].as_str().unwrap().to_owned();
    let (status, viewer) = post(
        "/api/token/viewer",
        Some(&api_key),
        json!({"userId": "v-1"}),
    )
    .await;
    assert_eq!(status, 200, "{viewer}");
    let viewer_token = viewer["data"]["token"].as_str().unwrap().to_owned();
    let stage_arn = viewer["data"]["stageArn"].as_str().unwrap().to_owned();
    let (status, _) = post(
        "/api/viewer/heartbeat",
        Some(&api_key),
        json!({"userId": "v-1", "stageArn": stage_arn}),
    )
    .await;
    assert_eq!(status, 200);

    // A member through the back office (right key), one through the CLI (password on stdin).
    let backoffice = |name: &str, key: &str, mut body: Value| {
        body["website"] = json!("site-a");
        body["key"] = json!(key);
        post(&format!("/api/backoffice/{name}"), None, body)
    };
    let (status, created) = backoffice(
        "CreateMember",
        &operator_key,
        json!({"memberID": "ann@a1.m1", "password": PASSWORD, "role": "member", "nickname": "Ann"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (status, _) = backoffice(
        "CreateMember",
        &wrong(&operator_key),
        json!({"memberID": "bob@a1.m1", "password": PASSWORD, "role": "member", "nickname": "Bob"}),
    )
    .await;
    assert_eq!(status, 401);
    cli(
        &services,
        &[
            "member",
            "create",
            "--member-id",
            "sam@a1.m1",
            "--nickname",
            "Sam",
            "--role",
            "streamer",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
        &mut cli_log,
    )
    .await;
    let login = |action: &str, member: &str, password: &str| {
        post(
            &format!("/api/action/{action}"),
            None,
            json!({"query": json!({"memberID": member, "password": password}).to_string()}),
        )
    };
    let member_token = eventually(Duration::from_secs(10), || async {
        let (status, answer) = login("loginAction", "ann@a1.m1", PASSWORD).await;
        (status == 200).then(|| answer["data"]["Authorization"].as_str().unwrap().to_owned())
    })
    .await;
    let streamer_token = eventually(Duration::from_secs(10), || async {
        let (status, answer) = login("loginStreamer", "sam@a1.m1", PASSWORD).await;
        (status == 200).then(|| answer["data"]["Authorization"].as_str().unwrap().to_owned())
    })
    .await;
    let (status, _) = login("loginAction", "ann@a1.m1", "wrong-password-1").await;
    assert_ne!(status, 200);
    let (status, _) = post(
        "/api/action/follow",
        None,
        json!({"Authorization": member_token, "query": json!({"Authorization": member_token, "memberID": "ann@a1.m1", "gameID": "sam@a1.m1"}).to_string()}),
    )
    .await;
    assert!(status < 500);

    // Chat: verify with the member token, and with a broken one.
    let mut chat = ChatClient::connect(&base, "").await;
    chat.room_add("sam@a1.m1").await;
    let verified = chat.verify("ann@a1.m1", "sam@a1.m1", &member_token).await;
    assert_eq!(verified["verified"], true, "{verified}");
    chat.verify("ann@a1.m1", "sam@a1.m1", &wrong(&member_token))
        .await;

    // Every route of the spec, with every secret in its headers and body, with the right API key
    // and a wrong one: most answers are validation or authentication errors.
    let spec: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let everything = json!({
        "userId": "v-1", "stageArn": stage_arn, "memberID": "ann@a1.m1", "website": "site-a",
        "key": operator_key, "password": PASSWORD, "Authorization": member_token,
        "token": viewer_token, "publisherToken": publisher_token,
        "query": json!({"Authorization": streamer_token, "password": PASSWORD, "memberID": "ann@a1.m1"}).to_string(),
    });
    let mut calls = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let path = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for key in [api_key.clone(), wrong(&api_key)] {
                for body in [
                    everything.clone(),
                    json!(format!("{PASSWORD} {member_token}")),
                ] {
                    let answer = http
                        .request(method.clone(), format!("{base}{path}?password={PASSWORD}"))
                        .header("x-api-key", &key)
                        .header("authorization", format!("Bearer {member_token}"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        answer.status().as_u16() < 500,
                        "{method} {path}: {}",
                        answer.status()
                    );
                    calls += 1;
                }
            }
        }
    }
    assert!(calls > 100, "{calls} calls");

    // Let the background work of all that (projections, reactors) be logged, then stop.
    eventually(Duration::from_secs(10), || async {
        let (status, _) = login("loginAction", "ann@a1.m1", PASSWORD).await;
        (status == 200).then_some(())
    })
    .await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();

    let server_log = server_log.lock().unwrap().clone();
    assert!(
        server_log.contains(" DEBUG "),
        "the server logged at debug level"
    );
    assert!(
        server_log.lines().count() > 100,
        "{} log lines",
        server_log.lines().count()
    );
    let secrets = [
        ("API key", api_key.as_str()),
        ("wrong API key", &wrong(&api_key)),
        ("operator key", &operator_key),
        ("wrong operator key", &wrong(&operator_key)),
        ("password", PASSWORD),
        ("member token", &member_token),
        ("streamer token", &streamer_token),
        ("publisher token", &publisher_token),
        ("viewer token", &viewer_token),
        ("token-signing secret", &token_secret),
    ];
    for (log_name, log) in [("server", &server_log), ("CLI", &cli_log)] {
        for (name, secret) in secrets {
            // The whole secret, and for tokens their signature (the part that grants access).
            let signature = secret.rsplit('.').next().unwrap();
            for needle in [secret, signature] {
                if let Some(at) = log.find(needle) {
                    let line = log[..at].rsplit('\n').next().unwrap_or("");
                    panic!("the {log_name} log holds the {name}: ...{line}<here>");
                }
            }
        }
    }
}
