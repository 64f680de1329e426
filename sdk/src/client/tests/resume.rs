//! Joining from a saved cursor (`Client::join_from`): the join carries it, the events after it
//! are delivered once, a reconnect resumes from the last one delivered, and a `reset` says
//! where live events go on from.

use super::*;

fn resumed_client(cursor: Option<Cursor>) -> (Harness, u64) {
    let mut h = Harness::new(ClientConfig {
        transport: TransportMode::WebSocket,
        ..ClientConfig::default()
    });
    let now = h.now;
    h.client.join_from(now, room("r"), Json::null(), cursor);
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.welcome(link);
    (h, link)
}

#[test]
fn a_join_from_a_cursor_resumes_there_and_a_reconnect_from_the_last_event() {
    let (mut h, link) = resumed_client(Some(Cursor { epoch: 5, seq: 3 }));
    let joins: Vec<Option<Cursor>> = h
        .frames_sent()
        .into_iter()
        .filter_map(|frame| match frame {
            ClientFrame::Join(join) => Some(join.resume),
            _ => None,
        })
        .collect();
    assert_eq!(joins, [Some(Cursor { epoch: 5, seq: 3 })]);
    h.server_says(link, joined("r", 5));
    // The replay: 3 is at the cursor (already seen), 4 and 5 are new.
    for seq in 3..=5 {
        h.server_says(link, event("r", seq, &format!("e{seq}")));
    }
    let events = h.take_events();
    assert!(events.contains(&ClientEvent::Joined {
        room: room("r"),
        cursor: Cursor { epoch: 5, seq: 3 },
    }));
    let seqs: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Event { event, .. } => event.seq,
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [4, 5], "nothing at or below the saved cursor again");
    // The socket drops: the next join resumes from the last event delivered.
    h.client.handle_socket_closed(h.now, link, None);
    h.advance(Duration::from_secs(11));
    let link = h.opened_socket();
    h.welcome(link);
    assert_eq!(kinds(&h.frames_sent()), ["join r @5"]);
}

#[test]
fn a_join_without_a_cursor_is_a_plain_join() {
    let (mut h, _) = resumed_client(None);
    assert_eq!(kinds(&h.frames_sent()), ["join r"]);
}

#[test]
fn a_join_from_a_cursor_keeps_the_position_of_a_room_already_joined() {
    let (mut h, link) = resumed_client(None);
    h.server_says(link, joined("r", 7));
    h.take_outputs();
    let now = h.now;
    h.client.join_from(
        now,
        room("r"),
        Json::null(),
        Some(Cursor { epoch: 5, seq: 1 }),
    );
    h.drain();
    assert_eq!(kinds(&h.frames_sent()), ["join r @7"]);
    assert_eq!(
        h.client.cursor(&room("r")),
        Some(Cursor { epoch: 5, seq: 7 })
    );
}

#[test]
fn a_reset_says_where_live_events_go_on_from() {
    let (mut h, link) = resumed_client(Some(Cursor { epoch: 5, seq: 3 }));
    h.server_says(link, joined("r", 40));
    let reset = Reset {
        room: room("r"),
        reason: ResetReason::HistoryTrimmed,
        epoch: 5,
        head: 40,
    };
    h.server_says(link, ServerFrame::Reset(reset));
    assert!(h.take_events().contains(&ClientEvent::Reset {
        room: room("r"),
        reason: ResetReason::HistoryTrimmed,
        cursor: Cursor { epoch: 5, seq: 40 },
    }));
    h.server_says(link, event("r", 41, "e41"));
    assert_eq!(
        h.client.cursor(&room("r")),
        Some(Cursor { epoch: 5, seq: 41 })
    );
}
