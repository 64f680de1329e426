//! Live cursors across nodes: carried like presence, gone with their connection's `gone`, its
//! node's `bye` or lease, healed by the refresh, with a version every node computes alike.

use super::*;

fn cursor(value: &str) -> String {
    format!(r#"{{"type":"cursor","room":"r","value":{value}}}"#)
}

/// Room `r`'s cursors on `node` as a poll of nobody in particular sees them, and the version.
fn cursors(c: &Cluster, node: usize) -> (Vec<String>, u64) {
    let view = c.view(node, 0).cursors;
    let list = chorus_sdk::wire::LiveCursor::read_list(&view.cursors)
        .unwrap()
        .iter()
        .map(|l| format!("{}:{}", l.conn, l.value.as_text()))
        .collect();
    (list, view.version)
}

#[test]
fn a_cursor_crosses_nodes_reaches_late_joiners_there_and_goes_with_its_connection() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.take(0, 1);
    c.send(0, 1, &cursor("[1,2]"));
    assert_eq!(c.take(1, 2), ["cursor r a-1 ana [1,2]"]);
    c.advance(SECOND);
    c.send(1, 2, &cursor(r#"{"sel":[4,5]}"#));
    assert_eq!(c.take(0, 1), [r#"cursor r b-2 ben {"sel":[4,5]}"#]);
    c.connect(1, 3, "cal");
    c.send(1, 3, &join("r"));
    let joined = c.take(1, 3);
    assert!(
        joined[1].ends_with(r#"cursors=[a-1:ana:[1,2] b-2:ben:{"sel":[4,5]}]"#),
        "{joined:?}"
    );
    assert_eq!(
        cursors(&c, 0),
        cursors(&c, 1),
        "the same version on both nodes"
    );
    c.take(1, 2);
    c.send(0, 1, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(
        c.take(1, 2),
        ["cursor r a-1 ana null", "state r [ben(1) cal(1)]"],
        "the other node's members see it go with its leave (and ana leave)"
    );
    c.send(1, 2, &cursor("null"));
    assert_eq!(cursors(&c, 1), (vec![], 0));
}

#[test]
fn the_cursors_of_a_node_that_dies_go_with_its_lease_and_of_one_that_drains_at_once() {
    let mut c = Cluster::new(3);
    let config = HubConfig::default();
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.join(2, 3, "cal");
    c.send(0, 1, &cursor("1"));
    c.send(2, 3, &cursor("3"));
    c.advance(config.federation_lease * 2);
    assert_eq!(cursors(&c, 1).0, ["a-1:1", "c-3:3"], "refreshes keep them");
    c.take(1, 2);
    c.silenced.insert(0); // Node a dies.
    c.advance(config.federation_lease - SECOND);
    assert_eq!(cursors(&c, 1).0, ["a-1:1", "c-3:3"], "within the lease");
    c.advance(config.federation_refresh + SECOND);
    assert_eq!(
        c.take(1, 2),
        ["cursor r a-1 ana null", "state r [ben(1) cal(1)]"],
        "gone with the lease (and ana with it)"
    );
    c.drain(2);
    assert_eq!(
        c.take(1, 2),
        ["cursor r c-3 cal null"],
        "a draining node's cursors go at once (its users linger for the grace period)"
    );
}

#[test]
fn lost_cursor_signals_heal_at_the_next_refresh() {
    let mut c = Cluster::new(2);
    let config = HubConfig::default();
    c.join(0, 1, "ana");
    c.join(0, 3, "eve");
    c.join(1, 2, "ben");
    c.loss = Some(Box::new(|_, signal| {
        matches!(signal, RoomSignal::Cursor(_) | RoomSignal::Gone { .. })
    }));
    c.send(0, 1, &cursor("[7]"));
    c.send(0, 3, &cursor("[8]"));
    assert_eq!(cursors(&c, 1).0, Vec::<String>::new(), "lost");
    c.advance(config.federation_refresh);
    assert_eq!(
        cursors(&c, 1).0,
        ["a-1:[7]", "a-3:[8]"],
        "healed by the refresh"
    );
    assert_eq!(cursors(&c, 1), cursors(&c, 0));
    // A lost removal and a lost leave heal too.
    c.advance(SECOND);
    c.send(0, 1, &cursor("null"));
    c.send(0, 3, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(cursors(&c, 1).0, ["a-1:[7]", "a-3:[8]"]);
    c.advance(config.federation_refresh);
    assert_eq!(cursors(&c, 1), (vec![], 0));
    assert_eq!(cursors(&c, 0), (vec![], 0));
}
