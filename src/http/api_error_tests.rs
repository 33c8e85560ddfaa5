use std::borrow::Cow;

use super::*;

/// A Postgres error with only a SQLSTATE, as the driver reports one.
#[derive(Debug)]
struct Sqlstate(&'static str);

impl std::fmt::Display for Sqlstate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sqlstate {}", self.0)
    }
}

impl std::error::Error for Sqlstate {}

impl sqlx::error::DatabaseError for Sqlstate {
    fn message(&self) -> &str {
        "test"
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

fn database(code: &'static str) -> sqlx::Error {
    sqlx::Error::Database(Box::new(Sqlstate(code)))
}

#[test]
fn given_postgres_cannot_be_reached_when_classified_then_it_is_unavailable() {
    let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    for e in [
        io,
        sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed,
        sqlx::Error::Protocol("unexpected end of stream".into()),
        sqlx::Error::Tls("handshake failed".into()),
    ] {
        assert_eq!(
            classify_database_error(&e),
            DatabaseFailure::Unavailable,
            "{e}"
        );
    }
}

#[test]
fn given_a_sqlstate_of_connection_shutdown_resources_or_concurrency_when_classified_then_it_is_unavailable()
 {
    for code in [
        "08006", "08001", "57P01", "57P02", "57P03", "53300", "53100", "40001", "40P01",
    ] {
        assert_eq!(
            classify_database_error(&database(code)),
            DatabaseFailure::Unavailable,
            "{code}"
        );
    }
}

#[test]
fn given_a_nul_refused_by_postgres_when_classified_then_it_is_the_requests_fault() {
    for code in ["22021", "22P05"] {
        assert_eq!(
            classify_database_error(&database(code)),
            DatabaseFailure::TextRefused
        );
    }
}

#[test]
fn given_a_broken_query_or_decoding_when_classified_then_it_is_a_bug() {
    for e in [
        database("42601"),
        database("42P01"),
        database("42703"),
        database("23505"),
        sqlx::Error::RowNotFound,
        sqlx::Error::ColumnNotFound("nope".into()),
        sqlx::Error::Decode("bad".into()),
    ] {
        assert_eq!(classify_database_error(&e), DatabaseFailure::Bug, "{e}");
    }
}

#[test]
fn database_errors_answer_503_400_or_500_by_their_meaning() {
    let status = |e: sqlx::Error| ApiError::from(e).into_response().status().as_u16();
    assert_eq!(status(sqlx::Error::PoolTimedOut), 503);
    assert_eq!(status(database("22021")), 400);
    assert_eq!(status(database("42P01")), 500);
}

#[test]
fn a_code_picks_its_status_and_wire_string() {
    let response = ApiError::coded(ErrorCode::GiftNotFound, "gift 9 not found").into_response();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = ApiError::coded(ErrorCode::ReadModelBehind, "behind").into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = ApiError::coded(ErrorCode::IdempotencyKeyReused, "reused").into_response();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn an_error_body_says_success_false_and_a_field_error_names_its_field_first() {
    let body =
        serde_json::to_value(ErrorBody::new(ErrorCode::NotFound, "no such route", None)).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"success": false, "error": "NOT_FOUND", "message": "no such route"})
    );
    assert_eq!(
        field_details("missing required parameter: userId"),
        "userId is required"
    );
    assert_eq!(
        field_details("invalid parameter maxResults: must be at most 100"),
        "maxResults is invalid: must be at most 100"
    );
    assert_eq!(
        field_details("query.page must be at least 1"),
        "query.page must be at least 1"
    );
    assert_eq!(
        describe_parse_error(
            "failed to parse parameter `stageArn`: Type \"string\" expects an input value."
        ),
        "missing required parameter: stageArn"
    );
    let refused =
        "failed to parse path `stageArn`: failed to parse \"string\": must be a stage ARN";
    assert_eq!(
        field_details(&describe_parse_error(refused)),
        "stageArn is invalid: failed to parse path `stageArn`: must be a stage ARN"
    );
}
