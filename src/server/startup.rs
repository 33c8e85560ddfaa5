//! Builds the application from settings and runs it: the HTTP server, the stage pool follower, the
//! projectors and the reactors, in one process by default (docs/design.md#scale-path: one `onair
//! serve` runs every role; `--roles` splits them).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use sqlx::PgPool;

use crate::app::{AppState, PublicKeyInfo};
use crate::commands::pool::{PoolService, PoolServiceSettings};
use crate::event_store::EventStore;
use crate::ivs::arn::public_key_arn;
use crate::ivs::aws::{AwsProviderSettings, AwsStageProvider};
use crate::ivs::local::LocalStageProvider;
use crate::ivs::token::TokenSigner;
use crate::ivs::{StageProvider, keys};
use crate::projections::{self, ProjectorRunner};
use crate::reactors;
use crate::runtime::clock::Clock;
use crate::runtime::connection_limits::GuardedAcceptor;
use crate::runtime::postgres::{connect_postgres, migrate};
use crate::runtime::supervisor::{Restart, Supervisor, TaskHandle};
use crate::server::config::{ServeRole, ServeSettings, StageProviderKind};

/// A built, bound, not yet serving application.
pub struct Application {
    acceptor: GuardedAcceptor,
    port: u16,
    state: Arc<AppState>,
    settings: ServeSettings,
    supervisor: Supervisor,
    projectors: ProjectorControl,
}

/// Starts and stops this instance's projectors.
#[derive(Clone)]
pub struct ProjectorControl {
    db: PgPool,
    store: EventStore,
    supervisor: Supervisor,
    handles: Arc<Mutex<Vec<TaskHandle>>>,
    leadership: projections::Leadership,
    linger: Duration,
}

impl ProjectorControl {
    /// Starts one runner per projection (they wait for leadership if another instance holds it),
    /// each a supervised task `projector-<name>`, restarted if it stops.
    pub fn start(&self) {
        let mut handles = self.handles.lock().expect("projector handles");
        for projection in projections::all() {
            let (db, store) = (self.db.clone(), self.store.clone());
            let leadership = self.leadership.clone();
            let linger = self.linger;
            let name = format!("projector-{}", projection.name());
            handles.push(
                self.supervisor
                    .spawn(name, Restart::Always, false, move || {
                        ProjectorRunner::new(db.clone(), store.clone(), projection.clone())
                            .with_leadership(leadership.clone())
                            .with_linger(linger)
                            .run()
                    }),
            );
        }
    }

    /// Stops them at once, as a crash would: an open batch is rolled back, nothing is acknowledged.
    pub fn kill(&self) {
        for handle in self.handles.lock().expect("projector handles").drain(..) {
            handle.abort();
        }
    }

    /// The projections this instance applies now (holds the lock of), by name.
    pub fn leading(&self) -> Vec<&'static str> {
        self.leadership.projections()
    }
}

