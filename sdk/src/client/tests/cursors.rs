//! Live cursors in the client core: the 50 ms throttle with the last value always sent, the
//! resend after a reconnect, and the others' cursors from `joined`, `cursor` and `state`.

use super::*;
use crate::client::live_cursors::LiveCursors;
use crate::wire::{CursorNotice, LiveCursor, RoomState};

/// The values of the `cursor` frames the client sent since the last call, with when.
fn cursors_sent(h: &mut Harness, start: Instant) -> Vec<(u64, String)> {
    let now = h.now;
    h.frames_sent()
        .into_iter()
        .filter_map(|frame| match frame {
            ClientFrame::SetCursor(c) => Some((
                now.duration_since(start).as_millis() as u64,
                c.value.as_text().to_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// Sets `value` at the harness's time and returns the frames that went at once.
fn set(h: &mut Harness, value: &str) {
    let now = h.now;
    h.client
        .set_cursor(now, room("r"), Json::from_text(value).unwrap());
    h.drain();
}

fn live(conn: &str, user: &str, value: &str) -> LiveCursor {
    LiveCursor {
        conn: conn.into(),
        user: user.into(),
        value: Json::from_text(value).unwrap(),
    }
}

/// The `Cursors` events since the last call, as the JSON they carry and whether it is all of
/// them, each folded into `kept`.
fn cursor_events(h: &mut Harness, kept: &mut LiveCursors) -> Vec<(String, bool)> {
    h.take_events()
        .into_iter()
        .filter_map(|event| match event {
            ClientEvent::Cursors { cursors, whole, .. } => {
                kept.apply(&cursors, whole);
                Some((cursors.as_text().to_owned(), whole))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn cursor_frames_are_throttled_to_one_per_50_ms_and_the_last_value_is_always_sent() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    h.take_outputs();
    let start = h.now;
    // A mouse moving every 10 ms for 200 ms, then stopping.
    let mut sent = Vec::new();
    for n in 0..=40 {
        if n <= 20 {
            set(&mut h, &n.to_string());
        }
        sent.extend(cursors_sent(&mut h, start));
        h.advance(Duration::from_millis(10));
        sent.extend(cursors_sent(&mut h, start));
    }
    let at = |ms: u64, v: &str| (ms, v.to_owned());
    assert_eq!(
        sent,
        [
            at(0, "0"),
            at(50, "4"),
            at(100, "9"),
            at(150, "14"),
            at(200, "19"),
            at(250, "20")
        ],
        "at most one frame per 50 ms (each the value newest then), and the last value (20)"
    );
    // Three values within 10 ms after a pause: the first at once, the last 50 ms later.
    let start = h.now;
    set(&mut h, "\"a\"");
    let mut sent = cursors_sent(&mut h, start);
    h.advance(Duration::from_millis(5));
    set(&mut h, "\"b\"");
    set(&mut h, "\"c\"");
    for _ in 0..20 {
        sent.extend(cursors_sent(&mut h, start));
        h.advance(Duration::from_millis(5));
    }
    assert_eq!(sent, [at(0, "\"a\""), at(50, "\"c\"")]);
}

#[test]
fn a_cursor_waits_for_joined_and_is_sent_again_after_a_reconnect() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    let start = h.now;
    set(&mut h, r#"{"x":1}"#);
    assert_eq!(
        cursors_sent(&mut h, start),
        [],
        "not before joined: it would be refused"
    );
    h.server_says(link, joined("r", 0));
    assert_eq!(cursors_sent(&mut h, start), [(0, r#"{"x":1}"#.to_owned())]);
    h.advance(Duration::from_millis(60));
    set(&mut h, r#"{"x":2}"#);
    assert_eq!(cursors_sent(&mut h, start), [(60, r#"{"x":2}"#.to_owned())]);
    // The socket drops; the server forgot the cursor with it.
    h.client.handle_socket_closed(h.now, link, Some(1006));
    h.drain();
    h.advance(Duration::from_secs(1));
    let second = h.opened_socket();
    h.welcome(second);
    let frames = h.frames_sent();
    assert_eq!(
        kinds(&frames),
        ["join r @0"],
        "the join first, no cursor yet"
    );
    h.server_says(second, joined("r", 0));
    assert_eq!(
        cursors_sent(&mut h, start),
        [(1060, r#"{"x":2}"#.to_owned())],
        "the last value again, on the new link"
    );
    // A cleared cursor is not sent again after the next reconnect.
    h.advance(Duration::from_millis(60));
    set(&mut h, "null");
    assert_eq!(cursors_sent(&mut h, start), [(1120, "null".to_owned())]);
    h.client.handle_socket_closed(h.now, second, Some(1006));
    h.drain();
    h.advance(Duration::from_secs(1));
    let third = h.opened_socket();
    h.welcome(third);
    h.server_says(third, joined("r", 0));
    assert_eq!(cursors_sent(&mut h, start), []);
}

#[test]
fn the_others_cursors_come_as_the_server_sent_them_and_fold_into_one_list() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.take_events();
    let mut kept = LiveCursors::default();
    let ServerFrame::Joined(mut first) = joined("r", 0) else {
        unreachable!()
    };
    let all = LiveCursor::list_json(&[live("n-2", "ana", "[1]")]);
    first.cursors = Some(all.clone());
    h.server_says(link, ServerFrame::Joined(first));
    assert_eq!(
        cursor_events(&mut h, &mut kept),
        [(all.as_text().to_owned(), true)],
        "a joined hands on every cursor, untouched"
    );
    assert_eq!(kept.list(), [live("n-2", "ana", "[1]")]);
    let notice = |conn: &str, user: &str, value: &str| {
        let cursor = live(conn, user, value).to_json();
        ServerFrame::Cursor(CursorNotice {
            room: room("r"),
            cursor,
        })
    };
    h.server_says(link, notice("n-3", "ben", "[2]"));
    h.server_says(link, notice("n-2", "ana", "[5]"));
    h.server_says(link, notice("n-3", "ben", "null"));
    let events = cursor_events(&mut h, &mut kept);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|(_, whole)| !whole), "one cursor each");
    assert_eq!(kept.list(), [live("n-2", "ana", "[5]")]);
    assert!(
        !kept.apply(&live("n-4", "cal", "null").to_json(), false),
        "the removal of an unknown cursor changes nothing"
    );
    // A polling `state` replaces the list, and its version goes into the next long poll.
    h.server_says(
        link,
        ServerFrame::State(RoomState {
            room: room("r"),
            presence: None,
            typing: None,
            cursors: Some(Json::empty_list()),
            cursor_version: Some(77),
            streams: None,
            locks: None,
        }),
    );
    assert_eq!(cursor_events(&mut h, &mut kept), [("[]".to_owned(), true)]);
    assert!(kept.list().is_empty());
    let rooms = &h.client.rooms;
    assert_eq!(rooms.get(&room("r")).unwrap().cursor_version, 77);
}

#[test]
fn folded_cursors_stay_ordered_by_connection_and_json_that_is_not_cursors_changes_nothing() {
    let mut kept = LiveCursors::default();
    let whole = LiveCursor::list_json(&[live("c9", "ben", "1"), live("c10", "cy", "2")]);
    assert!(kept.apply(&whole, true));
    let conns = |kept: &LiveCursors| -> Vec<String> {
        kept.list().iter().map(|c| c.conn.clone()).collect()
    };
    assert_eq!(conns(&kept), ["c10", "c9"]);
    let one = Json::from_text(r#"{"conn":"c1","user":"dan","value":3}"#).unwrap();
    assert!(kept.apply(&one, false));
    assert_eq!(conns(&kept), ["c1", "c10", "c9"]);
    for junk in [r#"{"not":"cursors"}"#, "7", r#"[{"conn":1}]"#] {
        let junk = Json::from_text(junk).unwrap();
        assert!(!kept.apply(&junk, true), "{junk:?}");
        assert!(!kept.apply(&junk, false), "{junk:?}");
    }
    assert_eq!(conns(&kept), ["c1", "c10", "c9"]);
}
