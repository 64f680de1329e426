//! Nodes on a Redis Cluster (`--redis-cluster`): three masters without replicas started by the
//! test. Members on one node get what the other stored, in order and once, in rooms spread
//! over every shard; signals cross; a shard's master killed and restarted (no persistence: its
//! rooms are lost) resets the members of its rooms, who go on, while the rooms of the other
//! shards are not disturbed; a polling session is adopted across nodes; a room's shard
//! channels are unsubscribed when its last member leaves. Start-up names a misconfiguration.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use chorus_sdk::wire::{ResetReason, ServerFrame};
use support::redis::{RedisCluster, RedisServer};
use support::{Client, PollClient, event_seq, is_ack};

fn cluster_config(cluster: &RedisCluster) -> chorus_server::config::Config {
    let mut config = support::config();
    config.redis = Some(cluster.urls());
    config.redis_cluster = true;
    config
}

/// Receives until every room in `rooms` has had an event with seq `seq` (rooms of different
/// shards arrive in any order relative to each other).
async fn recv_until_all(
    client: &mut Client,
    rooms: &[(String, usize)],
    seq: u64,
) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    let mut done = BTreeSet::new();
    while done.len() < rooms.len() {
        let frame = client.recv().await;
        if let ServerFrame::Event(event) = &frame
            && event.seq == Some(seq)
            && rooms.iter().any(|(room, _)| room == event.room.as_str())
        {
            done.insert(event.room.to_string());
        }
        frames.push(frame);
    }
    frames
}

/// The ids of `room`'s events in `frames`.
fn room_ids(frames: &[ServerFrame], room: &str) -> Vec<String> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::Event(event) if event.room.as_str() == room => Some(event.id.to_string()),
            _ => None,
        })
        .collect()
}

