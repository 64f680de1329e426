//! Notices from the backend: a `notice` frame becomes [`ClientEvent::Notice`], on either
//! transport, whatever rooms the client is in.

use super::*;

fn notice(id: &str) -> wire::Notice {
    wire::Notice {
        id: id.into(),
        level: "warning".into(),
        body: Json::from_text(r#"{"text":"maintenance"}"#).unwrap(),
        at: 5,
    }
}

#[test]
fn a_notice_on_a_socket_is_handed_to_the_app_as_it_came() {
    let (mut h, link) = Harness::connected_socket(&[]);
    h.take_events();
    h.server_says(link, ServerFrame::Notice(notice("n1")));
    assert_eq!(h.take_events(), [ClientEvent::Notice(notice("n1"))]);
}

#[test]
fn a_notice_in_a_polling_answer_is_handed_to_the_app() {
    let mut h = Harness::polling_in_r();
    h.advance(Duration::ZERO);
    let request = h
        .take_outputs()
        .iter()
        .find_map(|o| match o {
            Output::Http { request, .. } => Some(*request),
            _ => None,
        })
        .expect("a polling request");
    h.take_events();
    h.client.handle_http_response(
        h.now,
        request,
        HttpResult::Frames(vec![joined("r", 0), ServerFrame::Notice(notice("n2"))]),
    );
    h.drain();
    assert!(
        h.take_events().contains(&ClientEvent::Notice(notice("n2"))),
        "the notice reaches the app"
    );
}
