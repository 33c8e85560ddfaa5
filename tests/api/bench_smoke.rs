//! `onair bench` smoke: every scenario runs for a moment with tiny numbers against a spawned
//! app and gives sane figures, so the tool never rots. (Its figures are not asserted: speed is
//! measured by running the bench, never by tests.)

use clap::Parser;
use onair::bench::{self, Scenario};
use serde_json::Value;

use crate::helpers::{Services, spawn_app_with};

#[derive(Parser)]
struct Bench {
    #[command(subcommand)]
    scenario: Scenario,
}

/// Runs `onair bench <args>` in-process; the report as JSON.
async fn bench(args: &[&str]) -> Value {
    let scenario = Bench::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
        .expect("the arguments parse")
        .scenario;
    let report = bench::run(&scenario)
        .await
        .unwrap_or_else(|e| panic!("bench {args:?} failed: {e:#}"));
    assert_eq!(report.errors(), 0, "{}", report.table());
    assert!(!report.table().is_empty());
    serde_json::from_str(&serde_json::to_string(&report).unwrap()).expect("the JSON parses")
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bench_scenario_completes_with_sane_figures() {
    let services = Services::start().await;
    let app = spawn_app_with(&services, |s| {
        // The bench's sockets all come from 127.0.0.1 and its senders say fast.
        s.chat_messages_per_minute = 1_000_000;
        s.ws_max_sockets_per_ip = 10_000;
        s.ws_new_sockets_per_ip_per_second = 10_000;
        s.ws_frames_per_second = 10_000;
        s.ws_frames_burst = 10_000;
    })
    .await;
    let common = [
        "--url",
        &app.address,
        "--database-url",
        &services.database_url,
        "--nats-url",
        &services.nats.url,
        "--duration",
        "2",
        "--catch-up-timeout",
        "15",
        "--quiet",
    ];
    let with = |scenario: &str, extra: &[&'static str]| -> Vec<String> {
        std::iter::once(scenario)
            .chain(common.iter().copied())
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        bench(&refs).await
    };

    for (scenario, extra) in [
        (
            "heartbeats",
            &["--viewers", "5", "-c", "4", "--count", "300"][..],
        ),
        ("tokens", &["--users", "5", "-c", "4", "--count", "100"][..]),
        ("gifts", &["--members", "3", "-c", "2", "--count", "60"][..]),
    ] {
        let report = run(with(scenario, extra)).await;
        let http = &report["http"];
        assert!(count(&http["requests"]) > 0, "{report}");
        assert!(count(&http["answers"]["200"]) > 0, "{report}");
        assert!(
            http["latency"]["p99_ms"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(count(&http["last_sequence"]) > 0, "{report}");
        assert!(count(&report["reference"]["requests"]) > 0, "{report}");
        assert!(
            report["ratio_to_reference"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        let projections = &report["projections"];
        assert!(count(&projections["samples"]) > 0, "{report}");
        assert!(projections["catch_up_secs"].is_number(), "{report}");
        if cfg!(target_os = "linux") {
            assert!(
                report["server"]["rss_after_mib"].as_f64().unwrap() > 1.0,
                "{report}"
            );
            // CPU per request of both sides (at 10 ms tick resolution a short run may read 0).
            assert!(
                report["cpu_per_request_us"].as_f64().unwrap() >= 0.0,
                "{report}"
            );
            assert!(
                report["reference_cpu_per_request_us"].as_f64().unwrap() >= 0.0,
                "{report}"
            );
        }
        if scenario == "gifts" {
            assert!(count(&report["gifts"]["gift_rank_notices"]) > 0, "{report}");
        }
    }

    let reference = run(with("reference", &["-c", "4", "--count", "200"])).await;
    assert_eq!(
        count(&reference["http"]["answers"]["200"]),
        200,
        "{reference}"
    );

    // A fixed rate with a slow socket, then one sender as fast as it is answered.
    for extra in [
        &[
            "--listeners",
            "4",
            "--senders",
            "2",
            "--rate",
            "40",
            "--slow",
            "1",
        ][..],
        &["--listeners", "3", "--rate", "0", "--count", "100"][..],
    ] {
        let report = run(with("chat", extra)).await;
        let chat = &report["chat"];
        let accepted = count(&chat["says_accepted"]);
        assert!(accepted > 0, "{report}");
        assert_eq!(
            count(&chat["deliveries"]),
            accepted * count(&chat["listeners"]),
            "{report}"
        );
        assert!(
            chat["say_to_delivery"]["p50_ms"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            chat["deliveries_per_sec"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }

    // `--split`: the sender on the first instance, the listeners on a second one; every
    // delivery crosses between them.
    let other = spawn_app_with(&services, |s| {
        s.chat_messages_per_minute = 1_000_000;
        s.ws_max_sockets_per_ip = 10_000;
        s.ws_new_sockets_per_ip_per_second = 10_000;
    })
    .await;
    let mut args = with("chat", &["--listeners", "3", "--rate", "20", "--split"]);
    args.extend(["--url".to_owned(), other.address.clone()]);
    let report = run(args).await;
    let chat = &report["chat"];
    let accepted = count(&chat["says_accepted"]);
    assert!(accepted > 0, "{report}");
    assert_eq!(count(&chat["deliveries"]), accepted * 3, "{report}");

    // One room shared by two bench runs (as processes under the open-file limit share a big
    // room): one only listens (`--senders 0`) on the second instance, the other only says
    // (`--listeners 0`) on the first; with the same `--room` and `--marker`, the listening run
    // counts every say the other run had accepted, on each of its listeners.
    let shared = [
        "--room",
        "chatroomSystem-chatroom-bench.agent-smoke@bench.agent",
        "--marker",
        "benchsmokeroom",
    ];
    let listening: Vec<String> = [
        "chat",
        "--url",
        &other.address,
        "--listeners",
        "3",
        "--senders",
        "0",
        "--duration",
        "5",
        "--quiet",
    ]
    .iter()
    .chain(&shared)
    .map(|a| a.to_string())
    .collect();
    let mut saying = with("chat", &["--listeners", "0", "--rate", "10"]);
    saying.extend(shared.iter().map(|a| a.to_string()));
    let (heard, said) = tokio::join!(run(listening), async {
        // The listeners join first.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        run(saying).await
    });
    let accepted = count(&said["chat"]["says_accepted"]);
    assert!(accepted > 0, "{said}");
    assert_eq!(count(&heard["chat"]["deliveries"]), accepted * 3, "{heard}");
    assert!(
        heard["chat"]["say_to_delivery"]["p50_ms"].as_f64().unwrap() < 1_000.0,
        "latency from the sender's wall clock: {heard}"
    );
}
