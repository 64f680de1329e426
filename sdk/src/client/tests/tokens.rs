//! Tokens on virtual time: renewal in place on a WebSocket, a token source that fails (an
//! empty token) retried with the backoff, and a start while the network is down.

use super::*;

/// A WebSocket-only client started with `token`, drained, before its first timer.
fn started_with(token: &str) -> Harness {
    let start = t0();
    let config = ClientConfig {
        transport: TransportMode::WebSocket,
        ..ClientConfig::default()
    };
    let client = Client::new(
        config,
        token.into(),
        start,
        START_MS,
        42,
        Restored::default(),
    );
    let mut h = Harness {
        client,
        now: start,
        outputs: Vec::new(),
        events: Vec::new(),
    };
    h.drain();
    h
}

fn opens_socket(outputs: &[Output]) -> bool {
    outputs
        .iter()
        .any(|o| matches!(o, Output::OpenSocket { .. } | Output::Http { .. }))
}

#[test]
fn a_fresh_token_on_a_connected_socket_is_sent_as_auth_without_reconnecting() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.take_outputs();
    h.client.handle_token(h.now, "fresh".into());
    h.drain();
    let outputs = h.take_outputs();
    assert!(
        matches!(&outputs[..], [Output::Send { link: l, frame: ClientFrame::Auth(auth) }]
            if *l == link && auth.token == "fresh"),
        "{outputs:?}"
    );
    h.server_says(
        link,
        ServerFrame::Authed(crate::wire::Authed { user: "me".into() }),
    );
    assert!(matches!(
        h.client.state(),
        ConnectionState::Connected { .. }
    ));
    // The next connection (after a drop) uses the new token too.
    h.client.handle_socket_closed(h.now, link, Some(1006));
    h.advance(Duration::from_secs(30));
    assert!(
        h.take_outputs()
            .iter()
            .any(|o| matches!(o, Output::OpenSocket { token, .. } if token == "fresh"))
    );
}

#[test]
fn an_empty_token_while_connected_changes_nothing() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.take_outputs();
    h.client.handle_token(h.now, String::new());
    h.drain();
    assert!(h.take_outputs().is_empty());
    h.client.handle_socket_closed(h.now, link, Some(1006));
    h.advance(Duration::from_secs(30));
    assert!(
        h.take_outputs()
            .iter()
            .any(|o| matches!(o, Output::OpenSocket { token, .. } if token == "tok"))
    );
}

#[test]
fn without_a_token_the_client_asks_for_one_and_retries_a_failed_source_with_backoff() {
    let mut h = started_with("");
    h.advance(Duration::ZERO);
    assert!(
        !opens_socket(&h.take_outputs()),
        "no attempt without a token"
    );
    assert!(h.take_events().contains(&ClientEvent::TokenNeeded));
    // The token source failed: a passing failure, asked again after a backoff step.
    h.client.handle_token(h.now, String::new());
    h.drain();
    let ConnectionState::Reconnecting { next_attempt, .. } = h.client.state().clone() else {
        panic!("expected reconnecting, got {:?}", h.client.state());
    };
    assert!(next_attempt > h.now);
    h.advance(next_attempt - h.now);
    assert!(!opens_socket(&h.take_outputs()));
    assert!(h.take_events().contains(&ClientEvent::TokenNeeded));
    h.client.handle_token(h.now, "good".into());
    h.drain();
    assert!(
        h.take_outputs()
            .iter()
            .any(|o| matches!(o, Output::OpenSocket { token, .. } if token == "good"))
    );
}

#[test]
fn a_token_source_failing_after_a_refusal_does_not_reuse_the_refused_token() {
    let mut h = started_with("old");
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.client
        .handle_socket_closed(h.now, link, Some(close_code::UNAUTHENTICATED));
    h.drain();
    assert!(h.take_events().contains(&ClientEvent::TokenNeeded));
    h.client.handle_token(h.now, String::new());
    h.advance(Duration::from_secs(30));
    assert!(
        !opens_socket(&h.take_outputs()),
        "the refused token is not tried again"
    );
    assert!(h.take_events().contains(&ClientEvent::TokenNeeded));
}

#[test]
fn a_client_started_offline_makes_no_attempt_until_online() {
    for token in ["tok", ""] {
        let mut h = started_with(token);
        h.client.handle_online(h.now, false);
        h.drain();
        assert_eq!(h.client.state(), &ConnectionState::Offline);
        h.advance(Duration::from_secs(120));
        assert!(!opens_socket(&h.take_outputs()), "token {token:?}");
        assert!(!h.take_events().contains(&ClientEvent::TokenNeeded));
        h.client.handle_online(h.now, true);
        h.drain();
        let outputs = h.take_outputs();
        let events = h.take_events();
        if token.is_empty() {
            assert!(!opens_socket(&outputs));
            assert!(events.contains(&ClientEvent::TokenNeeded));
        } else {
            assert!(opens_socket(&outputs), "{outputs:?}");
        }
    }
}
