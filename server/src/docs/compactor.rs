//! The task that keeps documents compact: the hub's driver tells it about every document update
//! this node stores ([`Compactor::stored`]); a document is folded into a new snapshot once
//! [`CompactPolicy::every`] updates wait, or [`CompactPolicy::after`] since the first of them,
//! whichever comes first. The second rule bounds how long an update lives only in history, so
//! history retention (by count or age) does not drop updates no snapshot holds yet.
//!
//! One task per node, compacting one document at a time. Several nodes may compact the same
//! document; the store keeps the snapshot with the higher seq (and either is right: both hold
//! every update up to their seq).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chorus_sdk::wire::{EventId, RoomName};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::store::Store;

/// When to compact a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactPolicy {
    /// Compact once this many updates were stored since the last snapshot.
    pub every: usize,
    /// Compact at most this long after the first update since the last snapshot.
    pub after: Duration,
}

impl Default for CompactPolicy {
    fn default() -> CompactPolicy {
        CompactPolicy {
            every: 100,
            after: Duration::from_secs(10),
        }
    }
}

/// The handle the driver tells about stored updates.
#[derive(Clone, Debug)]
pub struct Compactor {
    tx: mpsc::UnboundedSender<(RoomName, EventId)>,
    policy: CompactPolicy,
}

impl Compactor {
    /// Starts the task on `store`.
    pub fn spawn(store: Arc<dyn Store>, policy: CompactPolicy) -> Compactor {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, policy, rx));
        Compactor { tx, policy }
    }

    /// When it compacts.
    pub fn policy(&self) -> CompactPolicy {
        self.policy
    }

    /// An update of `doc` in `room` was stored.
    pub fn stored(&self, room: RoomName, doc: EventId) {
        // The task only ends when every handle is gone.
        let _ = self.tx.send((room, doc));
    }
}

/// A document with updates no snapshot holds yet.
struct Dirty {
    updates: usize,
    since: Instant,
}

#[allow(clippy::disallowed_methods)] // A driver task: it reads its own clock.
async fn run(
    store: Arc<dyn Store>,
    policy: CompactPolicy,
    mut rx: mpsc::UnboundedReceiver<(RoomName, EventId)>,
) {
    let mut dirty: HashMap<(RoomName, EventId), Dirty> = HashMap::new();
    let tick = (policy.after / 4).max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let due: Vec<(RoomName, EventId)> = tokio::select! {
            heard = rx.recv() => {
                let Some(key) = heard else { return };
                let entry = dirty.entry(key.clone()).or_insert(Dirty { updates: 0, since: Instant::now() });
                entry.updates += 1;
                if entry.updates < policy.every {
                    continue;
                }
                vec![key]
            }
            _ = ticker.tick() => dirty
                .iter()
                .filter(|(_, d)| d.since.elapsed() >= policy.after)
                .map(|(key, _)| key.clone())
                .collect(),
        };
        for key in due {
            dirty.remove(&key);
            let (room, doc) = &key;
            match super::compact(store.as_ref(), room, doc).await {
                Ok(loaded) => {
                    tracing::debug!(%room, %doc, seq = loaded.seq, folded = loaded.tail, "compacted a document");
                }
                Err(err) => {
                    // Kept dirty: tried again at a later tick.
                    tracing::warn!(%room, %doc, "compacting a document failed: {err}");
                    dirty.insert(
                        key,
                        Dirty {
                            updates: 1,
                            since: Instant::now(),
                        },
                    );
                }
            }
        }
    }
}
