//! The durable embedded default: SQLite (bundled, WAL) in one file.
//!
//! One writer thread owns the write connection and sequences every append. It takes every job
//! that is queued when it wakes up and commits them in one transaction, so a burst of publishes
//! pays one fsync (`synchronous=FULL`), not one per event. Reads run on separate reader
//! connections (WAL lets them proceed during writes) inside a read transaction, so a page and
//! its head come from one snapshot.
//!
//! The history's epoch is created once per database file and kept in `meta`; a restart keeps
//! epoch, heads and history, so clients resume across restarts without a reset.
//!
//! This module must not block the async runtime: the writer is a plain thread and reads go
//! through `spawn_blocking`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use chorus_sdk::wire::{Event, EventId, Json, LockInfo, RoomName};
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::locks::{FORGET_AFTER_MS, LockOp, LockOutcome, LockRequest, LockRow};
use super::{
    AppendJob, AppendOutcome, DocSnapshot, FilteredPage, FilteredRead, OutcomeSender, Page,
    PageLimit, Retention, RoomHead, Store, StoreError, StoredEvent,
};

mod docs;
mod filtered;

/// Most jobs committed in one transaction, by default.
pub const DEFAULT_MAX_BATCH: usize = 1024;
/// How often the writer deletes events older than the age limit when it is otherwise idle.
const AGE_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Reader connections; reads beyond this many at once wait for one.
const READERS: usize = 2;

/// The tables, as every version of the schema has them (`CREATE ... IF NOT EXISTS`).
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, head INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS locks (
    room TEXT NOT NULL,
    name TEXT NOT NULL,
    token INTEGER NOT NULL,
    holder TEXT NOT NULL,
    conn TEXT NOT NULL,
    until INTEGER NOT NULL,
    released INTEGER NOT NULL,
    PRIMARY KEY (room, name)
) WITHOUT ROWID;
";

/// The schema version this code writes, kept in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 3;

/// The steps from each older version to the next: `MIGRATIONS[v]` turns version `v` into
/// `v + 1`. Version 0 is a new file, or one written before versions were recorded.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 0 -> 1: ids are idempotency keys per sender, (room, sender, id), no longer per room: with
    // (room, id) any member could publish another user's next id first (ids travel in every
    // event) and make the victim's publish a "duplicate" that was never stored.
    "CREATE UNIQUE INDEX IF NOT EXISTS events_by_sender_id ON events (room, sender, id);
     DROP INDEX IF EXISTS events_by_id;",
    // 1 -> 2: the activity feed filters history by event type and by sender (`filtered.rs`):
    // each event's type (`Json::event_type`, here with SQLite's JSON functions for the rows
    // stored before) and an index for each filter, so a filtered page walks only its matches.
    "ALTER TABLE events ADD COLUMN type TEXT;
     UPDATE events SET type = json_extract(body, '$.type')
         WHERE json_type(body, '$.type') = 'text'
         AND length(CAST(json_extract(body, '$.type') AS BLOB)) BETWEEN 1 AND 64;
     CREATE INDEX IF NOT EXISTS events_by_type ON events (room, type, seq) WHERE type IS NOT NULL;
     CREATE INDEX IF NOT EXISTS events_by_sender ON events (room, sender, seq);",
    // 2 -> 3: shared documents keep a compacted snapshot each (`crate::docs`, `docs.rs`).
    "CREATE TABLE IF NOT EXISTS doc_snapshots (
         room TEXT NOT NULL,
         doc TEXT NOT NULL,
         epoch INTEGER NOT NULL,
         seq INTEGER NOT NULL,
         state BLOB NOT NULL,
         PRIMARY KEY (room, doc)
     ) WITHOUT ROWID;",
];

/// Creates the tables and brings the file to [`SCHEMA_VERSION`], in one transaction (a crash
/// half-way leaves the old version, which the next start migrates again). A file written by a
/// newer version is refused rather than misread.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    tx.execute_batch(TABLES).map_err(backend)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend)?;
    if !(0..=SCHEMA_VERSION).contains(&version) {
        return Err(StoreError::Backend(format!(
            "the database has schema version {version}, newer than this server's \
             {SCHEMA_VERSION}: run a newer chorus-server on it"
        )));
    }
    for step in &MIGRATIONS[version as usize..] {
        tx.execute_batch(step).map_err(backend)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(backend)?;
        tracing::info!(
            from = version,
            to = SCHEMA_VERSION,
            "migrated the database schema"
        );
    }
    tx.commit().map_err(backend)
}

