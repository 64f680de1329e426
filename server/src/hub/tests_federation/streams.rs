//! A stream's frames reach the other nodes as signals, its result as a stored event from the
//! bus: two Redis connections, so a node may hear them in either order. Its members must see
//! the same either way: every chunk, then the event, then `finish`, nothing after.

use super::*;

fn step(id: &str, rest: &str) -> String {
    format!(r#"{{"type":"stream","room":"r","stream":{{"id":"{id}",{rest}}}}}"#)
}

fn start(id: &str) -> String {
    step(id, r#""op":"start""#)
}

fn append(id: &str, n: u64, chunk: &str) -> String {
    step(id, &format!(r#""op":"append","n":{n},"chunk":{chunk}"#))
}

fn finish(id: &str) -> String {
    step(id, r#""op":"finish""#)
}

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
/// first, then `finish`, once.
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
            "ack r s #1 dup",
        ],
        "the retry is answered at once"
    );
    assert_eq!(
        c.take(1, 2),
        Vec::<String>::new(),
        "nothing before the event"
    );
    c.deliver_events(1);
    c.advance(c.nodes[1].hub.config.stream_timeout * 2);
    assert_eq!(c.take(1, 2), [RESULT, "stream r s finish Text #1"]);
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
