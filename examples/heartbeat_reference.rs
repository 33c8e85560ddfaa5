//! The reference a heartbeat ingest is measured against (issue 12): a plain poem handler that
//! parses the heartbeat body, publishes it to JetStream with a `Nats-Msg-Id` and answers after the
//! ack; nothing else. Run it next to `onair serve` on the same NATS and load both with the same
//! generator (e.g. `wrk -t2 -c64 -s bench/heartbeat.lua`): the ratio of the two is the figure.
//!
//! ```text
//! cargo run --release --example heartbeat_reference -- --nats-url nats://127.0.0.1:4222 \
//!   --listen 127.0.0.1:3900
//! ```
//!
//! It publishes to its own stream `HEARTBEAT_REFERENCE` (subjects `reference.>`, file storage,
//! as onair's), so onair's projectors never see its messages.

use std::net::SocketAddr;

use clap::Parser;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, Route, handler, post};
use serde::Deserialize;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    nats_url: String,
    #[arg(long, default_value = "127.0.0.1:3900")]
    listen: SocketAddr,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Heartbeat {
    user_id: String,
    stage_arn: String,
}

#[handler]
async fn heartbeat(
    js: Data<&async_nats::jetstream::Context>,
    body: Json<Heartbeat>,
) -> poem::Result<poem::web::Json<serde_json::Value>> {
    let body = body.0;
    let payload = serde_json::to_vec(&serde_json::json!({
        "userId": body.user_id,
        "stageArn": body.stage_arn,
    }))
    .expect("json");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
    let ack = js
        .publish_with_headers(
            format!("reference.{}.heartbeat", body.user_id),
            headers,
            payload.into(),
        )
        .await
        .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::SERVICE_UNAVAILABLE))?
        .await
        .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::SERVICE_UNAVAILABLE))?;
    Ok(poem::web::Json(serde_json::json!({
        "success": true,
        "data": {"userId": body.user_id, "stageArn": body.stage_arn, "sequence": ack.sequence},
    })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let js = async_nats::jetstream::new(async_nats::connect(&args.nats_url).await?);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "HEARTBEAT_REFERENCE".into(),
        subjects: vec!["reference.>".into()],
        max_messages: 5_000_000,
        ..Default::default()
    })
    .await?;
    let app = Route::new()
        .at("/api/viewer/heartbeat", post(heartbeat))
        .data(js);
    poem::Server::new(poem::listener::TcpListener::bind(args.listen))
        .run(app)
        .await?;
    Ok(())
}
