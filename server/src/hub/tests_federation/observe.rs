//! A node asked for the presence of a room nobody is in there opens it as an observer, asks
//! the others, answers once they had the time to, keeps the room current for a while, then
//! forgets it.

use super::*;

fn lookup(c: &mut Cluster, node: usize) -> PresenceLookup {
    let now = c.now();
    let room = RoomName::parse("r").unwrap();
    let found = c.nodes[node].hub.lookup_presence(now, &room);
    c.settle(node);
    found
}

fn users(found: PresenceLookup) -> Vec<String> {
    match found {
        PresenceLookup::Ready(Some(snapshot)) => {
            snapshot.users.iter().map(|u| u.user.clone()).collect()
        }
        other => panic!("expected a presence, got {other:?}"),
    }
}

#[test]
fn a_node_without_members_answers_presence_after_asking_the_others() {
    let mut c = Cluster::new(3);
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    assert_eq!(
        lookup(&mut c, 2),
        PresenceLookup::Pending(OBSERVE_SETTLE),
        "node c opens the room and asks"
    );
    assert_eq!(c.presence(2), ["ana[a-1]", "ben[b-2]"], "the answers came");
    c.advance(OBSERVE_SETTLE / 2);
    assert!(matches!(lookup(&mut c, 2), PresenceLookup::Pending(_)));
    c.advance(OBSERVE_SETTLE / 2);
    assert_eq!(users(lookup(&mut c, 2)), ["ana", "ben"]);
    assert_eq!(
        users(lookup(&mut c, 0)),
        ["ana", "ben"],
        "a node with members answers at once"
    );

    // Kept current by the signals while observed.
    c.send(0, 1, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(users(lookup(&mut c, 2)), ["ben"]);
    // Every lookup keeps it longer; forgotten after the keep time without lookups.
    c.advance(OBSERVE_KEEP / 2);
    lookup(&mut c, 2);
    c.advance(OBSERVE_KEEP - SECOND);
    assert_eq!(c.presence(2), ["ben[b-2]"], "kept by the later lookup");
    c.advance(SECOND);
    assert_eq!(c.presence(2), Vec::<String>::new());
    assert_eq!(c.presence(1), ["ben[b-2]"]);

    // One node: at once, from what it has.
    let mut single = Cluster::with(vec![HubConfig {
        federated: false,
        ..config(0)
    }]);
    assert_eq!(lookup(&mut single, 0), PresenceLookup::Ready(None));
    single.join(0, 1, "ana");
    assert_eq!(users(lookup(&mut single, 0)), ["ana"]);
}

/// A node opens only so many rooms to observe them: a lookup of one more is refused until one
/// is forgotten, while the rooms it observes already still answer.
#[test]
fn a_node_observes_only_so_many_rooms_at_once() {
    let mut c = Cluster::with(vec![
        config(0),
        HubConfig {
            max_observed_rooms: 2,
            ..config(1)
        },
    ]);
    let look = |c: &mut Cluster, room: &str| {
        let now = c.now();
        let found = c.nodes[1]
            .hub
            .lookup_presence(now, &RoomName::parse(room).unwrap());
        c.settle(1);
        found
    };
    assert!(matches!(look(&mut c, "a"), PresenceLookup::Pending(_)));
    assert!(matches!(look(&mut c, "b"), PresenceLookup::Pending(_)));
    assert_eq!(look(&mut c, "c"), PresenceLookup::Busy);
    c.advance(OBSERVE_SETTLE);
    assert_eq!(look(&mut c, "a"), PresenceLookup::Ready(None));
    c.advance(OBSERVE_KEEP);
    assert!(
        matches!(look(&mut c, "c"), PresenceLookup::Pending(_)),
        "a and b were forgotten"
    );
}
