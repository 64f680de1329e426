//! Publishes the server refuses: passing refusals sent again, permanent ones reported, the
//! outbox across a reload, and a `not_joined` for a room the client is in (join again first).

use super::*;

#[test]
fn the_outbox_survives_a_reload_and_refusals_are_retried_or_reported() {
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    for n in 0..3 {
        h.client
            .publish(now, room("r"), Json::from_text(n.to_string()).unwrap())
            .unwrap();
    }
    h.drain();
    let saves: Vec<String> = h
        .take_outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Save {
                key: OUTBOX_KEY,
                value,
            } => Some(value),
            _ => None,
        })
        .collect();
    assert_eq!(saves.len(), 1, "three publishes, one save per drain");
    let saved = saves.into_iter().next();
    // Reload: a new client from storage sends the same publishes, with the same ids.
    let mut h = Harness::restored(
        ClientConfig {
            transport: TransportMode::WebSocket,
            ..ClientConfig::default()
        },
        Restored {
            outbox: saved,
            transport: None,
        },
    );
    // What waits is shown as pending again, in order, then the count.
    let restored: Vec<String> = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            ClientEvent::Pending { body, .. } => format!("pending {}", body.as_text()),
            ClientEvent::Outbox { queued } => format!("outbox {queued}"),
            other => format!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        restored,
        ["pending 0", "pending 1", "pending 2", "outbox 3"]
    );
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.welcome(link);
    let sent = h.frames_sent();
    assert_eq!(
        kinds(&sent),
        ["join r", "publish 0", "publish 1", "publish 2"]
    );
    let ids: Vec<EventId> = sent
        .iter()
        .filter_map(|f| {
            if let ClientFrame::Publish(p) = f {
                Some(p.id.clone())
            } else {
                None
            }
        })
        .collect();
    let nack = |id: &EventId, code, room: Option<RoomName>| {
        ServerFrame::Nack(Nack {
            room,
            id: id.clone(),
            code,
            message: "m".into(),
            head: None,
            retry_after_ms: None,
        })
    };
    h.server_says(link, nack(&ids[0], ErrorCode::RateLimited, Some(room("r"))));
    h.server_says(link, nack(&ids[1], ErrorCode::Conflict, Some(room("r"))));
    assert!(h.take_events().iter().any(|e| matches!(e, ClientEvent::PublishFailed { id, code: ErrorCode::Conflict, .. } if id == &ids[1])));
    // A publish the server could not read past its id is refused for good, and the app is told
    // which one and in which room, though the nack does not say the room.
    h.server_says(link, nack(&ids[2], ErrorCode::BadFrame, None));
    let failed: Vec<_> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::PublishFailed { room, id, code, .. } => Some((room, id, code)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [(room("r"), ids[2].clone(), ErrorCode::BadFrame)]);
    h.advance(Duration::from_millis(999));
    assert!(h.frames_sent().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        kinds(&h.frames_sent()),
        ["publish 0"],
        "a passing refusal is retried after a second"
    );
    assert_eq!(h.client.outbox_len(), 1);
}

#[test]
fn a_publish_refused_as_not_joined_in_a_joined_room_joins_again_then_publishes_again() {
    // The server lost the membership (a polling request reached a node that did not know the
    // session): the client joins again, resuming from its cursor, and sends the publish again.
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client.handle_online(now, true);
    h.client
        .join(now, room("r"), Json::from_text(r#"{"c":1}"#).unwrap());
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.welcome(link);
    h.server_says(link, joined("r", 0));
    let id = h.client.publish(now, room("r"), Json::null()).unwrap();
    h.advance(Duration::ZERO);
    assert_eq!(kinds(&h.frames_sent()), ["join r", "publish null"]);
    h.server_says(
        link,
        ServerFrame::Nack(Nack {
            room: Some(room("r")),
            id: id.clone(),
            code: ErrorCode::NotJoined,
            message: "join room r before publishing to it".into(),
            head: None,
            retry_after_ms: None,
        }),
    );
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::PublishFailed { .. })),
        "not a failure: the client is in the room"
    );
    let sent = h.frames_sent();
    assert_eq!(kinds(&sent), ["join r @0"]);
    let ClientFrame::Join(join) = &sent[0] else {
        unreachable!()
    };
    assert_eq!(join.meta.as_text(), r#"{"c":1}"#);
    assert_eq!(join.resume.map(|c| (c.epoch, c.seq)), Some((5, 0)));
    h.advance(Duration::from_secs(1));
    assert_eq!(kinds(&h.frames_sent()), ["publish null"]);
    assert_eq!(h.client.outbox_len(), 1);
}
