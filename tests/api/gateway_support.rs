//! Shared steps of the gateway tests: an operator, members, gifts, actions, and the notices on the
//! stream.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Answer, Services, TestApp, spawn_app_with};

pub const PASSWORD: &str = "s3cret-pass";

/// An app with an operator `site-a` whose key is `key`.
pub struct Gateway {
    pub app: TestApp,
    pub key: String,
}

impl Gateway {
    pub async fn start(services: &Services) -> Self {
        Self::start_with(services, |_| {}).await
    }

    pub async fn start_with(
        services: &Services,
        customize: impl FnOnce(&mut onair::server::config::ServeSettings),
    ) -> Self {
        let app = spawn_app_with(services, customize).await;
        let key = onair::records::operators::create(&app.db, "site-a", None)
            .await
            .expect("operator");
        Self { app, key }
    }

    /// `POST /api/action/{name}` with `query` sent as JSON text.
    pub async fn action(&self, name: &str, query: Value, authorization: Option<&str>) -> Answer {
        let mut body = json!({ "query": query.to_string() });
        if let Some(token) = authorization {
            body["Authorization"] = json!(token);
        }
        self.app
            .post_public(&format!("/api/action/{name}"), &body)
            .await
    }

    /// `POST /api/backoffice/{name}` with the operator's credentials added.
    pub async fn backoffice(&self, name: &str, mut body: Value) -> Answer {
        body["website"] = json!("site-a");
        body["key"] = json!(self.key);
        self.app
            .post_public(&format!("/api/backoffice/{name}"), &body)
            .await
    }

    pub async fn create_member(&self, member_id: &str, role: &str) {
        let nickname = member_id.split('@').next().unwrap().to_uppercase();
        let answer = self
            .backoffice(
                "CreateMember",
                json!({"memberID": member_id, "password": PASSWORD, "role": role,
                       "nickname": nickname}),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    /// Creates a member or streamer and logs them in; returns the token.
    pub async fn member(&self, member_id: &str, role: &str) -> String {
        self.create_member(member_id, role).await;
        let action = if role == "streamer" {
            "loginStreamer"
        } else {
            "loginAction"
        };
        let answer = self
            .action(
                action,
                json!({"memberID": member_id, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.data()["Authorization"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Logs an existing member in again (`loginAction`) and returns the token.
    pub async fn member_token(&self, member_id: &str) -> String {
        let answer = self
            .action(
                "loginAction",
                json!({"memberID": member_id, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.data()["Authorization"].as_str().unwrap().to_owned()
    }

    pub async fn set_gift(&self, gift_id: i64, name: &str, points: i32) {
        let answer = self
            .backoffice(
                "SetGift",
                json!({"giftID": gift_id, "name": name, "points": points,
                       "animeUrl": format!("/anime/{gift_id}.webp")}),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    pub async fn send_gift(
        &self,
        token: &str,
        member: &str,
        streamer: &str,
        gift_id: i64,
        count: i64,
    ) -> Answer {
        let agent = streamer.split('@').nth(1).unwrap();
        self.action(
            "sendGift",
            json!({"Authorization": token, "giftID": gift_id, "giftCount": count,
                   "memberID": member, "gameID": streamer, "agentID": agent}),
            None,
        )
        .await
    }

    /// Every notice on the stream so far: `(type, subject, data)`.
    pub async fn notices(&self) -> Vec<(String, String, Value)> {
        let stream = self.app.state.store.stream().await.unwrap();
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: "onair.notice.>".into(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut out = Vec::new();
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(300), messages.next()).await
        {
            let headers = m.headers.clone().unwrap();
            let ty = headers.get("ce-type").unwrap().to_string();
            out.push((
                ty,
                m.subject.to_string(),
                serde_json::from_slice(&m.payload).unwrap(),
            ));
        }
        out
    }

    /// Waits until the notices include one whose message has `type`, and returns its data.
    pub async fn notice_of_type(&self, ty: &str, count: usize) -> Vec<Value> {
        crate::helpers::eventually(Duration::from_secs(10), || async {
            let found: Vec<Value> = self
                .notices()
                .await
                .into_iter()
                .map(|(_, _, data)| data)
                .filter(|d| d["message"]["type"] == ty)
                .collect();
            (found.len() >= count).then_some(found)
        })
        .await
    }
}
