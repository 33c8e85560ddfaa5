//! The committed spec (`openapi/openapi.yaml`) must equal the generated one. To update it after a
//! deliberate API change: `cargo run -- openapi > openapi/openapi.yaml`.

#[test]
fn the_committed_openapi_spec_matches_the_code() {
    let generated = onair::http::openapi_service().spec_yaml();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.yaml"))
            .expect("openapi/openapi.yaml exists");
    assert!(
        committed == generated,
        "openapi/openapi.yaml is out of date; regenerate it with `cargo run -- openapi > openapi/openapi.yaml`"
    );
}

#[test]
fn the_spec_documents_every_seed_route_with_its_errors() {
    let spec: serde_json::Value =
        serde_json::from_str(&onair::http::openapi_service().spec()).unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/api/token/publisher", "post"),
        ("/api/token/viewer", "post"),
        ("/api/viewer/heartbeat", "post"),
        ("/api/viewer/leave", "post"),
        ("/api/viewer/list/{stageArn}", "get"),
        ("/api/viewer/duration", "get"),
        ("/api/stats", "get"),
        ("/api/stats/viewers", "get"),
        ("/api/stats/stages", "get"),
        ("/api/stats/stages/{stageArn}", "get"),
        ("/api/stats/publisher", "get"),
        ("/api/stage/list", "get"),
        ("/api/stage/master/info", "get"),
        ("/api/stage/{stageArn}", "get"),
        ("/api/stage", "post"),
        ("/api/stage/{stageArn}", "put"),
        ("/api/stage/{stageArn}", "delete"),
        ("/api/ingest/eventbridge", "post"),
        ("/ws", "get"),
    ] {
        let operation = &spec["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        if path != "/health" {
            assert!(
                operation["responses"]["401"].is_object(),
                "{path} lacks 401"
            );
        }
    }
    assert!(spec["paths"]["/api/token/viewer"]["post"]["responses"]["503"].is_object());
    assert!(spec["paths"]["/api/stage/{stageArn}"]["delete"]["responses"]["403"].is_object());
    assert!(spec["paths"]["/ws"]["get"]["responses"]["101"].is_object());
}

/// The served API answers as its spec says, and accepts what its spec allows: schemathesis
/// (scripts/test installs it) sends requests generated from `/openapi.json` (the spec's examples,
/// its coverage of every boundary and fuzzed ones, valid and invalid) and runs every check: the
/// status code, content type, headers and body are the ones the spec documents, a request the
/// spec allows is not refused with a 400 (so every rule the server enforces is in the spec), one
/// it forbids is refused, a method a path does not have is a 405 with `Allow`, and a route that
/// needs a key refuses a request without one. Bounded (40 examples per operation, fixed seed).
/// `tests/api/schemathesis.toml` lists the few rules no schema can state, with their reasons.
#[tokio::test]
async fn the_served_api_answers_as_its_spec_documents() {
    let services = crate::helpers::Services::start().await;
    // Schemathesis sends thousands of requests with one key and creates stages with
    // `POST /api/stage`: no rate limit and no stage limit in its way.
    let app = crate::helpers::spawn_app_with(&services, |s| {
        s.rate_limits = false;
        s.max_stages = 100_000;
    })
    .await;
    let schemathesis = || {
        let mut command = crate::helpers::python();
        command
            .args(["-m", "schemathesis.cli", "--config-file"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/api/schemathesis.toml"
            ))
            .arg("run")
            .arg(format!("{}/openapi.json", app.address))
            .args(["--header", &format!("x-api-key: {}", app.api_key)])
            // No `--checks`: schemathesis 4 runs every check by default, and a `--checks all`
            // would override the per-operation exceptions of the config file.
            .args([
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "40",
                "--seed",
                "20261130",
                "--workers",
                "2",
                "--no-color",
                // Path parameters such as `{stageArn}` reject many generated strings (a `/`
                // cannot be in a path segment); that is the generator's limit, not the API's.
                "--suppress-health-check=filter_too_much,too_slow",
            ])
            .kill_on_drop(true);
        command
    };
    // About 2,500 requests: 1.5 min on an idle 2-core machine, 5 min on a loaded one.
    let limit = std::time::Duration::from_secs(600);
    let mut output = tokio::time::timeout(limit, schemathesis().output())
        .await
        .expect("schemathesis finishes")
        .expect("schemathesis starts (scripts/test installs it)");
    // CPython 3.11 before 3.11.8 may raise "AST constructor recursion depth mismatch" (gh-106905)
    // when hypothesis parses a source file to describe one of its lambdas: a crash of the tool's
    // interpreter, reported as a runtime error of the operation it was generating for, not an
    // answer of the API. Such a run is made once more.
    if !output.status.success()
        && String::from_utf8_lossy(&output.stdout).contains("AST constructor recursion depth")
    {
        output = tokio::time::timeout(limit, schemathesis().output())
            .await
            .expect("schemathesis finishes")
            .expect("schemathesis starts");
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "schemathesis failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
