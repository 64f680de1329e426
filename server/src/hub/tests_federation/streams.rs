//! A stream's frames reach the other nodes as signals, its result as a stored event from the
//! bus: two Redis connections, so a node may hear them in either order. Its members must see
//! the same either way: every chunk, then the event, then `finish`, nothing after.

use super::*;
use crate::hub::tests::streams::{append, finish, start, step};
use chorus_sdk::wire::StreamStep;

const RESULT: &str = r#"event r #1 s by ana {"stream":"text","text":"The fox"}"#;

/// Ana on node a streams two chunks of `kind` and finishes; ben is on node b. Node b hears
/// the last chunk's signal and the stored result in the order given. What ben saw after the
/// first chunk.
fn last_chunk_and_result(kind: &str, chunks: [&str; 2], events_first: bool) -> Vec<String> {
    let mut c = Cluster::new(2);
    c.carry_events();
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.send(
        0,
        1,
        &step("s", &format!(r#""op":"start","kind":"{kind}""#)),
    );
    c.send(0, 1, &append("s", 0, chunks[0]));
    c.advance(SECOND);
    assert_eq!(c.take(1, 2).len(), 2, "start and the first chunk");
    c.latency = SECOND;
    c.send(0, 1, &append("s", 1, chunks[1]));
    c.send(0, 1, &finish("s"));
    if events_first {
        c.deliver_events(1);
        c.advance(2 * SECOND);
    } else {
        c.advance(2 * SECOND);
        c.deliver_events(1);
    }
    c.advance(c.nodes[1].hub.config.stream_timeout * 2);
    c.take(1, 2)
}

#[test]
fn a_result_heard_before_the_last_chunk_still_follows_every_chunk() {
    for events_first in [false, true] {
        let seen = last_chunk_and_result("text", [r#""The ""#, r#""fox""#], events_first);
        let expected = [
            r#"stream r s append Text n=1 ["fox"]"#,
            RESULT,
            "stream r s finish Text #1",
        ];
        assert_eq!(seen, expected, "events first: {events_first}");
        let progress = [r#"{"percent":50}"#, r#"{"percent":90}"#];
        let seen = last_chunk_and_result("progress", progress, events_first);
        let expected = [
            r#"stream r s append Progress n=1 [{"percent":90}]"#,
            r#"event r #1 s by ana {"stream":"progress","progress":{"percent":90}}"#,
            "stream r s finish Progress #1",
        ];
        assert_eq!(seen, expected, "events first: {events_first}");
    }
}

/// Ana's finish is stored through node a; her retry through node b (she moved there) is
/// answered as a duplicate before node b heard the event: ben there still gets the event
/// first, then `finish`, once, and ana's retry is answered after them.
#[test]
fn a_finish_retried_on_another_node_waits_for_the_event() {
    let mut c = Cluster::new(2);
    c.carry_events();
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.join(1, 3, "ana");
    c.send(0, 1, &start("s"));
    c.send(0, 1, &append("s", 0, r#""The fox""#));
    c.take(1, 2);
    c.send(0, 1, &finish("s"));
    c.send(1, 3, &finish("s"));
    assert_eq!(
        c.take(1, 3),
        [
            "stream r s start Text",
            r#"stream r s append Text n=0 ["The fox"]"#,
        ],
        "the retry is answered once the event is here"
    );
    assert_eq!(
        c.take(1, 2),
        Vec::<String>::new(),
        "nothing before the event"
    );
    c.deliver_events(1);
    c.advance(c.nodes[1].hub.config.stream_timeout * 2);
    assert_eq!(c.take(1, 2), [RESULT, "stream r s finish Text #1"]);
    assert_eq!(
        c.take(1, 3),
        [RESULT, "stream r s finish Text #1", "ack r s #1 dup"]
    );
}

/// Node c opens the room mid-stream and asks for the streams there; the answer (a `start`
/// with everything so far) is slower than the stream's stored result. Dee there gets the
/// event and nothing else: no stream that never ends, no `stream_abandoned` later.
#[test]
fn a_stream_heard_of_after_its_result_is_not_opened_again() {
    let mut c = Cluster::new(3);
    c.carry_events();
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.send(0, 1, &start("s"));
    c.send(0, 1, &append("s", 0, r#""The fox""#));
    c.latency = SECOND;
    c.join(2, 4, "dee");
    c.advance(SECOND);
    c.send(0, 1, &finish("s"));
    c.deliver_events(2);
    c.advance(c.nodes[2].hub.config.stream_timeout * 2);
    let seen: Vec<String> = c
        .take(2, 4)
        .into_iter()
        .filter(|line| !line.starts_with("presence "))
        .collect();
    assert_eq!(seen, [RESULT]);
    assert!(
        c.view(2, 4).streams.is_empty(),
        "polls see no stream either"
    );
}

/// What one member saw of one stream.
#[derive(Default)]
struct Seen {
    /// The room's head in the member's `joined`.
    joined_head: u64,
    /// Chunks taken (the next index expected).
    count: u64,
    text: String,
    /// The seq of the stream's event, when it came.
    event: Option<u64>,
    /// The seq its `finish` named.
    finish: Option<u64>,
}

/// Folds every member's frames into `seen` (members are conns 10 and up), checking the order
/// as it goes: no chunk missed, the event once and before `finish` (unless the member joined
/// past it), nothing after `finish`, no `fail`.
fn absorb(
    c: &mut Cluster,
    heads: &mut HashMap<ConnId, u64>,
    seen: &mut HashMap<(ConnId, String), Seen>,
) -> Result<(), String> {
    for node in 0..c.nodes.len() {
        let mut all: Vec<_> = std::mem::take(&mut c.nodes[node].frames)
            .into_iter()
            .filter(|(conn, _)| *conn >= 10)
            .collect();
        all.sort_by_key(|(conn, _)| *conn);
        for (conn, frames) in all {
            for frame in frames {
                let (id, update) = match frame {
                    ServerFrame::Joined(joined) => {
                        heads.insert(conn, joined.head);
                        continue;
                    }
                    ServerFrame::Event(event) => (event.id.to_string(), Err(event.seq)),
                    ServerFrame::Stream(frame) => {
                        let update = frame.update().map_err(|err| err.into_message())?;
                        (update.id.to_string(), Ok(update))
                    }
                    _ => continue,
                };
                let view = seen.entry((conn, id.clone())).or_insert_with(|| Seen {
                    joined_head: heads[&conn],
                    ..Seen::default()
                });
                let at = format!("conn {conn} on node {node}, stream {id}");
                if view.finish.is_some() {
                    return Err(format!("{at}: a frame after finish"));
                }
                let update = match update {
                    Err(seq) if view.event.is_some() => {
                        return Err(format!("{at}: the event twice (#{seq:?})"));
                    }
                    Err(seq) => {
                        view.event = seq;
                        continue;
                    }
                    Ok(update) => update,
                };
                if update.n > view.count {
                    return Err(format!("{at}: chunks missed before {}", update.n));
                }
                for (k, chunk) in update.chunks.iter().enumerate() {
                    if update.n + k as u64 == view.count {
                        let piece = chorus_sdk::wire::json::from_str::<String>(chunk.as_text())
                            .map_err(|err| format!("{at}: a chunk that is no string: {err}"))?;
                        view.text.push_str(&piece);
                        view.count += 1;
                    }
                }
                // A member that joined past the result has it in the room's history.
                let had_it = update.seq.is_some_and(|seq| seq <= view.joined_head);
                match update.op {
                    StreamStep::Finish if view.event != update.seq && !had_it => {
                        return Err(format!("{at}: finish #{:?} before its event", update.seq));
                    }
                    StreamStep::Finish => view.finish = update.seq,
                    StreamStep::Fail => return Err(format!("{at}: failed ({:?})", update.code)),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// A seeded run on three nodes: ana (node a, conn 1) streams text while members on every node
/// watch, some joining mid-stream; her finishes are sometimes retried through her connection on
/// node b (conn 2); the network delays signals, and each node hears stored events from the
/// bus at moments of their own, so signals and results interleave every way. Checked: every
/// stream is one stored event with everything ana appended; every member that was there from
/// a stream's start got either all its text, then the event, then `finish`, each once and
/// nothing after, or (its node heard of the stream only after the result) the event alone;
/// a member that saw any chunk saw it whole; one that joined past the result (its node opened
/// the room then, and heard of the stream later) got its text and `finish`.
fn simulate(seed: u64) -> Result<(), String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut c = Cluster::new(3);
    c.carry_events();
    c.latency = Duration::from_millis(rng.random_range(0..30));
    c.join(0, 1, "ana");
    c.join(1, 2, "ana");
    // Members, each with the step it joined at.
    let mut members: Vec<(ConnId, usize)> = Vec::new();
    let mut next: ConnId = 10;
    // Streams: id, the text appended, the step it started at, finished.
    let mut streams: Vec<(String, String, usize, bool)> = Vec::new();
    let mut seen = HashMap::new();
    let mut heads = HashMap::new();
    for step in 0..400 {
        let open: Vec<usize> = (0..streams.len()).filter(|&s| !streams[s].3).collect();
        let pick = (!open.is_empty()).then(|| open[rng.random_range(0..open.len())]);
        match rng.random_range(0..100) {
            0..=5 => {
                let node = rng.random_range(0..3);
                c.connect(node, next, "m");
                c.send(node, next, &join("r"));
                members.push((next, step));
                next += 1;
            }
            6..=11 if open.len() < 2 => {
                let id = format!("s{}", streams.len());
                c.send(0, 1, &start(&id));
                streams.push((id, String::new(), step, false));
            }
            12..=54 if pick.is_some() => {
                let stream = &mut streams[pick.unwrap()];
                let n = stream.1.split_inclusive(' ').count() as u64;
                let piece = format!("w{} ", rng.random_range(0..1000));
                stream.1.push_str(&piece);
                c.send(0, 1, &append(&stream.0, n, &format!("{piece:?}")));
            }
            55..=59 if pick.is_some() => {
                let stream = &mut streams[pick.unwrap()];
                stream.3 = true;
                c.send(0, 1, &finish(&stream.0));
                if rng.random_bool(0.5) {
                    c.send(1, 2, &finish(&stream.0));
                }
            }
            60..=79 => c.deliver_events(rng.random_range(0..3)),
            _ => c.advance(Duration::from_millis(rng.random_range(0..40))),
        }
        absorb(&mut c, &mut heads, &mut seen)?;
    }
    for stream in streams.iter_mut().filter(|s| !s.3) {
        stream.3 = true;
        c.send(0, 1, &finish(&stream.0));
    }
    for _ in 0..2 {
        for node in 0..3 {
            c.deliver_events(node);
        }
        c.advance(Duration::from_secs(60));
    }
    absorb(&mut c, &mut heads, &mut seen)?;
    let room = RoomName::parse("r").unwrap();
    let stored = c.log.read(&room, 0, usize::MAX, c.now().unix_ms).events;
    for (id, text, started, _) in &streams {
        let results: Vec<_> = stored
            .iter()
            .filter(|e| e.event.id.as_str() == id)
            .collect();
        let [result] = results[..] else {
            return Err(format!("{id} stored {} times", results.len()));
        };
        let expect = format!(r#"{{"stream":"text","text":{text:?}}}"#);
        if result.event.body.as_text() != expect {
            return Err(format!(
                "{id} stored {}, not {expect}",
                result.event.body.as_text()
            ));
        }
        for &(conn, joined) in &members {
            let Some(view) = seen.get(&(conn, id.clone())) else {
                if joined < *started {
                    return Err(format!("conn {conn} saw nothing of {id}"));
                }
                continue;
            };
            let got_event = view.event == Some(result.seq()) || view.joined_head >= result.seq();
            let whole = view.text == *text && view.finish == Some(result.seq()) && got_event;
            // A node that heard of the stream only after its result (it was over before the
            // signals arrived) gives its members the event alone.
            let only_event = view.count == 0 && view.finish.is_none();
            let late = joined > *started && view.event.is_none();
            if !whole && !(only_event && (late || view.event == Some(result.seq()))) {
                return Err(format!(
                    "conn {conn} (joined at step {joined}) saw {id} (started at {started}) as \
                     {:?}, event {:?}, finish {:?}; ana sent {text:?}",
                    view.text, view.event, view.finish
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn simulation_every_member_on_every_node_gets_every_chunk_then_the_event_then_finish() {
    for seed in 0..300 {
        if let Err(err) = simulate(seed) {
            panic!("seed {seed}: {err}");
        }
    }
}

/// The bus loses a stream's result on its way to node b, and node b hears the stream's
/// `finish` (which names the result's seq): a repair reads the event, and ben gets it, then
/// `finish`, after the gap wait.
#[test]
fn a_result_the_bus_lost_is_read_by_a_repair_before_the_copy_finishes() {
    let mut c = Cluster::new(2);
    c.carry_events();
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.send(0, 1, &start("s"));
    c.send(0, 1, &append("s", 0, r#""The fox""#));
    c.take(1, 2);
    c.send(0, 1, &finish("s"));
    c.bus = Some(vec![VecDeque::new(); 2]); // Lost on the way.
    assert_eq!(c.take(1, 2), Vec::<String>::new());
    c.advance(c.nodes[1].hub.config.gap_wait);
    assert_eq!(c.take(1, 2), [RESULT, "stream r s finish Text #1"]);
}

/// A chunk's signal lost on the way leaves a gap in node b's copy: ben there gets the chunks
/// around it, and cat, who joins after, a `start` from the gap on (the stored result has the
/// whole text), as does a poll. The copy once kept counting from the gap but sliced its
/// chunks from the start, and the snapshot panicked the hub.
#[test]
fn a_copy_past_a_lost_chunk_starts_late_joiners_at_the_gap() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.send(0, 1, &start("s"));
    c.send(0, 1, &append("s", 0, r#""The ""#));
    c.advance(SECOND);
    let lose = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&lose);
    c.loss = Some(Box::new(move |_, signal| {
        flag.load(Relaxed) && matches!(signal, RoomSignal::Stream { .. })
    }));
    c.send(0, 1, &append("s", 1, r#""quick ""#));
    c.advance(SECOND);
    lose.store(false, Relaxed);
    c.send(0, 1, &append("s", 2, r#""fox""#));
    c.advance(SECOND);
    assert_eq!(
        c.take(1, 2),
        [
            "stream r s start Text",
            r#"stream r s append Text n=0 ["The "]"#,
            r#"stream r s append Text n=2 ["fox"]"#,
        ]
    );
    c.connect(1, 3, "cat");
    c.send(1, 3, &join("r"));
    let seen = c.take(1, 3);
    assert!(
        seen.contains(&r#"stream r s start Text n=2 ["fox"]"#.to_string()),
        "{seen:?}"
    );
    let view = c.view(1, 3);
    assert_eq!(view.streams.len(), 1, "{:?}", view.streams);
}
