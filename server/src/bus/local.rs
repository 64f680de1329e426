//! The bus of a node alone on its store (memory, SQLite): there is nobody to hear or tell, so
//! every call does nothing and nothing ever arrives.

use bytes::Bytes;
use chorus_sdk::wire::RoomName;

use super::{Bus, BusError, BusFigures, Subscribed};

/// The no-op bus.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalBus;

impl Bus for LocalBus {
    fn follow(&self, _room: &RoomName) -> Subscribed {
        Subscribed::now()
    }

    fn unfollow(&self, _room: &RoomName) {}

    fn signal(&self, _room: &RoomName, _bytes: Bytes) {}

    fn ready(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn figures(&self) -> Option<BusFigures> {
        None
    }
}
