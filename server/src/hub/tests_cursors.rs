//! Live cursors in the hub: fan-out, the late joiner's snapshot, leave and death, per-connection
//! coalescing, limits and grants, and what a polling session sees.

use super::*;

fn cursor(room: &str, value: &str) -> String {
    format!(r#"{{"type":"cursor","room":"{room}","value":{value}}}"#)
}

#[test]
fn a_cursor_goes_to_the_others_and_a_late_joiner_gets_everyones() {
    let mut h = two_members();
    h.send(1, &cursor("r", r#"{"x":1,"y":2}"#));
    assert_eq!(h.take(1), Vec::<String>::new(), "no echo to the setter");
    assert_eq!(h.take(2), [r#"cursor r n-1 ana {"x":1,"y":2}"#]);
    h.advance(Duration::from_millis(100));
    h.send(2, &cursor("r", r#"{"sel":[3,9]}"#));
    assert_eq!(h.take(1), [r#"cursor r n-2 ben {"sel":[3,9]}"#]);
    h.connect(3, "cal");
    h.send(3, &join("r"));
    assert_eq!(
        h.take(3),
        [
            "welcome cal",
            r#"joined r head=0 [ana(1) ben(1) cal(1)] typing=[] cursors=[n-1:ana:{"x":1,"y":2} n-2:ben:{"sel":[3,9]}]"#
        ]
    );
    // Joining again (a meta refresh) re-sends the cursors, leaving out the joiner's own.
    h.send(1, &join("r"));
    assert_eq!(
        h.take(1),
        [
            "presence r v3 +cal(1)",
            r#"joined r head=0 [ana(1) ben(1) cal(1)] typing=[] cursors=[n-2:ben:{"sel":[3,9]}]"#
        ]
    );
    assert!(
        h.transcript.iter().all(|line| !line.contains("\"seq\"")),
        "cursors are never stored or sequenced"
    );
}

#[test]
fn a_cursor_disappears_when_it_is_cleared_its_connection_leaves_or_dies() {
    let mut h = two_members();
    h.connect(3, "cal");
    h.send(3, &join("r"));
    h.take(1);
    h.take(2);
    h.take(3);
    h.send(1, &cursor("r", "[1]"));
    h.send(2, &cursor("r", "[2]"));
    h.send(3, &cursor("r", "[3]"));
    h.take(1);
    h.take(2);
    h.take(3);
    h.advance(Duration::from_millis(100));
    h.send(1, &cursor("r", "null"));
    assert_eq!(h.take(2), ["cursor r n-1 ana null"], "cleared");
    h.send(2, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(
        h.take(3),
        [
            "cursor r n-1 ana null",
            "presence r v4 -ben",
            "cursor r n-2 ben null"
        ],
        "gone with its leave"
    );
    h.disconnect(3);
    assert_eq!(
        h.take(1),
        [
            "presence r v4 -ben",
            "cursor r n-2 ben null",
            "cursor r n-3 cal null"
        ],
        "gone at once when its connection dies (no grace period, unlike presence)"
    );
    h.connect(4, "dan");
    h.send(4, &join("r"));
    let joined = h.take(4);
    assert!(
        !joined[1].contains("cursors="),
        "nobody's cursor is left: {joined:?}"
    );
}

#[test]
fn a_flood_of_cursors_is_coalesced_per_connection_and_the_last_value_always_goes() {
    let mut h = two_members();
    // 1000 frames within 10 ms: the first goes at once, the last at the end of the interval.
    for n in 0..1000 {
        h.send(1, &cursor("r", &format!("{n}")));
        if n % 100 == 99 {
            h.advance(Duration::from_millis(1));
        }
    }
    assert_eq!(h.take(2), ["cursor r n-1 ana 0"]);
    h.advance(Duration::from_millis(30));
    assert_eq!(
        h.take(2),
        ["cursor r n-1 ana 999"],
        "at 40 ms: the latest only"
    );
    // A joiner during the interval already sees the latest value.
    h.send(1, &cursor("r", "1000"));
    h.connect(3, "cal");
    h.send(3, &join("r"));
    assert!(h.take(3)[1].ends_with("cursors=[n-1:ana:1000]"));
    h.advance(Duration::from_millis(40));
    assert_eq!(
        h.take(2),
        ["presence r v3 +cal(1)", "cursor r n-1 ana 1000"]
    );
    // Over a second of constant sending, at most one broadcast per 40 ms.
    for ms in 0..1000 {
        h.send(1, &cursor("r", &format!("{}", 2000 + ms)));
        h.advance(Duration::from_millis(1));
    }
    h.advance(Duration::from_millis(40));
    let got = h.take(2);
    assert!(got.len() <= 26, "{} broadcasts in a second", got.len());
    assert_eq!(got.last().unwrap(), "cursor r n-1 ana 2999");
    // The same value again changes nothing anyone sees.
    h.advance(Duration::from_millis(100));
    h.send(1, &cursor("r", "2999"));
    assert_eq!(h.take(2), Vec::<String>::new());
}

#[test]
fn cursors_need_the_room_joined_and_a_small_value_and_read_grants_may_set_them() {
    let mut h = two_members_with(HubConfig {
        max_cursor_bytes: 16,
        ..HubConfig::default()
    });
    h.send(1, &cursor("elsewhere", "1"));
    assert_eq!(h.take(1), ["error not_joined elsewhere"]);
    h.send(1, &cursor("r", r#""0123456789abcdefgh""#));
    assert_eq!(h.take(1), ["error cursor_too_large r"]);
    assert_eq!(
        h.take(2),
        Vec::<String>::new(),
        "refused: nobody hears of it"
    );
    h.connect_as(3, Identity::new("rea", None, &[("r", RoomRight::Read)]));
    h.send(3, &join("r"));
    h.take(3);
    h.send(3, &cursor("r", "7"));
    assert_eq!(h.take(3), Vec::<String>::new());
    assert_eq!(h.take(1), ["presence r v3 +rea(1)", "cursor r n-3 rea 7"]);
}

#[test]
fn a_polling_session_gets_the_cursors_in_its_view_with_a_version_named_by_them() {
    let mut h = two_members();
    let room = RoomName::parse("r").unwrap();
    let now = h.now();
    let identity = Arc::new(Identity::new("pol", None, &[("*", RoomRight::Publish)]));
    h.hub.handle_connect(now, 9, identity, ConnKind::Poll);
    h.send(9, &join("r"));
    h.take(9);
    let empty = h.hub.room_view(&room, 9).unwrap().cursors;
    assert_eq!((empty.version, empty.cursors.as_text()), (0, "[]"));
    h.send(1, &cursor("r", "[1,2]"));
    assert_eq!(
        h.take(9),
        ["cursor r n-1 ana [1,2]"],
        "the notice wakes the session's long poll"
    );
    let view = h.hub.room_view(&room, 9).unwrap().cursors;
    assert_ne!(view.version, 0);
    assert_eq!(
        chorus_sdk::wire::LiveCursor::read_list(&view.cursors)
            .unwrap()
            .len(),
        1
    );
    // Its own cursor is left out, and moving it does not change its version.
    h.send(9, &cursor("r", "[5]"));
    let own = h.hub.room_view(&room, 9).unwrap().cursors;
    assert_eq!(own, view);
    assert_ne!(
        h.hub.room_view(&room, 1).unwrap().cursors.version,
        view.version
    );
    // The same cursors give the same version (every node computes it alike).
    h.advance(Duration::from_millis(100));
    h.send(1, &cursor("r", "[0]"));
    assert_ne!(
        h.hub.room_view(&room, 9).unwrap().cursors.version,
        view.version
    );
    h.advance(Duration::from_millis(100));
    h.send(1, &cursor("r", "[1,2]"));
    assert_eq!(h.hub.room_view(&room, 9).unwrap().cursors, view);
    assert!(view.version <= chorus_sdk::wire::MAX_SAFE_INTEGER);
}