impl Application {
    /// Connects to Postgres and NATS, applies migrations and the stream config, loads the signing
    /// key, catches the stage pool up with the stream, creates the master stage on first start,
    /// starts the projectors and the expiry reactor, and binds the listener (port 0 picks one).
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`] with the clock the instance reads "now" from (tests pass one they
    /// move forward).
    pub async fn build_with_clock(settings: ServeSettings, clock: Clock) -> anyhow::Result<Self> {
        crate::runtime::metrics::handle();
        let db = connect_postgres(&settings.connection.database_url).await?;
        migrate(&db).await?;
        let store = EventStore::connect(&settings.connection.nats_url, "/onair/stage-api")
            .await?
            .with_publish_retry_window(Duration::from_millis(settings.publish_retry_ms));
        store
            .apply_stream_config(settings.connection.stream_replicas)
            .await?;

        let signing_key = keys::load_or_create(&db).await?;
        let kid = match (&settings.stage_provider, &settings.ivs_public_key_arn) {
            (StageProviderKind::Aws, Some(arn)) => arn.clone(),
            _ => public_key_arn(
                &settings.ivs_region,
                &settings.ivs_account_id,
                &signing_key.key_id,
            ),
        };
        let signer = TokenSigner::new(
            &signing_key.pair.private_key_pem,
            kid.clone(),
            settings.ivs_events_url.clone(),
            settings.ivs_whip_url.clone(),
        )?;
        let provider: Arc<dyn StageProvider> = match settings.stage_provider {
            StageProviderKind::Local => Arc::new(LocalStageProvider::new(
                settings.ivs_region.clone(),
                settings.ivs_account_id.clone(),
                signer,
            )),
            StageProviderKind::Aws => Arc::new(
                AwsStageProvider::from_settings(
                    &AwsProviderSettings {
                        region: settings.ivs_region.clone(),
                        endpoint_url: settings.aws_endpoint_url.clone(),
                        max_attempts: settings.aws_max_attempts,
                        credentials: None,
                    },
                    settings.ivs_public_key_arn.is_some().then_some(signer),
                )
                .await,
            ),
        };

        // Every background task runs under the supervisor (src/runtime/supervisor.rs): the loops
        // are restarted with a backoff; chat's tasks, started by the chat service, cannot be and
        // stop the instance when they end. Only the pool follower and chat's tasks are essential
        // to `/health`: without them this instance decides on a stale pool or serves no chat.
        let supervisor = Supervisor::new();
        let pool = PoolService::start(
            store.clone(),
            provider.clone(),
            PoolServiceSettings {
                limits: settings.pool_limits(),
                publisher_token_seconds: settings.publisher_token_ttl_secs,
                viewer_token_seconds: settings.viewer_token_ttl_secs,
                environment: settings.environment.clone(),
                heartbeat_lookback: settings.heartbeat_timeout() * 2 + Duration::from_secs(5),
                heartbeat_batch: settings.heartbeat_batch(),
                decision_deadline: Duration::from_millis(settings.seat_decision_deadline_ms),
                batch_seats: settings.seat_batches,
            },
            clock.clone(),
            &supervisor,
        )
        .await?;
        let adopted = pool.adopt_managed_stages().await?;
        if adopted > 0 {
            tracing::info!(
                adopted,
                "stages tagged ManagedBy=onair adopted from the provider"
            );
        }
        pool.ensure_master_stage().await?;
        let run_reactors = settings.has_role(ServeRole::Reactors);
        if run_reactors {
            let (p, interval, delete_orphans) = (
                pool.clone(),
                Duration::from_secs(settings.reconcile_interval_secs.max(1)),
                settings.reconcile_delete_orphans,
            );
            supervisor.spawn("reactor-reconciler", Restart::Always, false, move || {
                reactors::reconciler::run(p.clone(), interval, delete_orphans)
            });
            let (p, timeout, interval) = (
                pool.clone(),
                settings.heartbeat_timeout(),
                settings.expiry_check_interval(),
            );
            supervisor.spawn("reactor-expiry", Restart::Always, false, move || {
                reactors::expiry::run(p.clone(), timeout, interval)
            });
            let (p, policy, interval) = (
                pool.clone(),
                settings.scale_down_policy(),
                Duration::from_millis(settings.scale_down_check_interval_ms),
            );
            supervisor.spawn("reactor-scale-down", Restart::Always, false, move || {
                reactors::scale_down::run(p.clone(), policy, interval)
            });
        }

        metrics::gauge!("onair_stream_replicas_expected")
            .set(settings.connection.stream_replicas as f64);
        let watched = store.clone();
        supervisor.spawn("follower-watchdog", Restart::Always, false, move || {
            crate::event_store::followers::watch(watched.followers().clone(), watched.clone())
        });
        if settings.memory_trim_interval_ms > 0 {
            let interval = Duration::from_millis(settings.memory_trim_interval_ms);
            supervisor.spawn("memory-trim", Restart::Always, false, move || {
                crate::runtime::memory::trim_periodically(interval)
            });
        }
        let (feed_tx, stats_feed) = tokio::sync::watch::channel(None);
        let (feed_tx, feed_db, feed_clock, interval) = (
            Arc::new(feed_tx),
            db.clone(),
            clock.clone(),
            Duration::from_millis(settings.stats_push_interval_ms),
        );
        supervisor.spawn("stats-feed", Restart::Always, false, move || {
            crate::read_models::stats_feed::run_feed(
                feed_db.clone(),
                feed_clock.clone(),
                interval,
                feed_tx.clone(),
            )
        });

        let token_secret = crate::records::member_auth::load_or_create_secret(
            &db,
            settings.member_token_secret.as_ref().map(|s| s.0.as_str()),
        )
        .await?;
        let dummy_password_hash =
            crate::commands::members::hash_password(crate::ivs::arn::random_id(24))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        if run_reactors {
            let (db, store, clock, interval) = (
                db.clone(),
                store.clone(),
                clock.clone(),
                Duration::from_millis(settings.popularity_interval_ms),
            );
            supervisor.spawn("reactor-popularity", Restart::Always, false, move || {
                reactors::popularity::run(db.clone(), store.clone(), clock.clone(), interval)
            });
        }

        anyhow::ensure!(
            settings.chat_client_path.starts_with('/') && !settings.chat_client_path.contains('*'),
            "ONAIR_CHAT_CLIENT_PATH must be a path starting with '/', got {:?}",
            settings.chat_client_path
        );
        let member_tokens = crate::records::member_auth::MemberTokens::new(
            &token_secret,
            settings.member_token_ttl_secs,
        );
        let chat = Arc::new(crate::chat::ChatService::new(
            store.clone(),
            db.clone(),
            member_tokens.clone(),
            settings.chat_settings(),
            clock.clone(),
        ));
        if settings.has_role(ServeRole::Api) {
            // Announced before any socket is served, so the presence reactor never takes this
            // instance's first joins for a dead instance's.
            chat.announce_instance().await?;
            for (i, task) in chat.start().into_iter().enumerate() {
                supervisor.watch(format!("chat-{i}"), true, task);
            }
        }
        if run_reactors {
            let (db, store, timeout) = (
                db.clone(),
                store.clone(),
                settings.chat_settings().instance_timeout,
            );
            let presence_clock = clock.clone();
            supervisor.spawn("reactor-presence", Restart::Always, false, move || {
                reactors::presence::run(db.clone(), store.clone(), timeout, presence_clock.clone())
            });
        }
        if run_reactors {
            // Publishes the transactional outbox: the projectors' chat notices, and member events
            // a crash left behind (src/reactors/outbox_relay.rs).
            let (db, store, relay_clock) = (db.clone(), store.clone(), clock.clone());
            supervisor.spawn("reactor-outbox-relay", Restart::Always, false, move || {
                reactors::outbox_relay::run(db.clone(), store.clone(), relay_clock.clone())
            });
        }

        let socket_limits = crate::runtime::socket_limits::SocketLimits::new(
            settings.socket_limits(),
            clock.clone(),
        );
        let leadership = projections::Leadership::default();
        let state = Arc::new(AppState {
            projection_leaders: leadership.clone(),
            stream_replicas: settings.connection.stream_replicas,
            clock,
            min_sequence_wait: Duration::from_millis(settings.min_sequence_wait_ms),
            request_deadline: Duration::from_millis(settings.request_deadline_ms),
            chat,
            member_tokens,
            dummy_password_hash,
            stats_feed,
            db,
            store,
            pool,
            provider_name: provider.name(),
            provider: provider.clone(),
            public_key: PublicKeyInfo {
                kid,
                pem: signing_key.pair.public_key_pem,
            },
            started_at: Instant::now(),
            projection_names: projections::all().iter().map(|p| p.name()).collect(),
            api_keys: crate::records::api_keys::VerifiedKeyCache::new(Duration::from_secs(
                settings.api_key_cache_secs,
            )),
            rate_limiter: crate::records::rate_limit::RateLimiter::with_lease(
                settings.rate_limits,
                settings.rate_limit_lease(),
            ),
            supervisor: supervisor.clone(),
            socket_limits,
        });

        let acceptor = GuardedAcceptor::new(
            TcpListener::bind(settings.listen).into_acceptor().await?,
            settings.connection_limits(),
        );
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .ok_or_else(|| anyhow::anyhow!("the listener has no TCP address"))?;

        let projectors = ProjectorControl {
            db: state.db.clone(),
            store: state.store.clone(),
            supervisor: supervisor.clone(),
            handles: Arc::new(Mutex::new(Vec::new())),
            leadership,
            linger: Duration::from_millis(settings.projection_linger_ms),
        };
        if settings.has_role(ServeRole::Projectors) {
            projectors.start();
        }
        if settings.has_role(ServeRole::Lake) {
            let options = settings.lake.sink_options(false)?;
            let (db, store) = (state.db.clone(), state.store.clone());
            supervisor.spawn("lake", Restart::Always, false, move || {
                crate::lake::run_role(db.clone(), store.clone(), options.clone())
            });
        }
        Ok(Self {
            acceptor,
            port,
            state,
            settings,
            supervisor,
            projectors,
        })
    }

    /// The port the listener is bound to (the one picked when `listen` asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What every handler shares: store, database, pool service, chat, caches.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Control over this instance's projectors (tests use it to simulate a crash).
    pub fn projectors(&self) -> ProjectorControl {
        self.projectors.clone()
    }

    /// Serves until `shutdown` completes, then drains requests (at most 10 s) and stops the
    /// background tasks. Ends with an error, at once, when a background task that cannot restart
    /// stops (the process then exits non-zero).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let Self {
            acceptor,
            port,
            state,
            settings,
            supervisor,
            projectors,
        } = self;
        let routes = crate::server::routes::for_roles(state, &settings);
        let roles: Vec<String> = settings
            .roles
            .iter()
            .filter_map(clap::ValueEnum::to_possible_value)
            .map(|v| v.get_name().to_owned())
            .collect();
        tracing::info!(port, roles = %roles.join(","), "onair is serving");
        let server = poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            routes,
            shutdown,
            Some(Duration::from_secs(10)),
        );
        let result = tokio::select! {
            served = server => served.map_err(Into::into),
            failure = supervisor.failure() => Err(anyhow::anyhow!(
                "a background task that cannot restart stopped ({failure}); the instance stops"
            )),
        };
        projectors.kill();
        supervisor.shutdown();
        result
    }
}
