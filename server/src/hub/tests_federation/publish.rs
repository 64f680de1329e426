//! Publishes across nodes: an answer that names an event follows that event on its node.

use super::*;

/// What `conn` on `node` got of events and acks.
fn take_events(c: &mut Cluster, node: usize, conn: ConnId) -> Vec<String> {
    (c.take(node, conn).into_iter())
        .filter(|line| line.starts_with("event ") || line.starts_with("ack "))
        .collect()
}

fn publish(id: &str) -> String {
    format!(r#"{{"type":"publish","room":"r","id":"{id}","body":{{"t":1}}}}"#)
}

/// Ana's publish is stored through node a; she sends it again through node b (her client
/// reconnected there) before node b heard the event. Node b answers the duplicate after the
/// event, as it answers every publish: the event, then the `ack`.
#[test]
fn a_duplicate_answered_before_its_event_reached_the_node_waits_for_it() {
    let mut c = Cluster::new(2);
    c.carry_events();
    c.join(0, 1, "ana");
    c.join(1, 2, "ana");
    c.send(0, 1, &publish("p1"));
    assert_eq!(
        take_events(&mut c, 0, 1),
        [r#"event r #1 p1 by ana {"t":1}"#, "ack r p1 #1"]
    );
    c.send(1, 2, &publish("p1"));
    assert_eq!(
        take_events(&mut c, 1, 2),
        Vec::<String>::new(),
        "nothing before the event"
    );
    c.deliver_events(1);
    assert_eq!(
        take_events(&mut c, 1, 2),
        [r#"event r #1 p1 by ana {"t":1}"#, "ack r p1 #1 dup"]
    );
}

/// The same when the bus lost the event: the gap timer's repair reads it from the store.
#[test]
fn a_duplicate_whose_event_the_bus_lost_is_answered_after_the_repair() {
    let mut c = Cluster::new(2);
    c.carry_events();
    c.join(0, 1, "ana");
    c.join(1, 2, "ana");
    c.send(0, 1, &publish("p1"));
    c.bus = Some(vec![VecDeque::new(); 2]); // Lost on the way.
    c.send(1, 2, &publish("p1"));
    assert_eq!(take_events(&mut c, 1, 2), Vec::<String>::new());
    c.advance(c.nodes[1].hub.config.gap_wait);
    assert_eq!(
        take_events(&mut c, 1, 2),
        [r#"event r #1 p1 by ana {"t":1}"#, "ack r p1 #1 dup"]
    );
}
