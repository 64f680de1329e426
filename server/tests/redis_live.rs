//! Live delivery across nodes on one Redis (the bus): several in-process servers on a real
//! `redis-server`. Members on one node get what another stored, in order and once; held polls
//! wake; a lost subscription (Redis restarted) is re-established and repaired, and a room Redis
//! lost resets its members; a room nobody is in is no longer subscribed.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{ResetReason, ServerFrame};
use chorus_server::RunningServer;
use support::redis::{Durability, RedisServer};
use support::{Client, PollClient, event_seq, http, is_ack};

use support::BACKEND_KEY as KEY;

/// Publishes `id` to room `r` through the backend REST API of `server`, retrying while Redis
/// is unreachable (the node reconnects by itself).
async fn backend_publish(server: &RunningServer, id: &str) {
    let auth = format!("Bearer {KEY}");
    let body = format!(r#"{{"id":"{id}","body":{{"id":"{id}"}}}}"#);
    // About `support::PATIENCE`, counted in attempts (tests read no clock).
    let mut attempts = 0u32;
    loop {
        let response = http(
            server,
            "POST",
            "/v1/rooms/r/events",
            &[("Authorization", &auth)],
            Some(&body),
        )
        .await;
        if response.status == 200 {
            return;
        }
        assert!(
            {
                attempts += 1;
                attempts < 250
            },
            "publish {id} kept failing: {} {}",
            response.status,
            response.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ids of the events in `frames`, in order.
fn event_ids(frames: &[ServerFrame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::Event(event) => Some(event.id.to_string()),
            _ => None,
        })
        .collect()
}

/// Waits until `check` holds on what `redis-server` answers to `command`.
async fn until_redis(redis: &RedisServer, command: &str, check: impl Fn(&str) -> bool) {
    // About `support::PATIENCE`, counted in attempts (tests read no clock).
    let mut attempts = 0u32;
    loop {
        let reply = redis.command(command);
        if check(&reply) {
            return;
        }
        assert!(
            {
                attempts += 1;
                attempts < 250
            },
            "{command}: still {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `PUBSUB NUMSUB` of room `r`'s live channel, as the raw reply's last number.
fn live_subscribers(reply: &str) -> Option<u64> {
    reply.lines().last()?.strip_prefix(':')?.parse().ok()
}

/// Waits until `/metrics` of `server` has a line starting with `line`.
async fn until_metric(server: &RunningServer, line: &str) {
    // About `support::PATIENCE`, counted in attempts (tests read no clock).
    let mut attempts = 0u32;
    loop {
        let metrics = http(server, "GET", "/metrics", &[], None).await.body;
        if metrics.lines().any(|l| l.starts_with(line)) {
            return;
        }
        assert!(
            {
                attempts += 1;
                attempts < 250
            },
            "no {line:?} in\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn members_on_another_node_get_its_publishes_live_in_order_and_once() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    ana.join("r", None).await;
    bob.join("r", None).await;

    // Both nodes publish, members and the backend, interleaved.
    for n in 1..=5 {
        ana.publish("r", &format!("a{n}"), "1").await;
        bob.publish("r", &format!("b{n}"), "2").await;
        backend_publish(&one, &format!("k{n}")).await;
    }
    let on_two = bob.recv_until(|f| event_seq(f) == Some(15)).await;
    let on_one = ana.recv_until(|f| event_seq(f) == Some(15)).await;
    for frames in [&on_two, &on_one] {
        let seqs: Vec<u64> = frames.iter().filter_map(event_seq).collect();
        assert_eq!(seqs, (1..=15).collect::<Vec<_>>(), "in order, once");
    }
    assert_eq!(event_ids(&on_two), event_ids(&on_one));
    for n in 1..=5 {
        assert!(on_two.iter().any(|f| is_ack(f, &format!("b{n}"))));
        assert!(on_one.iter().any(|f| is_ack(f, &format!("a{n}"))));
    }
    bob.expect_quiet(Duration::from_millis(200)).await;
    // Room r, and the notice room every node follows while it runs.
    until_metric(&two, "chorus_bus_followed_rooms 2").await;
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test]
async fn a_poll_held_on_one_node_wakes_when_another_node_stores() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    ana.join("r", None).await;
    let mut poller = PollClient::new(&two, "pat", "session-1");
    poller.join("r").await;
    // Polls answer the room's presence (`state`) while it changes: first pat alone, then with
    // ana once node two has heard node one's members (its `sync`, which may come after the
    // first poll). Poll until a `state` shows ana and a poll after it is quiet; then nothing is
    // due and the next poll is held.
    let mut sees_ana = false;
    for attempt in 0.. {
        assert!(attempt < 100, "node two's presence never settled");
        let frames = poller.poll(0).await;
        let state = frames.iter().find_map(|frame| match frame {
            ServerFrame::State(state) => Some(state),
            _ => None,
        });
        match state {
            Some(state) => {
                sees_ana |= state
                    .presence
                    .as_ref()
                    .is_some_and(|presence| presence.users.iter().any(|u| u.user == "ana"));
            }
            None if sees_ana => break,
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let held = tokio::spawn(async move {
        // Far longer than the test runs: it only returns early if it is woken.
        let frames = poller.poll(60_000).await;
        (poller, frames)
    });
    // The poll is held on node two before node one stores.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished());
    ana.publish("r", "a1", "1").await;
    let (poller, frames) = tokio::time::timeout(support::PATIENCE, held)
        .await
        .expect("the held poll woke")
        .unwrap();
    assert_eq!(event_ids(&frames), ["a1"]);
    assert_eq!(poller.delivered["r"], [1]);
    one.shutdown().await;
    two.shutdown().await;
}

/// Redis restarts with everything kept (AOF): each node's subscriber reconnects and subscribes
/// its rooms again, and what was stored while it was away reaches the members.
#[tokio::test]
async fn after_a_redis_restart_with_aof_subscriptions_come_back_and_nothing_is_missed() {
    let mut redis = RedisServer::start_with(Durability::AofAlways);
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut bob = Client::connect(&two, "bob").await;
    let joined = bob.join("r", None).await;
    backend_publish(&one, "k1").await;
    bob.recv_until(|f| event_seq(f) == Some(1)).await;

    redis.restart();
    // Stored as soon as node one reaches Redis again: node two's subscriber may still be away.
    backend_publish(&one, "k2").await;
    backend_publish(&one, "k3").await;
    let frames = bob.recv_until(|f| event_seq(f) == Some(3)).await;
    assert_eq!(event_ids(&frames), ["k2", "k3"]);
    until_metric(&two, "chorus_bus_reconnects_total 1").await;
    until_redis(&redis, "PUBSUB NUMSUB chorus:{r}:live", |reply| {
        live_subscribers(reply) == Some(1)
    })
    .await;
    // Live again.
    backend_publish(&one, "k4").await;
    let frames = bob.recv_until(|f| event_seq(f) == Some(4)).await;
    assert_eq!(event_ids(&frames), ["k4"]);
    assert!(!frames.iter().any(|f| matches!(f, ServerFrame::Reset(_))));
    let _ = joined;
    one.shutdown().await;
    two.shutdown().await;
}

/// Redis restarts with nothing kept: the room's lineage is gone. Members on both nodes are
/// told `reset` (`epoch_changed`) and go on in the new lineage.
#[tokio::test]
async fn after_a_redis_restart_without_persistence_members_are_reset_and_go_on() {
    let mut redis = RedisServer::start_with(Durability::None);
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    let before = ana.join("r", None).await;
    bob.join("r", None).await;
    backend_publish(&one, "k1").await;
    ana.recv_until(|f| event_seq(f) == Some(1)).await;
    bob.recv_until(|f| event_seq(f) == Some(1)).await;

    redis.restart();
    let is_reset = |f: &ServerFrame| matches!(f, ServerFrame::Reset(_));
    for client in [&mut ana, &mut bob] {
        let frames = client.recv_until(is_reset).await;
        let Some(ServerFrame::Reset(reset)) = frames.last() else {
            unreachable!()
        };
        assert_eq!(reset.reason, ResetReason::EpochChanged);
        assert_ne!(reset.epoch, before.epoch);
    }
    backend_publish(&one, "k2").await;
    for client in [&mut ana, &mut bob] {
        let frames = client
            .recv_until(|f| matches!(f, ServerFrame::Event(e) if e.id.as_str() == "k2"))
            .await;
        assert_eq!(event_ids(&frames), ["k2"], "{frames:?}");
    }
    one.shutdown().await;
    two.shutdown().await;
}

/// One node alone on Redis: Redis restarts without persistence and the next publish begins a
/// new lineage. The members hear `reset` and then the event (before the bus, the hub dropped
/// the event of the unknown epoch and acked it: the members saw nothing).
#[tokio::test]
async fn one_node_hears_the_new_lineage_after_redis_lost_its_rooms() {
    let mut redis = RedisServer::start_with(Durability::None);
    let one = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&one, "bob").await;
    ana.join("r", None).await;
    bob.join("r", None).await;
    ana.publish("r", "a1", "1").await;
    bob.recv_until(|f| event_seq(f) == Some(1)).await;

    redis.restart();
    backend_publish(&one, "k2").await;
    let frames = bob
        .recv_until(|f| matches!(f, ServerFrame::Event(e) if e.id.as_str() == "k2"))
        .await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Reset(r) if r.reason == ResetReason::EpochChanged)),
        "{frames:?}"
    );
    one.shutdown().await;
}

#[tokio::test]
async fn a_room_is_unsubscribed_when_its_last_member_leaves() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    ana.join("r", None).await;
    bob.join("r", None).await;
    let numsub = "PUBSUB NUMSUB chorus:{r}:live chorus:{r}:sig";
    until_redis(&redis, numsub, |reply| reply.matches(":2").count() == 2).await;
    ana.send_text(r#"{"type":"leave","room":"r"}"#).await;
    ana.recv_until(|f| matches!(f, ServerFrame::Left(_))).await;
    until_redis(&redis, numsub, |reply| reply.matches(":1").count() == 2).await;
    bob.send_text(r#"{"type":"leave","room":"r"}"#).await;
    bob.recv_until(|f| matches!(f, ServerFrame::Left(_))).await;
    until_redis(&redis, numsub, |reply| reply.matches(":0").count() == 2).await;
    // Only the notice room, which every node follows while it runs.
    until_metric(&two, "chorus_bus_followed_rooms 1").await;
    one.shutdown().await;
    two.shutdown().await;
}

/// A polling client whose requests strictly alternate between two nodes (round robin, no
/// stickiness): each node adopts the session from its shared record, so publishes are accepted
/// wherever they land, every event arrives once and in order, and once presence has settled
/// its polls are held on both nodes (the nodes' presence and typing versions agree, so neither
/// answers `state` at once), waking when an event is stored.
#[tokio::test]
#[allow(clippy::print_stdout)] // A figure: how many polls the versions took to agree.
async fn a_polling_client_alternating_between_nodes_gets_everything_once_and_its_polls_held() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let nodes = [one.local_addr(), two.local_addr()];
    let mut ana = Client::connect(&one, "ana").await;
    ana.join("r", None).await;
    let mut pat = PollClient::new(&one, "pat", "session-round-robin");
    let mut request = 0usize;
    let mut next_node = move |pat: &mut PollClient| {
        pat.addr = nodes[request % 2];
        request += 1;
    };
    next_node(&mut pat);
    let joined = pat.join("r").await;
    assert!(joined.iter().any(|f| matches!(f, ServerFrame::Joined(_))));
    let not_joined = |frames: &[ServerFrame]| {
        frames.iter().any(
            |f| matches!(f, ServerFrame::Error(e) if e.code == chorus_sdk::wire::ErrorCode::NotJoined),
        )
    };
    let state = |frames: &[ServerFrame]| frames.iter().any(|f| matches!(f, ServerFrame::State(_)));
    for n in 1..=4u64 {
        // A publish, on whichever node is next.
        next_node(&mut pat);
        let id = format!("p{n}");
        let answer = pat.send(vec![support::publish("r", &id, "1")]).await;
        assert!(answer.iter().any(|f| is_ack(f, &id)), "{answer:?}");
        // A poll on the other node; it gets the publish (and any presence state).
        next_node(&mut pat);
        let frames = pat.poll(0).await;
        assert!(!not_joined(&frames), "{frames:?}");
    }
    // Presence settles (the session joined on both nodes; the nodes exchange their members
    // and versions): strictly alternating polls stop getting `state`, on both nodes. Bounded
    // by two federation refreshes, counted in attempts (tests read no clock).
    let mut quiet = 0;
    for attempt in 0.. {
        assert!(attempt < 150, "the nodes' versions never agreed");
        next_node(&mut pat);
        let frames = pat.poll(0).await;
        assert!(!not_joined(&frames), "{frames:?}");
        quiet = if state(&frames) { 0 } else { quiet + 1 };
        if quiet == 2 {
            println!(
                "the nodes' versions agreed after {} alternating polls",
                attempt + 1
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Now every poll with nothing due is held, on whichever node it lands: each one below is
    // still waiting 300 ms in, and returns with ana's next event alone, no `state`.
    for n in 5..=8u64 {
        next_node(&mut pat);
        let mut held = tokio::spawn(async move {
            let frames = pat.poll(60_000).await;
            (pat, frames)
        });
        if let Ok(answered) = tokio::time::timeout(Duration::from_millis(300), &mut held).await {
            panic!("poll {n} was answered at once: {:?}", answered.unwrap().1);
        }
        let id = format!("a{n}");
        ana.publish("r", &id, "1").await;
        let (woken, frames) = tokio::time::timeout(support::PATIENCE, held)
            .await
            .expect("the held poll woke")
            .unwrap();
        pat = woken;
        assert_eq!(event_ids(&frames), [id.as_str()], "{frames:?}");
        assert!(!state(&frames), "{frames:?}");
    }
    // And one with nothing due at all runs out its wait on each node: empty.
    for _ in 0..2 {
        next_node(&mut pat);
        let frames = pat.poll(500).await;
        assert!(frames.is_empty(), "{frames:?}");
    }
    assert_eq!(pat.delivered["r"], [1, 2, 3, 4, 5, 6, 7, 8]);
    one.shutdown().await;
    two.shutdown().await;
}

/// The subscriber connection is cut while Redis stays up (and may not reconnect for a while):
/// `/readyz` fails naming the bus, events stored meanwhile reach the members once it is back.
#[tokio::test]
async fn while_the_subscriber_is_cut_off_readyz_fails_and_what_was_stored_is_repaired() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut bob = Client::connect(&two, "bob").await;
    bob.join("r", None).await;
    backend_publish(&one, "k1").await;
    bob.recv_until(|f| event_seq(f) == Some(1)).await;

    // One connection of the test's own, kept open: new ones are refused from here on.
    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxclients", "1"][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: u64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    // About `support::PATIENCE`, counted in attempts (tests read no clock).
    let mut attempts = 0u32;
    loop {
        let ready = http(&two, "GET", "/readyz", &[], None).await;
        if ready.status == 503 {
            assert!(ready.body.contains("bus:"), "{}", ready.body);
            break;
        }
        assert!(
            {
                attempts += 1;
                attempts < 250
            },
            "still ready: {}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Node one's writer connection is still open: it stores while node two hears nothing.
    backend_publish(&one, "k2").await;
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxclients", "10000"][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    let frames = bob.recv_until(|f| event_seq(f) == Some(2)).await;
    assert_eq!(event_ids(&frames), ["k2"]);
    until_metric(&two, "chorus_bus_reconnects_total 1").await;
    let ready = http(&two, "GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    one.shutdown().await;
    two.shutdown().await;
}

/// The bus's signals (what presence, typing and ephemeral events will ride on): another node
/// following the room hears them, in order, with the sender's node id; the sender does not;
/// a node that unfollowed the room hears nothing more.
#[tokio::test]
async fn signals_reach_the_other_nodes_following_the_room_and_not_the_sender() {
    use chorus_server::bus::redis::RedisBus;
    use chorus_server::bus::{Bus, Inbound};
    use chorus_server::store::redis::KeyLayout;

    let redis = RedisServer::start();
    let keys = KeyLayout::new("chorus:").unwrap();
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    let (b_tx, mut b_rx) = tokio::sync::mpsc::unbounded_channel();
    let a = RedisBus::open(&redis.url(), keys.clone(), "node-a".into(), a_tx)
        .await
        .unwrap();
    let b = RedisBus::open(&redis.url(), keys, "node-b".into(), b_tx)
        .await
        .unwrap();
    let room = chorus_sdk::wire::RoomName::parse("r").unwrap();
    a.follow(&room).wait().await;
    b.follow(&room).wait().await;
    for n in 0..3u8 {
        a.signal(&room, bytes::Bytes::from(vec![b'x', n]));
    }
    for n in 0..3u8 {
        let heard = tokio::time::timeout(support::PATIENCE, b_rx.recv())
            .await
            .expect("heard in time")
            .unwrap();
        assert_eq!(
            heard,
            Inbound::Signal {
                room: room.clone(),
                from_node: "node-a".into(),
                bytes: bytes::Bytes::from(vec![b'x', n]),
            }
        );
    }
    // B answers; A hears B's and never its own.
    b.signal(&room, bytes::Bytes::from_static(b"pong"));
    let heard = tokio::time::timeout(support::PATIENCE, a_rx.recv())
        .await
        .expect("heard in time")
        .unwrap();
    assert!(matches!(heard, Inbound::Signal { from_node, .. } if from_node == "node-b"));
    b.unfollow(&room);
    until_redis(&redis, "PUBSUB NUMSUB chorus:{r}:sig", |reply| {
        live_subscribers(reply) == Some(1)
    })
    .await;
    a.signal(&room, bytes::Bytes::from_static(b"late"));
    b.signal(&room, bytes::Bytes::from_static(b"mark"));
    let heard = tokio::time::timeout(support::PATIENCE, a_rx.recv())
        .await
        .expect("heard in time")
        .unwrap();
    assert!(matches!(heard, Inbound::Signal { bytes, .. } if bytes == "mark"));
    assert!(b_rx.try_recv().is_err(), "B unfollowed the room");
    assert_eq!(a.figures().unwrap().signals_heard, 2);
}
