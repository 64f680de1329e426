//! Redis's filtered history reads (see `store::filter`): one script (`read_filtered.lua`)
//! walks at most `budget` entries of the room's stream (`XRANGE` forward, `XREVRANGE`
//! backward) and keeps those whose sender (`f`) and type (`t`, written by the append script)
//! pass the filter, so a page costs Redis a bounded amount of work however rare the matches.
//! Events stored before the `t` field existed have no type here.

use redis::{Script, Value};

use super::{RedisStore, decode_entry, max_age_ms, number};
use crate::store::{FilteredPage, FilteredRead, ReadFrom, RoomHead, StoreError};
use chorus_sdk::wire::RoomName;

const READ_FILTERED_LUA: &str = include_str!("read_filtered.lua");

/// The most entries one filtered page looks at, whatever the caller asks.
pub const MAX_FILTER_BUDGET: usize = 4096;

impl RedisStore {
    /// One page of a filtered read (see [`crate::store::Store::read_filtered`]).
    pub(super) async fn filtered(
        &self,
        room: &RoomName,
        read: &FilteredRead,
    ) -> Result<FilteredPage, StoreError> {
        let inner = &self.inner;
        let retention = inner.retention;
        let script = Script::new(READ_FILTERED_LUA);
        let (direction, cursor) = match read.from {
            ReadFrom::After(after) => ("after", after),
            ReadFrom::Before(before) => ("before", before),
        };
        let mut call = redis::cmd("EVALSHA");
        call.arg(script.get_hash())
            .arg(3)
            .arg(inner.keys.head(room))
            .arg(inner.keys.log(room))
            .arg(inner.keys.ids(room))
            .arg(crate::store::random_epoch())
            // Lua numbers are doubles: cursors past every seq read as 2^53.
            .arg(cursor.min(chorus_sdk::wire::MAX_SAFE_INTEGER))
            .arg(read.limit.events.min(super::MAX_READ_LIMIT))
            .arg(crate::clock::unix_ms_now())
            .arg(retention.max_events)
            .arg(max_age_ms(&retention))
            .arg(max_age_ms(&retention))
            .arg(direction)
            .arg(read.budget.min(MAX_FILTER_BUDGET))
            .arg(read.filter.event_type.as_deref().unwrap_or_default())
            .arg(read.filter.user.as_deref().unwrap_or_default());
        let mut conn = inner.reads.clone();
        let reply: Value = match call.query_async(&mut conn).await {
            // The script is loaded on first use (and again after Redis lost its cache).
            Err(err) if err.code() == Some("NOSCRIPT") => {
                conn.load_script(READ_FILTERED_LUA, &inner.keys.head(room))
                    .await
                    .map_err(|err| self.backend(err))?;
                call.query_async(&mut conn).await
            }
            other => other,
        }
        .map_err(|err| self.backend(err))?;
        let mut page = decode_filtered(room, reply, read.from).map_err(|what| {
            StoreError::Backend(format!(
                "Redis at {}: filtered read of {room}: {what}",
                inner.url
            ))
        })?;
        page.bound_bytes(read.from, read.limit);
        Ok(page)
    }
}

/// Reads the script's answer: `{epoch, head, oldest, events, scanned}`.
fn decode_filtered(room: &RoomName, value: Value, from: ReadFrom) -> Result<FilteredPage, String> {
    let Value::Array(items) = value else {
        return Err(format!("unexpected reply {value:?}"));
    };
    let field = |at: usize| {
        items
            .get(at)
            .and_then(number)
            .ok_or_else(|| format!("unexpected reply {items:?}"))
    };
    let head = RoomHead {
        epoch: field(0)?,
        head: field(1)?,
        oldest: field(2)?,
    };
    let entries = match items.get(3) {
        Some(Value::Array(entries)) => entries.as_slice(),
        _ => &[],
    };
    let mut events = entries
        .iter()
        .map(|entry| decode_entry(room, head.epoch, entry))
        .collect::<Result<Vec<_>, _>>()?;
    if let ReadFrom::Before(_) = from {
        events.reverse();
    }
    Ok(FilteredPage {
        head,
        events,
        scanned: items.get(4).and_then(number),
    })
}
