//! The Redis store against a real `redis-server` started per test (see `tests/support/redis.rs`).

use std::collections::BTreeSet;

use chorus_sdk::wire::{Cursor, ResetReason};
use futures_util::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;
use crate::store::contract::{self, request};
use crate::store::{AppendDone, AppendJob, Origin};

#[path = "../../../tests/support/redis.rs"]
mod redis_server;

use redis_server::{Durability, RedisCluster, RedisServer};

fn small() -> Retention {
    Retention {
        max_events: 5,
        ..Retention::default()
    }
}

async fn open(
    server: &RedisServer,
    prefix: &str,
    retention: Retention,
) -> (RedisStore, UnboundedReceiver<AppendDone>) {
    let (tx, rx) = unbounded_channel();
    let store = RedisStore::open(&server.url(), prefix, retention, tx)
        .await
        .expect("the store opens");
    (store, rx)
}

async fn raw(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn stored(outcome: AppendOutcome) -> StoredEvent {
    match outcome {
        AppendOutcome::Stored(stored) => stored,
        other => panic!("expected stored, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_store_passes_the_store_contract() {
    let server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, small()).await;
    contract::check_store(&store, &mut rx).await;
    contract::check_locks(&store, &mut rx, "locks").await;
    let key = store.keys().locks(&room("forget"));
    let connection = raw(&server).await;
    let rows = async || {
        let mut connection = connection.clone();
        let count: usize = ::redis::cmd("HLEN")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        count
    };
    contract::check_forgotten_locks(&store, "forget", rows).await;
}

/// A lock's last token is in Redis: a store opened again (a restarted node) grants a larger
/// token even at the very same time; and two nodes' stores see one holder.
#[tokio::test]
async fn lock_tokens_keep_growing_across_nodes_and_restarts() {
    use crate::store::locks::{LockOp, LockOutcome};
    let server = RedisServer::start();
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
    let (node_a, _rx) = open(&server, DEFAULT_PREFIX, small()).await;
    let (node_b, _rx_b) = open(&server, DEFAULT_PREFIX, small()).await;
    let first = contract::first_token(&node_a, "r", at).await;
    match node_b
        .lock(contract::lock_request(
            "r",
            contract::acquire("ben", "b-1", 10),
            at,
        ))
        .await
        .unwrap()
    {
        LockOutcome::Held(held) => assert_eq!(held.token, first),
        other => panic!("expected held, got {other:?}"),
    }
    node_a.lock(release(first)).await.unwrap();
    let second = contract::first_token(&node_b, "r", at).await;
    assert_eq!(second, first + 1);
    node_b.lock(release(second)).await.unwrap();
    drop((node_a, node_b));
    let (again, _rx) = open(&server, DEFAULT_PREFIX, small()).await;
    assert_eq!(contract::first_token(&again, "r", at).await, second + 1);
}

#[tokio::test]
async fn redis_store_bounds_pages_by_bytes() {
    let server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, small()).await;
    contract::check_page_bytes(&store, &mut rx).await;
}

#[tokio::test]
async fn keys_carry_the_prefix_and_the_room_as_hash_tag() {
    let keys = KeyLayout::new("acme:").unwrap();
    let doc = room("doc:1");
    assert_eq!(keys.head(&doc), "acme:{doc:1}:head");
    assert_eq!(keys.log(&doc), "acme:{doc:1}:log");
    assert_eq!(keys.ids(&doc), "acme:{doc:1}:ids");
    assert_eq!(keys.live_channel(&doc), "acme:{doc:1}:live");
    assert!(
        KeyLayout::new("a{b}:").is_err(),
        "braces would move the hash tag"
    );

    // Two deployments on one Redis: each has its own rooms.
    let server = RedisServer::start();
    let (one, mut one_rx) = open(&server, "one:", Retention::default()).await;
    let (two, mut two_rx) = open(&server, "two:", Retention::default()).await;
    let now = crate::clock::unix_ms_now();
    for _ in 0..2 {
        contract::append(&one, &mut one_rx, request("r", &random_id(), now, None)).await;
    }
    let first = stored(contract::append(&two, &mut two_rx, request("r", "x", now, None)).await);
    assert_eq!(first.seq(), 1, "prefixes keep deployments apart");
    let mut conn = raw(&server).await;
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let keys: BTreeSet<String> = keys.into_iter().collect();
    let expect: BTreeSet<String> = [
        "one:{r}:head",
        "one:{r}:log",
        "one:{r}:ids",
        "two:{r}:head",
        "two:{r}:log",
        "two:{r}:ids",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, expect);
}

fn random_id() -> String {
    format!("id-{}", crate::store::random_epoch())
}

#[tokio::test]
async fn idempotency_is_per_room_sender_and_id() {
    let server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    let now = crate::clock::unix_ms_now();
    let ana = request("r", "same", now, None);
    let mut bob = request("r", "same", now, None);
    bob.from = "bob".into();
    assert_eq!(
        stored(contract::append(&store, &mut rx, ana.clone()).await).seq(),
        1
    );
    assert_eq!(
        stored(contract::append(&store, &mut rx, bob.clone()).await).seq(),
        2,
        "another sender's id is another event"
    );
    assert_eq!(
        contract::append(&store, &mut rx, bob).await,
        AppendOutcome::Duplicate { seq: 2 }
    );
    assert_eq!(
        contract::append(&store, &mut rx, ana).await,
        AppendOutcome::Duplicate { seq: 1 }
    );
}

#[tokio::test]
async fn a_flush_gives_rooms_a_new_epoch_and_resuming_clients_a_reset() {
    let server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    let now = crate::clock::unix_ms_now();
    let mut before = Vec::new();
    for id in ["a", "b", "c"] {
        before.push(stored(
            contract::append(&store, &mut rx, request("r", id, now, None)).await,
        ));
    }
    let old = store.read(&room("r"), 0, 10).await.unwrap().head;
    assert_eq!((old.epoch, old.head), (before[0].epoch, 3));
    let cursor = Cursor {
        epoch: old.epoch,
        seq: 3,
    };
    assert_eq!(old.resume(cursor), Ok(()));

    let mut conn = raw(&server).await;
    ::redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();

    // A read after the loss reports a new lineage; the next append continues it.
    let lost = store.read(&room("r"), 0, 10).await.unwrap();
    assert_ne!(lost.head.epoch, old.epoch, "the lost room gets a new epoch");
    assert_eq!(
        (lost.head.head, lost.head.oldest, lost.events.len()),
        (0, 1, 0)
    );
    assert_eq!(
        lost.head.resume(cursor),
        Err(ResetReason::EpochChanged),
        "a client resuming from before the loss is reset"
    );
    let next = stored(contract::append(&store, &mut rx, request("r", "d", now, None)).await);
    assert_eq!((next.epoch, next.seq()), (lost.head.epoch, 1));

    // An append first (no read in between) also starts a new lineage.
    ::redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let after = stored(contract::append(&store, &mut rx, request("r", "a", now, None)).await);
    assert_eq!(
        after.seq(),
        1,
        "the id of the lost lineage is not a duplicate"
    );
    assert_ne!(after.epoch, lost.head.epoch);
    assert_ne!(after.epoch, old.epoch);
}

#[tokio::test]
async fn a_room_whose_head_was_evicted_starts_over_without_the_old_events() {
    let server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    let now = crate::clock::unix_ms_now();
    for id in ["a", "b"] {
        contract::append(&store, &mut rx, request("r", id, now, None)).await;
        contract::append(&store, &mut rx, request("s", id, now, None)).await;
    }
    let old = store.read(&room("r"), 0, 10).await.unwrap().head;
    // Eviction (or a Cluster shard's failover) can take one key and leave the others.
    let mut conn = raw(&server).await;
    for room_name in ["r", "s"] {
        ::redis::cmd("DEL")
            .arg(store.keys().head(&room(room_name)))
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    let read = store.read(&room("r"), 0, 10).await.unwrap();
    assert_ne!(read.head.epoch, old.epoch);
    assert_eq!(
        (read.head.head, read.events.len()),
        (0, 0),
        "nothing of the old lineage"
    );
    let first = stored(contract::append(&store, &mut rx, request("s", "a", now, None)).await);
    assert_eq!(
        first.seq(),
        1,
        "neither the old log nor the old dedupe records count"
    );
    let page = store.read(&room("s"), 0, 10).await.unwrap();
    assert_eq!(page.events, vec![first]);
}

#[tokio::test]
async fn dedupe_records_and_the_log_stay_bounded_and_expire() {
    let server = RedisServer::start();
    let retention = Retention {
        max_events: 5,
        max_age: Duration::from_secs(3600),
    };
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, retention).await;
    let now = crate::clock::unix_ms_now();
    for n in 0..40 {
        contract::append(&store, &mut rx, request("r", &format!("e{n}"), now, None)).await;
    }
    let keys = store.keys().clone();
    let r = room("r");
    let mut conn = raw(&server).await;
    let count = |key: String, command: &'static str| {
        let mut conn = conn.clone();
        async move {
            ::redis::cmd(command)
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count(keys.ids(&r), "HLEN").await,
        5,
        "one record per kept event"
    );
    assert_eq!(count(keys.log(&r), "XLEN").await, 5);
    for key in [keys.ids(&r), keys.log(&r)] {
        let ttl = count(key.clone(), "PTTL").await;
        assert!(
            ttl > 0 && ttl <= 3_600_000,
            "{key} expires with the age limit: {ttl}"
        );
    }
    assert_eq!(count(keys.head(&r), "PTTL").await, -1, "the head stays");
    // The record of a trimmed event is gone: its id is new again, as in the other stores.
    let again = stored(contract::append(&store, &mut rx, request("r", "e0", now, None)).await);
    assert_eq!(again.seq(), 41);

    // Age: events older than max_age go at the next publish, with their records.
    let old = now - 2 * 3600 * 1000;
    for id in ["o1", "o2"] {
        contract::append(&store, &mut rx, request("aging", id, old, None)).await;
    }
    assert_eq!(count(keys.ids(&room("aging")), "HLEN").await, 0);
    let page = store.read(&room("aging"), 0, 10).await.unwrap();
    assert_eq!(
        (page.head.head, page.head.oldest, page.events.len()),
        (2, 3, 0)
    );

    // A read of a room nobody published to leaves an expiring epoch behind, nothing else.
    let ghost = room("ghost");
    store.read(&ghost, 0, 10).await.unwrap();
    let ttl = count(keys.head(&ghost), "PTTL").await;
    assert!(ttl > 0, "{ttl}");
    let _: () = ::redis::cmd("PING").query_async(&mut conn).await.unwrap();
}

#[tokio::test]
async fn two_nodes_appending_to_one_room_never_share_a_seq() {
    let server = RedisServer::start();
    let (one, mut one_rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    let (two, mut two_rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    let now = crate::clock::unix_ms_now();
    const EACH: u64 = 400;
    // Interleaved: both writers have jobs queued at once, in small bursts.
    for n in 0..EACH {
        for (node, store) in [("one", &one), ("two", &two)] {
            store.submit(AppendJob {
                origin: Origin::Conn(n),
                request: request("shared", &format!("{node}-{n}"), now, None),
            });
        }
        if n % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut seqs = Vec::new();
    for rx in [&mut one_rx, &mut two_rx] {
        let mut last = 0;
        for n in 0..EACH {
            let done = rx.recv().await.unwrap();
            assert_eq!(done.origin, Origin::Conn(n), "outcomes in submission order");
            let seq = stored(done.result.unwrap()).seq();
            assert!(seq > last, "one node's seqs rise in submission order");
            last = seq;
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    let expect: Vec<u64> = (1..=2 * EACH).collect();
    assert_eq!(seqs, expect, "every seq handed out once, none skipped");
    let page = one.read(&room("shared"), 0, 10_000).await.unwrap();
    assert_eq!(page.events.len() as u64, 2 * EACH);
}

#[tokio::test]
async fn every_stored_event_is_published_on_the_room_channel() {
    let server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    let mut pubsub = ::redis::Client::open(server.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub
        .subscribe(store.keys().live_channel(&room("doc:1")))
        .await
        .unwrap();
    let now = crate::clock::unix_ms_now();
    let mut request = request("doc:1", "m1", now, None);
    request.body = Json::from_text("{\"text\":\"two\\nlines\"}\n").unwrap();
    let event = stored(contract::append(&store, &mut rx, request.clone()).await);
    // A duplicate and a conflict publish nothing; the next stored event comes next.
    contract::append(&store, &mut rx, request).await;
    contract::append(
        &store,
        &mut rx,
        contract::request("doc:1", "m2", now, Some(7)),
    )
    .await;
    let next = stored(
        contract::append(&store, &mut rx, contract::request("doc:1", "m3", now, None)).await,
    );
    let mut messages = pubsub.on_message();
    for expect in [event, next] {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("a live message")
            .unwrap();
        assert_eq!(decode_live(message.get_payload_bytes()).unwrap(), expect);
    }
}

#[tokio::test]
async fn aof_always_keeps_every_acked_event_across_a_kill() {
    let mut server = RedisServer::start_with(Durability::AofAlways);
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    let now = crate::clock::unix_ms_now();
    for n in 0..200 {
        store.submit(AppendJob {
            origin: Origin::Conn(n),
            request: request("r", &format!("e{n}"), now, None),
        });
    }
    let mut acked = Vec::new();
    for _ in 0..200 {
        acked.push(stored(rx.recv().await.unwrap().result.unwrap()));
    }
    server.kill();
    server.restart();

    let page = read_when_back(&store, &room("r")).await;
    assert_eq!(page.head.epoch, acked[0].epoch, "the lineage survives");
    assert_eq!(page.events, acked, "every acked event survives SIGKILL");
    // The same store goes on after Redis came back (reconnected, scripts loaded again).
    let mut outcome = None;
    for _ in 0..50 {
        store.submit(AppendJob {
            origin: Origin::Conn(1),
            request: request("r", "after", now, None),
        });
        match rx.recv().await.unwrap().result {
            Ok(done) => {
                outcome = Some(done);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let next = stored(outcome.expect("appends work again once Redis is back"));
    assert_eq!((next.epoch, next.seq()), (acked[0].epoch, 201));
}

async fn read_when_back(store: &RedisStore, room: &RoomName) -> Page {
    for _ in 0..50 {
        if let Ok(page) = store.read(room, 0, 1000).await {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Redis did not come back");
}

#[tokio::test]
async fn unreachable_redis_fails_appends_reads_and_readiness_with_its_url() {
    let mut server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    store.ready().await.unwrap();
    server.kill();
    let url = server.url();
    let now = crate::clock::unix_ms_now();
    store.submit(AppendJob {
        origin: Origin::Conn(1),
        request: request("r", "1", now, None),
    });
    let done = rx.recv().await.unwrap();
    let err = done.result.expect_err("no Redis, no append").to_string();
    assert!(err.contains(&url), "{err}");
    let err = store.read(&room("r"), 0, 1).await.unwrap_err().to_string();
    assert!(err.contains(&url), "{err}");
    assert!(store.ready().await.is_err());

    server.restart();
    read_when_back(&store, &room("r")).await;
    store.ready().await.unwrap();
}

#[tokio::test]
async fn opening_fails_with_the_url_when_redis_is_unreachable() {
    let port = {
        let server = RedisServer::start();
        server.port()
    };
    let url = format!("redis://:hunter2@127.0.0.1:{port}/");
    let (tx, _rx) = unbounded_channel();
    let err = RedisStore::open(&url, DEFAULT_PREFIX, Retention::default(), tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("redis://:***@127.0.0.1:{port}/")),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "passwords stay out of messages: {err}"
    );
    let (tx, _rx) = unbounded_channel();
    let err = RedisStore::open("http://h/", DEFAULT_PREFIX, Retention::default(), tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("http://h/ is not a Redis URL"), "{err}");
}

#[tokio::test]
async fn tls_urls_are_supported_by_the_build() {
    // A plain server cannot complete a TLS handshake, but the failure must come from the
    // handshake, not from a build without TLS (or without a rustls crypto provider).
    let server = RedisServer::start();
    let url = format!("rediss://127.0.0.1:{}/", server.port());
    let (tx, _rx) = unbounded_channel();
    let err = RedisStore::open(&url, DEFAULT_PREFIX, Retention::default(), tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url), "{err}");
    assert!(!err.to_lowercase().contains("feature"), "{err}");
}

#[test]
fn passwords_are_masked_in_urls() {
    fn check(url: &str, expect: &str) {
        assert_eq!(redacted_url(url), expect, "{url}");
    }
    check("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/");
    check("redis://:pw@host/0", "redis://:***@host/0");
    check("rediss://user:pw@host:6380", "rediss://user:***@host:6380");
    check("redis://pw@host", "redis://***@host");
    check("redis://a:b@c@host/", "redis://a:***@host/");
    check("not a url", "not a url");
}

#[test]
fn live_messages_decode_and_bad_ones_are_refused() {
    let event = decode_live(b"7\n3\n1767139200123\ndoc:1\nc7-1\nana\n{\"a\":\n1}").unwrap();
    assert_eq!((event.epoch, event.seq()), (7, 3));
    assert_eq!(event.event.room.as_str(), "doc:1");
    assert_eq!(event.event.from, "ana");
    assert_eq!(event.event.body.as_text(), "{\"a\":\n1}");
    for bad in [
        &b"7\n3\n1\ndoc\nid\nana"[..],
        b"x\n3\n1\ndoc\nid\nana\n{}",
        b"7\n3\n1\ndoc\nid\nana\n{",
    ] {
        assert!(decode_live(bad).is_err(), "{bad:?}");
    }
}

async fn open_cluster(
    cluster: &RedisCluster,
    retention: Retention,
) -> (RedisStore, UnboundedReceiver<AppendDone>) {
    let (tx, rx) = unbounded_channel();
    let target = RedisTarget::parse(&cluster.urls(), true).unwrap();
    let store = RedisStore::open_on(&target, DEFAULT_PREFIX, retention, tx)
        .await
        .expect("the store opens on the cluster");
    (store, rx)
}

#[tokio::test]
async fn redis_store_passes_the_store_contract_on_a_cluster() {
    let cluster = RedisCluster::start();
    let (store, mut rx) = open_cluster(&cluster, small()).await;
    contract::check_store(&store, &mut rx).await;
    let (store, mut rx) = open_cluster(&cluster, small()).await;
    contract::check_page_bytes(&store, &mut rx).await;
    let (store, mut rx) = open_cluster(&cluster, small()).await;
    contract::check_locks(&store, &mut rx, "locks").await;
    let (store, mut rx) = open_cluster(&cluster, Retention::default()).await;
    crate::store::filter::contract::check_filtered_reads(&store, &mut rx).await;
}

/// Rooms on all three shards, their jobs interleaved in batches: each room's seqs rise in
/// submission order, every outcome comes back in submission order, and a master that lost
/// its keys and scripts (killed, restarted) serves its rooms again under a new epoch while
/// the other shards' rooms keep their lineage.
#[tokio::test]
async fn on_a_cluster_outcomes_keep_submission_order_and_a_lost_shard_starts_over() {
    let mut cluster = RedisCluster::start();
    let (store, mut rx) = open_cluster(&cluster, Retention::default()).await;
    let rooms: Vec<String> = (0..30).map(|n| format!("room-{n}")).collect();
    let mut shards = BTreeSet::new();
    for name in &rooms {
        shards.insert(cluster.master_of(&store.keys().head(&room(name))));
    }
    assert_eq!(shards.len(), 3, "the rooms are spread over every shard");
    let now = crate::clock::unix_ms_now();
    const EACH: u64 = 20;
    let mut n = 0;
    for round in 0..EACH {
        for name in &rooms {
            store.submit(AppendJob {
                origin: Origin::Conn(n),
                request: request(name, &format!("e{round}"), now, None),
            });
            n += 1;
        }
    }
    let mut last: std::collections::HashMap<RoomName, (u64, u64)> = Default::default();
    for expect in 0..n {
        let done = rx.recv().await.unwrap();
        assert_eq!(
            done.origin,
            Origin::Conn(expect),
            "outcomes in submission order"
        );
        let event = stored(done.result.unwrap());
        let entry = last
            .entry(event.event.room.clone())
            .or_insert((event.epoch, 0));
        assert_eq!(
            event.seq(),
            entry.1 + 1,
            "each room's seqs in submission order"
        );
        entry.1 = event.seq();
    }
    let lost_shard = cluster.master_of(&store.keys().head(&room(&rooms[0])));
    cluster.kill(lost_shard);
    cluster.restart(lost_shard);
    for name in &rooms {
        let r = room(name);
        let (epoch, head) = last[&r];
        let mut outcome = None;
        for _ in 0..100 {
            store.submit(AppendJob {
                origin: Origin::Conn(0),
                request: request(name, "after", now, None),
            });
            match rx.recv().await.unwrap().result {
                Ok(done) => {
                    outcome = Some(stored(done));
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let next = outcome.expect("appends work again once the master is back");
        if cluster.master_of(&store.keys().head(&r)) == lost_shard {
            assert_ne!(next.epoch, epoch, "{name} was lost with its shard");
            assert_eq!(next.seq(), 1);
        } else {
            assert_eq!(
                (next.epoch, next.seq()),
                (epoch, head + 1),
                "{name} is untouched"
            );
        }
        let page = read_when_back(&store, &r).await;
        assert_eq!(page.head.epoch, next.epoch);
    }
}

#[tokio::test]
async fn the_live_message_is_published_on_the_rooms_shard() {
    let cluster = RedisCluster::start();
    let (store, mut rx) = open_cluster(&cluster, Retention::default()).await;
    let channel = store.keys().live_channel(&room("doc:1"));
    let master = cluster.master_of(&channel);
    let url = cluster.masters()[master].url();
    let client = ::redis::Client::open(format!("{url}?protocol=resp3")).unwrap();
    let (tx, mut pushes) = unbounded_channel();
    let config = ::redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    ::redis::cmd("SSUBSCRIBE")
        .arg(&channel)
        .exec_async(&mut conn)
        .await
        .unwrap();
    let now = crate::clock::unix_ms_now();
    let event = stored(contract::append(&store, &mut rx, request("doc:1", "m1", now, None)).await);
    loop {
        let push = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
            .await
            .expect("a push")
            .unwrap();
        if push.kind == ::redis::PushKind::SMessage {
            let Some(Value::BulkString(payload)) = push.data.get(1) else {
                panic!("{push:?}")
            };
            assert_eq!(decode_live(payload).unwrap(), event);
            break;
        }
    }
}

#[tokio::test]
async fn opening_names_the_wrong_kind_of_redis() {
    let server = RedisServer::start();
    let (tx, _rx) = unbounded_channel();
    let target = RedisTarget::parse(&server.url(), true).unwrap();
    let err = RedisStore::open_on(&target, DEFAULT_PREFIX, Retention::default(), tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a cluster") && err.contains(&server.url()),
        "{err}"
    );

    let cluster = RedisCluster::start();
    let (tx, _rx) = unbounded_channel();
    let err = RedisStore::open(
        &cluster.masters()[0].url(),
        DEFAULT_PREFIX,
        Retention::default(),
        tx,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("add --redis-cluster"), "{err}");

    // A cluster node whose cluster was never created: no slot is served.
    let lone = RedisServer::start_cluster_node();
    let (tx, _rx) = unbounded_channel();
    let err = RedisStore::open_on(
        &RedisTarget::Cluster(vec![lone.url()]),
        DEFAULT_PREFIX,
        Retention::default(),
        tx,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("the cluster is down"), "{err}");

    let (tx, _rx) = unbounded_channel();
    let err = RedisStore::open_on(
        &RedisTarget::Cluster(vec![format!("redis://127.0.0.1:{}/", server.port() ^ 1)]),
        DEFAULT_PREFIX,
        Retention::default(),
        tx,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("Redis at redis://127.0.0.1:"), "{err}");
}

#[tokio::test]
async fn redis_store_filters_history_by_type_and_sender_with_a_bounded_scan() {
    let server = RedisServer::start();
    let (store, mut rx) = open(&server, DEFAULT_PREFIX, Retention::default()).await;
    crate::store::filter::contract::check_filtered_reads(&store, &mut rx).await;
}
