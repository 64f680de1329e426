//! The client core's locks: requests sent, answers matched by id, the room's list handed to the
//! app exactly as the server sent it (opaque JSON), auto-renewal at half the TTL and at once on
//! a new link, and refusals.

use super::*;
use crate::wire::{EventId, LockChange, LockInfo, LockNotice, LockRequest};

const LIST: &str = r#"[{"name":"doc","token":7,"user":"me","conn":"n-1","until":99}]"#;

fn grant(token: u64) -> LockInfo {
    LockInfo {
        name: EventId::parse("doc").unwrap(),
        token,
        user: "me".into(),
        conn: "n-1".into(),
        until: 99,
    }
}

fn sent_lock(frames: &[ClientFrame]) -> LockRequest {
    frames
        .iter()
        .find_map(|f| match f {
            ClientFrame::Lock(request) => Some(request.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no lock frame in {frames:?}"))
}

#[test]
fn a_grant_is_answered_by_id_its_list_passed_through_and_renewed_at_half_its_ttl() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    h.take_outputs();
    h.take_events();
    let name = EventId::parse("doc").unwrap();
    let ttl = Duration::from_secs(10);
    let now = h.now;
    let id = h
        .client
        .lock(now, room("r"), name, ttl, None, true)
        .unwrap();
    h.drain();
    let request = sent_lock(&h.frames_sent());
    assert_eq!(
        (request.id.clone(), request.ttl_ms, request.token),
        (id.clone(), 10_000, None)
    );
    let notice = LockNotice {
        room: room("r"),
        change: LockChange::Granted,
        lock: grant(7),
        locks: Json::from_text(LIST).unwrap(),
        id: Some(id.clone()),
    };
    h.server_says(link, ServerFrame::Lock(notice));
    let events = h.take_events();
    assert!(events.iter().any(|e| matches!(e, ClientEvent::LockDone { id: i, change: LockChange::Granted, lock, .. } if *i == id && lock.token == 7)));
    let listed = events.iter().find_map(|e| match e {
        ClientEvent::Locks { locks, .. } => Some(locks.as_text().to_owned()),
        _ => None,
    });
    assert_eq!(
        listed.as_deref(),
        Some(LIST),
        "the list as the server sent it"
    );
    assert_eq!(h.client.locks(&room("r")).as_text(), LIST);
    // Nothing before half the TTL; then a renewal with the grant's token.
    h.advance(Duration::from_millis(4_900));
    assert!(
        !h.frames_sent()
            .iter()
            .any(|f| matches!(f, ClientFrame::Lock(_)))
    );
    h.advance(Duration::from_millis(200));
    let renewal = sent_lock(&h.frames_sent());
    assert_eq!((renewal.token, renewal.ttl_ms), (Some(7), 10_000));
    // Refused as lost: the client stops renewing and tells the app.
    h.server_says(
        link,
        ServerFrame::Nack(Nack {
            room: Some(room("r")),
            id: renewal.id.clone(),
            code: ErrorCode::LockLost,
            message: "gone".into(),
            head: None,
            retry_after_ms: None,
        }),
    );
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        ClientEvent::LockFailed {
            code: ErrorCode::LockLost,
            ..
        }
    )));
    h.advance(Duration::from_secs(30));
    assert!(
        !h.frames_sent()
            .iter()
            .any(|f| matches!(f, ClientFrame::Lock(_)))
    );
}

#[test]
fn locks_are_refused_offline_and_an_empty_joined_list_is_no_news() {
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    let name = EventId::parse("doc").unwrap();
    let ttl = Duration::from_secs(1);
    assert_eq!(
        h.client
            .lock(now, room("r"), name.clone(), ttl, None, false),
        Err(PublishError::Offline)
    );
    assert_eq!(
        h.client.lock(now, room("nope"), name, ttl, None, false),
        Err(PublishError::NotJoined(room("nope")))
    );
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.take_events();
    h.server_says(link, joined("r", 0));
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Locks { .. }))
    );
    assert_eq!(h.client.locks(&room("r")).as_text(), "[]");
}