/// The SQLite [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    writer: std_mpsc::Sender<WriterMsg>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    epoch: u64,
    retention: Retention,
    commits: Arc<AtomicU64>,
}

#[derive(Debug)]
enum WriterMsg {
    Append(AppendJob),
    Lock(
        LockRequest,
        oneshot::Sender<Result<LockOutcome, StoreError>>,
    ),
    Flush(oneshot::Sender<()>),
    SaveDoc(DocSnapshot, oneshot::Sender<Result<(), StoreError>>),
}

fn backend(err: rusqlite::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(backend)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts the writer thread.
    pub fn open(
        path: &Path,
        retention: Retention,
        outcomes: OutcomeSender,
    ) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_batch(path, retention, outcomes, DEFAULT_MAX_BATCH)
    }

    /// Like [`SqliteStore::open`], committing at most `max_batch` appends per transaction
    /// (1 = one commit, so one fsync, per event; the store benchmark compares the two).
    pub fn open_with_batch(
        path: &Path,
        retention: Retention,
        outcomes: OutcomeSender,
        max_batch: usize,
    ) -> Result<SqliteStore, StoreError> {
        let mut conn = open_connection(path)?;
        migrate(&mut conn)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?1)",
            params![super::random_epoch() as i64],
        )
        .map_err(backend)?;
        let epoch: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |row| {
                row.get(0)
            })
            .map_err(backend)?;
        let epoch = epoch as u64;

        let readers = (0..READERS)
            .map(|_| open_connection(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let (writer, jobs) = std_mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let mut state = Writer {
            conn,
            epoch,
            retention,
            heads: HashMap::new(),
            outcomes,
            path: path.to_owned(),
            max_batch: max_batch.max(1),
            commits: Arc::clone(&commits),
        };
        std::thread::Builder::new()
            .name("chorus-sqlite-writer".into())
            .spawn(move || state.run(jobs))
            .map_err(|err| {
                StoreError::Backend(format!("could not start the writer thread: {err}"))
            })?;
        Ok(SqliteStore {
            writer,
            readers: Arc::new(readers),
            next_reader: AtomicUsize::new(0),
            epoch,
            retention,
            commits,
        })
    }

    /// How many append transactions the writer has committed (each is one fsync).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

impl Store for SqliteStore {
    fn submit(&self, job: AppendJob) {
        if let Err(std_mpsc::SendError(WriterMsg::Append(job))) =
            self.writer.send(WriterMsg::Append(job))
        {
            // The writer thread is gone (it only exits when the store is dropped); say so.
            tracing::error!(room = %job.request.room, "sqlite writer is gone; append refused");
        }
    }

    fn read_bounded(
        &self,
        room: &RoomName,
        after: u64,
        limit: PageLimit,
    ) -> BoxFuture<'_, Result<Page, StoreError>> {
        let readers = Arc::clone(&self.readers);
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        let room = room.clone();
        let (epoch, retention) = (self.epoch, self.retention);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = readers[index].lock().expect("sqlite reader lock");
                read_page(&mut conn, epoch, &retention, &room, after, limit)
            })
            .await
            .map_err(|err| StoreError::Backend(format!("read task failed: {err}")))?
        })
    }

    fn read_filtered(
        &self,
        room: &RoomName,
        read: FilteredRead,
    ) -> BoxFuture<'_, Result<FilteredPage, StoreError>> {
        let readers = Arc::clone(&self.readers);
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        let room = room.clone();
        let (epoch, retention) = (self.epoch, self.retention);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = readers[index].lock().expect("sqlite reader lock");
                filtered::read_filtered(&mut conn, epoch, &retention, &room, &read)
            })
            .await
            .map_err(|err| StoreError::Backend(format!("read task failed: {err}")))?
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        let (done, wait) = oneshot::channel();
        let sent = self.writer.send(WriterMsg::Flush(done)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = wait.await;
            }
        })
    }

    fn lock(&self, request: LockRequest) -> BoxFuture<'static, Result<LockOutcome, StoreError>> {
        self.on_writer(|done| WriterMsg::Lock(request, done))
    }

    fn locks(&self, room: &RoomName, at: u64) -> BoxFuture<'_, Result<Vec<LockInfo>, StoreError>> {
        let room = room.clone();
        self.on_reader(move |conn| read_locks(conn, &room, at))
    }

    fn doc_snapshot(
        &self,
        room: &RoomName,
        doc: &EventId,
    ) -> BoxFuture<'_, Result<Option<DocSnapshot>, StoreError>> {
        let (room, doc) = (room.clone(), doc.clone());
        self.on_reader(move |conn| docs::read(conn, &room, &doc))
    }

    fn save_doc_snapshot(&self, snapshot: DocSnapshot) -> BoxFuture<'_, Result<(), StoreError>> {
        self.on_writer(|done| WriterMsg::SaveDoc(snapshot, done))
    }
}

