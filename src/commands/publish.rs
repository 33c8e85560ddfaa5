//! The guarded publish every command with an invariant shares: decide against the state read so
//! far, publish with `Nats-Expected-Last-Subject-Sequence` over the aggregate's subjects, and when
//! another writer got in first (the guard refused, [`EventStoreError::Conflict`]), catch up and
//! decide again, a bounded number of times.
//!
//! [`publish_guarded`] is one guarded publish; [`retry_guarded`] is the loop around the attempts.
//! The stage pool ([`crate::commands::pool`]) decides against its in-memory view and catches up by
//! waiting for its follower; rooms ([`crate::commands::rooms`]) re-read the aggregate from the
//! stream on each attempt. What "contended" means after the last attempt is the caller's
//! (`Contended`, or a 503 `Unavailable`).

use crate::event_store::{EventStore, EventStoreError, NewEvent, Published};

/// The subjects a guard covers and the stream sequence of the last event expected on them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectGuard {
    /// Subjects of the aggregate, e.g. `onair.broadcast.<streamer>.*` or the pool's filter.
    pub subject_filter: String,
    /// Stream sequence of the last event the decision saw on them (0 = none yet).
    pub last_sequence: u64,
}

/// What one attempt of a guarded command came to.
#[derive(Debug)]
pub enum Attempt<R> {
    /// The command is done with this result.
    Done(R),
    /// The guard refused the publish: catch up with the other writer and decide again.
    Conflicted,
    /// An intermediate event was stored (the pool reopened or created a stage): decide again at
    /// once, without waiting.
    Again,
}

/// Publishes `new` guarded by `guard`. `Ok(None)` when the guard refused it (another event reached
/// the subjects first); other store failures are errors.
pub async fn publish_guarded(
    store: &EventStore,
    new: NewEvent,
    guard: &SubjectGuard,
) -> Result<Option<Published>, EventStoreError> {
    let new = new.expecting(guard.subject_filter.clone(), guard.last_sequence);
    conflict_as_none(store.publish(new).await)
}

/// Maps [`EventStoreError::Conflict`] to `Ok(None)`, keeping every other outcome.
pub fn conflict_as_none<T>(
    result: Result<T, EventStoreError>,
) -> Result<Option<T>, EventStoreError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(EventStoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `attempt` up to `attempts` times: it returns once an attempt is [`Attempt::Done`] (with
/// `Some`), runs `catch_up` after each [`Attempt::Conflicted`], and goes round at once after
/// [`Attempt::Again`]. `Ok(None)` when no attempt got through; the first error ends it.
///
/// The closures return futures that borrow from the caller (`move || async move { .. }` over
/// references); state an attempt changes lives in the caller (an atomic, a mutex).
pub async fn retry_guarded<R, E, A, C>(
    attempts: usize,
    mut attempt: impl FnMut() -> A,
    mut catch_up: impl FnMut() -> C,
) -> Result<Option<R>, E>
where
    A: Future<Output = Result<Attempt<R>, E>>,
    C: Future<Output = ()>,
{
    for _ in 0..attempts {
        match attempt().await? {
            Attempt::Done(result) => return Ok(Some(result)),
            Attempt::Conflicted => catch_up().await,
            Attempt::Again => {}
        }
    }
    Ok(None)
}

/// One decide-and-publish: `decide` reads the aggregate and returns the event, its guard and the
/// command's result, or refuses; the event is published under the guard. Retried `attempts` times
/// while the guard refuses (with `catch_up` in between); `Ok(None)` when every attempt lost.
pub async fn guarded_publish<T, E, D, C>(
    store: &EventStore,
    attempts: usize,
    mut decide: impl FnMut() -> D,
    catch_up: impl FnMut() -> C,
) -> Result<Option<(T, Published)>, E>
where
    E: From<EventStoreError>,
    D: Future<Output = Result<(NewEvent, SubjectGuard, T), E>>,
    C: Future<Output = ()>,
{
    retry_guarded(
        attempts,
        || {
            let decided = decide();
            async move {
                let (new, guard, value) = decided.await?;
                Ok(match publish_guarded(store, new, &guard).await? {
                    Some(published) => Attempt::Done((value, published)),
                    None => Attempt::Conflicted,
                })
            }
        },
        catch_up,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    /// An attempt that plays the given outcomes in order, counting its calls.
    fn scripted<R>(
        outcomes: Vec<Result<Attempt<R>, EventStoreError>>,
        tries: &Cell<usize>,
    ) -> impl FnMut() -> std::future::Ready<Result<Attempt<R>, EventStoreError>> {
        let outcomes = RefCell::new(outcomes.into_iter());
        move || {
            tries.set(tries.get() + 1);
            std::future::ready(outcomes.borrow_mut().next().expect("an outcome"))
        }
    }

    #[tokio::test]
    async fn given_conflicts_then_a_win_when_retried_then_it_catches_up_before_each_new_decision() {
        let (tries, catch_ups) = (Cell::new(0), Cell::new(0));
        let attempt = scripted(
            vec![
                Ok(Attempt::Conflicted),
                Ok(Attempt::Conflicted),
                Ok(Attempt::Done(7)),
            ],
            &tries,
        );
        let result = retry_guarded(5, attempt, || {
            catch_ups.set(catch_ups.get() + 1);
            std::future::ready(())
        })
        .await;
        assert_eq!(result.unwrap(), Some(7));
        assert_eq!((tries.get(), catch_ups.get()), (3, 2));
    }

    #[tokio::test]
    async fn given_every_attempt_loses_when_retried_then_it_gives_up_after_the_bound() {
        let tries = Cell::new(0);
        let attempt = scripted(
            (0..10).map(|_| Ok(Attempt::<()>::Conflicted)).collect(),
            &tries,
        );
        let result = retry_guarded(5, attempt, || std::future::ready(())).await;
        assert!(result.unwrap().is_none());
        assert_eq!(tries.get(), 5);
    }

    #[tokio::test]
    async fn given_an_intermediate_event_when_retried_then_it_decides_again_without_catching_up() {
        let (tries, catch_ups) = (Cell::new(0), Cell::new(0));
        let attempt = scripted(
            vec![Ok(Attempt::Again), Ok(Attempt::Done("seated"))],
            &tries,
        );
        let result = retry_guarded(5, attempt, || {
            catch_ups.set(catch_ups.get() + 1);
            std::future::ready(())
        })
        .await;
        assert_eq!(result.unwrap(), Some("seated"));
        assert_eq!(catch_ups.get(), 0);
    }

    #[tokio::test]
    async fn given_a_store_failure_when_retried_then_the_error_ends_it_at_once() {
        let tries = Cell::new(0);
        let attempt = scripted(
            vec![
                Err(EventStoreError::Unavailable("down".into())),
                Ok(Attempt::Done(())),
            ],
            &tries,
        );
        let result = retry_guarded(5, attempt, || std::future::ready(())).await;
        assert!(result.is_err());
        assert_eq!(tries.get(), 1);
    }

    #[test]
    fn a_conflict_is_none_and_other_failures_stay_errors() {
        assert_eq!(conflict_as_none(Ok(3)).unwrap(), Some(3));
        assert_eq!(
            conflict_as_none::<u8>(Err(EventStoreError::Conflict { expected: 1 })).unwrap(),
            None
        );
        assert!(conflict_as_none::<u8>(Err(EventStoreError::Unavailable("x".into()))).is_err());
    }
}
