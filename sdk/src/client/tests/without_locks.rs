//! A client built without the `locks` feature (the npm package's): it follows no locks. Its polls
//! carry no lock version (so the server sends no `state.locks`), and what the server sends about
//! locks anyway is ignored: `joined.locks` and `state.locks` read as absent, and a `lock` frame
//! is of a type it does not know (the browser driver drops such a frame).

use super::*;

const LOCKS: &str = r#"[{"name":"doc","token":7,"user":"ana","conn":"n-1","until":99}]"#;

#[test]
fn a_client_without_locks_follows_none_and_ignores_what_the_server_says_of_them() {
    let joined = format!(
        r#"{{"type":"joined","room":"r","epoch":5,"head":0,"presence":{{"version":1,"users":[]}},"typing":[],"locks":{LOCKS}}}"#
    );
    match ServerFrame::decode(&joined) {
        Ok(ServerFrame::Joined(joined)) => assert_eq!(joined.locks, None),
        other => panic!("{other:?}"),
    }
    let lock = format!(
        r#"{{"type":"lock","room":"r","change":"granted","lock":{{"name":"doc","token":7,"user":"ana","conn":"n-1","until":99}},"locks":{LOCKS}}}"#
    );
    assert!(matches!(
        ServerFrame::decode(&lock),
        Err(crate::wire::WireError::UnknownType(kind)) if kind == "lock"
    ));

    let mut h = Harness::polling_in_r();
    h.advance(Duration::ZERO);
    answer_poll_send(&mut h);
    h.take_events();
    let (request, query) = h
        .take_outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::Http {
                request,
                call: HttpCall::Poll { query },
                ..
            } => Some((request, query)),
            _ => None,
        })
        .expect("a long poll");
    assert!(
        query.ends_with("&r=r~5~0~1~0~0"),
        "no lock version: {query}"
    );
    // A `state` with locks (as a server answers a client that follows them) reads without them.
    let body = format!(
        r#"{{"frames":[{{"type":"state","room":"r","locks":{{"version":3,"locks":{LOCKS}}}}}]}}"#
    );
    let call = HttpCall::Poll { query };
    match call.read_response(200, &body) {
        HttpResult::Frames(frames) => {
            assert!(matches!(&frames[..], [ServerFrame::State(state)] if state.locks.is_none()))
        }
        other => panic!("{other:?}"),
    }
    h.client
        .handle_http_response(h.now, request, call.read_response(200, &body));
    h.drain();
    assert_eq!(h.take_events(), []);
}
