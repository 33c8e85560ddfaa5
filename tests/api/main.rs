//! Integration tests: the real application against a real nats-server (JetStream) and PostgreSQL.
//! Run them with `scripts/test`.

mod helpers;

mod auth_and_validation;
mod concurrency;
mod expiry_and_scaling;
mod openapi_spec;
mod projections;
mod seed_examples;
mod stats;
mod tokens;
mod viewers;
