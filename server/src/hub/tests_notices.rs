//! Notices on one node: who gets one (everyone, a user's connections, one connection), how a
//! polling session gets it (kept for its next poll), and what an unknown connection answers.

use super::*;
use crate::hub::{NoticeOutcome, NoticeTarget};

fn notice(id: &str) -> wire::Notice {
    wire::Notice {
        id: id.into(),
        level: "warning".into(),
        body: wire::Json::from_text(r#"{"text":"maintenance at 22:00"}"#).unwrap(),
        at: 1_700_000_000_000,
    }
}

fn send_notice(h: &mut Harness, target: NoticeTarget, id: &str) -> NoticeOutcome {
    let outcome = h.hub.handle_notice(&target, notice(id));
    h.pump();
    outcome
}

fn connect_polling(h: &mut Harness, conn: ConnId, user: &str) {
    let now = h.now();
    let identity = Identity::new(user, None, &[("*", RoomRight::Publish)]);
    h.hub
        .handle_connect(now, conn, Arc::new(identity), ConnKind::Poll);
    h.pump();
    h.take(conn);
}

/// Ana on two connections (1, 2, one of them in room r), Ben on one (3), Cid polling (4).
fn four_connections() -> Harness {
    let mut h = Harness::new(HubConfig::default());
    h.connect(1, "ana");
    h.connect(2, "ana");
    h.connect(3, "ben");
    connect_polling(&mut h, 4, "cid");
    h.send(1, &join("r"));
    for conn in 1..=3 {
        h.take(conn);
    }
    h
}

const SHOWN: &str = r#"notice n1 warning {"text":"maintenance at 22:00"}"#;

#[test]
fn a_notice_reaches_exactly_the_connections_its_target_names() {
    // (target, who gets it)
    let table: [(NoticeTarget, &[ConnId]); 5] = [
        (NoticeTarget::Everyone, &[1, 2, 3, 4]),
        (NoticeTarget::User("ana".into()), &[1, 2]),
        (NoticeTarget::User("cid".into()), &[4]),
        (NoticeTarget::Connection("n-2".into()), &[2]),
        (NoticeTarget::Connection("n-4".into()), &[4]),
    ];
    for (target, expected) in table {
        let mut h = four_connections();
        let outcome = send_notice(&mut h, target.clone(), "n1");
        assert_eq!(
            outcome,
            NoticeOutcome::Delivered(expected.len()),
            "{target:?}"
        );
        for conn in 1..=4 {
            let got = h.take(conn);
            if expected.contains(&conn) {
                assert_eq!(got, [SHOWN], "{target:?} to {conn}");
            } else {
                assert!(got.is_empty(), "{target:?} reached {conn}: {got:?}");
            }
        }
    }
}

#[test]
fn a_user_without_connections_gets_nothing_and_it_is_no_error() {
    let mut h = four_connections();
    assert_eq!(
        send_notice(&mut h, NoticeTarget::User("zoe".into()), "n1"),
        NoticeOutcome::Delivered(0)
    );
    // Nothing is kept for later either: a notice is not a room event.
    h.connect(5, "zoe");
    assert_eq!(h.take(5), ["welcome zoe"]);
}

#[test]
fn an_unknown_or_closed_connection_is_no_such_connection() {
    let mut h = four_connections();
    h.disconnect(3);
    for wire_id in ["n-3", "n-99", "m-1", "n-x", "nope"] {
        assert_eq!(
            send_notice(&mut h, NoticeTarget::Connection(wire_id.into()), "n1"),
            NoticeOutcome::NoSuchConnection,
            "{wire_id}"
        );
    }
    assert_eq!(
        h.hub.notice_figures().sent,
        [0, 0, 0],
        "refused ones are not counted"
    );
}

#[test]
fn a_polling_session_gets_its_notice_as_a_kept_frame_and_figures_count_deliveries() {
    let mut h = four_connections();
    send_notice(&mut h, NoticeTarget::Everyone, "n1");
    send_notice(&mut h, NoticeTarget::Connection("n-4".into()), "n2");
    assert!(
        h.transcript
            .iter()
            .any(|line| line.starts_with("Notice { conn: 4")),
        "the session's notices are actions the driver keeps: {:?}",
        h.transcript
    );
    assert_eq!(h.take(4).len(), 2);
    let figures = h.hub.notice_figures();
    assert_eq!(figures.sent, [1, 0, 1]);
    assert_eq!(figures.delivered, 5);
}
