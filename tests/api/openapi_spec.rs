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
