//! What the scenarios need on the target before the load: an API key, a back-office operator,
//! members and their tokens. Members go through the public API (back-office `CreateMember`,
//! `loginAction` / `loginStreamer`); the operator records (API key, operator) come from flags,
//! or are created in the target's PostgreSQL with `--database-url`.

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::args::CommonArgs;

/// The password of every member the bench creates.
pub const PASSWORD: &str = "bench-password";

/// A short random id naming this run's records (`bench-<run>-…`).
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The API key: `--api-key`, or a new one (`bench-<run>`, no practical rate limit) created
/// with `--database-url`.
pub async fn api_key(common: &CommonArgs, run: &str) -> anyhow::Result<String> {
    if let Some(key) = &common.api_key {
        return Ok(key.clone());
    }
    let Some(url) = &common.database_url else {
        anyhow::bail!(
            "an API key is needed: pass --api-key (create one with `onair apikey create --name \
             bench --rate-limit-per-minute 100000000`) or --database-url to create one"
        );
    };
    let db = crate::runtime::postgres::connect_postgres(url).await?;
    let (_, key) = crate::records::api_keys::create(&db, &format!("bench-{run}"), i32::MAX).await?;
    db.close().await;
    Ok(key)
}

/// A back-office operator's `(website, key)`: the flags, or a new operator `bench-<run>`
/// created with `--database-url`.
pub async fn operator(common: &CommonArgs, run: &str) -> anyhow::Result<(String, String)> {
    if let (Some(website), Some(key)) = (&common.operator_website, &common.operator_key) {
        return Ok((website.clone(), key.clone()));
    }
    let Some(url) = &common.database_url else {
        anyhow::bail!(
            "a back-office operator is needed to create members: pass --operator-website and \
             --operator-key (create one with `onair operator create --website bench`) or \
             --database-url to create one"
        );
    };
    let db = crate::runtime::postgres::connect_postgres(url).await?;
    let website = format!("bench-{run}");
    let key = crate::records::operators::create(&db, &website, None).await?;
    db.close().await;
    Ok((website, key))
}

/// `bench-<run>-<name>@bench.agent`.
pub fn member_id(run: &str, name: &str) -> String {
    format!("bench-{run}-{name}@bench.agent")
}

/// The chat room of a streamer (`chatroomSystem-chatroom-{agent}-{streamer}`).
pub fn room_of(streamer: &str) -> anyhow::Result<String> {
    crate::domain::member::room_of(streamer).context("not a member id")
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = client.post(url).json(body).send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}

/// Creates members (`role`: `member` or `streamer`) with the back-office `CreateMember`, 16 at a
/// time.
pub async fn create_members(
    client: &reqwest::Client,
    base: &str,
    operator: &(String, String),
    ids: &[String],
    role: &str,
) -> anyhow::Result<()> {
    let url = format!("{base}/api/backoffice/CreateMember");
    futures_util::stream::iter(ids.iter().enumerate())
        .map(|(n, id)| {
            let body = json!({"website": operator.0, "key": operator.1, "memberID": id,
                "password": PASSWORD, "role": role, "nickname": format!("bench{n}")});
            let (client, url) = (client.clone(), url.clone());
            async move { post(&client, &url, &body).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .context("creating members")?;
    Ok(())
}

/// Logs members in (`loginAction`, or `loginStreamer`), 8 at a time; their tokens in order.
pub async fn log_in(
    client: &reqwest::Client,
    base: &str,
    ids: &[String],
    streamer: bool,
) -> anyhow::Result<Vec<String>> {
    let action = if streamer {
        "loginStreamer"
    } else {
        "loginAction"
    };
    let url = format!("{base}/api/action/{action}");
    futures_util::stream::iter(ids.iter())
        .map(|id| {
            let query = json!({"memberID": id, "password": PASSWORD}).to_string();
            let (client, url) = (client.clone(), url.clone());
            async move {
                let answer = post(&client, &url, &json!({ "query": query })).await?;
                answer["data"]["Authorization"]
                    .as_str()
                    .map(str::to_owned)
                    .context("login answered no token")
            }
        })
        .buffered(8)
        .try_collect()
        .await
}

/// `POST /api/action/{name}` with `query` as JSON text and a token; the answer's body.
pub async fn action(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    query: Value,
    token: &str,
) -> anyhow::Result<Value> {
    post(
        client,
        &format!("{base}/api/action/{name}"),
        &json!({"query": query.to_string(), "Authorization": token}),
    )
    .await
}
