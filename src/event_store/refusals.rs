//! How JetStream's answers to a publish map to [`EventStoreError`]: a refused guard, a payload
//! too large, or the store not answering.

use async_nats::jetstream::context::PublishErrorKind;

use super::EventStoreError;

/// Maps a JetStream publish failure: a refused sequence guard is a [`EventStoreError::Conflict`],
/// whichever of its two error codes the server answers (10071 `wrong last sequence: N`, or 10164
/// `wrong last sequence`, which a clustered stream answers when the guard covers a subject
/// filter).
pub(super) fn publish_error(
    error: &async_nats::jetstream::context::PublishError,
    expected: u64,
) -> EventStoreError {
    use async_nats::jetstream::ErrorCode;
    let code = jetstream_error_code(error);
    if error.kind() == PublishErrorKind::WrongLastSequence
        || code == Some(ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT)
    {
        return EventStoreError::Conflict { expected };
    }
    if error.kind() == PublishErrorKind::MaxPayloadExceeded {
        return EventStoreError::Rejected(error.to_string());
    }
    EventStoreError::Unavailable(error.to_string())
}

/// The JetStream error code of a publish failure, when the server answered one (async-nats
/// reports most as `Other`, with the server's error as the source).
pub(super) fn jetstream_error_code(
    error: &async_nats::jetstream::context::PublishError,
) -> Option<async_nats::jetstream::ErrorCode> {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
        .map(|e| e.error_code())
}