impl SqliteStore {
    /// Queues a write behind the appends already queued (the writer thread is the only one that
    /// writes: another connection writing would make its deferred transactions fail as busy).
    fn on_writer<T: Send + 'static>(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> WriterMsg,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let (done, wait) = oneshot::channel();
        let sent = self.writer.send(msg(done)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            wait.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    /// Runs `work` on a reader connection, off the async threads.
    fn on_reader<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let readers = Arc::clone(&self.readers);
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = readers[index].lock().expect("sqlite reader lock");
                work(&conn)
            })
            .await
            .map_err(|err| StoreError::Backend(format!("read task failed: {err}")))?
        })
    }
}

/// The live grants in `room` at `at`, by name.
fn read_locks(conn: &Connection, room: &RoomName, at: u64) -> Result<Vec<LockInfo>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, token, holder, conn, until FROM locks
             WHERE room = ?1 AND released = 0 AND until > ?2 ORDER BY name",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![room.as_str(), at as i64], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .map_err(backend)?;
    let mut locks = Vec::new();
    for row in rows {
        let (name, token, user, conn, until) = row.map_err(backend)?;
        let name = EventId::parse(name)
            .map_err(|_| StoreError::Backend(format!("a stored lock name of {room} is invalid")))?;
        locks.push(LockInfo {
            name,
            token: token as u64,
            user,
            conn,
            until: until as u64,
        });
    }
    Ok(locks)
}

/// A lock's row (see `store::locks`), read in the writer's transaction.
fn load_lock(
    conn: &Connection,
    room: &RoomName,
    name: &EventId,
) -> Result<Option<LockRow>, StoreError> {
    conn.prepare_cached(
        "SELECT token, holder, conn, until, released FROM locks WHERE room = ?1 AND name = ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![room.as_str(), name.as_str()], |row| {
            Ok(LockRow {
                grant: LockInfo {
                    name: name.clone(),
                    token: row.get::<_, i64>(0)? as u64,
                    user: row.get(1)?,
                    conn: row.get(2)?,
                    until: row.get::<_, i64>(3)? as u64,
                },
                released: row.get::<_, i64>(4)? != 0,
            })
        })
        .optional()
    })
    .map_err(backend)
}

/// Deletes the room's rows that are forgettable at `at` (`LockRow::forgettable`, in SQL).
fn forget_locks(conn: &Connection, room: &RoomName, at: u64) -> Result<(), StoreError> {
    let before = at.saturating_sub(FORGET_AFTER_MS) as i64;
    conn.prepare_cached("DELETE FROM locks WHERE room = ?1 AND until <= ?2 AND token < ?2")
        .and_then(|mut stmt| stmt.execute(params![room.as_str(), before]))
        .map(drop)
        .map_err(backend)
}

fn save_lock(conn: &Connection, room: &RoomName, row: &LockRow) -> Result<(), StoreError> {
    let grant = &row.grant;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO locks (room, name, token, holder, conn, until, released)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            room.as_str(),
            grant.name.as_str(),
            grant.token as i64,
            grant.user,
            grant.conn,
            grant.until as i64,
            row.released as i64
        ])
    })
    .map(drop)
    .map_err(backend)
}

