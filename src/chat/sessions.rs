//! Chat sessions end with their token (docs/security.md#chat-sessions-end-with-their-member-token).
//! A socket verified with a member token keeps the token's `exp` and version ([`TokenSession`], on
//! the socket's state). The session ends when
//!
//! - the token expires, by the injected clock: checked on every verb that needs a member
//!   ([`Sessions::member`]) and by a sweep on every Primus heartbeat ([`Sessions::sweep`]), so an
//!   idle socket is told too, within one ping interval (`ONAIR_CHAT_PING_INTERVAL_MS`);
//! - the member's tokens are revoked: a password or role change bumps the member's token version
//!   and publishes `onair.member.edited.v1` (its `passwordChanged` and new `role` tell such an
//!   edit); every chat instance follows those events from the stream ([`follow`]) and ends the
//!   sessions of the member's sockets it holds.
//!
//! An ended session is told with the system message 40302 (`The token is not valid`); the socket
//! stays in its rooms and reads as a guest (a `say` is answered 40101, as before `verify`), and the
//! rooms it had joined as a member hear its `leaveRoom`, until it verifies again.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use super::hub::{Hub, Socket};
use crate::domain::chat::{SessionEnd, Speaker, SystemCode, TokenSession};
use crate::domain::member::Role;
use crate::event_store::EventStore;
use crate::events::{Event, cloudevents};
use crate::runtime::clock::Clock;

/// The subjects of `onair.member.edited.v1` (`onair.member.<member>.edited`).
pub const MEMBER_EDITED_SUBJECTS: &str = "onair.member.*.edited";

/// The token sessions of this instance's sockets.
pub struct Sessions {
    hub: Arc<Hub>,
    store: EventStore,
    clock: Clock,
}

impl Sessions {
    /// Sessions of the sockets of `hub`; leaves are published to `store`, "now" read from
    /// `clock`.
    pub fn new(hub: Arc<Hub>, store: EventStore, clock: Clock) -> Self {
        Self { hub, store, clock }
    }

    /// Binds `member` to `socket` with the token it verified with; returns whether `room` is one
    /// whose members have not yet been told this member joined (then it now counts as told).
    pub fn start(
        &self,
        socket: &Socket,
        member: Speaker,
        session: TokenSession,
        room: &str,
    ) -> bool {
        let mut state = socket.state.lock().expect("state");
        state.member = Some(member);
        state.session = Some(session);
        state.announced.insert(room.to_owned())
    }

    /// The verified member of `socket` now, for a verb that needs one: `None` for a guest, and
    /// for a socket whose token has expired, whose session ends here (40302).
    pub async fn member(&self, socket: &Socket) -> Option<Speaker> {
        let (member, session) = {
            let state = socket.state.lock().expect("state");
            (state.member.clone(), state.session)
        };
        match session {
            Some(session) if session.expired(self.clock.now()) => {
                self.end(socket, session, SessionEnd::Expired).await;
                None
            }
            _ => member,
        }
    }

    /// Ends the session of every socket here whose token has expired (run on every heartbeat).
    pub async fn sweep(&self) {
        let now = self.clock.now();
        for socket in self.hub.sockets() {
            let session = socket.state.lock().expect("state").session;
            if let Some(session) = session
                && session.expired(now)
            {
                self.end(&socket, session, SessionEnd::Expired).await;
            }
        }
    }

    /// A member was edited: ends the sessions of the member's sockets here that the edit revoked
    /// ([`TokenSession::revoked_by_edit`]: a password change, or a role other than the token's,
    /// the edits that bump the member's token version). The edit is judged by itself: its event
    /// is published before the version's row is committed, so Postgres may not show it yet.
    pub fn member_edited(
        &self,
        member_id: &str,
        password_changed: bool,
        role: Role,
    ) -> Vec<(Arc<Socket>, TokenSession)> {
        self.hub
            .sockets_of_member(member_id)
            .into_iter()
            .filter_map(|s| {
                let session = s.state.lock().expect("state").session;
                session
                    .filter(|session| session.revoked_by_edit(password_changed, role))
                    .map(|session| (s, session))
            })
            .collect()
    }

    /// Ends `session` on `socket` (unless the socket verified again meanwhile): 40302, the socket
    /// is a guest, and the rooms told of its join hear its leave.
    pub async fn end(&self, socket: &Socket, session: TokenSession, why: SessionEnd) {
        let (member, rooms) = {
            let mut state = socket.state.lock().expect("state");
            if state.session != Some(session) {
                return;
            }
            state.session = None;
            let Some(member) = state.member.take() else {
                return;
            };
            (member, std::mem::take(&mut state.announced))
        };
        tracing::info!(socket = %socket.id, member.id = %member.member_id, reason = why.as_str(),
            "chat session ended with its token; the socket is a guest until it verifies again");
        self.hub.system(socket, SystemCode::TokenInvalid);
        for room in rooms {
            // A failure is logged by the command.
            let _ = crate::commands::chat::leave_room(
                &self.store,
                self.clock.now(),
                &room,
                member.member_id.as_str(),
                &member.nickname,
                &socket.id,
            )
            .await;
        }
    }
}

/// Follows `onair.member.edited.v1` from the stream (from now on: sessions verified earlier were
/// checked against the member's version at `verify`) into [`Sessions::member_edited`]; after a
/// failure it resumes a second later where it stopped. Runs until the task is dropped.
pub async fn follow(sessions: Arc<Sessions>) {
    let mut last = None;
    loop {
        if let Err(e) = follow_once(&sessions, &mut last).await {
            tracing::warn!(error = %e, "chat session follower stopped; restarting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow_once(sessions: &Sessions, last: &mut Option<u64>) -> anyhow::Result<()> {
    let stream = sessions.store.stream().await?;
    let deliver_policy = match *last {
        Some(sequence) => DeliverPolicy::ByStartSequence {
            start_sequence: sequence + 1,
        },
        None => DeliverPolicy::New,
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: MEMBER_EDITED_SUBJECTS.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await?;
    let progress = sessions
        .store
        .followers()
        .register("chat-sessions", vec![MEMBER_EDITED_SUBJECTS.to_owned()]);
    progress.started(last.unwrap_or(0));
    if last.is_none() {
        // From now on: what is stored already is not this follower's to apply.
        let newest = sessions
            .store
            .last_sequence_on(&[MEMBER_EDITED_SUBJECTS.to_owned()])
            .await?;
        progress.started(newest);
        *last = Some(newest);
    }
    let mut messages = consumer.messages().await?;
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = progress.stalled() => anyhow::bail!("the member edit consumer stalled"),
        };
        let Some(message) = message else { break };
        let message = message?;
        if let Ok(info) = message.info() {
            *last = Some(info.stream_sequence);
            progress.applied(info.stream_sequence, info.pending);
        }
        let Ok(envelope) = cloudevents::decode(message.headers.as_ref(), &message.payload, 0)
        else {
            continue;
        };
        if let Event::MemberEdited(e) = &envelope.event {
            let revoked =
                sessions.member_edited(&e.profile.member_id, e.password_changed, e.profile.role);
            for (socket, session) in revoked {
                sessions.end(&socket, session, SessionEnd::Revoked).await;
            }
        }
    }
    anyhow::bail!("member edit consumer ended")
}
