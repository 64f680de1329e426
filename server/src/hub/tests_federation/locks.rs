//! Locks across nodes when a node hears the store's answers and the other nodes' signals about
//! one grant in another order than the store made them.

use super::*;

fn lock(id: &str, token: Option<u64>) -> String {
    let token = token.map_or(String::new(), |t| format!(r#","token":{t}"#));
    format!(r#"{{"type":"lock","room":"r","id":"{id}","name":"doc","ttl_ms":60000{token}}}"#)
}

/// Ana holds a lock through node a, drops there and renews it at once from node c. Node a's
/// cut to the grace period (stored first) reaches node c after c's own renewal, and node c's
/// view takes it for the last word. At the end of the grace node c asks the store before it
/// expires anything: the grant is live, so ana hears it `renewed` again, never `expired`, and
/// every node with the room open ends with her grant on her new connection.
#[test]
fn a_late_signal_of_an_older_change_does_not_expire_a_renewed_grant() {
    let mut c = Cluster::new(3);
    c.join(0, 1, "ana");
    c.join(1, 3, "ben");
    c.send(0, 1, &lock("L1", None));
    let token = c.nodes[1].hub.held_locks(&RoomName::parse("r").unwrap())[0].token;
    c.latency = SECOND;
    c.disconnect(0, 1);
    c.join(2, 2, "ana");
    c.send(2, 2, &lock("L2", Some(token)));
    let grace = c.nodes[2].hub.config.presence_grace;
    c.advance(grace + 2 * SECOND);
    let seen: Vec<String> = c
        .take(2, 2)
        .into_iter()
        .filter(|line| line.starts_with("lock "))
        .collect();
    assert_eq!(
        seen,
        [
            "lock r renewed doc t+0 by ana@c-2 until+60000 re L2",
            "lock r renewed doc t+0 by ana@a-1 until+5000",
            "lock r renewed doc t+0 by ana@c-2 until+60000",
        ],
        "ana's own node"
    );
    // Node a closed the room with its last member; ben's node b and ana's node c have it.
    for node in 1..3 {
        let held = c.nodes[node].hub.held_locks(&RoomName::parse("r").unwrap());
        let holders: Vec<&str> = held.iter().map(|g| g.conn.as_str()).collect();
        assert_eq!(holders, ["c-2"], "node {node}");
    }
}

/// A grant whose `until` passes expires on every node once the store says it is not live
/// (ana's client stopped renewing; her node is gone); when the store can not answer, it
/// expires by the node's clock alone.
#[test]
fn a_lapsed_grant_expires_after_the_store_says_so_or_by_the_clock_when_it_can_not() {
    for unreadable in [false, true] {
        let mut c = Cluster::new(2);
        c.join(0, 1, "ana");
        c.join(1, 2, "ben");
        c.send(0, 1, &lock("L1", None));
        c.take(1, 2);
        c.silenced.insert(0);
        c.locks_unreadable = unreadable;
        let room = RoomName::parse("r").unwrap();
        c.advance(Duration::from_secs(59));
        assert_eq!(c.nodes[1].hub.held_locks(&room).len(), 1);
        assert_eq!(c.lock_checks[1], 0);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.lock_checks[1], 1, "node b asked the store first");
        let locks: Vec<String> = (c.take(1, 2).into_iter())
            .filter(|line| line.starts_with("lock "))
            .collect();
        assert_eq!(
            locks,
            ["lock r expired doc t+0 by ana@a-1 until+60000"],
            "store unreadable: {unreadable}"
        );
        assert!(c.nodes[1].hub.held_locks(&room).is_empty());
    }
}

/// Two grants lapse a millisecond apart while the store is slow to answer: the second's timer
/// fires while the first's check is in flight, and the store (read before the second lapsed)
/// still lists it. Its timer is armed again, so it expires at the next check rather than
/// staying held on that node for good.
#[test]
fn a_grant_lapsing_while_a_check_is_in_flight_is_checked_again() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    let named = |name: &str, ttl: u64| {
        format!(r#"{{"type":"lock","room":"r","id":"{name}","name":"{name}","ttl_ms":{ttl}}}"#)
    };
    c.send(0, 1, &named("x", 3000));
    c.advance(SECOND);
    c.send(0, 1, &named("y", 2001));
    c.silenced.insert(0);
    c.deferred_checks = Some(Vec::new());
    c.take(1, 2);
    c.advance(2 * SECOND);
    c.advance(Duration::from_millis(1));
    assert_eq!(c.lock_checks[1], 1, "y's timer fired during x's check");
    c.answer_lock_checks();
    c.advance(Duration::from_millis(1));
    c.answer_lock_checks();
    let room = RoomName::parse("r").unwrap();
    assert!(c.nodes[1].hub.held_locks(&room).is_empty());
    let expired: Vec<String> = (c.take(1, 2).into_iter())
        .filter(|line| line.starts_with("lock r expired"))
        .collect();
    assert_eq!(expired.len(), 2, "{expired:?}");
}

/// Ana renews her grant through node a every 10 s for five minutes; node b hears each renewal
/// as a signal. Neither node gathers expiry timers (one per grant), and once she stops, both
/// expire it after its last `until`, node b after asking the store once.
#[test]
fn a_grant_renewed_for_long_keeps_one_timer_on_every_node() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.send(0, 1, &lock("L1", None));
    let room = RoomName::parse("r").unwrap();
    let token = c.nodes[0].hub.held_locks(&room)[0].token;
    let lock_timers = |c: &Cluster, node: usize| {
        (c.nodes[node].hub.timers.iter())
            .filter(|timer| matches!(timer.0.1, Timer::LockExpiry(..)))
            .count()
    };
    for round in 0..30 {
        c.advance(10 * SECOND);
        c.send(0, 1, &lock(&format!("R{round}"), Some(token)));
        for node in 0..2 {
            assert!(lock_timers(&c, node) <= 2, "node {node}, round {round}");
        }
    }
    c.take(1, 2);
    c.advance(59 * SECOND);
    assert_eq!(c.nodes[1].hub.held_locks(&room).len(), 1);
    c.advance(2 * SECOND);
    assert_eq!(c.lock_checks[1], 1);
    let expired: Vec<String> = (c.take(1, 2).into_iter())
        .filter(|line| line.starts_with("lock "))
        .collect();
    assert_eq!(expired, ["lock r expired doc t+0 by ana@a-1 until+360000"]);
    for node in 0..2 {
        assert_eq!(lock_timers(&c, node), 0, "node {node}");
    }
}

/// Node a shuts down (its `bye` sent) while ana, ben and dan, through it, hold a lock each.
/// Ana leaves the room before the drain completes and ben's connection drops: the store
/// releases ana's grant and cuts ben's to the grace, and the other node hears both at once
/// (a lock change is the store's fact, not a connection coming back), not at their `until`.
/// Dan's connection is closed by the drain itself: his grant stays as it is, for him to renew
/// from his next connection.
#[test]
fn lock_changes_during_a_drain_reach_the_other_nodes() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    c.join(0, 2, "ben");
    c.join(0, 4, "dan");
    c.join(1, 3, "cy");
    let named = |name: &str| {
        format!(r#"{{"type":"lock","room":"r","id":"{name}","name":"{name}","ttl_ms":60000}}"#)
    };
    c.send(0, 1, &named("x"));
    c.send(0, 2, &named("y"));
    c.send(0, 4, &named("z"));
    c.take(1, 3);
    c.drain(0);
    c.send(0, 1, r#"{"type":"leave","room":"r"}"#);
    c.disconnect(0, 2);
    c.advance(Duration::from_millis(1));
    let locks: Vec<String> = (c.take(1, 3).into_iter())
        .filter(|line| line.starts_with("lock "))
        .collect();
    assert_eq!(
        locks,
        [
            "lock r released x t+0 by ana@a-1 until+0",
            "lock r renewed y t+0 by ben@a-2 until+5000"
        ]
    );
    assert_eq!(c.lock_checks[1], 0);
    c.nodes[0].hub.handle_drain_complete();
    c.settle(0);
    c.advance(10 * SECOND);
    let room = RoomName::parse("r").unwrap();
    let held: Vec<(String, String)> = (c.nodes[1].hub.held_locks(&room).into_iter())
        .map(|grant| (grant.name.to_string(), grant.conn))
        .collect();
    assert_eq!(held, [("z".to_owned(), "a-4".to_owned())]);
}