fn age_cutoff(retention: &Retention) -> u64 {
    crate::clock::unix_ms_now().saturating_sub(retention.max_age.as_millis() as u64)
}

fn read_page(
    conn: &mut Connection,
    epoch: u64,
    retention: &Retention,
    room: &RoomName,
    after: u64,
    limit: PageLimit,
) -> Result<Page, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let RoomHead { head, oldest, .. } = room_head(&tx, epoch, retention, room)?;
    let mut stmt = tx
        .prepare_cached(
            "SELECT seq, id, sender, at, body FROM events WHERE room = ?1 AND seq > ?2 AND seq >= ?3
             ORDER BY seq LIMIT ?4",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            // SQLite integers are signed: an `after` past i64::MAX (beyond any seq, which stay
            // below 2^53) reads as i64::MAX, not as a negative number that reads from seq 1.
            params![
                room.as_str(),
                i64::try_from(after).unwrap_or(i64::MAX),
                oldest as i64,
                limit.events.min(i64::MAX as usize) as i64
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?,
                ))
            },
        )
        .map_err(backend)?;
    let mut events = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let (seq, id, sender, at, body) = row.map_err(backend)?;
        let stored = decode_row(epoch, room, seq, id, sender, at, body)?;
        let size = stored.wire_bytes();
        if !limit.admits(events.len(), bytes, size) {
            break;
        }
        bytes += size;
        events.push(stored);
    }
    drop(stmt);
    tx.finish().map_err(backend)?;
    Ok(Page {
        head: RoomHead {
            epoch,
            head,
            oldest,
        },
        events,
    })
}

