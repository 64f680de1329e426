//! Client core tests on virtual time: a harness plays the driver and a scripted server.

use std::time::Duration;

use crate::time::Instant;

use super::outbox::OutboxConfig;
use super::*;
use crate::wire::{
    Ack, ClientFrame, ErrorCode, Event, Joined, Json, Nack, PresenceSnapshot, Reset, ResetReason,
    ServerFrame, Welcome, close_code,
};

/// The origin of virtual time in tests.
#[allow(clippy::disallowed_methods)]
pub(crate) fn t0() -> Instant {
    Instant::now()
}

mod cursors;
#[cfg(feature = "locks")]
mod locks;
mod notices;
mod refusals;
mod resume;
mod streams;
mod tokens;
mod users;
#[cfg(not(feature = "locks"))]
mod without_locks;

const START_MS: u64 = 1_700_000_000_000;

struct Harness {
    client: Client,
    now: Instant,
    outputs: Vec<Output>,
    events: Vec<ClientEvent>,
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

impl Harness {
    fn new(config: ClientConfig) -> Harness {
        Harness::restored(config, Restored::default())
    }

    fn restored(config: ClientConfig, restored: Restored) -> Harness {
        let start = t0();
        let client = Client::new(config, "tok".into(), start, START_MS, 42, restored);
        let mut h = Harness {
            client,
            now: start,
            outputs: Vec::new(),
            events: Vec::new(),
        };
        h.drain();
        h
    }

    /// A WebSocket-only client that joined `rooms`, with its socket open and welcomed.
    fn connected_socket(rooms: &[&str]) -> (Harness, u64) {
        let mut h = Harness::new(ClientConfig {
            transport: TransportMode::WebSocket,
            ..ClientConfig::default()
        });
        for name in rooms {
            let now = h.now;
            h.client.join(now, room(name), Json::null());
        }
        h.advance(Duration::ZERO);
        let link = h.opened_socket();
        h.welcome(link);
        (h, link)
    }

    /// A polling-only client that joined room `r` (nothing sent yet: time has not moved).
    fn polling_in_r() -> Harness {
        let mut h = Harness::new(ClientConfig {
            transport: TransportMode::Polling,
            ..ClientConfig::default()
        });
        let now = h.now;
        h.client.join(now, room("r"), Json::null());
        h
    }

    fn drain(&mut self) {
        self.outputs.extend(self.client.poll_outputs());
        self.events.extend(self.client.poll_events());
    }

    /// Moves virtual time forward, firing timers at their deadlines.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.client.poll_timeout() {
            if at > end {
                break;
            }
            self.now = self.now.max(at);
            self.client.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.client.handle_timeout(self.now);
        self.drain();
    }

    fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    /// The link of the socket the client asked to open last.
    fn opened_socket(&mut self) -> u64 {
        let outputs = self.take_outputs();
        outputs
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::OpenSocket { link, .. } => Some(*link),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no socket opened in {outputs:?}"))
    }

    fn server_says(&mut self, link: u64, frame: ServerFrame) {
        self.client.handle_socket_frame(self.now, link, frame);
        self.drain();
    }

    fn welcome(&mut self, link: u64) {
        self.client.handle_socket_open(self.now, link);
        self.server_says(link, welcome());
    }

    fn frames_sent(&mut self) -> Vec<ClientFrame> {
        self.take_outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send { frame, .. } => Some(frame),
                _ => None,
            })
            .collect()
    }

    fn states(&mut self) -> Vec<ConnectionState> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::State(state) => Some(state),
                _ => None,
            })
            .collect()
    }
}

/// The polling `POST`s among `outputs`: request id and body.
fn posts(outputs: Vec<Output>) -> Vec<(u64, wire::PollSend)> {
    outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Http {
                request,
                call: HttpCall::PollSend(body),
                ..
            } => Some((request, body)),
            _ => None,
        })
        .collect()
}

fn kinds(frames: &[ClientFrame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match f {
            ClientFrame::Join(j) => format!(
                "join {}{}",
                j.room,
                j.resume.map_or(String::new(), |c| format!(" @{}", c.seq))
            ),
            ClientFrame::Publish(p) => format!("publish {}", p.body.as_text()),
            ClientFrame::Typing(t) => format!("typing {}", t.on),
            other => other.kind().to_owned(),
        })
        .collect()
}

