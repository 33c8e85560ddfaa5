//! Integration tests: the real application against a real nats-server (JetStream) and PostgreSQL.
//! Run them with `scripts/test`.

mod chat_support;
mod gateway_support;
mod helpers;
mod ivs_stub;

mod architecture;
mod audit;
mod auth_and_validation;
mod aws_provider;
mod aws_serve;
mod backoffice;
mod chat;
mod chat_clients;
mod chat_load;
mod chat_sessions;
mod concurrency;
mod event_schemas;
mod event_tools;
mod expiry_and_scaling;
mod gateway;
mod http_hygiene;
mod metrics;
mod openapi_spec;
mod projection_batches;
mod projections;
mod publisher_status;
mod rate_limits;
mod read_your_writes;
mod replay;
mod roles;
mod room_projections;
mod secrets;
mod seed_examples;
mod socket_fuzz;
mod socket_limits;
mod stages;
mod stats;
mod stats_socket;
mod tokens;
mod viewers;
mod workload;