/// A room's head and oldest kept seq, read in `tx` (the snapshot its page is read from).
fn room_head(
    tx: &rusqlite::Transaction<'_>,
    epoch: u64,
    retention: &Retention,
    room: &RoomName,
) -> Result<RoomHead, StoreError> {
    let cutoff = age_cutoff(retention) as i64;
    let head: i64 = tx
        .prepare_cached("SELECT head FROM rooms WHERE room = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![room.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(backend)?
        .unwrap_or(0);
    let oldest: Option<i64> = tx
        .prepare_cached("SELECT MIN(seq) FROM events WHERE room = ?1 AND at >= ?2")
        .and_then(|mut stmt| stmt.query_row(params![room.as_str(), cutoff], |row| row.get(0)))
        .map_err(backend)?;
    let head = head as u64;
    Ok(RoomHead {
        epoch,
        head,
        oldest: oldest.map_or(head + 1, |seq| seq as u64),
    })
}

/// One row of `events` (`seq, id, sender, at, body`) as a stored event.
fn decode_row(
    epoch: u64,
    room: &RoomName,
    seq: i64,
    id: String,
    sender: String,
    at: i64,
    body: String,
) -> Result<StoredEvent, StoreError> {
    let corrupt =
        |what: &str| StoreError::Backend(format!("stored {what} of {room} seq {seq} is invalid"));
    Ok(StoredEvent {
        epoch,
        event: Event {
            room: room.clone(),
            seq: Some(seq as u64),
            id: EventId::parse(id).map_err(|_| corrupt("id"))?,
            from: sender,
            at: at as u64,
            body: Json::from_text(body).map_err(|_| corrupt("body"))?,
        },
    })
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    epoch: u64,
    retention: Retention,
    /// Heads of rooms this writer has touched; the writer is the only one that changes them.
    heads: HashMap<RoomName, u64>,
    outcomes: OutcomeSender,
    path: PathBuf,
    max_batch: usize,
    commits: Arc<AtomicU64>,
}

impl Writer {
    fn run(&mut self, jobs: std_mpsc::Receiver<WriterMsg>) {
        loop {
            let first = match jobs.recv_timeout(AGE_SWEEP_EVERY) {
                Ok(msg) => msg,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(err) = self.sweep_by_age() {
                        tracing::warn!(path = %self.path.display(), "age retention sweep failed: {err}");
                    }
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match jobs.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
    }

    /// Runs a batch in its order: each run of appends in one transaction, each lock
    /// operation in one of its own between them (so an append sees every lock operation
    /// queued before it, and none after).
    fn process(&mut self, batch: Vec<WriterMsg>) {
        let mut appends = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for msg in batch {
            match msg {
                WriterMsg::Append(job) => appends.push(job),
                WriterMsg::Flush(done) => flushes.push(done),
                WriterMsg::Lock(request, done) => {
                    self.append_run(std::mem::take(&mut appends));
                    let _ = done.send(self.lock(&request));
                }
                WriterMsg::SaveDoc(snapshot, done) => {
                    self.append_run(std::mem::take(&mut appends));
                    let _ = done.send(docs::write(&self.conn, &snapshot));
                }
            }
        }
        self.append_run(appends);
        for done in flushes {
            let _ = done.send(());
        }
    }

    /// Applies a lock operation (see `store::locks`); an acquire first deletes the room's
    /// forgettable rows.
    fn lock(&mut self, request: &LockRequest) -> Result<LockOutcome, StoreError> {
        let tx = self.conn.transaction().map_err(backend)?;
        if matches!(request.op, LockOp::Acquire { .. }) {
            forget_locks(&tx, &request.room, request.at)?;
        }
        let row = load_lock(&tx, &request.room, &request.name)?;
        let (row, outcome) = LockRow::apply(row.as_ref(), request);
        if let Some(row) = row {
            save_lock(&tx, &request.room, &row)?;
        }
        tx.commit().map_err(backend)?;
        Ok(outcome)
    }

    fn append_run(&mut self, appends: Vec<AppendJob>) {
        if !appends.is_empty() {
            let results = match self.append_all(&appends) {
                Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
                Err(err) => {
                    tracing::error!(path = %self.path.display(), events = appends.len(), "append batch failed: {err}");
                    // Heads may have advanced in the rolled-back transaction: reload them lazily.
                    self.heads.clear();
                    vec![Err(err); appends.len()]
                }
            };
            for (job, result) in appends.into_iter().zip(results) {
                let _ = self.outcomes.send(job.done(result));
            }
        }
    }

    fn append_all(&mut self, jobs: &[AppendJob]) -> Result<Vec<AppendOutcome>, StoreError> {
        let tx = self.conn.transaction().map_err(backend)?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut touched: HashMap<&RoomName, u64> = HashMap::new();
        for job in jobs {
            let request = &job.request;
            let head = match self.heads.get(&request.room) {
                Some(&head) => head,
                None => {
                    let head: Option<i64> = tx
                        .prepare_cached("SELECT head FROM rooms WHERE room = ?1")
                        .and_then(|mut stmt| {
                            stmt.query_row(params![request.room.as_str()], |row| row.get(0))
                                .optional()
                        })
                        .map_err(backend)?;
                    let head = head.unwrap_or(0) as u64;
                    self.heads.insert(request.room.clone(), head);
                    head
                }
            };
            let existing: Option<i64> = tx
                .prepare_cached(
                    "SELECT seq FROM events WHERE room = ?1 AND sender = ?2 AND id = ?3",
                )
                .and_then(|mut stmt| {
                    let key = params![request.room.as_str(), request.from, request.id.as_str()];
                    stmt.query_row(key, |row| row.get(0)).optional()
                })
                .map_err(backend)?;
            if let Some(seq) = existing {
                outcomes.push(AppendOutcome::Duplicate { seq: seq as u64 });
                continue;
            }
            if request.if_seq.is_some_and(|expected| expected != head) {
                outcomes.push(AppendOutcome::Conflict { head });
                continue;
            }
            if let Some(fence) = &request.if_lock {
                let row = load_lock(&tx, &request.room, &fence.name)?;
                if !LockRow::admits(row.as_ref(), fence, &request.from, request.at) {
                    let current = row.filter(|row| row.live(request.at)).map(|row| row.grant);
                    outcomes.push(AppendOutcome::LockLost { current });
                    continue;
                }
            }
            let seq = head + 1;
            tx.prepare_cached("INSERT INTO events (room, seq, id, sender, at, body, type) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        request.room.as_str(),
                        seq as i64,
                        request.id.as_str(),
                        request.from,
                        request.at as i64,
                        request.body.as_text(),
                        request.body.event_type()
                    ])
                })
                .map_err(backend)?;
            self.heads.insert(request.room.clone(), seq);
            touched.insert(&request.room, seq);
            outcomes.push(AppendOutcome::Stored(StoredEvent {
                epoch: self.epoch,
                event: Event {
                    room: request.room.clone(),
                    seq: Some(seq),
                    id: request.id.clone(),
                    from: request.from.clone(),
                    at: request.at,
                    body: request.body.clone(),
                },
            }));
        }
        for (room, head) in touched {
            tx.prepare_cached("INSERT INTO rooms (room, head) VALUES (?1, ?2) ON CONFLICT (room) DO UPDATE SET head = excluded.head")
                .and_then(|mut stmt| stmt.execute(params![room.as_str(), head as i64]))
                .map_err(backend)?;
            let keep_from = head.saturating_sub(self.retention.max_events);
            if keep_from > 0 {
                tx.prepare_cached("DELETE FROM events WHERE room = ?1 AND seq <= ?2")
                    .and_then(|mut stmt| stmt.execute(params![room.as_str(), keep_from as i64]))
                    .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(outcomes)
    }

    fn sweep_by_age(&mut self) -> Result<(), StoreError> {
        let cutoff = age_cutoff(&self.retention) as i64;
        let deleted = self
            .conn
            .execute("DELETE FROM events WHERE at < ?1", params![cutoff])
            .map_err(backend)?;
        if deleted > 0 {
            tracing::debug!(deleted, "age retention removed events");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    #[tokio::test]
    async fn sqlite_store_passes_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let retention = Retention {
            max_events: 5,
            ..Retention::default()
        };
        let store = SqliteStore::open(&dir.path().join("chorus.db"), retention, tx).unwrap();
        contract::check_store(&store, &mut rx).await;
        contract::check_one_epoch_per_store(&store).await;
        contract::check_locks(&store, &mut rx, "locks").await;
        let file = Connection::open(dir.path().join("chorus.db")).unwrap();
        let rows = async || {
            let count = "SELECT COUNT(*) FROM locks WHERE room = 'forget'";
            file.query_row(count, [], |row| row.get::<_, i64>(0))
                .unwrap() as usize
        };
        contract::check_forgotten_locks(&store, "forget", rows).await;
    }

    /// A lock's last token is in the file: after a reopen, a grant at the very same time still
    /// gets a larger token (the time floor alone would give the same one again).
    #[tokio::test]
    async fn lock_tokens_keep_growing_across_a_reopen() {
        use crate::store::locks::LockOp;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chorus.db");
        let at = crate::clock::unix_ms_now();
        let release = |token| {
            contract::lock_request(
                "r",
                LockOp::Release {
                    user: "ana".into(),
                    token,
                    conn: None,
                },
                at,
            )
        };
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let store = SqliteStore::open(&path, Retention::default(), tx).unwrap();
        let first = contract::first_token(&store, "r", at).await;
        store.lock(release(first)).await.unwrap();
        let second = contract::first_token(&store, "r", at).await;
        assert_eq!(second, first + 1);
        store.lock(release(second)).await.unwrap();
        drop(store);

        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let store = SqliteStore::open(&path, Retention::default(), tx).unwrap();
        assert_eq!(contract::first_token(&store, "r", at).await, second + 1);
    }

    /// The schema before ids were scoped by sender (as of commit d6f0651, `SCHEMA` in this
    /// file): ids unique per room, no `user_version`.
    const SCHEMA_BEFORE_SENDER_IDS: &str = "
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, head INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS events (
            room TEXT NOT NULL,
            seq INTEGER NOT NULL,
            id TEXT NOT NULL,
            sender TEXT NOT NULL,
            at INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (room, seq)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (room, id);
    ";

    #[tokio::test]
    async fn a_file_of_the_old_schema_is_migrated_keeping_its_data_and_ids_become_per_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let now = crate::clock::unix_ms_now();
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(SCHEMA_BEFORE_SENDER_IDS).unwrap();
            old.execute("INSERT INTO meta (key, value) VALUES ('epoch', 777)", [])
                .unwrap();
            old.execute("INSERT INTO rooms (room, head) VALUES ('r', 2)", [])
                .unwrap();
            for (seq, id, sender) in [(1, "x", "mallory"), (2, "y", "ana")] {
                old.execute(
                    "INSERT INTO events (room, seq, id, sender, at, body) VALUES ('r', ?1, ?2, ?3, ?4, '{\"old\":true}')",
                    params![seq, id, sender, now as i64],
                )
                .unwrap();
            }
        }

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store = SqliteStore::open(&path, Retention::default(), tx).unwrap();
        let room = RoomName::parse("r").unwrap();
        let page = store.read(&room, 0, 10).await.unwrap();
        assert_eq!(
            (page.head.epoch, page.head.head),
            (777, 2),
            "epoch and head kept"
        );
        let kept: Vec<(u64, &str, &str)> = page
            .events
            .iter()
            .map(|e| (e.seq(), e.event.id.as_str(), e.event.from.as_str()))
            .collect();
        assert_eq!(kept, vec![(1, "x", "mallory"), (2, "y", "ana")]);
        assert_eq!(page.events[0].event.body.as_text(), r#"{"old":true}"#);

        // The new rule holds on the migrated rows: mallory's "x" is no duplicate of ana's
        // next "x", while each sender's own old ids still are duplicates.
        let append = |from: &str, id: &str| contract::request_from(from, "r", id, now, None);
        match contract::append(&store, &mut rx, append("ana", "x")).await {
            AppendOutcome::Stored(stored) => assert_eq!(stored.seq(), 3),
            other => panic!("ana's x must be stored, got {other:?}"),
        }
        for (from, id, seq) in [("mallory", "x", 1), ("ana", "y", 2), ("ana", "x", 3)] {
            assert_eq!(
                contract::append(&store, &mut rx, append(from, id)).await,
                AppendOutcome::Duplicate { seq },
                "{from}'s {id}"
            );
        }
        drop(store);

        let check = Connection::open(&path).unwrap();
        let version: i64 = check
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let indexes: Vec<String> = check
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            indexes,
            ["events_by_sender", "events_by_sender_id", "events_by_type"]
        );
        drop(check);
        // Opening again is a no-op migration.
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let again = SqliteStore::open(&path, Retention::default(), tx).unwrap();
        assert_eq!(again.read(&room, 0, 10).await.unwrap().head.head, 3);
    }

    #[test]
    fn a_file_from_a_newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let err = SqliteStore::open(&path, Retention::default(), tx).unwrap_err();
        assert!(err.to_string().contains("newer than this server"), "{err}");
    }

    #[tokio::test]
    async fn sqlite_store_bounds_pages_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store =
            SqliteStore::open(&dir.path().join("chorus.db"), Retention::default(), tx).unwrap();
        contract::check_page_bytes(&store, &mut rx).await;
    }

    #[tokio::test]
    async fn reopening_keeps_epoch_heads_history_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chorus.db");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store = SqliteStore::open(&path, Retention::default(), tx).unwrap();
        let now = crate::clock::unix_ms_now();
        for id in ["a", "b", "c"] {
            contract::append(&store, &mut rx, contract::request("r", id, now, None)).await;
        }
        let before = store
            .read(&RoomName::parse("r").unwrap(), 0, 10)
            .await
            .unwrap();
        drop(store);

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store = SqliteStore::open(&path, Retention::default(), tx).unwrap();
        let after = store
            .read(&RoomName::parse("r").unwrap(), 0, 10)
            .await
            .unwrap();
        assert_eq!(after, before, "epoch, head and events survive a reopen");
        let dup = contract::append(&store, &mut rx, contract::request("r", "b", now, None)).await;
        assert_eq!(dup, AppendOutcome::Duplicate { seq: 2 });
        match contract::append(&store, &mut rx, contract::request("r", "d", now, None)).await {
            AppendOutcome::Stored(stored) => {
                assert_eq!((stored.seq(), stored.epoch), (4, before.head.epoch))
            }
            other => panic!("expected stored, got {other:?}"),
        }
    }
}
