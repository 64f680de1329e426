//! SQLite's filtered history reads (see `store::filter`): an index serves each filter, so the
//! candidates a page walks are the events of the filtered type (`events_by_type`) or else of
//! the filtered sender (`events_by_sender`); with both filters the sender is checked on each
//! candidate of the type. At most `budget` candidates are read per page, forward or backward.

use rusqlite::{Connection, params_from_iter, types::Value};

use super::{backend, decode_row, room_head};
use crate::store::{FilteredPage, FilteredRead, ReadFrom, Retention, StoreError};
use chorus_sdk::wire::RoomName;

/// The candidate query of a filtered read and its parameters (see the module doc).
pub(super) fn candidate_query(
    room: &RoomName,
    read: &FilteredRead,
    oldest: u64,
) -> (String, Vec<Value>) {
    let (comparison, order, bound) = match read.from {
        ReadFrom::After(after) => (">", "ASC", after),
        ReadFrom::Before(before) => ("<", "DESC", before),
    };
    // SQLite integers are signed: a bound past i64::MAX (beyond any seq) reads as i64::MAX.
    let mut values = vec![
        Value::Text(room.as_str().to_owned()),
        Value::Integer(i64::try_from(bound).unwrap_or(i64::MAX)),
        Value::Integer(i64::try_from(oldest).unwrap_or(i64::MAX)),
    ];
    let indexed = match (&read.filter.event_type, &read.filter.user) {
        (Some(kind), _) => Some(("type", kind)),
        (None, Some(user)) => Some(("sender", user)),
        (None, None) => None,
    };
    let condition = match indexed {
        Some((column, value)) => {
            values.push(Value::Text(value.clone()));
            format!(" AND {column} = ?4")
        }
        None => String::new(),
    };
    values.push(Value::Integer(read.budget.min(i64::MAX as usize) as i64));
    let limit = values.len();
    let sql = format!(
        "SELECT seq, id, sender, at, body FROM events WHERE room = ?1{condition} \
         AND seq {comparison} ?2 AND seq >= ?3 ORDER BY seq {order} LIMIT ?{limit}"
    );
    (sql, values)
}

/// One page of a filtered read, with the head, from one snapshot.
pub(super) fn read_filtered(
    conn: &mut Connection,
    epoch: u64,
    retention: &Retention,
    room: &RoomName,
    read: &FilteredRead,
) -> Result<FilteredPage, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let head = room_head(&tx, epoch, retention, room)?;
    let (sql, values) = candidate_query(room, read, head.oldest);
    let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(params_from_iter(values), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .map_err(backend)?;
    let mut events = Vec::new();
    let mut scanned = None;
    for row in rows {
        let (seq, id, sender, at, body) = row.map_err(backend)?;
        scanned = Some(seq as u64);
        let stored = decode_row(epoch, room, seq, id, sender, at, body)?;
        if read.filter.matches(&stored) {
            events.push(stored);
            if events.len() >= read.limit.events {
                break;
            }
        }
    }
    drop(stmt);
    tx.finish().map_err(backend)?;
    if let ReadFrom::Before(_) = read.from {
        events.reverse();
    }
    let mut page = FilteredPage {
        head,
        events,
        scanned,
    };
    page.bound_bytes(read.from, read.limit);
    Ok(page)
}
