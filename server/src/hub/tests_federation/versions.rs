//! Presence and typing versions agree on every node once presence and typing do: a polling
//! client carries the versions one node gave it to the next, which holds the poll only when
//! its own are the same. And a member never gets a presence diff that skips a version (its
//! SDK would take it for a missed one): after a node takes another's higher version, its
//! members get the whole presence instead.

use super::*;

/// Room `r`'s (presence, typing) versions on every node.
fn versions(c: &Cluster) -> Vec<(u64, u64)> {
    let room = RoomName::parse("r").unwrap();
    (0..c.nodes.len())
        .map(|node| {
            let view = c.nodes[node].hub.room_view(&room, 0).expect("open");
            (view.presence.version, view.typing.version)
        })
        .collect()
}

/// Asserts every node has the same versions, and returns them.
fn agreed(c: &Cluster, context: &str) -> (u64, u64) {
    let all = versions(c);
    assert!(
        all.iter().all(|v| *v == all[0]),
        "{context}: versions differ across nodes: {all:?}"
    );
    all[0]
}

/// What a member sees of presence, frame by frame: each diff must be the next version after
/// the last one it knows (from `joined`, a `state` or the diff before).
fn check_diffs_are_contiguous(c: &mut Cluster) {
    for node in 0..c.nodes.len() {
        let mut conns: Vec<ConnId> = c.nodes[node].frames.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            let mut known: Option<u64> = None;
            for frame in &c.nodes[node].frames[&conn] {
                match frame {
                    ServerFrame::Joined(joined) => known = Some(joined.presence.version),
                    ServerFrame::State(state) => {
                        if let Some(presence) = &state.presence {
                            known = Some(presence.version);
                        }
                    }
                    ServerFrame::Presence(diff) => {
                        if let Some(before) = known
                            && diff.version > before
                        {
                            assert_eq!(
                                diff.version,
                                before + 1,
                                "node {node} conn {conn}: a diff skipped a version"
                            );
                        }
                        known = Some(known.unwrap_or(0).max(diff.version));
                    }
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn versions_agree_on_every_node_once_presence_does() {
    let mut c = Cluster::new(3);
    let config = HubConfig::default();
    c.connect(0, 1, "ana");
    c.send(0, 1, &join("r"));
    c.connect(1, 2, "ben");
    c.send(1, 2, &join("r"));
    c.connect(2, 3, "cat");
    c.send(2, 3, &join("r"));
    // Each node opened the room with its own base (as real nodes' clocks give them); the
    // syncs that opening sends bring them together at once, without waiting for a refresh.
    let (presence, typing) = agreed(&c, "after the room opened on three nodes");

    // A change on one node lands on one version everywhere at once, without a refresh.
    c.send(1, 2, r#"{"type":"presence","room":"r","meta":{"x":1}}"#);
    assert_eq!(agreed(&c, "after a meta change"), (presence + 1, typing));
    c.send(0, 1, r#"{"type":"typing","room":"r","on":true}"#);
    assert_eq!(agreed(&c, "after typing on"), (presence + 1, typing + 1));
    c.connect(2, 4, "dan");
    c.send(2, 4, &join("r"));
    assert_eq!(agreed(&c, "after a join"), (presence + 2, typing + 1));

    // Concurrent changes on two nodes (each sent before hearing the other's) end on one
    // version too.
    c.latency = Duration::from_millis(20);
    c.send(0, 1, r#"{"type":"presence","room":"r","meta":{"x":2}}"#);
    c.send(2, 3, r#"{"type":"presence","room":"r","meta":{"x":3}}"#);
    c.advance(Duration::from_millis(50));
    assert_eq!(agreed(&c, "after concurrent changes").0, presence + 4);

    // The typing TTL ends on each node on its own timer; a dropped socket's grace period
    // too: the versions still agree after them.
    c.advance(config.typing_ttl);
    c.disconnect(2, 4);
    c.advance(config.presence_grace + SECOND);
    assert!(c.presence(0).iter().all(|u| !u.starts_with("dan")));
    agreed(&c, "after typing expired and a dropped user left");

    // Signals lost: node a's changes reach nobody, and the others' versions fall behind.
    c.loss = Some(Box::new(|from, _| from == 0));
    c.send(0, 1, r#"{"type":"presence","room":"r","meta":{"x":4}}"#);
    c.send(0, 1, r#"{"type":"typing","room":"r","on":true}"#);
    c.connect(0, 5, "eve");
    c.send(0, 5, &join("r"));
    let all = versions(&c);
    assert_ne!(all[0], all[1], "the others missed node a's changes");
    // Node b changes meanwhile: it reaches node a, whose versions are ahead.
    c.send(1, 2, r#"{"type":"presence","room":"r","meta":{"x":5}}"#);
    c.loss = None;
    c.advance(config.federation_refresh * 2);
    for node in [1, 2] {
        assert_eq!(c.presence_with_metas(node), c.presence_with_metas(0));
    }
    let (healed, _) = agreed(&c, "after the refresh healed the lost signals");
    assert!(healed > presence + 4, "versions only grow");

    check_diffs_are_contiguous(&mut c);
}

/// Two nodes: ana's tabs 1 and 2 on node a, ben's connection 3 on node b, all in room `r`.
fn ana_with_two_tabs_on_a_and_ben_on_b() -> Cluster {
    let mut c = Cluster::new(2);
    for tab in [1, 2] {
        c.connect(0, tab, "ana");
        c.send(0, tab, &join("r"));
    }
    c.connect(1, 3, "ben");
    c.send(1, 3, &join("r"));
    c
}

/// A user's held meta changes (its tabs past the user's presence budget) reach the other nodes
/// in one `metas` signal, announced there as one change too: the versions still agree, the
/// diffs stay contiguous, and every node shows the latest metas.
#[test]
fn held_meta_changes_cross_nodes_as_one_change() {
    let mut c = ana_with_two_tabs_on_a_and_ben_on_b();
    let (presence, _) = agreed(&c, "after the room opened on two nodes");
    c.take(1, 3);
    // Fifteen changes from each tab, thirty in all: the user's budget is bursts of 20.
    for n in 0..15 {
        for tab in [1, 2] {
            let meta = format!(
                r#"{{"type":"presence","room":"r","meta":{{"n":{}}}}}"#,
                n * 10 + tab
            );
            c.send(0, tab, &meta);
        }
    }
    let updates = |c: &mut Cluster| {
        c.take(1, 3)
            .into_iter()
            .filter(|f| f.starts_with("presence r"))
            .count()
    };
    assert_eq!(updates(&mut c), 20);
    assert_eq!(agreed(&c, "while ten changes are held").0, presence + 20);
    c.advance(Duration::from_millis(100));
    assert_eq!(updates(&mut c), 1, "the held changes, as one");
    assert_eq!(agreed(&c, "after the held changes went").0, presence + 21);
    assert_eq!(c.presence_with_metas(1), c.presence_with_metas(0));
    assert_eq!(
        c.presence_with_metas(1),
        [r#"ana[a-1={"n":141} a-2={"n":142}]"#, r#"ben[b-3=null]"#]
    );
    check_diffs_are_contiguous(&mut c);

    let metas = RoomSignal::Metas {
        conns: vec![ConnState {
            conn: 1,
            wire: "a-1".into(),
            user: "ana".into(),
            name: None,
            meta: chorus_sdk::wire::Json::from_text(r#"{"n":1}"#).unwrap(),
            since: 9,
        }],
    };
    let bytes = metas.encode();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"v":1,"signal":{"metas":{"conns":[{"conn":1,"wire":"a-1","user":"ana","meta":{"n":1},"since":9}]}}}"#
    );
    assert_eq!(RoomSignal::decode("a", &bytes).unwrap(), metas);
}

#[test]
fn a_metas_signal_lists_connections_of_one_user() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    let room = RoomName::parse("r").unwrap();
    let two_users = r#"{"v":1,"signal":{"metas":{"conns":[{"conn":1,"wire":"b-1","user":"u","meta":1,"since":1},{"conn":2,"wire":"b-2","user":"v","meta":1,"since":1}]}}}"#;
    let now = c.now();
    let err = c.nodes[0]
        .hub
        .handle_signal(now, room, "b", two_users.as_bytes())
        .expect_err("refused");
    assert!(err.to_string().contains("connections of one user"), "{err}");
}

/// Held changes of tabs that drop before their flush went with the departures: nothing is
/// flushed, and the other nodes keep the user lingering (not live again) until the grace
/// period ends, everywhere at once. A `metas` signal naming a connection the receiver does not
/// know adds it, as a `conn` signal would.
#[test]
fn held_changes_of_dropped_tabs_are_not_flushed_and_unknown_ones_are_added() {
    let mut c = ana_with_two_tabs_on_a_and_ben_on_b();
    // Cat keeps the room open on node a after ana's tabs drop.
    c.connect(0, 4, "cat");
    c.send(0, 4, &join("r"));
    for n in 0..21 {
        let meta = format!(r#"{{"type":"presence","room":"r","meta":{{"n":{n}}}}}"#);
        c.send(0, 2 - n % 2, &meta);
    }
    let (held_at, _) = agreed(&c, "one change of tab 2 held");
    c.disconnect(0, 1);
    c.disconnect(0, 2);
    let (dropped, _) = agreed(&c, "both tabs dropped");
    assert_eq!(
        dropped,
        held_at + 1,
        "the first drop is an update; the last lingers silently"
    );
    c.take(1, 3);
    let grace = HubConfig::default().presence_grace;
    c.advance(grace - Duration::from_millis(1));
    assert_eq!(c.take(1, 3), Vec::<String>::new(), "no flush, no revival");
    assert_eq!(agreed(&c, "while ana lingers").0, dropped);
    c.advance(Duration::from_millis(1));
    assert_eq!(c.take(1, 3), ["presence r -ana"]);
    assert_eq!(c.presence(0), ["ben[b-3]", "cat[a-4]"]);
    assert_eq!(c.presence(1), ["ben[b-3]", "cat[a-4]"]);

    let unknown = r#"{"v":1,"signal":{"metas":{"conns":[{"conn":9,"wire":"a-9","user":"ana","meta":{"n":1},"since":1}]}}}"#;
    let now = c.now();
    let room = RoomName::parse("r").unwrap();
    c.nodes[1]
        .hub
        .handle_signal(now, room, "a", unknown.as_bytes())
        .expect("taken");
    c.pump(1);
    assert_eq!(
        c.presence_with_metas(1),
        [r#"ana[a-9={"n":1}]"#, "ben[b-3=null]", "cat[a-4=null]"]
    );
}