/// The server's greeting of user "me" (on a socket, or in the answer opening a polling session).
fn welcome() -> ServerFrame {
    ServerFrame::Welcome(Welcome {
        conn: "n-1".into(),
        user: "me".into(),
        heartbeat_ms: 10_000,
        protocol: "v1".into(),
    })
}

fn joined(name: &str, head: u64) -> ServerFrame {
    ServerFrame::Joined(Joined {
        room: room(name),
        epoch: 5,
        head,
        presence: PresenceSnapshot {
            version: 1,
            users: vec![],
        },
        typing: vec![],
        locks: None,
        cursors: None,
    })
}

fn event(name: &str, seq: u64, id: &str) -> ServerFrame {
    event_from(name, seq, id, "other")
}

/// An event published by `from` (`"me"` is the harness's own user).
fn event_from(name: &str, seq: u64, id: &str, from: &str) -> ServerFrame {
    ServerFrame::Event(Event {
        room: room(name),
        seq: Some(seq),
        id: EventId::parse(id).unwrap(),
        from: from.into(),
        at: 0,
        body: Json::null(),
    })
}

#[test]
fn connects_over_websocket_then_joins_and_sends_what_waited() {
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client
        .join(now, room("r"), Json::from_text(r#"{"c":1}"#).unwrap());
    let id = h
        .client
        .publish(now, room("r"), Json::from_text("1").unwrap())
        .unwrap();
    h.drain();
    assert!(h.take_events().contains(&ClientEvent::Pending {
        room: room("r"),
        id: id.clone(),
        body: Json::from_text("1").unwrap()
    }));
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    assert_eq!(
        h.client.state(),
        &ConnectionState::Connecting {
            transport: Transport::WebSocket
        }
    );
    h.welcome(link);
    assert_eq!(h.client.state().badge(), Badge::Live);
    assert_eq!(kinds(&h.frames_sent()), ["join r", "publish 1"]);
    h.server_says(link, joined("r", 0));
    // The server's copy arrives first, then the ack: shown once, as the own event.
    h.server_says(link, event_from("r", 1, id.as_str(), "me"));
    h.server_says(
        link,
        ServerFrame::Ack(Ack {
            room: room("r"),
            id: id.clone(),
            seq: Some(1),
            duplicate: false,
        }),
    );
    let events = h.take_events();
    let own: Vec<bool> = events
        .iter()
        .filter_map(|e| {
            if let ClientEvent::Event { own, .. } = e {
                Some(*own)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(own, [true], "one event, marked as the own publish");
    assert!(events.contains(&ClientEvent::Acked {
        room: room("r"),
        id,
        seq: 1
    }));
    assert!(events.contains(&ClientEvent::Outbox { queued: 0 }));
    assert_eq!(h.client.outbox_len(), 0);
}

#[test]
fn auto_mode_falls_back_to_polling_when_the_socket_is_silent_remembers_it_and_upgrades_later() {
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.client.handle_socket_open(h.now, link); // Opens, but a proxy eats the frames.
    h.advance(Duration::from_millis(3999));
    assert!(h.take_outputs().is_empty(), "still waiting for welcome");
    h.advance(Duration::from_millis(1));
    let outputs = h.take_outputs();
    assert!(outputs.contains(&Output::CloseSocket { link }));
    let (request, body) = posts(outputs)
        .into_iter()
        .next()
        .expect("a polling POST right after the socket timed out");
    assert_eq!(kinds(&body.frames), ["join r"]);
    assert_eq!(h.client.state().badge(), Badge::Syncing);
    h.client.handle_http_response(
        h.now,
        request,
        HttpResult::Frames(vec![welcome(), joined("r", 3)]),
    );
    h.drain();
    assert_eq!(
        h.client.state(),
        &ConnectionState::Connected {
            transport: Transport::Polling
        }
    );
    let outputs = h.take_outputs();
    let remembered = outputs.iter().find_map(|o| match o {
        Output::Save {
            key: TRANSPORT_KEY,
            value,
        } => Some(value.clone()),
        _ => None,
    });
    assert_eq!(
        remembered,
        Some(format!("polling-until:{}", START_MS + 4000 + 600_000))
    );
    let query = outputs.iter().find_map(|o| match o {
        Output::Http {
            call: HttpCall::Poll { query },
            ..
        } => Some(query.clone()),
        _ => None,
    });
    assert!(
        query.unwrap().contains("&r=r~5~3~1~0"),
        "the long poll carries the cursor"
    );

    // A restarted client remembers and polls first.
    let mut again = Harness::restored(
        ClientConfig::default(),
        Restored {
            outbox: None,
            transport: remembered,
        },
    );
    again.advance(Duration::ZERO);
    assert!(
        again
            .take_outputs()
            .iter()
            .all(|o| !matches!(o, Output::OpenSocket { .. })),
        "no socket first"
    );

    // 30 s later the socket is probed in the background; when it works, everything moves.
    h.advance(Duration::from_secs(30));
    let probe = h.opened_socket();
    h.welcome(probe);
    assert_eq!(
        h.client.state(),
        &ConnectionState::Connected {
            transport: Transport::WebSocket
        }
    );
    let outputs = h.take_outputs();
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Save { key: TRANSPORT_KEY, value } if value.is_empty()))
    );
    assert!(outputs.iter().any(|o| matches!(o, Output::Http { call: HttpCall::PollSend(b), .. } if kinds(&b.frames) == ["leave"])));
    let joins: Vec<ClientFrame> = outputs
        .into_iter()
        .filter_map(|o| {
            if let Output::Send { frame, .. } = o {
                Some(frame)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        kinds(&joins),
        ["join r @3"],
        "the socket resumes from the polling cursor"
    );
}

#[test]
fn forced_modes_never_use_the_other_transport() {
    let mut ws = Harness::new(ClientConfig {
        transport: TransportMode::WebSocket,
        ..ClientConfig::default()
    });
    ws.advance(Duration::ZERO);
    ws.opened_socket(); // A socket is tried first (this panics if none was).
    ws.advance(Duration::from_secs(4));
    assert!(
        ws.take_outputs()
            .iter()
            .all(|o| !matches!(o, Output::Http { .. }))
    );
    assert!(matches!(
        ws.client.state(),
        ConnectionState::Reconnecting { .. }
    ));

    let mut polling = Harness::polling_in_r();
    polling.advance(Duration::from_secs(120));
    assert!(
        polling
            .take_outputs()
            .iter()
            .all(|o| !matches!(o, Output::OpenSocket { .. }))
    );
}

#[test]
fn a_dropped_socket_reconnects_after_a_jittered_backoff_and_at_once_when_back_online() {
    let (mut h, link) = Harness::connected_socket(&[]);
    h.take_events();
    h.client.handle_socket_closed(h.now, link, Some(1006));
    h.drain();
    let states = h.states();
    let ConnectionState::Reconnecting {
        attempt: 1,
        next_attempt,
    } = states[0]
    else {
        panic!("{states:?}")
    };
    assert!(
        next_attempt <= h.now + Duration::from_millis(500),
        "the first retry waits at most the base"
    );
    h.advance(next_attempt.duration_since(h.now));
    let second = h.opened_socket();
    // The socket fails to open; the platform then reports offline and online again.
    h.client.handle_socket_closed(h.now, second, None);
    h.client.handle_online(h.now, false);
    h.drain();
    assert_eq!(h.client.state(), &ConnectionState::Offline);
    h.advance(Duration::from_secs(60));
    assert!(
        h.take_outputs()
            .iter()
            .all(|o| !matches!(o, Output::OpenSocket { .. })),
        "no attempts while offline"
    );
    h.client.handle_online(h.now, true);
    h.drain();
    h.opened_socket(); // At once.
}

#[test]
fn a_silent_socket_is_pinged_then_declared_dead() {
    let (mut h, link) = Harness::connected_socket(&[]);
    h.take_outputs();
    h.advance(Duration::from_secs(5));
    assert_eq!(
        kinds(&h.frames_sent()),
        ["ping"],
        "a ping every half heartbeat"
    );
    h.server_says(link, ServerFrame::Pong(wire::Pong { nonce: None }));
    h.advance(Duration::from_secs(19));
    assert_eq!(
        h.client.state().badge(),
        Badge::Live,
        "19 s since the pong at 5 s: still alive"
    );
    h.advance(Duration::from_secs(1));
    assert!(
        h.take_outputs().contains(&Output::CloseSocket { link }),
        "20 s of silence = 2 heartbeats"
    );
    assert!(matches!(
        h.client.state(),
        ConnectionState::Reconnecting { .. }
    ));
}

#[test]
fn a_refused_token_asks_the_app_once_then_fails() {
    let mut h = Harness::new(ClientConfig {
        transport: TransportMode::WebSocket,
        ..ClientConfig::default()
    });
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.client
        .handle_socket_closed(h.now, link, Some(close_code::UNAUTHENTICATED));
    h.drain();
    assert!(h.take_events().contains(&ClientEvent::TokenNeeded));
    h.advance(Duration::from_secs(60));
    assert!(
        h.take_outputs().is_empty(),
        "no retry loop without a new token"
    );
    h.client.handle_token(h.now, "fresh".into());
    h.drain();
    let outputs = h.take_outputs();
    assert!(matches!(&outputs[..], [Output::OpenSocket { token, .. }] if token == "fresh"));
    let Output::OpenSocket { link, .. } = outputs[0] else {
        unreachable!()
    };
    h.client
        .handle_socket_closed(h.now, link, Some(close_code::UNAUTHENTICATED));
    h.drain();
    assert!(matches!(
        h.client.state(),
        ConnectionState::Failed {
            reason: FailReason::AuthRefused(_)
        }
    ));
    assert_eq!(h.client.state().badge(), Badge::Offline);
}

#[test]
fn the_draining_hint_sets_the_next_attempt() {
    let (mut h, link) = Harness::connected_socket(&[]);
    h.server_says(
        link,
        ServerFrame::Draining(wire::Draining {
            retry_after_ms: 2000,
        }),
    );
    h.client
        .handle_socket_closed(h.now, link, Some(close_code::SERVICE_RESTART));
    h.drain();
    let ConnectionState::Reconnecting { next_attempt, .. } = h.client.state().clone() else {
        panic!()
    };
    let wait = next_attempt.duration_since(h.now);
    assert!(
        wait >= Duration::from_secs(2) && wait <= Duration::from_secs(3),
        "{wait:?}: the hint plus up to 50% jitter"
    );
}

#[test]
fn unacked_publishes_expire_with_an_event_not_silently() {
    let config = ClientConfig {
        outbox: OutboxConfig {
            ttl_ms: 10_000,
            ..OutboxConfig::default()
        },
        ..ClientConfig::default()
    };
    let mut h = Harness::new(config);
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    let id = h.client.publish(now, room("r"), Json::null()).unwrap();
    h.client.handle_online(now, false);
    h.drain();
    h.take_events();
    h.advance(Duration::from_secs(10));
    let events = h.take_events();
    assert!(events.contains(&ClientEvent::Expired {
        room: room("r"),
        id
    }));
    assert!(events.contains(&ClientEvent::Outbox { queued: 0 }));
}

#[test]
fn a_gap_on_a_socket_is_repaired_from_history_and_duplicates_are_dropped() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    h.server_says(link, event("r", 1, "a"));
    h.server_says(link, event("r", 1, "a"));
    h.server_says(link, event("r", 4, "d"));
    let request = h
        .take_outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::Http {
                request,
                call: HttpCall::History { after: 1, .. },
                ..
            } => Some(request),
            _ => None,
        })
        .expect("a history fetch from the cursor");
    let page = wire::EventsPage {
        room: room("r"),
        epoch: 5,
        head: 4,
        oldest: 1,
        events: [(2, "b"), (3, "c")]
            .iter()
            .map(|(seq, id)| Event {
                room: room("r"),
                seq: Some(*seq),
                id: EventId::parse(*id).unwrap(),
                from: "x".into(),
                at: 0,
                body: Json::null(),
            })
            .collect(),
        next_after: None,
        next_before: None,
    };
    h.client
        .handle_http_response(h.now, request, HttpResult::Page(page));
    h.drain();
    let seqs: Vec<u64> = h
        .take_events()
        .into_iter()
        .filter_map(|e| {
            if let ClientEvent::Event { event, .. } = e {
                event.seq
            } else {
                None
            }
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn typing_of_others_is_shown_and_expires_and_own_typing_is_filtered() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    h.take_events();
    let typing = |user: &str, on| {
        ServerFrame::Typing(wire::TypingNotice {
            room: room("r"),
            user: user.into(),
            on,
        })
    };
    h.server_says(link, typing("me", true));
    h.server_says(link, typing("ana", true));
    assert_eq!(
        h.take_events(),
        [ClientEvent::Typing {
            room: room("r"),
            users: vec!["ana".into()]
        }]
    );
    h.advance(Duration::from_secs(8));
    let events = h.take_events();
    assert!(
        events.contains(&ClientEvent::Typing {
            room: room("r"),
            users: vec![]
        }),
        "expired locally: {events:?}"
    );
}

#[test]
fn a_failed_polling_attempt_resends_the_outbox_on_the_next_one() {
    let mut h = Harness::polling_in_r();
    let now = h.now;
    h.client
        .publish(now, room("r"), Json::from_text("1").unwrap())
        .unwrap();
    h.advance(Duration::ZERO);
    let (request, body) = posts(h.take_outputs()).into_iter().next().expect("a POST");
    // The outbox waits for the first welcome: until then the client does not know its user.
    assert_eq!(kinds(&body.frames), ["join r"]);
    h.client
        .handle_http_response(h.now, request, HttpResult::Frames(vec![welcome()]));
    h.drain();
    let (request, body) = posts(h.take_outputs())
        .into_iter()
        .next()
        .expect("a POST after the welcome");
    assert_eq!(kinds(&body.frames), ["publish 1"]);
    h.client
        .handle_http_response(h.now, request, HttpResult::Failed);
    h.drain();
    h.advance(Duration::from_secs(1));
    let (_, again) = posts(h.take_outputs())
        .into_iter()
        .next()
        .expect("a new POST");
    assert_eq!(
        kinds(&again.frames),
        ["join r", "publish 1"],
        "the unacked publish goes again"
    );
}

#[test]
fn acked_publishes_a_reset_skips_are_shown_as_own_events_in_seq_order() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    let now = h.now;
    let ids: Vec<EventId> = (0..3)
        .map(|n| {
            let body = Json::from_text(n.to_string()).unwrap();
            h.client.publish(now, room("r"), body).unwrap()
        })
        .collect();
    // Acked out of order, their echoes never come: the history moved on without them.
    for (id, seq) in ids.iter().zip([6, 5, 7]) {
        let ack = Ack {
            room: room("r"),
            id: id.clone(),
            seq: Some(seq),
            duplicate: false,
        };
        h.server_says(link, ServerFrame::Ack(ack));
    }
    h.take_events();
    let reset = Reset {
        room: room("r"),
        reason: ResetReason::HistoryTrimmed,
        epoch: 5,
        head: 6,
    };
    h.server_says(link, ServerFrame::Reset(reset));
    let shown: Vec<(u64, String)> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Event { event, own: true } => {
                Some((event.seq.unwrap(), event.id.to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        shown,
        [(5, ids[1].to_string()), (6, ids[0].to_string())],
        "the two at or below the new head, in seq order; the third still waits for its echo"
    );
    h.server_says(link, event_from("r", 7, ids[2].as_str(), "me"));
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Event { own: true, .. }))
    );
}

/// The polling POST a client just made, answered as the server would for a new session:
/// welcomed and connected.
fn answer_poll_send(h: &mut Harness) {
    let request = h
        .take_outputs()
        .iter()
        .find_map(|o| match o {
            Output::Http {
                request,
                call: HttpCall::PollSend(_),
                ..
            } => Some(*request),
            _ => None,
        })
        .expect("a polling POST");
    h.client.handle_http_response(
        h.now,
        request,
        HttpResult::Frames(vec![welcome(), joined("r", 0)]),
    );
    h.drain();
}

fn saved_transport(outputs: &[Output]) -> Option<String> {
    outputs.iter().find_map(|o| match o {
        Output::Save {
            key: TRANSPORT_KEY,
            value,
        } => Some(value.clone()),
        _ => None,
    })
}

#[test]
fn a_socket_refused_at_once_is_probed_again_as_soon_as_polling_works() {
    // A refused socket is what a restarting server looks like too: when polling then works,
    // the socket is tried at once, and polling is not remembered unless that fails as well.
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.client.handle_socket_closed(h.now, link, None);
    h.drain();
    answer_poll_send(&mut h);
    assert_eq!(
        h.client.state(),
        &ConnectionState::Connected {
            transport: Transport::Polling
        }
    );
    h.advance(Duration::ZERO);
    let outputs = h.take_outputs();
    assert_eq!(saved_transport(&outputs), None, "not remembered yet");
    let probe = outputs
        .iter()
        .find_map(|o| match o {
            Output::OpenSocket { link, .. } => Some(*link),
            _ => None,
        })
        .expect("the socket is probed at once");
    h.welcome(probe);
    assert_eq!(h.client.state().badge(), Badge::Live);

    // Behind a proxy that refuses WebSocket, the probe fails too: now polling is remembered,
    // and the next probe waits.
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    h.advance(Duration::ZERO);
    let link = h.opened_socket();
    h.client.handle_socket_closed(h.now, link, None);
    h.drain();
    answer_poll_send(&mut h);
    h.advance(Duration::ZERO);
    let probe = h.opened_socket();
    h.client.handle_socket_closed(h.now, probe, None);
    h.drain();
    assert_eq!(
        saved_transport(&h.take_outputs()),
        Some(format!("polling-until:{}", START_MS + 600_000))
    );
    h.advance(Duration::from_secs(29));
    assert!(
        !h.take_outputs()
            .iter()
            .any(|o| matches!(o, Output::OpenSocket { .. })),
        "no probe before 30 s"
    );
    h.advance(Duration::from_secs(1));
    h.opened_socket();
}

#[test]
fn another_users_event_with_an_own_pending_id_is_not_taken_for_the_echo() {
    // Ids travel in every event, so a member can publish one of ours (issue 14): the server
    // stores both (ids are per sender), and only the copy `from` this user confirms ours.
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    h.take_events();
    let now = h.now;
    let id = h
        .client
        .publish(now, room("r"), Json::from_text("1").unwrap())
        .unwrap();
    h.drain();
    h.server_says(link, event_from("r", 1, id.as_str(), "mallory"));
    h.server_says(link, event_from("r", 2, id.as_str(), "me"));
    h.server_says(
        link,
        ServerFrame::Ack(Ack {
            room: room("r"),
            id: id.clone(),
            seq: Some(2),
            duplicate: false,
        }),
    );
    let shown: Vec<(u64, String, bool)> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Event { event, own } => Some((event.seq.unwrap(), event.from, own)),
            _ => None,
        })
        .collect();
    assert_eq!(
        shown,
        [(1, "mallory".to_owned(), false), (2, "me".to_owned(), true)],
        "mallory's copy is mallory's; ours is confirmed by our own copy"
    );
    assert_eq!(h.client.outbox_len(), 0);
}

