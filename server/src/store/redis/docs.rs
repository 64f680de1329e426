//! Document snapshots in Redis (`crate::docs`): one hash per room (`{room}:docs`, in the room's
//! hash slot), two fields per document (`<doc>:v`: `<epoch>:<seq>`, `<doc>:s`: the state),
//! replaced by `docs.lua` in one step. The hash has no expiry: a document outlives the events
//! it was made from.

use chorus_sdk::wire::{EventId, RoomName};
use redis::{RedisError, Script, Value};

use super::{KeyLayout, RedisConn};
use crate::store::DocSnapshot;

const SAVE_LUA: &str = include_str!("docs.lua");

/// The room's documents hash.
fn key(keys: &KeyLayout, room: &RoomName) -> String {
    keys.key(room, "docs")
}

/// The document's snapshot; `Ok(None)` when none is kept, `Err` with a reason for a malformed one.
pub(super) async fn read(
    conn: &mut RedisConn,
    keys: &KeyLayout,
    room: &RoomName,
    doc: &EventId,
) -> Result<Result<Option<DocSnapshot>, String>, RedisError> {
    let (version, state): (Option<String>, Option<Vec<u8>>) = redis::cmd("HMGET")
        .arg(key(keys, room))
        .arg(format!("{doc}:v"))
        .arg(format!("{doc}:s"))
        .query_async(conn)
        .await?;
    let (Some(version), Some(state)) = (version, state) else {
        return Ok(Ok(None));
    };
    let parsed = version
        .split_once(':')
        .and_then(|(epoch, seq)| Some((epoch.parse().ok()?, seq.parse().ok()?)));
    Ok(match parsed {
        Some((epoch, seq)) => Ok(Some(DocSnapshot {
            room: room.clone(),
            doc: doc.clone(),
            epoch,
            seq,
            state,
        })),
        None => Err(format!(
            "the snapshot of document {doc} in {room} is malformed"
        )),
    })
}

/// Keeps `snapshot` unless the kept one is newer.
pub(super) async fn write(
    conn: &mut RedisConn,
    keys: &KeyLayout,
    snapshot: &DocSnapshot,
) -> Result<(), RedisError> {
    Script::new(SAVE_LUA)
        .key(key(keys, &snapshot.room))
        .arg(snapshot.doc.as_str())
        .arg(snapshot.epoch)
        .arg(snapshot.seq)
        .arg(snapshot.state.as_slice())
        .invoke_async::<Value>(conn)
        .await
        .map(drop)
}
