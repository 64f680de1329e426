//! Stored events from other nodes (the bus), gaps, repairs and lineage resets, on virtual time.
//!
//! "Another node" stores straight into the harness's log (which the hub's repairs read), and
//! what the bus would deliver is fed with `Hub::handle_stored` when a test says so.

use super::*;
use crate::store::contract::request_from;

/// Stores an event as another node would: in the log, without the hub hearing of it.
fn store_elsewhere(h: &mut Harness, id: &str) -> StoredEvent {
    let at = h.now().unix_ms;
    match h.log.append(request_from("zoe", "r", id, at, None), at) {
        AppendOutcome::Stored(stored) => stored,
        other => panic!("expected stored, got {other:?}"),
    }
}

fn hear(h: &mut Harness, stored: StoredEvent) {
    let now = h.now();
    h.hub.handle_stored(now, stored);
    h.pump();
}

#[test]
fn events_another_node_stored_fan_out_once_and_in_order_whatever_order_they_are_heard_in() {
    let mut h = two_members();
    let first = store_elsewhere(&mut h, "z1");
    let second = store_elsewhere(&mut h, "z2");
    hear(&mut h, second.clone());
    // Past a gap: held, nothing delivered yet.
    assert_eq!(h.take(1), Vec::<String>::new());
    hear(&mut h, first.clone());
    let both = [
        r#"event r #1 z1 by zoe {"n":"z1"}"#,
        r#"event r #2 z2 by zoe {"n":"z2"}"#,
    ];
    assert_eq!(h.take(1), both);
    assert_eq!(h.take(2), both);
    // Heard again (this node's own events come back from the bus too): nothing.
    hear(&mut h, first);
    hear(&mut h, second);
    h.send(1, &publish("r", "a3", "3"));
    assert_eq!(h.take(1), ["event r #3 a3 by ana 3", "ack r a3 #3"]);
    assert_eq!(h.take(2), ["event r #3 a3 by ana 3"]);
    assert!(!h.transcript.iter().any(|line| line.contains("Repair")));
}

#[test]
fn a_gap_that_does_not_fill_is_repaired_from_the_store_and_the_ack_waits_for_its_event() {
    let mut h = two_members();
    // Another node stores #1; its message never arrives (the bus lost it).
    store_elsewhere(&mut h, "z1");
    h.send(1, &publish("r", "a2", "2"));
    // Ana's event is #2: held behind the gap, and so is her ack.
    assert_eq!(h.take(1), Vec::<String>::new());
    assert_eq!(h.take(2), Vec::<String>::new());
    h.advance(h.hub.config().gap_wait);
    let expect = [
        r#"event r #1 z1 by zoe {"n":"z1"}"#,
        "event r #2 a2 by ana 2",
    ];
    assert_eq!(h.take(2), expect);
    assert_eq!(h.take(1), [expect[0], expect[1], "ack r a2 #2"]);
}

#[test]
fn a_publish_whose_ack_waits_behind_a_gap_is_still_owed_an_answer() {
    // A polling session's POST is answered once the hub owes it nothing: an ack held behind a
    // gap must keep it waiting, or the ack would come after the answer and never reach it.
    let mut h = two_members();
    store_elsewhere(&mut h, "z1");
    h.send(1, &publish("r", "a2", "2"));
    assert_eq!(h.take(1), Vec::<String>::new());
    assert!(h.hub.owes_answers(1), "the ack of #2 is still to come");
    h.advance(h.hub.config().gap_wait);
    assert_eq!(
        h.take(1),
        [
            r#"event r #1 z1 by zoe {"n":"z1"}"#,
            "event r #2 a2 by ana 2",
            "ack r a2 #2"
        ]
    );
    assert!(!h.hub.owes_answers(1));
}

#[test]
fn a_backend_publish_behind_a_gap_completes_after_its_event() {
    let mut h = two_members();
    store_elsewhere(&mut h, "z1");
    let request = AppendRequest {
        room: RoomName::parse("r").unwrap(),
        id: wire::EventId::parse("b2").unwrap(),
        from: "system".into(),
        at: h.now().unix_ms,
        body: Json::from_text("2").unwrap(),
        if_seq: None,
        if_lock: None,
    };
    let now = h.now();
    h.hub.handle_backend_publish(now, 9, request);
    h.pump();
    assert!(h.completed.is_empty());
    h.advance(h.hub.config().gap_wait);
    assert_eq!(
        h.take(2),
        [
            r#"event r #1 z1 by zoe {"n":"z1"}"#,
            "event r #2 b2 by system 2"
        ]
    );
    assert!(matches!(&h.completed[..], [(9, Ok(AppendOutcome::Stored(s)))] if s.seq() == 2));
}

