//! [`FrameQueue`]: the bounded queue of frames from the hub to one WebSocket connection task.
//!
//! A full queue makes the connection a slow consumer (the hub closes it); replays wait for
//! room instead. What matters here is memory: there is one queue per connection for the
//! connection's life, and most of that life is idle. A queue's storage therefore grows with
//! the frames waiting in it and shrinks back to [`KEPT_CAPACITY`] once they are all taken.
//! A channel that keeps the capacity of its deepest burst (as `flume` does) held it for every
//! idle connection: while a room of 1000 fills, every member is queued a presence change per
//! later joiner faster than its task writes them out, and each member's queue kept room for
//! the deepest of those bursts (4.4 KiB of live heap per idle connection in rooms of 1000).
//!
//! It is bounded twice: in frames, and in bytes (a frame is taken into an empty queue whatever
//! its size), since some frames are large and made for one connection (a `joined` snapshot of
//! a big room): a peer that stops reading must not pin more than the byte bound.
//!
//! It must stay a plain queue: what a full queue means is the driver's and the hub's call.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::hub::Payload;

/// Frames a drained queue keeps room for: a connection that gets one or two frames at a time
/// (the common case, one event at a time) never reallocates, and an idle one holds 64 bytes.
/// Deeper bursts grow it, and it shrinks back once they are written.
pub const KEPT_CAPACITY: usize = 2;

/// A queue of frames for one connection: [`FrameQueue::bounded`] makes its two ends.
#[derive(Debug)]
pub struct FrameQueue {
    /// Frames waiting, oldest first.
    frames: VecDeque<Payload>,
    /// The most frames that may wait.
    bound: usize,
    /// The bytes of the frames waiting.
    bytes: usize,
    /// The most bytes that may wait (past it only when the queue was empty).
    byte_bound: usize,
    /// Live [`FrameSender`]s: at none, the receiver sees the queue end once it is empty.
    senders: usize,
    /// Whether the [`FrameReceiver`] is alive: without it, sending fails.
    receiver_alive: bool,
    /// The receiver waiting for a frame.
    receiver: Option<Waker>,
    /// Senders waiting for room.
    waiting_senders: Vec<Waker>,
}

/// Why [`FrameSender::try_send`] did not queue the frame (which it hands back).
#[derive(Debug)]
pub enum TrySendError {
    /// The queue holds its bound of frames, or of bytes.
    Full(Payload),
    /// The receiver is gone.
    Disconnected(Payload),
}

/// The hub's end of a [`FrameQueue`] (cloned for replays).
#[derive(Debug)]
pub struct FrameSender {
    queue: Arc<Mutex<FrameQueue>>,
}

/// The connection task's end of a [`FrameQueue`].
#[derive(Debug)]
pub struct FrameReceiver {
    queue: Arc<Mutex<FrameQueue>>,
}

impl FrameQueue {
    /// A queue of at most `bound` frames (at least one) and `byte_bound` bytes (a frame of any
    /// size fits into an empty queue), with no storage until a frame comes.
    pub fn bounded(bound: usize, byte_bound: usize) -> (FrameSender, FrameReceiver) {
        let queue = Arc::new(Mutex::new(FrameQueue {
            frames: VecDeque::new(),
            bound: bound.max(1),
            bytes: 0,
            byte_bound,
            senders: 1,
            receiver_alive: true,
            receiver: None,
            waiting_senders: Vec::new(),
        }));
        let sender = FrameSender {
            queue: Arc::clone(&queue),
        };
        (sender, FrameReceiver { queue })
    }

    /// Queues `payload` if there is room, waking the receiver.
    fn push(&mut self, payload: Payload) -> Result<(), TrySendError> {
        if !self.receiver_alive {
            return Err(TrySendError::Disconnected(payload));
        }
        let over_bytes = self.bytes + payload.len() > self.byte_bound;
        if self.frames.len() >= self.bound || (over_bytes && !self.frames.is_empty()) {
            return Err(TrySendError::Full(payload));
        }
        self.bytes += payload.len();
        if self.frames.capacity() == 0 {
            // What a drained queue keeps, not the four slots a first push would take.
            self.frames.reserve_exact(KEPT_CAPACITY);
        }
        self.frames.push_back(payload);
        if let Some(receiver) = self.receiver.take() {
            receiver.wake();
        }
        Ok(())
    }