/// Six rooms, two on each master.
fn rooms_on_every_shard(cluster: &RedisCluster) -> Vec<(String, usize)> {
    let mut picked = Vec::new();
    let mut per_shard = [0; 3];
    for n in 0.. {
        let name = format!("room-{n}");
        let shard = cluster.master_of(&format!("chorus:{{{name}}}:head"));
        if per_shard[shard] < 2 {
            per_shard[shard] += 1;
            picked.push((name, shard));
        }
        if picked.len() == 6 {
            return picked;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn two_nodes_on_a_cluster_deliver_each_others_events_in_order_and_once() {
    let cluster = RedisCluster::start();
    let rooms = rooms_on_every_shard(&cluster);
    let shards: BTreeSet<usize> = rooms.iter().map(|(_, shard)| *shard).collect();
    assert_eq!(shards.len(), 3);
    let one = support::start(&cluster_config(&cluster)).await;
    let two = support::start(&cluster_config(&cluster)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    for (room, _) in &rooms {
        ana.join(room, None).await;
        bob.join(room, None).await;
    }
    for n in 1..=4 {
        for (room, _) in &rooms {
            ana.publish(room, &format!("a{n}"), "1").await;
            bob.publish(room, &format!("b{n}"), "2").await;
        }
    }
    let mut on_one = recv_until_all(&mut ana, &rooms, 8).await;
    let mut on_two = recv_until_all(&mut bob, &rooms, 8).await;
    // A publisher's ack may come after the event itself came back through the bus.
    for (client, frames, prefix) in [(&mut ana, &mut on_one, "a"), (&mut bob, &mut on_two, "b")] {
        let acks = |frames: &[ServerFrame]| {
            frames
                .iter()
                .filter(|f| matches!(f, ServerFrame::Ack(a) if a.id.as_str().starts_with(prefix)))
                .count()
        };
        while acks(frames) < 4 * rooms.len() {
            frames.push(client.recv().await);
        }
    }
    for frames in [&on_one, &on_two] {
        for (room, _) in &rooms {
            let seqs: Vec<u64> = frames
                .iter()
                .filter(|f| matches!(f, ServerFrame::Event(e) if e.room.as_str() == room))
                .filter_map(event_seq)
                .collect();
            assert_eq!(seqs, (1..=8).collect::<Vec<_>>(), "{room}: in order, once");
        }
    }
    for (room, _) in &rooms {
        assert_eq!(room_ids(&on_one, room), room_ids(&on_two, room));
    }
    for n in 1..=4 {
        assert!(on_one.iter().any(|f| is_ack(f, &format!("a{n}"))));
        assert!(on_two.iter().any(|f| is_ack(f, &format!("b{n}"))));
    }
    ana.expect_quiet(Duration::from_millis(200)).await;
    bob.expect_quiet(Duration::from_millis(200)).await;
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test]
async fn signals_cross_between_nodes_on_a_cluster() {
    use chorus_server::bus::redis::RedisBus;
    use chorus_server::bus::{Bus, Inbound};
    use chorus_server::store::redis::{KeyLayout, RedisTarget};

    let cluster = RedisCluster::start();
    let target = RedisTarget::parse(&cluster.urls(), true).unwrap();
    let keys = KeyLayout::new("chorus:").unwrap();
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    let (b_tx, mut b_rx) = tokio::sync::mpsc::unbounded_channel();
    let a = RedisBus::open_on(&target, keys.clone(), "node-a".into(), a_tx)
        .await
        .unwrap();
    let b = RedisBus::open_on(&target, keys, "node-b".into(), b_tx)
        .await
        .unwrap();
    let rooms: Vec<_> = rooms_on_every_shard(&cluster)
        .into_iter()
        .map(|(room, _)| chorus_sdk::wire::RoomName::parse(&room).unwrap())
        .collect();
    for room in &rooms {
        a.follow(room).wait().await;
        b.follow(room).wait().await;
    }
    for room in &rooms {
        for n in 0..3u8 {
            a.signal(room, bytes::Bytes::from(vec![b'x', n]));
        }
    }
    // Each room's signals in order; rooms of different shards interleave freely.
    let mut heard: std::collections::HashMap<_, Vec<Inbound>> = Default::default();
    for _ in 0..rooms.len() * 3 {
        let inbound = tokio::time::timeout(support::PATIENCE, b_rx.recv())
            .await
            .expect("heard in time")
            .unwrap();
        let Inbound::Signal { room, .. } = &inbound else {
            panic!("{inbound:?}")
        };
        heard.entry(room.clone()).or_default().push(inbound);
    }
    for room in &rooms {
        let expect: Vec<Inbound> = (0..3u8)
            .map(|n| Inbound::Signal {
                room: room.clone(),
                from_node: "node-a".into(),
                bytes: bytes::Bytes::from(vec![b'x', n]),
            })
            .collect();
        assert_eq!(heard[room], expect);
    }
    b.signal(&rooms[0], bytes::Bytes::from_static(b"pong"));
    let heard = tokio::time::timeout(support::PATIENCE, a_rx.recv())
        .await
        .expect("heard in time")
        .unwrap();
    assert!(matches!(heard, Inbound::Signal { from_node, .. } if from_node == "node-b"));
    assert!(a_rx.try_recv().is_err(), "A never hears its own signals");
    assert!(a.ready().is_ok() && b.ready().is_ok());
}

/// One master is killed and restarted empty: the members of its rooms (on both nodes) get
/// `reset` (`epoch_changed`) and go on in the new lineage; the rooms of the other shards go
/// on without a reset, nothing missed.
#[tokio::test]
async fn a_lost_shard_resets_its_rooms_and_leaves_the_others_alone() {
    let mut cluster = RedisCluster::start();
    let rooms = rooms_on_every_shard(&cluster);
    let one = support::start(&cluster_config(&cluster)).await;
    let two = support::start(&cluster_config(&cluster)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    for (room, _) in &rooms {
        ana.join(room, None).await;
        bob.join(room, None).await;
    }
    for (room, _) in &rooms {
        ana.publish(room, "before", "1").await;
    }
    recv_until_all(&mut ana, &rooms, 1).await;
    recv_until_all(&mut bob, &rooms, 1).await;

    let lost = rooms[0].1;
    cluster.kill(lost);
    cluster.restart(lost);

    // Members of the lost shard's rooms are reset, on both nodes.
    for client in [&mut ana, &mut bob] {
        let mut reset_rooms = BTreeSet::new();
        let expect: BTreeSet<String> = rooms
            .iter()
            .filter(|(_, shard)| *shard == lost)
            .map(|(room, _)| room.clone())
            .collect();
        while reset_rooms != expect {
            let frames = client
                .recv_until(|f| matches!(f, ServerFrame::Reset(_)))
                .await;
            let Some(ServerFrame::Reset(reset)) = frames.last() else {
                unreachable!()
            };
            assert_eq!(reset.reason, ResetReason::EpochChanged);
            assert!(expect.contains(reset.room.as_str()), "{reset:?}");
            reset_rooms.insert(reset.room.to_string());
        }
    }
    // Everyone goes on, in every room; publishes retried until the shard serves again.
    for (room, _) in &rooms {
        let mut attempt = 0;
        loop {
            attempt += 1;
            bob.publish(room, &format!("after-{attempt}"), "2").await;
            let frames = bob
                .recv_until(|f| {
                    matches!(
                        f,
                        ServerFrame::Ack(_) | ServerFrame::Nack(_) | ServerFrame::Error(_)
                    )
                })
                .await;
            if frames
                .iter()
                .any(|f| is_ack(f, &format!("after-{attempt}")))
            {
                break;
            }
            assert!(attempt < 50, "{room}: publishing kept failing: {frames:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Ana (on the other node) hears each room's new event.
    let mut frames = Vec::new();
    let mut heard = BTreeSet::new();
    while heard.len() < rooms.len() {
        let frame = ana.recv().await;
        if let ServerFrame::Event(e) = &frame
            && e.id.as_str().starts_with("after-")
        {
            heard.insert(e.room.to_string());
        }
        frames.push(frame);
    }
    for (room, shard) in &rooms {
        let events: Vec<(u64, String)> = frames
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Event(e) if e.room.as_str() == room => {
                    Some((e.seq.unwrap_or(0), e.id.to_string()))
                }
                _ => None,
            })
            .collect();
        let seq = events.first().map(|(seq, _)| *seq);
        if *shard == lost {
            assert_eq!(seq, Some(1), "{room} starts over: {events:?}");
        } else {
            assert_eq!(seq, Some(2), "{room} goes on: {events:?}");
        }
        assert!(!frames.iter().any(
            |f| matches!(f, ServerFrame::Reset(r) if r.room.as_str() == room && *shard != lost)
        ));
    }
    one.shutdown().await;
    two.shutdown().await;
}

#[test]
fn start_up_names_a_plain_redis_given_as_a_cluster_and_several_urls_without_the_flag() {
    let server = RedisServer::start();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_chorus-server"))
            .args(["--dev", "--bind", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let url = server.url();
    let stderr = run(&["--redis", &url, "--redis-cluster"]);
    assert!(
        stderr.contains("not a cluster") && stderr.contains(&url),
        "{stderr}"
    );
    let stderr = run(&["--redis", &format!("{url},{url}")]);
    assert!(stderr.contains("add --redis-cluster"), "{stderr}");
}

/// The bus alone: a master killed and restarted makes the bus report its rooms as resynced
/// once their subscriptions are back (the bus cannot tell which node it lost, so it repairs
/// every room; a repair of a room that missed nothing changes nothing), and they are live
/// again: the other node's signals are heard in every room.
#[tokio::test]
async fn the_bus_reports_the_rooms_of_a_lost_shard_resynced() {
    use chorus_server::bus::redis::RedisBus;
    use chorus_server::bus::{Bus, Inbound};
    use chorus_server::store::redis::{KeyLayout, RedisTarget};

    let mut cluster = RedisCluster::start();
    let target = RedisTarget::parse(&cluster.urls(), true).unwrap();
    let keys = KeyLayout::new("chorus:").unwrap();
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    let a = RedisBus::open_on(&target, keys.clone(), "node-a".into(), a_tx)
        .await
        .unwrap();
    let rooms = rooms_on_every_shard(&cluster);
    for (room, _) in &rooms {
        a.follow(&chorus_sdk::wire::RoomName::parse(room).unwrap())
            .wait()
            .await;
    }
    let lost = rooms[0].1;
    cluster.kill(lost);
    cluster.restart(lost);
    let expect: BTreeSet<_> = rooms
        .iter()
        .filter(|(_, shard)| *shard == lost)
        .map(|(room, _)| chorus_sdk::wire::RoomName::parse(room).unwrap())
        .collect();
    let mut resynced = BTreeSet::new();
    while !expect.is_subset(&resynced) {
        let heard = tokio::time::timeout(Duration::from_secs(15), a_rx.recv())
            .await
            .expect("heard in time")
            .unwrap();
        let Inbound::Resynced(rooms) = heard else {
            panic!("{heard:?}")
        };
        resynced.extend(rooms);
    }
    let (b_tx, _b_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = RedisBus::open_on(
        &target,
        KeyLayout::new("chorus:").unwrap(),
        "node-b".into(),
        b_tx,
    )
    .await
    .unwrap();
    let mut live = BTreeSet::new();
    for (room, _) in &rooms {
        b.signal(
            &chorus_sdk::wire::RoomName::parse(room).unwrap(),
            bytes::Bytes::from_static(b"hi"),
        );
    }
    while live.len() < rooms.len() {
        let heard = tokio::time::timeout(support::PATIENCE, a_rx.recv())
            .await
            .expect("heard in time")
            .unwrap();
        if let Inbound::Signal { room, .. } = heard {
            live.insert(room);
        }
    }
    // Readiness follows a `PING` to every node every 2 s.
    let mut attempts = 0;
    while let Err(err) = a.ready() {
        attempts += 1;
        assert!(attempts < 100, "the bus stays not ready: {err}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A polling client whose requests alternate between two nodes on the cluster: the session
/// record (on the shard of its session id) lets each node adopt it, so every publish is
/// accepted and every event arrives once, in order; the record's key carries the hash tag.
#[tokio::test]
async fn a_polling_session_alternating_between_nodes_on_a_cluster_is_adopted() {
    let cluster = RedisCluster::start();
    let one = support::start(&cluster_config(&cluster)).await;
    let two = support::start(&cluster_config(&cluster)).await;
    let nodes = [one.local_addr(), two.local_addr()];
    let mut pat = PollClient::new(&one, "pat", "session-rr");
    let joined = pat.join("r").await;
    assert!(joined.iter().any(|f| matches!(f, ServerFrame::Joined(_))));
    for n in 1..=4u64 {
        pat.addr = nodes[(n % 2) as usize];
        let id = format!("p{n}");
        let answer = pat.send(vec![support::publish("r", &id, "1")]).await;
        assert!(answer.iter().any(|f| is_ack(f, &id)), "{answer:?}");
        pat.addr = nodes[((n + 1) % 2) as usize];
        let frames = pat.poll(0).await;
        assert!(
            !frames.iter().any(|f| matches!(f, ServerFrame::Error(e) if e.code == chorus_sdk::wire::ErrorCode::NotJoined)),
            "{frames:?}"
        );
    }
    assert_eq!(pat.delivered["r"], [1, 2, 3, 4]);
    let key = "chorus:session:{session-rr}";
    let master = &cluster.masters()[cluster.master_of(key)];
    assert!(master.command(&format!("EXISTS {key}")).contains(":1"));
    one.shutdown().await;
    two.shutdown().await;
}

/// A room's shard channels are subscribed on its master while someone is in it on a node,
/// and unsubscribed when its last member there leaves.
#[tokio::test]
async fn a_rooms_shard_channels_are_unsubscribed_when_its_last_member_leaves() {
    let cluster = RedisCluster::start();
    let master = &cluster.masters()[cluster.master_of("chorus:{r}:live")];
    let one = support::start(&cluster_config(&cluster)).await;
    let two = support::start(&cluster_config(&cluster)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    ana.join("r", None).await;
    bob.join("r", None).await;
    let numsub = "PUBSUB SHARDNUMSUB chorus:{r}:live chorus:{r}:sig";
    let until = |count: &'static str| async move {
        let mut attempts = 0;
        loop {
            let reply = master.command(numsub);
            if reply.matches(count).count() == 2 {
                return;
            }
            attempts += 1;
            assert!(attempts < 250, "{numsub}: {reply}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    until(":2").await;
    ana.send_text(r#"{"type":"leave","room":"r"}"#).await;
    ana.recv_until(|f| matches!(f, ServerFrame::Left(_))).await;
    until(":1").await;
    bob.send_text(r#"{"type":"leave","room":"r"}"#).await;
    bob.recv_until(|f| matches!(f, ServerFrame::Left(_))).await;
    until(":0").await;
    one.shutdown().await;
    two.shutdown().await;
}