/// One node, Redis restarted without persistence: the room's next append starts a new lineage.
/// Before the bus, the hub dropped that event (another epoch) yet acked it, so the members
/// never saw it nor learned that the history they held was gone.
#[test]
fn an_event_of_a_new_lineage_resets_the_members_then_goes_on_in_it() {
    let mut h = two_members();
    h.send(1, &publish("r", "a1", "1"));
    h.take(1);
    h.take(2);
    // The store loses every room.
    h.log = MemoryLog::new(EPOCH + 1, Retention::default());
    h.send(1, &publish("r", "a2", "2"));
    let reset = r#"reset r "epoch_changed" head=0"#;
    assert_eq!(h.take(1), [reset, "event r #1 a2 by ana 2", "ack r a2 #1"]);
    assert_eq!(h.take(2), [reset, "event r #1 a2 by ana 2"]);
    h.send(2, &publish("r", "b2", "3"));
    assert_eq!(h.take(1), ["event r #2 b2 by ben 3"]);
    assert_eq!(h.take(2), ["event r #2 b2 by ben 3", "ack r b2 #2"]);
}

#[test]
fn a_store_behind_the_room_resets_the_members_to_its_head() {
    let mut h = two_members();
    h.send(1, &publish("r", "a1", "1"));
    h.send(1, &publish("r", "a2", "2"));
    h.take(1);
    h.take(2);
    // The store rolled back to #1 under the same epoch (a failover to a lagging replica); the
    // bus reconnected, so the hub compares the room with the store.
    h.log = MemoryLog::new(EPOCH, Retention::default());
    store_elsewhere(&mut h, "z1");
    let now = h.now();
    h.hub
        .handle_resynced(now, vec![RoomName::parse("r").unwrap()]);
    h.pump();
    assert_eq!(h.take(1), [r#"reset r "cursor_ahead" head=1"#]);
    assert_eq!(h.take(2), [r#"reset r "cursor_ahead" head=1"#]);
    h.send(2, &publish("r", "b2", "3"));
    assert_eq!(h.take(1), ["event r #2 b2 by ben 3"]);
}

#[test]
fn a_resync_repairs_every_followed_room_from_the_store() {
    let mut h = two_members();
    store_elsewhere(&mut h, "z1");
    store_elsewhere(&mut h, "z2");
    let now = h.now();
    h.hub
        .handle_resynced(now, vec![RoomName::parse("r").unwrap()]);
    h.pump();
    let both = [
        r#"event r #1 z1 by zoe {"n":"z1"}"#,
        r#"event r #2 z2 by zoe {"n":"z2"}"#,
    ];
    assert_eq!(h.take(1), both);
    assert_eq!(h.take(2), both);
    // Their messages arriving late change nothing.
    let late = h.log.read(&RoomName::parse("r").unwrap(), 0, 10, 0).events;
    for stored in late {
        hear(&mut h, stored);
    }
    assert_eq!(h.take(1), Vec::<String>::new());
}

#[test]
fn a_room_is_followed_while_it_is_open_here_and_unfollowed_when_forgotten() {
    let mut h = two_members();
    let r = RoomName::parse("r").unwrap();
    assert_eq!(h.followed, BTreeSet::from([r.clone()]));
    h.send(1, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(h.followed, BTreeSet::from([r.clone()]));
    h.send(2, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(h.followed, BTreeSet::new());
    // Heard after it was forgotten: nothing happens.
    let stored = store_elsewhere(&mut h, "z1");
    hear(&mut h, stored);
    assert_eq!(h.take(1), ["left r"]);
    h.send(1, &join("r"));
    assert_eq!(h.followed, BTreeSet::from([r]));
    assert_eq!(h.take(1), ["joined r head=1 [ana(1)] typing=[]"]);
}

#[test]
fn a_replaying_member_gets_the_reset_after_its_replay_and_only_the_new_lineage_after_it() {
    let mut h = two_members();
    h.send(1, &publish("r", "a1", "1"));
    h.send(1, &publish("r", "a2", "2"));
    h.connect(3, "cat");
    h.defer = true;
    h.send(
        3,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":0}}"#,
    );
    h.take(1);
    h.take(2);
    h.take(3);
    // While cat's replay is outstanding the store loses the room and a new lineage begins.
    h.log = MemoryLog::new(EPOCH + 1, Retention::default());
    let stored = store_elsewhere(&mut h, "z1");
    hear(&mut h, stored);
    h.run_deferred();
    let reset = r#"reset r "epoch_changed" head=0"#;
    let z1 = r#"event r #1 z1 by zoe {"n":"z1"}"#;
    assert_eq!(h.take(1), [reset, z1]);
    // Cat's replay streamed (what it read of) the old lineage; the reset and the new lineage
    // come after it, never before.
    let cat = h.take(3);
    assert_eq!(cat[cat.len() - 2..], [reset, z1]);
}

#[test]
fn a_failed_repair_is_tried_again() {
    let mut h = two_members();
    store_elsewhere(&mut h, "z1");
    h.defer = true;
    let now = h.now();
    h.hub
        .handle_resynced(now, vec![RoomName::parse("r").unwrap()]);
    h.pump();
    let (room, _) = h.repairs.pop_front().expect("a repair");
    let now = h.now();
    let failed = Err(StoreError::Backend("broken pipe".into()));
    h.hub.handle_repaired(now, room, failed);
    h.pump();
    assert!(h.repairs.is_empty());
    h.advance(super::super::stored::REPAIR_RETRY);
    h.run_deferred();
    assert_eq!(h.take(1), [r#"event r #1 z1 by zoe {"n":"z1"}"#]);
}

/// A repair reads the store while this node's own append moves the room's head on: its answer
/// (behind the head it came back to) is no rollback.
#[test]
fn a_repair_answered_after_the_head_moved_on_is_no_rollback() {
    let mut h = two_members();
    let r = RoomName::parse("r").unwrap();
    h.defer = true;
    let now = h.now();
    h.hub.handle_resynced(now, vec![r.clone()]);
    h.pump();
    let (room, after) = h.repairs.pop_front().expect("a repair");
    let page = h.log.read(&room, after, 256, now.unix_ms);
    h.defer = false;
    h.send(1, &publish("r", "a1", "1"));
    assert_eq!(h.take(1), ["event r #1 a1 by ana 1", "ack r a1 #1"]);
    let now = h.now();
    h.hub.handle_repaired(now, room, Ok(page));
    h.pump();
    assert_eq!(h.take(1), Vec::<String>::new());
    assert_eq!(h.take(2), ["event r #1 a1 by ana 1"]);
    h.send(2, &publish("r", "b2", "2"));
    assert_eq!(h.take(1), ["event r #2 b2 by ben 2"]);
}

/// An append of the replaced lineage answered late: its event is not delivered (its lineage
/// is gone, and the members were reset past it), but its publisher is still answered.
#[test]
fn a_late_event_of_a_replaced_lineage_is_dropped_but_its_publisher_is_acked() {
    let mut h = two_members();
    h.log = MemoryLog::new(EPOCH + 1, Retention::default());
    let stored = store_elsewhere(&mut h, "z1");
    hear(&mut h, stored);
    let reset = r#"reset r "epoch_changed" head=0"#;
    let z1 = r#"event r #1 z1 by zoe {"n":"z1"}"#;
    assert_eq!(h.take(1), [reset, z1]);
    assert_eq!(h.take(2), [reset, z1]);
    let mut late = h.log.read(&RoomName::parse("r").unwrap(), 0, 1, 0).events[0].clone();
    late.epoch = EPOCH;
    late.event.seq = Some(5);
    late.event.id = wire::EventId::parse("old").unwrap();
    let now = h.now();
    h.hub.handle_append_done(
        now,
        AppendDone {
            origin: crate::store::Origin::Conn(1),
            room: RoomName::parse("r").unwrap(),
            id: wire::EventId::parse("old").unwrap(),
            from: late.event.from.clone(),
            result: Ok(AppendOutcome::Stored(late)),
        },
    );
    h.pump();
    assert_eq!(h.take(1), ["ack r old #5"]);
    assert_eq!(h.take(2), Vec::<String>::new());
}
