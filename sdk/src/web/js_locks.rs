//! The lock operations of [`WasmClient::call`](super::WasmClient::call) (features `js` and
//! `locks`): what the npm package's locks entry (`pkg/src/locks.js`) runs on the module built
//! with locks. The package's core module is built without them and answers these operations
//! `unknown_op`, so the core entry carries none of this (docs/SIZE.md).
//!
//! Each takes its arguments as one JSON object (see [`op`]); a field that is missing or of the
//! wrong shape (a lock name outside the event id rules, a token that is no integer) is refused
//! with `invalid_lock`, before the core is called.

use std::time::Duration;

use super::BrowserClient;
use super::js::{Refusal, id_json};
use crate::js_abi::{client_code, op};
use crate::wire::json::{self, FieldReader, JsonError};
use crate::wire::{EventId, Json, LockFence, RoomName};

/// Runs the lock operation `op` in `room`: its `ok` value as JSON text.
pub(super) fn run(
    client: &BrowserClient,
    op: u32,
    room: RoomName,
    arg: &str,
) -> Result<String, Refusal> {
    if op == op::LOCKS {
        return Ok(client.locks(&room).as_text().to_owned());
    }
    let node = json::parse(arg).map_err(invalid)?;
    let mut fields = FieldReader::new(&node).map_err(invalid)?;
    let id = match op {
        op::LOCK => {
            let (name, ttl_ms) = (fields.get::<EventId>("name"), fields.get("ttl_ms"));
            let (token, auto) = (fields.opt("token"), fields.or("auto", false));
            checked(fields)?;
            client.lock(room, name, Duration::from_millis(ttl_ms), token, auto)
        }
        op::UNLOCK => {
            let (name, token) = (fields.get::<EventId>("name"), fields.get("token"));
            checked(fields)?;
            client.unlock(room, name, token)
        }
        _ => {
            let (body, fence) = (
                fields.get::<Json>("body"),
                fields.get::<LockFence>("if_lock"),
            );
            checked(fields)?;
            client.publish_fenced(room, body, fence)
        }
    };
    id_json(id)
}

/// Every field read, or the first that is missing or of the wrong shape.
fn checked(fields: FieldReader<'_, '_>) -> Result<(), Refusal> {
    fields.finish().map_or(Ok(()), |err| Err(invalid(err)))
}

fn invalid(err: JsonError) -> Refusal {
    (client_code::INVALID_LOCK, err.into_message())
}
