//! Streams on virtual time: scenario tables (late joiners, coalescing, a finish stored once
//! however often it is retried, abandoned streams, limits, backend producers) and a seeded
//! simulation of producers and members coming and going.

use super::*;
use chorus_sdk::wire::{BackendStreamOp, EventId, StreamKind, StreamStep};

/// A `stream` frame of room `r` (also used by `tests_federation/streams.rs`).
pub(in crate::hub) fn step(id: &str, rest: &str) -> String {
    step_in("r", id, rest)
}

pub(in crate::hub) fn start(id: &str) -> String {
    step(id, r#""op":"start""#)
}

pub(in crate::hub) fn append(id: &str, n: u64, chunk: &str) -> String {
    step(id, &format!(r#""op":"append","n":{n},"chunk":{chunk}"#))
}

pub(in crate::hub) fn finish(id: &str) -> String {
    step(id, r#""op":"finish""#)
}

/// The stored events of room `r`: (seq, id, body).
fn stored(h: &mut Harness) -> Vec<(u64, String, String)> {
    let room = RoomName::parse("r").unwrap();
    h.log
        .read(&room, 0, usize::MAX, h.now().unix_ms)
        .events
        .iter()
        .map(|e| {
            (
                e.seq(),
                e.event.id.to_string(),
                e.event.body.as_text().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_member_joining_mid_stream_first_gets_everything_so_far() {
    let mut h = two_members();
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""Hel""#));
    h.advance(Duration::from_millis(50));
    h.send(1, &append("a1", 1, r#""lo""#));
    assert_eq!(
        h.take(2),
        [
            "stream r a1 start Text",
            r#"stream r a1 append Text n=0 ["Hel"]"#,
            r#"stream r a1 append Text n=1 ["lo"]"#,
        ]
    );
    // The producer gets its own stream's frames too (a second tab shows it).
    assert_eq!(h.take(1).len(), 3);
    h.connect(3, "cy");
    h.send(3, &join("r"));
    assert_eq!(
        h.take(3),
        [
            "welcome cy",
            "joined r head=0 [ana(1) ben(1) cy(1)] typing=[]",
            r#"stream r a1 start Text n=0 ["Hel","lo"]"#,
        ]
    );
    h.send(1, &append("a1", 2, r#"" there""#));
    h.advance(Duration::from_millis(20));
    h.send(1, &finish("a1"));
    let body = r#"{"stream":"text","text":"Hello there"}"#;
    assert_eq!(
        h.take(3),
        [
            r#"stream r a1 append Text n=2 [" there"]"#.to_owned(),
            format!("event r #1 a1 by ana {body}"),
            "stream r a1 finish Text #1".to_owned(),
        ]
    );
    assert_eq!(
        h.take(1)[1..],
        [
            r#"stream r a1 append Text n=2 [" there"]"#.to_owned(),
            format!("event r #1 a1 by ana {body}"),
            "stream r a1 finish Text #1".to_owned(),
            "ack r a1 #1".to_owned(),
        ]
    );
    assert_eq!(stored(&mut h), [(1, "a1".to_owned(), body.to_owned())]);
    // Nothing of the stream is left: a later joiner gets only history.
    h.connect(4, "dee");
    h.send(4, &join("r"));
    assert_eq!(h.take(4).len(), 2);
}

#[test]
fn chunks_faster_than_the_flush_period_are_coalesced() {
    let mut h = two_members();
    h.send(1, &start("a1"));
    for n in 0..100 {
        h.send(1, &append("a1", n, &format!(r#""t{n} ""#)));
    }
    let frames = h.take(2);
    // The first chunk goes at once; the 99 after it wait for the flush.
    assert_eq!(frames.len(), 2, "{frames:?}");
    h.advance(Duration::from_millis(10));
    let frames = h.take(2);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].starts_with(r#"stream r a1 append Text n=1 ["t1 ","t2 ","#));
    // Slower than the period, each chunk goes at once.
    h.advance(Duration::from_millis(30));
    h.send(1, &append("a1", 100, r#""x""#));
    assert_eq!(h.take(2), [r#"stream r a1 append Text n=100 ["x"]"#]);
    // A finish sends what waits first, then the result.
    h.send(1, &append("a1", 101, r#""y""#));
    h.send(1, &finish("a1"));
    let frames = h.take(2);
    assert_eq!(frames[0], r#"stream r a1 append Text n=101 ["y"]"#);
    assert!(frames[1].starts_with("event r #1 a1 by ana"));
    assert_eq!(frames[2], "stream r a1 finish Text #1");
}

#[test]
fn a_finish_is_stored_once_however_often_it_is_retried() {
    let mut h = two_members();
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""hi""#));
    h.take(1);
    h.take(2);
    h.defer = true;
    // Retried while the first is in the store: appended again, answered as a duplicate.
    h.send(1, &finish("a1"));
    h.send(1, &finish("a1"));
    assert_eq!(h.appends.len(), 2);
    h.run_deferred();
    h.defer = false;
    assert_eq!(
        h.take(1),
        [
            r#"event r #1 a1 by ana {"stream":"text","text":"hi"}"#,
            "stream r a1 finish Text #1",
            "ack r a1 #1",
            "ack r a1 #1 dup",
        ]
    );
    // Retried after the stream ended: answered from the room's ended streams.
    h.send(1, &finish("a1"));
    assert_eq!(h.take(1), ["ack r a1 #1 dup"]);
    // And through the backend too (same producer, same id).
    let now = h.now();
    let finish_op = BackendStreamOp {
        op: StreamStep::Finish,
        from: None,
        kind: StreamKind::Text,
        n: None,
        chunk: None,
        meta: None,
        message: None,
    };
    let room = RoomName::parse("r").unwrap();
    let id = EventId::parse("a1").unwrap();
    h.hub
        .handle_backend_stream(now, 9, room, id, "ana".into(), finish_op);
    h.pump();
    assert!(matches!(
        &h.streamed[..],
        [(
            9,
            StreamReply::Finished(Ok(AppendOutcome::Duplicate { seq: 1 }))
        )]
    ));
    assert_eq!(stored(&mut h).len(), 1);
    assert_eq!(h.take(2).len(), 2, "one event, one finish");
    // A start with the same id again is refused: the id is the stored result's.
    h.send(1, &start("a1"));
    assert_eq!(h.take(1), ["error stream_conflict r"]);
}

/// A `finish` sent again while the first is stored appends the whole result again, so each
/// repeat counts as a publish: a flood of them is refused with `rate_limited` and queues
/// nothing more in the store.
#[test]
fn finishes_repeated_while_the_first_is_stored_count_as_publishes() {
    let mut h = two_members_with(HubConfig {
        publish_burst: 3.0,
        ..HubConfig::default()
    });
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""hi""#));
    h.take(1);
    h.defer = true;
    for _ in 0..6 {
        h.send(1, &finish("a1"));
    }
    assert_eq!(
        h.appends.len(),
        3,
        "the first, then the two tokens the start left"
    );
    assert_eq!(h.take(1), ["error rate_limited r"; 3]);
    h.run_deferred();
    h.defer = false;
    assert_eq!(stored(&mut h).len(), 1);
}

#[test]
fn a_finish_the_store_refused_can_be_retried() {
    let mut h = two_members();
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""hi""#));
    h.defer = true;
    h.send(1, &finish("a1"));
    let job = h.appends.pop_front().unwrap();
    let now = h.now();
    h.hub
        .handle_append_done(now, job.done(Err(crate::store::StoreError::Closed)));
    h.pump();
    h.defer = false;
    assert_eq!(h.take(1).last().unwrap(), "nack r a1 storage_unavailable");
    h.send(1, &finish("a1"));
    assert_eq!(stored(&mut h).len(), 1);
    assert_eq!(h.take(2).last().unwrap(), "stream r a1 finish Text #1");
}

#[test]
fn a_stream_whose_producer_goes_silent_fails_after_the_timeout() {
    // Members that stay silent this long are not closed as idle.
    let mut h = two_members_with(HubConfig {
        heartbeat: Duration::from_secs(600),
        ..HubConfig::default()
    });
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""hi""#));
    h.take(2);
    // The producer's connection drops; it may come back within the timeout and go on.
    h.disconnect(1);
    h.advance(Duration::from_secs(20));
    h.connect(5, "ana");
    h.send(5, &join("r"));
    h.send(5, &start("a1"));
    h.send(5, &append("a1", 1, r#""!""#));
    h.take(2);
    h.advance(Duration::from_secs(29));
    assert!(h.take(2).iter().all(|f| !f.contains("fail")));
    h.advance(Duration::from_secs(2));
    assert_eq!(h.take(2), ["stream r a1 fail Text stream_abandoned"]);
    assert!(stored(&mut h).is_empty());
    // Its chunks are gone; a finish now is refused.
    h.take(5);
    h.send(5, &finish("a1"));
    assert_eq!(h.take(5), ["error stream_not_found r"]);
}

#[test]
fn a_producer_can_fail_its_stream() {
    let mut h = two_members();
    h.send(1, &start("a1"));
    h.send(
        1,
        &step("a1", r#""op":"fail","message":"the model is overloaded""#),
    );
    assert_eq!(
        h.take(2),
        [
            "stream r a1 start Text",
            "stream r a1 fail Text stream_failed"
        ]
    );
    assert!(stored(&mut h).is_empty());
}

#[test]
fn stream_steps_that_do_not_fit_are_refused_with_a_code() {
    let config = HubConfig {
        stream_max_chunk_bytes: 16,
        stream_max_bytes: 20,
        stream_max_per_room: 3,
        stream_max_per_conn: 2,
        ..HubConfig::default()
    };
    let mut h = two_members_with(config);
    let check = |h: &mut Harness, conn: ConnId, frame: &str, expect: &[&str]| {
        h.send(conn, frame);
        let got: Vec<String> = h
            .take(conn)
            .into_iter()
            .filter(|f| !f.starts_with("stream"))
            .collect();
        assert_eq!(got, expect, "{frame}");
    };
    check(
        &mut h,
        1,
        &append("nope", 0, r#""x""#),
        &["error stream_not_found r"],
    );
    check(&mut h, 1, &start("a1"), &[]);
    // A start again is the producer coming back: nothing changes.
    check(&mut h, 1, &start("a1"), &[]);
    check(&mut h, 1, &append("a1", 0, "42"), &["error bad_frame r"]);
    check(
        &mut h,
        1,
        &append("a1", 0, r#""0123456789abcdefgh""#),
        &["error stream_too_large r"],
    );
    check(&mut h, 1, &append("a1", 0, r#""0123456789""#), &[]);
    // A chunk the stream has is ignored; one past the next is refused.
    check(&mut h, 1, &append("a1", 0, r#""0123456789""#), &[]);
    check(
        &mut h,
        1,
        &append("a1", 5, r#""x""#),
        &["error stream_conflict r"],
    );
    check(
        &mut h,
        1,
        &append("a1", 1, r#""0123456789""#),
        &["error stream_too_large r"],
    );
    check(
        &mut h,
        1,
        &step("a1", r#""op":"append","n":1"#),
        &["error bad_frame r"],
    );
    check(&mut h, 1, &start("a2"), &[]);
    check(&mut h, 1, &start("a3"), &["error too_many_streams r"]);
    check(&mut h, 2, &start("b1"), &[]);
    check(&mut h, 2, &start("b2"), &["error too_many_streams r"]);
    check(
        &mut h,
        2,
        &step("p1", r#""op":"start","kind":"text","meta":{"x":1}"#),
        &["error too_many_streams r"],
    );
    h.connect(3, "cy");
    check(
        &mut h,
        3,
        &start("c1"),
        &["welcome cy", "error not_joined r"],
    );
    let reader = Identity::new("dee", None, &[("*", RoomRight::Read)]);
    h.connect_as(4, reader);
    h.send(4, &join("r"));
    h.take(4);
    check(&mut h, 4, &start("d1"), &["error forbidden r"]);
}

#[test]
fn a_progress_stream_keeps_its_latest_chunk() {
    let mut h = two_members();
    h.send(
        1,
        &step(
            "job",
            r#""op":"start","kind":"progress","meta":{"task":"import"}"#,
        ),
    );
    let progress = |n: u64, percent: u64| {
        step(
            "job",
            &format!(
                r#""op":"append","n":{n},"chunk":{{"percent":{percent},"step":"rows","eta_ms":900}}"#
            ),
        )
    };
    h.send(1, &progress(0, 10));
    h.send(1, &progress(1, 20));
    h.send(1, &progress(2, 30));
    h.send(
        1,
        &step("job", r#""op":"append","n":3,"chunk":{"percent":130}"#),
    );
    assert_eq!(h.take(1).last().unwrap(), "error bad_frame r");
    h.advance(Duration::from_millis(10));
    // Coalesced: only the latest of the waiting ones goes.
    assert_eq!(
        h.take(2)[2..],
        [r#"stream r job append Progress n=2 [{"percent":30,"step":"rows","eta_ms":900}]"#]
    );
    h.connect(3, "cy");
    h.send(3, &join("r"));
    assert_eq!(
        h.take(3)[2],
        r#"stream r job start Progress n=2 [{"percent":30,"step":"rows","eta_ms":900}]"#
    );
    h.send(1, &finish("job"));
    assert_eq!(
        stored(&mut h)[0].2,
        r#"{"stream":"progress","progress":{"percent":30,"step":"rows","eta_ms":900},"meta":{"task":"import"}}"#
    );
}

#[test]
fn the_backend_streams_into_a_room_not_open_on_its_node() {
    let mut h = Harness::new(HubConfig::default());
    let room = RoomName::parse("r").unwrap();
    let id = EventId::parse("answer").unwrap();
    let op = |op: StreamStep, chunk: Option<&str>| BackendStreamOp {
        op,
        from: None,
        kind: StreamKind::Text,
        n: None,
        chunk: chunk.map(|c| Json::from_text(c).unwrap()),
        meta: None,
        message: None,
    };
    let run = |h: &mut Harness, ticket: u64, step: BackendStreamOp| {
        let now = h.now();
        h.hub
            .handle_backend_stream(now, ticket, room.clone(), id.clone(), "bot".into(), step);
        h.pump();
    };
    run(&mut h, 1, op(StreamStep::Start, None));
    run(&mut h, 2, op(StreamStep::Append, Some(r#""Once""#)));
    // The room stays open while the stream is: a member joining now gets it so far.
    h.connect(1, "ana");
    h.send(1, &join("r"));
    assert_eq!(h.take(1)[2], r#"stream r answer start Text n=0 ["Once"]"#);
    run(&mut h, 3, op(StreamStep::Append, Some(r#""!""#)));
    run(&mut h, 4, op(StreamStep::Append, Some("7")));
    run(&mut h, 5, op(StreamStep::Finish, None));
    let replies: Vec<String> = h.streamed.iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(
        replies,
        [
            "(1, Done(0))",
            "(2, Done(1))",
            "(3, Done(2))",
            r#"(4, Refused((BadFrame, "a text stream's chunks are JSON strings")))"#
        ]
    );
    assert!(matches!(
        &h.completed[..],
        [(5, Ok(AppendOutcome::Stored(_)))]
    ));
    assert_eq!(
        h.take(1),
        [
            r#"stream r answer append Text n=1 ["!"]"#,
            r#"event r #1 answer by bot {"stream":"text","text":"Once!"}"#,
            "stream r answer finish Text #1",
        ]
    );
}

/// A seeded run: producers stream into two rooms while members join, leave and drop, finishes
/// are retried, the store lags and some producers go silent. Checked at the end: every
/// finished stream is one stored event whose text is everything its producer appended; every
/// member that saw a stream finish saw exactly that text (everything so far on joining, then
/// the rest, nothing twice); a stream the hub failed (its producer silent past the timeout)
/// stored nothing; no member saw a stream end twice.
fn simulate_streams(seed: u64) -> Result<(), String> {
    #[derive(PartialEq)]
    enum State {
        Open,
        Finished,
        Silent,
        Failed,
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    // Connections are not closed as idle here (nobody pings): producers and members stay.
    let mut h = Harness::new(HubConfig {
        heartbeat: Duration::from_secs(1 << 20),
        ..HubConfig::default()
    });
    h.defer = true;
    const ROOMS: [&str; 2] = ["r", "s"];
    // Producers: conn 1 streams in room r, conn 2 in room s; members: conns 10.. come and go.
    for (conn, room) in [(1, "r"), (2, "s")] {
        h.connect(conn, &format!("p{conn}"));
        h.send(conn, &join(room));
    }
    // Per stream: room, id, the text appended, its state in the model.
    let mut streams: Vec<(&str, String, String, State)> = Vec::new();
    let mut members: Vec<ConnId> = Vec::new();
    // What each member saw per stream: chunks taken, text, how it ended.
    let mut seen: HashMap<(ConnId, String), (u64, String, Option<String>)> = HashMap::new();
    let mut next_member: ConnId = 10;
    for _ in 0..600 {
        let who = rng.random_range(0..2usize);
        let producer = who as ConnId + 1;
        let open = streams
            .iter()
            .rposition(|s| s.0 == ROOMS[who] && s.3 == State::Open);
        let busy = streams
            .iter()
            .any(|s| s.0 == ROOMS[who] && matches!(s.3, State::Open | State::Silent));
        match rng.random_range(0..100) {
            0..=9 => {
                h.connect(next_member, "m");
                h.send(next_member, &join(ROOMS[rng.random_range(0..2)]));
                members.push(next_member);
                next_member += 1;
            }
            10..=14 if !members.is_empty() => {
                let conn = members.swap_remove(rng.random_range(0..members.len()));
                h.disconnect(conn);
            }
            15..=19 if !busy => {
                let id = format!("s{}", streams.len());
                h.send(producer, &step_in(ROOMS[who], &id, r#""op":"start""#));
                streams.push((ROOMS[who], id, String::new(), State::Open));
            }
            20..=69 if open.is_some() => {
                let stream = &mut streams[open.unwrap()];
                let n = stream.2.split_inclusive(' ').count();
                let piece = format!("w{} ", rng.random_range(0..1000));
                stream.2.push_str(&piece);
                let op = format!(r#""op":"append","n":{n},"chunk":"{piece}""#);
                h.send(producer, &step_in(stream.0, &stream.1, &op));
            }
            70..=74 if open.is_some() => {
                let stream = &mut streams[open.unwrap()];
                stream.3 = State::Finished;
                // A finish, sometimes retried at once.
                for _ in 0..rng.random_range(1..=2) {
                    h.send(producer, &step_in(stream.0, &stream.1, r#""op":"finish""#));
                }
            }
            75..=77 if open.is_some() => streams[open.unwrap()].3 = State::Silent,
            80..=89 => h.run_deferred(),
            90..=99 => h.advance(Duration::from_millis(rng.random_range(0..20_000))),
            _ => {}
        }
        absorb_streams(&mut h, &mut streams, &mut seen, |state| {
            *state = State::Failed
        })?;
    }
    // Settle: the store catches up, silent producers time out.
    h.run_deferred();
    h.advance(Duration::from_secs(60));
    absorb_streams(&mut h, &mut streams, &mut seen, |state| {
        *state = State::Failed
    })?;
    for (room, id, text, state) in &streams {
        let room_name = RoomName::parse(*room).unwrap();
        let events: Vec<String> = h
            .log
            .read(&room_name, 0, usize::MAX, h.now().unix_ms)
            .events
            .into_iter()
            .filter(|e| e.event.id.as_str() == id)
            .map(|e| e.event.body.as_text().to_owned())
            .collect();
        match (state, &events[..]) {
            (State::Failed, []) => {}
            (State::Finished, [body]) => {
                let expect = format!(
                    r#"{{"stream":"text","text":{}}}"#,
                    serde_json::to_string(text).unwrap()
                );
                if *body != expect {
                    return Err(format!("{id} stored {body}, not {expect}"));
                }
                for ((_, sid), (_, got, end)) in &seen {
                    let finished = end.as_deref().is_some_and(|e| e.starts_with("Some"));
                    if sid == id && finished && got != text {
                        return Err(format!("a member saw {id} as {got:?}, not {text:?}"));
                    }
                }
            }
            (State::Open | State::Silent, _) => {
                return Err(format!("{id} neither finished nor failed"));
            }
            (_, events) => return Err(format!("{id} stored {} times", events.len())),
        }
    }
    Ok(())
}

/// Folds the stream frames members got into `seen`, and marks the streams the producers saw
/// fail.
fn absorb_streams<S>(
    h: &mut Harness,
    streams: &mut [(&str, String, String, S)],
    seen: &mut HashMap<(ConnId, String), (u64, String, Option<String>)>,
    failed: impl Fn(&mut S),
) -> Result<(), String> {
    let mut all: Vec<_> = std::mem::take(&mut h.frames).into_iter().collect();
    all.sort_by_key(|(conn, _)| *conn);
    for (conn, frames) in all {
        for frame in frames {
            let ServerFrame::Stream(frame) = frame else {
                continue;
            };
            let frame = frame.update().map_err(|err| err.into_message())?;
            if conn < 10 {
                if frame.op == StreamStep::Fail
                    && let Some(stream) = streams.iter_mut().find(|s| s.1 == frame.id.as_str())
                {
                    failed(&mut stream.3);
                }
                continue;
            }
            let view = seen
                .entry((conn, frame.id.to_string()))
                .or_insert((0, String::new(), None));
            if frame.n > view.0 {
                return Err(format!(
                    "conn {conn} missed chunks of {} before {}",
                    frame.id, frame.n
                ));
            }
            for (k, chunk) in frame.chunks.iter().enumerate() {
                if frame.n + k as u64 >= view.0 {
                    view.1
                        .push_str(&serde_json::from_str::<String>(chunk.as_text()).unwrap());
                    view.0 += 1;
                }
            }
            if matches!(frame.op, StreamStep::Finish | StreamStep::Fail) {
                if view.2.is_some() {
                    return Err(format!("conn {conn} saw {} end twice", frame.id));
                }
                view.2 = Some(format!("{:?}{:?}", frame.seq, frame.code));
            }
        }
    }
    Ok(())
}

fn step_in(room: &str, id: &str, rest: &str) -> String {
    format!(r#"{{"type":"stream","room":"{room}","stream":{{"id":"{id}",{rest}}}}}"#)
}

#[test]
fn simulation_streams_reach_every_member_whole_and_finish_once() {
    for seed in 0..200 {
        if let Err(err) = simulate_streams(seed) {
            panic!("seed {seed}: {err}");
        }
    }
}

/// Ana and ben each finish a stream they both named `s1` (ids are per producer), and the store
/// answers ben's append first: that answer is ben's result only. Ana's stream stays open while
/// her own append is in the store, past the stream timeout, and ends with her own result.
#[test]
fn two_producers_finishing_streams_of_the_same_id_each_get_their_own_result() {
    // Members that stay silent past the stream timeout are not closed as idle.
    let mut h = two_members_with(HubConfig {
        heartbeat: Duration::from_secs(600),
        ..HubConfig::default()
    });
    h.send(1, &start("s1"));
    h.send(1, &append("s1", 0, r#""ana's""#));
    h.send(2, &start("s1"));
    h.send(2, &append("s1", 0, r#""ben's""#));
    h.defer = true;
    h.send(1, &finish("s1"));
    h.send(2, &finish("s1"));
    h.defer = false;
    h.take(1);
    h.take(2);
    let room = RoomName::parse("r").unwrap();
    let open = |h: &Harness| h.hub.rooms[&room].streams.open_keys();
    let ben_job = h.appends.pop_back().unwrap();
    assert_eq!(ben_job.request.from, "ben");
    h.run_append(ben_job);
    assert_eq!(open(&h), ["ana/s1"], "ben's stream ended");
    h.advance(h.hub.config.stream_timeout + Duration::from_secs(1));
    assert_eq!(open(&h), ["ana/s1"], "ana's waits for her append");
    let ana_job = h.appends.pop_front().unwrap();
    h.run_append(ana_job);
    assert!(open(&h).is_empty());
    assert_eq!(
        h.take(1),
        [
            "event r #1 s1 by ben {\"stream\":\"text\",\"text\":\"ben's\"}",
            "stream r s1 finish Text #1",
            "event r #2 s1 by ana {\"stream\":\"text\",\"text\":\"ana's\"}",
            "stream r s1 finish Text #2",
            "ack r s1 #2"
        ]
    );
}

/// Once the server drains, stream steps are refused with `draining`: a `finish` would store
/// its result after the store's last flush, unacked.
#[test]
fn stream_steps_during_a_drain_are_refused() {
    let mut h = two_members();
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""hi""#));
    h.take(1);
    h.hub.handle_drain(Duration::from_secs(1));
    h.pump();
    h.take(1);
    h.send(1, &finish("a1"));
    h.send(1, &start("a2"));
    assert_eq!(h.take(1), ["error draining r", "error draining r"]);
    assert!(stored(&mut h).is_empty());
}

/// A refused step changes nothing, the stream's timeout included: a chunk past the next one
/// does not keep a silent stream alive, and it is abandoned a timeout after its last good step.
#[test]
fn a_refused_chunk_does_not_keep_a_stream_alive() {
    let mut h = two_members_with(HubConfig {
        heartbeat: Duration::from_secs(600),
        ..HubConfig::default()
    });
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""hi""#));
    h.take(1);
    h.take(2);
    h.advance(Duration::from_secs(20));
    h.send(1, &append("a1", 5, r#""?""#));
    assert_eq!(h.take(1), ["error stream_conflict r"]);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.take(2), ["stream r a1 fail Text stream_abandoned"]);
}

/// A member that joins with a cursor the history can not serve gets `joined`, then `reset`
/// (drop what you held of the room), then the open streams so far: the reset would otherwise
/// drop the catch-up it just got.
#[test]
fn a_joiner_told_to_reset_gets_the_open_streams_after_the_reset() {
    let mut h = two_members();
    h.send(1, &start("a1"));
    h.send(1, &append("a1", 0, r#""Hel""#));
    h.connect(3, "cy");
    h.send(
        3,
        r#"{"type":"join","room":"r","resume":{"epoch":12,"seq":4}}"#,
    );
    assert_eq!(
        h.take(3),
        [
            "welcome cy",
            "joined r head=0 [ana(1) ben(1) cy(1)] typing=[]",
            r#"reset r "epoch_changed" head=0"#,
            r#"stream r a1 start Text n=0 ["Hel"]"#,
        ]
    );
}