#[test]
fn unconfirmed_lists_a_rooms_own_publishes_until_their_event_comes_back() {
    let mut h = Harness::new(ClientConfig::default());
    let now = h.now;
    h.client.join(now, room("r"), Json::null());
    h.client.join(now, room("other"), Json::null());
    let first = h
        .client
        .publish(now, room("r"), Json::from_text("1").unwrap())
        .unwrap();
    h.advance(Duration::from_millis(5));
    let now = h.now;
    h.client
        .publish(now, room("other"), Json::from_text("2").unwrap())
        .unwrap();
    let second = h
        .client
        .publish(now, room("r"), Json::from_text("3").unwrap())
        .unwrap();
    let ids = |h: &Harness| -> Vec<String> {
        h.client
            .unconfirmed(&room("r"))
            .iter()
            .map(|r| r.id.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&h),
        [first.as_str(), second.as_str()],
        "oldest first, this room only"
    );
    let link = h.opened_socket();
    h.welcome(link);
    h.server_says(link, joined("r", 0));
    // Acked but its event not seen yet: still unconfirmed; its event confirms it.
    h.server_says(
        link,
        ServerFrame::Ack(Ack {
            room: room("r"),
            id: first.clone(),
            seq: Some(1),
            duplicate: false,
        }),
    );
    assert_eq!(ids(&h), [first.as_str(), second.as_str()]);
    h.server_says(link, event_from("r", 1, first.as_str(), "me"));
    assert_eq!(ids(&h), [second.as_str()]);
    assert_eq!(h.client.unconfirmed(&room("other")).len(), 1);
}
