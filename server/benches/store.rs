//! Store throughput: how many durable appends per second each store sustains, and what batching
//! commits buys on SQLite (one fsync per batch instead of one per event).
//!
//! `cargo bench -p chorus-server --bench store` prints one line per configuration.

#![allow(clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use chorus_sdk::wire::{EventId, Json, RoomName};
use chorus_server::store::memory::MemoryStore;
use chorus_server::store::sqlite::{DEFAULT_MAX_BATCH, SqliteStore};
use chorus_server::store::{AppendJob, AppendRequest, Origin, Retention, Store};

const ROOMS: usize = 10;

fn job(n: usize) -> AppendJob {
    AppendJob {
        origin: Origin::Conn(1),
        request: AppendRequest {
            room: RoomName::parse(format!("room-{}", n % ROOMS)).unwrap(),
            id: EventId::parse(format!("e{n}")).unwrap(),
            from: "bench".into(),
            at: chorus_server::clock::unix_ms_now(),
            body: Json::from_text(r#"{"text":"a typical chat message of some sixty bytes or so"}"#)
                .unwrap(),
            if_seq: None,
            if_lock: None,
        },
    }
}

#[allow(clippy::disallowed_methods)] // A benchmark measures wall time.
async fn measure(
    name: &str,
    events: usize,
    store: Arc<dyn Store>,
    mut outcomes: tokio::sync::mpsc::UnboundedReceiver<chorus_server::store::AppendDone>,
    commits: impl Fn() -> Option<u64>,
) {
    let started = Instant::now();
    for n in 0..events {
        store.submit(job(n));
    }
    for _ in 0..events {
        outcomes.recv().await.unwrap().result.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let per_commit = commits().map_or(String::from("-"), |c| {
        format!(
            "{c} commits, {:.1} events per commit",
            events as f64 / c.max(1) as f64
        )
    });
    println!(
        "{name:<28} {events:>7} events in {seconds:>6.3} s = {:>9.0} events/s ({per_commit})",
        events as f64 / seconds
    );
}

#[tokio::main]
async fn main() {
    let retention = Retention::default();
    let dir = tempfile::tempdir().unwrap();

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    measure(
        "memory",
        50_000,
        Arc::new(MemoryStore::new(retention, tx)),
        rx,
        || None,
    )
    .await;

    for (label, batch, events) in [
        ("sqlite batched (default)", DEFAULT_MAX_BATCH, 50_000),
        ("sqlite one commit per event", 1, 2_000),
    ] {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let store = Arc::new(
            SqliteStore::open_with_batch(
                &dir.path().join(format!("{batch}.db")),
                retention,
                tx,
                batch,
            )
            .unwrap(),
        );
        let counter = Arc::clone(&store);
        measure(label, events, store, rx, move || Some(counter.commits())).await;
    }
}
