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
    // Named, not left to the planner: without statistics (a new file, a small room) it may
    // walk the primary key instead, past every event of other types and senders.
    let indexed = match (&read.filter.event_type, &read.filter.user) {
        (Some(kind), _) => Some(("events_by_type", "type", kind)),
        (None, Some(user)) => Some(("events_by_sender", "sender", user)),
        (None, None) => None,
    };
    let (index, condition) = match indexed {
        Some((index, column, value)) => {
            values.push(Value::Text(value.clone()));
            (
                format!(" INDEXED BY {index}"),
                format!(" AND {column} = ?4"),
            )
        }
        None => (String::new(), String::new()),
    };
    values.push(Value::Integer(read.budget.min(i64::MAX as usize) as i64));
    let limit = values.len();
    let sql = format!(
        "SELECT seq, id, sender, at, body FROM events{index} WHERE room = ?1{condition} \
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::filter::contract::check_filtered_reads;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{EventFilter, PageLimit};

    #[tokio::test]
    async fn sqlite_store_filters_history_by_type_and_sender_with_a_bounded_scan() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store =
            SqliteStore::open(&dir.path().join("chorus.db"), Retention::default(), tx).unwrap();
        check_filtered_reads(&store, &mut rx).await;
    }

    /// The plan of each filtered read: the type filter walks `events_by_type`, the sender
    /// filter `events_by_sender`, none the primary key; never a scan of the whole table, and
    /// never a sort (the index gives the order).
    #[test]
    fn every_filtered_read_is_served_by_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        drop(SqliteStore::open(&path, Retention::default(), tx).unwrap());
        let conn = Connection::open(&path).unwrap();
        let room = RoomName::parse("r").unwrap();
        let filter = |event_type: Option<&str>, user: Option<&str>| EventFilter {
            event_type: event_type.map(str::to_owned),
            user: user.map(str::to_owned),
        };
        // (filter, the index the plan must use)
        let table = [
            (filter(Some("comment"), None), "events_by_type"),
            (filter(Some("comment"), Some("ana")), "events_by_type"),
            (filter(None, Some("ana")), "events_by_sender"),
            (filter(None, None), "PRIMARY KEY"),
        ];
        for (filter, index) in table {
            for from in [ReadFrom::After(3), ReadFrom::Before(30)] {
                let read = FilteredRead {
                    filter: filter.clone(),
                    from,
                    limit: PageLimit::events(10),
                    budget: 100,
                };
                let (sql, values) = candidate_query(&room, &read, 1);
                let plan: Vec<String> = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .unwrap()
                    .query_map(params_from_iter(values), |row| row.get::<_, String>(3))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let plan = plan.join("; ");
                assert!(
                    plan.contains(index)
                        && plan.contains("SEARCH")
                        && !plan.contains("TEMP B-TREE"),
                    "{filter:?} {from:?}: {plan}"
                );
            }
        }
    }

    /// A file of schema 1 (no type column) gets one, filled from the stored bodies.
    #[tokio::test]
    async fn a_file_of_schema_1_gets_its_events_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE rooms (room TEXT PRIMARY KEY, head INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE events (room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
                 sender TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL,
                 PRIMARY KEY (room, seq)) WITHOUT ROWID;
             CREATE UNIQUE INDEX events_by_sender_id ON events (room, sender, id);
             PRAGMA user_version = 1;
             INSERT INTO meta VALUES ('epoch', 5);
             INSERT INTO rooms VALUES ('r', 4);",
        )
        .unwrap();
        let now = crate::clock::unix_ms_now() as i64;
        for (seq, body) in [
            (1, r#"{"type":"comment"}"#),
            (2, r#"{"type":7}"#),
            (3, r#"["type"]"#),
            (4, r#"{"text":"hi","type":"comment"}"#),
        ] {
            old.execute(
                "INSERT INTO events VALUES ('r', ?1, ?2, 'ana', ?3, ?4)",
                rusqlite::params![seq, format!("e{seq}"), now, body],
            )
            .unwrap();
        }
        drop(old);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let store = SqliteStore::open(&path, Retention::default(), tx).unwrap();
        let read = FilteredRead {
            filter: EventFilter {
                event_type: Some("comment".into()),
                user: None,
            },
            from: ReadFrom::After(0),
            limit: PageLimit::events(10),
            budget: 100,
        };
        use crate::store::Store;
        let page = store
            .read_filtered(&RoomName::parse("r").unwrap(), read)
            .await
            .unwrap();
        let seqs: Vec<u64> = page.events.iter().map(|e| e.seq()).collect();
        assert_eq!(seqs, [1, 4]);
    }
}
