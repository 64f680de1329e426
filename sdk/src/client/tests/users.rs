//! Whose the outbox is: records of another user held (never sent as this one), publishes made
//! before the server named the user claimed at its `welcome`, and a polling session whose
//! `welcome` was lost (the outbox waits for the user, so the client must get one).

use super::*;

#[test]
fn a_polling_session_whose_welcome_was_lost_is_left_for_a_new_one_that_sends_the_outbox() {
    let mut h = Harness::polling_in_r();
    let now = h.now;
    h.client
        .publish(now, room("r"), Json::from_text("1").unwrap())
        .unwrap();
    h.advance(Duration::ZERO);
    let [(request, first)] = posts(h.take_outputs()).try_into().expect("one POST");
    assert_eq!(
        kinds(&first.frames),
        ["join r"],
        "the outbox waits for the user"
    );
    // The server opened the session and answered with its `welcome`, but the answer was lost.
    h.client
        .handle_http_response(h.now, request, HttpResult::Failed);
    h.advance(Duration::from_secs(2));
    let [(request, again)] = posts(h.take_outputs()).try_into().expect("one POST");
    assert_eq!(
        again.session, first.session,
        "a failed attempt keeps its session"
    );
    // The session is open on the server: no `welcome` in this answer, nor in any later one.
    h.client
        .handle_http_response(h.now, request, HttpResult::Frames(vec![joined("r", 0)]));
    h.drain();
    assert!(
        !matches!(h.client.state(), ConnectionState::Connected { .. }),
        "a session never welcomed does not count as connected: {:?}",
        h.client.state()
    );
    let [(_, leave)] = posts(h.take_outputs()).try_into().expect("one POST");
    assert_eq!(
        (kinds(&leave.frames), &leave.session),
        (vec!["leave".to_owned()], &first.session),
        "the unwelcomed session's rooms are left"
    );
    h.advance(Duration::from_secs(5));
    let [(request, renewed)] = posts(h.take_outputs()).try_into().expect("one POST");
    assert_ne!(
        renewed.session, first.session,
        "a new session, greeted anew"
    );
    assert_eq!(kinds(&renewed.frames), ["join r @0"]);
    h.client.handle_http_response(
        h.now,
        request,
        HttpResult::Frames(vec![welcome(), joined("r", 0)]),
    );
    h.drain();
    assert_eq!(
        h.client.state(),
        &ConnectionState::Connected {
            transport: Transport::Polling
        }
    );
    assert_eq!(h.client.user(), Some("me"));
    let sent: Vec<Vec<String>> = posts(h.take_outputs())
        .into_iter()
        .map(|(_, body)| kinds(&body.frames))
        .collect();
    assert_eq!(
        sent,
        [["publish 1"]],
        "the outbox goes once the user is known"
    );

    // A later attempt on the welcomed session needs no new `welcome`: it is the same session.
    h.client.handle_online(h.now, false);
    h.client.handle_online(h.now, true);
    h.drain();
    let [(request, resumed)] = posts(h.take_outputs()).try_into().expect("one POST");
    assert_eq!(resumed.session, renewed.session);
    assert_eq!(kinds(&resumed.frames), ["join r @0", "publish 1"]);
    h.client
        .handle_http_response(h.now, request, HttpResult::Frames(vec![joined("r", 0)]));
    h.drain();
    assert_eq!(
        h.client.state(),
        &ConnectionState::Connected {
            transport: Transport::Polling
        }
    );
}

#[test]
fn a_restored_publish_of_another_user_is_held_and_own_ones_are_stamped_and_sent() {
    // Saved by an earlier client: one publish of "ana", one of "me" (the harness's welcomed user).
    let saved = StoredOutbox {
        entries: ["ana", "me"]
            .into_iter()
            .map(|user| OutboxRecord {
                room: room("r"),
                id: EventId::parse(format!("{user}-1")).unwrap(),
                body: Json::null(),
                if_seq: None,
                created_ms: START_MS,
                user: Some(user.into()),
                if_lock: None,
            })
            .collect(),
    };
    let mut h = Harness::restored(
        ClientConfig {
            transport: TransportMode::WebSocket,
            ..ClientConfig::default()
        },
        Restored {
            outbox: Some(saved.encode()),
            transport: None,
        },
    );
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    // Published before the server said who this is: no user yet, claimed at the welcome.
    h.client.publish(now, room("r"), Json::null()).unwrap();
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.welcome(link);
    let published: Vec<String> = h
        .frames_sent()
        .into_iter()
        .filter_map(|frame| match frame {
            ClientFrame::Publish(publish) => Some(publish.id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        published.len(),
        2,
        "ana's publish is never sent as me: {published:?}"
    );
    assert_eq!(published[0], "me-1");
    assert_eq!(
        h.client.outbox_len(),
        3,
        "ana's publish is held, not dropped"
    );
    let stored = StoredOutbox::decode(&h.client.outbox.stored().encode());
    let users: Vec<Option<String>> = stored.entries.into_iter().map(|r| r.user).collect();
    assert_eq!(
        users,
        [Some("ana".into()), Some("me".into()), Some("me".into())],
        "the publish made before the welcome is stored as the welcomed user's"
    );
}
