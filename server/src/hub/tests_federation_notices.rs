//! Notices across nodes: a broadcast, a user target and a connection target sent through one
//! node reach the connections of the others, once.

use super::*;
use crate::hub::{NoticeOutcome, NoticeTarget};

fn notice() -> chorus_sdk::wire::Notice {
    chorus_sdk::wire::Notice {
        id: "m1".into(),
        level: "critical".into(),
        body: chorus_sdk::wire::Json::from_text(r#""restart""#).unwrap(),
        at: 1,
    }
}

fn send(cluster: &mut Cluster, node: usize, target: NoticeTarget) -> NoticeOutcome {
    let outcome = cluster.nodes[node].hub.handle_notice(&target, notice());
    cluster.settle(node);
    outcome
}

const SHOWN: &str = r#"notice m1 critical "restart""#;

/// A connection: (node, connection id there).
type At = (usize, ConnId);

#[test]
fn a_notice_sent_through_one_node_reaches_its_targets_on_every_node_once() {
    // (target, sent through node, connections that get it as (node, conn))
    let table: [(NoticeTarget, usize, &[At]); 4] = [
        (NoticeTarget::Everyone, 0, &[(0, 1), (1, 1), (1, 2), (2, 1)]),
        (NoticeTarget::User("ben".into()), 0, &[(1, 1), (2, 1)]),
        (NoticeTarget::Connection("b-2".into()), 0, &[(1, 2)]),
        (NoticeTarget::Connection("a-1".into()), 2, &[(0, 1)]),
    ];
    for (target, through, expected) in table {
        let mut cluster = Cluster::new(3);
        cluster.connect(0, 1, "ana");
        cluster.connect(1, 1, "ben");
        cluster.connect(1, 2, "cid");
        cluster.connect(2, 1, "ben");
        for (node, conn) in [(0, 1), (1, 1), (1, 2), (2, 1)] {
            cluster.take(node, conn);
        }
        let local = expected.iter().filter(|(node, _)| *node == through).count();
        assert_eq!(
            send(&mut cluster, through, target.clone()),
            NoticeOutcome::Delivered(local),
            "{target:?}"
        );
        for (node, conn) in [(0, 1), (1, 1), (1, 2), (2, 1)] {
            let got = cluster.take(node, conn);
            if expected.contains(&(node, conn)) {
                assert_eq!(got, [SHOWN], "{target:?} at {node}/{conn}");
            } else {
                assert!(got.is_empty(), "{target:?} reached {node}/{conn}: {got:?}");
            }
        }
    }
}

#[test]
fn a_connection_of_another_node_is_forwarded_and_one_of_this_node_must_exist() {
    let mut cluster = Cluster::new(2);
    cluster.connect(0, 1, "ana");
    // Node a can not know b's connections: it forwards; b finds none and hands out nothing.
    assert_eq!(
        send(&mut cluster, 0, NoticeTarget::Connection("b-9".into())),
        NoticeOutcome::Delivered(0)
    );
    // Its own connections it knows.
    assert_eq!(
        send(&mut cluster, 0, NoticeTarget::Connection("a-9".into())),
        NoticeOutcome::NoSuchConnection
    );
}

#[test]
fn a_bad_notice_signal_is_refused_and_changes_nothing() {
    let mut cluster = Cluster::new(2);
    cluster.connect(1, 1, "ben");
    cluster.take(1, 1);
    for bytes in [
        &b"v2\n*\n{}"[..],
        b"v1\nx:ben\n{}",
        b"v1\n*",
        b"v1\n*\n{\"type\":\"pong\"}",
        b"\xff",
    ] {
        assert!(
            cluster.nodes[1]
                .hub
                .handle_notice_signal("a", bytes)
                .is_err(),
            "{bytes:?}"
        );
    }
    assert!(cluster.take(1, 1).is_empty());
}
