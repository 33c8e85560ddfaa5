//! A socket's outgoing queue: bounded (a socket whose queue is full is a slow consumer,
//! src/chat/hub.rs), filled by any task, emptied by the socket's writer, which takes everything
//! queued at once and writes it with one flush.
//!
//! One mutex and one waker per socket: a room's broadcast to N sockets costs N uncontended locks
//! and at most N wakes (a writer already woken is not woken again), and the writer takes the whole
//! queue by swapping two buffers, so a delivery allocates nothing once the buffers have grown. The
//! same waker carries a kill (a slow consumer dropped at once, even while its writer waits on a
//! peer that does not read), so an idle writer waits on nothing else.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

/// A bounded queue of `T` with a single consumer.
#[derive(Debug)]
pub struct Queue<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The consumer's waker while it waits (for an item, or for a kill while it writes).
    waker: Option<Waker>,
    /// The consumer is gone: nothing is queued any more.
    closed: bool,
    /// The consumer is asked to stop at once.
    killed: bool,
}

/// Why [`Queue::push`] did not queue an item.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `capacity` items are queued (a slow consumer).
    Full,
    /// The consumer is gone.
    Closed,
}

impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                waker: None,
                closed: false,
                killed: false,
            }),
            capacity: capacity.max(1),
        }
    }

    /// Queues `item` and wakes the consumer; refused when full or closed.
    pub fn push(&self, item: T) -> Result<(), Refused> {
        let waker = {
            let mut state = self.state.lock().expect("queue");
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.items.len() >= self.capacity {
                return Err(Refused::Full);
            }
            state.items.push_back(item);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Moves every queued item into `into` (which the caller has emptied): `Ready(true)`;
    /// `Ready(false)` once killed; `Pending` (waking `cx` on the next push or kill) when empty.
    pub fn poll_take(&self, cx: &mut Context<'_>, into: &mut VecDeque<T>) -> Poll<bool> {
        let mut state = self.state.lock().expect("queue");
        if state.killed {
            return Poll::Ready(false);
        }
        if state.items.is_empty() {
            register(&mut state.waker, cx);
            return Poll::Pending;
        }
        std::mem::swap(&mut state.items, into);
        Poll::Ready(true)
    }

    /// `Ready` once killed; otherwise `Pending`, waking `cx` on the next push or kill (for a
    /// consumer waiting on something else that a kill must interrupt).
    pub fn poll_killed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().expect("queue");
        if state.killed {
            return Poll::Ready(());
        }
        register(&mut state.waker, cx);
        Poll::Pending
    }

    /// Asks the consumer to stop at once and wakes it.
    pub fn kill(&self) {
        let waker = {
            let mut state = self.state.lock().expect("queue");
            state.killed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The consumer is gone: drops what is queued and refuses what comes.
    pub fn close(&self) {
        let items = {
            let mut state = self.state.lock().expect("queue");
            state.closed = true;
            state.waker = None;
            std::mem::take(&mut state.items)
        };
        drop(items);
    }

    /// Whether the consumer is gone.
    pub fn is_closed(&self) -> bool {
        self.state.lock().expect("queue").closed
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn the_consumer_takes_everything_queued_at_once_and_is_woken_once_per_wait() {
        let queue = Queue::new(3);
        let (woken, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();
        assert_eq!(queue.poll_take(&mut cx, &mut batch), Poll::Pending);
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        queue.push(3).unwrap();
        assert_eq!(woken.0.load(Ordering::Relaxed), 1, "one wake for the wait");
        assert_eq!(queue.push(4), Err(Refused::Full));
        assert_eq!(queue.poll_take(&mut cx, &mut batch), Poll::Ready(true));
        assert_eq!(batch, [1, 2, 3]);
        batch.clear();
        queue.push(5).unwrap();
        assert_eq!(queue.poll_take(&mut cx, &mut batch), Poll::Ready(true));
        assert_eq!(batch, [5]);
    }

    #[test]
    fn a_kill_wakes_a_waiting_consumer_and_a_closed_queue_refuses() {
        let queue = Queue::new(8);
        let (woken, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(queue.poll_killed(&mut cx), Poll::Pending);
        queue.push(1).unwrap();
        queue.kill();
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        assert_eq!(queue.poll_killed(&mut cx), Poll::Ready(()));
        assert_eq!(
            queue.poll_take(&mut cx, &mut VecDeque::new()),
            Poll::Ready(false)
        );
        assert!(!queue.is_closed());
        queue.close();
        assert!(queue.is_closed());
        assert_eq!(queue.push(2), Err(Refused::Closed));
    }
}