    /// Takes the oldest frame, wakes senders waiting for room, and gives back the storage a
    /// burst left once the queue is empty.
    fn pop(&mut self) -> Option<Payload> {
        let payload = self.frames.pop_front()?;
        self.bytes -= payload.len();
        for sender in self.waiting_senders.drain(..) {
            sender.wake();
        }
        if self.frames.is_empty() && self.frames.capacity() > KEPT_CAPACITY {
            self.frames.shrink_to(KEPT_CAPACITY);
        }
        if self.waiting_senders.capacity() > KEPT_CAPACITY {
            self.waiting_senders.shrink_to(KEPT_CAPACITY);
        }
        Some(payload)
    }
}

/// Locks a queue; a panic while it was held cannot leave it inconsistent (every change is
/// one push or pop), so a poisoned lock is used as it is.
fn lock(queue: &Mutex<FrameQueue>) -> MutexGuard<'_, FrameQueue> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FrameSender {
    /// Queues `payload` now, or says why not.
    pub fn try_send(&self, payload: Payload) -> Result<(), TrySendError> {
        lock(&self.queue).push(payload)
    }

    /// Queues `payload`, waiting for room; hands it back if the receiver is gone.
    pub async fn send(&self, payload: Payload) -> Result<(), Payload> {
        let mut payload = Some(payload);
        poll_fn(|cx| {
            let mut queue = lock(&self.queue);
            let frame = payload.take().expect("polled after it finished");
            match queue.push(frame) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(TrySendError::Disconnected(frame)) => Poll::Ready(Err(frame)),
                Err(TrySendError::Full(frame)) => {
                    payload = Some(frame);
                    queue.waiting_senders.push(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Clone for FrameSender {
    fn clone(&self) -> FrameSender {
        lock(&self.queue).senders += 1;
        FrameSender {
            queue: Arc::clone(&self.queue),
        }
    }
}

impl Drop for FrameSender {
    fn drop(&mut self) {
        let mut queue = lock(&self.queue);
        queue.senders -= 1;
        if queue.senders == 0
            && let Some(receiver) = queue.receiver.take()
        {
            receiver.wake();
        }
    }
}

impl FrameReceiver {
    /// The next frame; `None` once every sender is gone and the queue is empty.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        let mut queue = lock(&self.queue);
        if let Some(payload) = queue.pop() {
            return Poll::Ready(Some(payload));
        }
        if queue.senders == 0 {
            return Poll::Ready(None);
        }
        match &queue.receiver {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => queue.receiver = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next frame if one is waiting.
    pub fn try_recv(&mut self) -> Option<Payload> {
        lock(&self.queue).pop()
    }

    /// Frames the queue has room for without allocating (what an idle connection holds).
    pub fn capacity(&self) -> usize {
        lock(&self.queue).frames.capacity()
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        let mut queue = lock(&self.queue);
        queue.receiver_alive = false;
        // Frames nobody will read are freed now, not when the last sender goes.
        queue.frames = VecDeque::new();
        queue.bytes = 0;
        for sender in queue.waiting_senders.drain(..) {
            sender.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Payload {
        Payload::from(format!("{{\"n\":{n}}}"))
    }

    fn recv_now(receiver: &mut FrameReceiver) -> Poll<Option<Payload>> {
        receiver.poll_recv(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_drained_queue_gives_back_the_room_a_burst_took() {
        let (sender, mut receiver) = FrameQueue::bounded(1024, usize::MAX);
        for round in 0..3 {
            // A room of 1000 filling: one presence change per joiner, faster than they go out.
            for n in 0..999 {
                sender.try_send(frame(n)).unwrap();
            }
            assert!(receiver.capacity() >= 999, "round {round}");
            for n in 0..999 {
                assert_eq!(
                    receiver.try_recv(),
                    Some(frame(n)),
                    "round {round}: in order"
                );
            }
            assert!(
                receiver.capacity() <= KEPT_CAPACITY,
                "round {round}: an idle connection keeps room for {} frames",
                receiver.capacity()
            );
        }
    }

    #[test]
    fn one_frame_at_a_time_never_reallocates() {
        let (sender, mut receiver) = FrameQueue::bounded(16, usize::MAX);
        sender.try_send(frame(0)).unwrap();
        let capacity = receiver.capacity();
        for n in 1..100 {
            assert_eq!(receiver.try_recv(), Some(frame(n - 1)));
            sender.try_send(frame(n)).unwrap();
            assert_eq!(receiver.capacity(), capacity);
        }
    }

    #[test]
    fn a_full_queue_refuses_and_a_gone_receiver_disconnects() {
        let (sender, receiver) = FrameQueue::bounded(2, usize::MAX);
        sender.try_send(frame(0)).unwrap();
        sender.try_send(frame(1)).unwrap();
        assert!(matches!(sender.try_send(frame(2)), Err(TrySendError::Full(p)) if p == frame(2)));
        drop(receiver);
        assert!(matches!(
            sender.try_send(frame(3)),
            Err(TrySendError::Disconnected(p)) if p == frame(3)
        ));
    }

    #[test]
    fn the_queue_ends_when_every_sender_is_gone_and_it_is_empty() {
        let (sender, mut receiver) = FrameQueue::bounded(4, usize::MAX);
        let replay = sender.clone();
        sender.try_send(frame(0)).unwrap();
        drop(sender);
        assert_eq!(recv_now(&mut receiver), Poll::Ready(Some(frame(0))));
        assert_eq!(recv_now(&mut receiver), Poll::Pending, "a clone is alive");
        drop(replay);
        assert_eq!(recv_now(&mut receiver), Poll::Ready(None));
    }

    #[test]
    fn a_queue_past_its_bytes_refuses_but_an_empty_one_takes_any_frame() {
        let big = Payload::from("x".repeat(100));
        let (sender, mut receiver) = FrameQueue::bounded(1024, 150);
        sender.try_send(big.clone()).unwrap();
        sender.try_send(frame(0)).unwrap();
        assert!(matches!(
            sender.try_send(big.clone()),
            Err(TrySendError::Full(_))
        ));
        assert_eq!(receiver.try_recv(), Some(big.clone()));
        sender.try_send(big.clone()).unwrap();
        assert!(matches!(
            sender.try_send(big.clone()),
            Err(TrySendError::Full(_))
        ));
        assert_eq!(receiver.try_recv(), Some(frame(0)));
        assert_eq!(receiver.try_recv(), Some(big.clone()));
        let (sender, _receiver) = FrameQueue::bounded(1024, 10);
        sender.try_send(big).unwrap();
    }

    #[tokio::test]
    async fn send_waits_for_room_and_fails_once_the_receiver_is_gone() {
        let (sender, mut receiver) = FrameQueue::bounded(1, usize::MAX);
        sender.try_send(frame(0)).unwrap();
        let replay = sender.clone();
        let waiting = tokio::spawn(async move { replay.send(frame(1)).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the queue is full");
        assert_eq!(poll_fn(|cx| receiver.poll_recv(cx)).await, Some(frame(0)));
        waiting.await.unwrap().unwrap();
        assert_eq!(poll_fn(|cx| receiver.poll_recv(cx)).await, Some(frame(1)));

        sender.try_send(frame(2)).unwrap();
        let replay = sender.clone();
        let waiting = tokio::spawn(async move { replay.send(frame(3)).await });
        tokio::task::yield_now().await;
        drop(receiver);
        assert_eq!(waiting.await.unwrap(), Err(frame(3)));
    }
}
