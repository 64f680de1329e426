//! The bus: how a node hears what the other nodes on the same store did, and tells them.
//!
//! With one node there is nothing to hear ([`local::LocalBus`], a no-op, for the memory and
//! SQLite stores). With Redis ([`redis::RedisBus`]) every stored event is published by the
//! append script on its room's live channel, and nodes broadcast opaque signals (presence,
//! typing, ephemeral events: what the hub decides to share) on the room's signal channel.
//!
//! The bus knows nothing of the protocol: it follows the rooms the hub asks it to
//! ([`crate::hub::Action::Follow`], [`crate::hub::Action::Unfollow`]) and hands the driver
//! what it hears as [`Inbound`] messages, in the order it heard them, on the channel it was
//! opened with. It never calls into the hub, and it drops its own node's signals.

pub mod local;
pub mod node_stats;
pub mod redis;
pub mod redis_cluster;
pub mod sessions;

use bytes::Bytes;
use chorus_sdk::wire::RoomName;
use tokio::sync::{mpsc, oneshot};

use crate::store::StoredEvent;

/// What a node heard from the others.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// An event stored in a followed room (by any node, this one included).
    Stored(StoredEvent),
    /// Another node's signal in a followed room.
    Signal {
        /// The room.
        room: RoomName,
        /// The sending node's id (its `HubConfig::node`).
        from_node: String,
        /// What it sent, as it sent it.
        bytes: Bytes,
    },
    /// The bus lost its subscriptions for a while and has them again: anything may have been
    /// stored (or signalled) in these rooms meanwhile without being heard.
    Resynced(Vec<RoomName>),
}

/// The sending half of a bus's inbound channel.
pub type InboundSender = mpsc::UnboundedSender<Inbound>;

/// Resolves when a [`Bus::follow`] is in place: from then on, every event stored in the room
/// is heard. When the bus is down it resolves at once (the room is followed when the bus is
/// back, and [`Inbound::Resynced`] names it then).
#[derive(Debug, Default)]
pub struct Subscribed(Option<oneshot::Receiver<()>>);

impl Subscribed {
    /// Already in place (or nothing to wait for).
    pub fn now() -> Subscribed {
        Subscribed(None)
    }

    /// In place when `done` fires (or is dropped).
    pub fn when(done: oneshot::Receiver<()>) -> Subscribed {
        Subscribed(Some(done))
    }

    /// Waits until the follow is in place.
    pub async fn wait(self) {
        if let Some(done) = self.0 {
            let _ = done.await;
        }
    }
}

/// The bus's figures for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BusFigures {
    /// Rooms followed now.
    pub followed_rooms: u64,
    /// Times the subscriber connection was lost and established again.
    pub reconnects: u64,
    /// Stored events heard.
    pub events_heard: u64,
    /// Sum of `now - event.at` over the events heard, in milliseconds (pub/sub lag).
    pub lag_ms_sum: u64,
    /// Largest lag seen, in milliseconds.
    pub lag_ms_max: u64,
    /// Signals this node sent.
    pub signals_sent: u64,
    /// Signals heard from other nodes.
    pub signals_heard: u64,
}

/// Why the bus cannot serve now (`/readyz`).
#[derive(Clone, Debug, thiserror::Error)]
pub enum BusError {
    /// The subscriber connection is down; the bus reconnects by itself.
    #[error("the bus's subscriber connection is down: {0}")]
    Down(String),
}

/// What a node uses to hear about the other nodes. See the module docs.
pub trait Bus: Send + Sync + 'static {
    /// Hear what is stored and signalled in `room` from now on (once the result resolves).
    /// Called once per room when the hub opens it.
    fn follow(&self, room: &RoomName) -> Subscribed;

    /// Stop hearing about `room`. Called once when the hub forgets it.
    fn unfollow(&self, room: &RoomName);

    /// Broadcast `bytes` to the other nodes following `room` (best effort, at most once; each
    /// receiver gets [`Inbound::Signal`] with this node's id). Signals of one room arrive in the
    /// order they were sent.
    fn signal(&self, room: &RoomName, bytes: Bytes);

    /// Whether the bus hears the other nodes now.
    fn ready(&self) -> Result<(), BusError>;

    /// Figures for `/metrics` (`None`: a bus with nothing to report, the one-node one).
    fn figures(&self) -> Option<BusFigures>;
}

impl std::fmt::Debug for dyn Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").finish_non_exhaustive()
    }
}
