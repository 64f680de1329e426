//! `POST /v1/polls` over real HTTP: several long polls in one request, each answered as its
//! `GET /v1/poll` would be; held until one has something, then only the answered ones come.

mod support;

use chorus_sdk::wire::{self, ErrorCode, PollAnswer, PollAnswers, PollFrames, ServerFrame};
use support::{Client, PollClient, http};

/// The `POST /v1/polls` body for these clients' next polls, each with its `wait`.
fn many_body(polls: &[(&str, &PollClient, u64)]) -> String {
    let polls = polls
        .iter()
        .map(|(id, client, wait)| wire::PollRequest {
            id: (*id).to_owned(),
            token: client.token.clone(),
            query: client.poll_path(*wait)["/v1/poll?".len()..].to_owned(),
            waited: None,
        })
        .collect();
    wire::json::to_string(&wire::PollMany { polls })
}

async fn post_many(server: &impl support::Addressed, body: &str) -> support::HttpResponse {
    http(server, "POST", "/v1/polls", &[], Some(body)).await
}

/// Sends the clients' polls in one request; returns the answers by id, applying each answered
/// poll's frames to its client (which checks they come in order, without gaps or doubles).
async fn poll_many(
    server: &impl support::Addressed,
    polls: &mut [(&str, &mut PollClient, u64)],
) -> Vec<PollAnswer> {
    let body = many_body(
        &polls
            .iter()
            .map(|(id, client, wait)| (*id, &**client, *wait))
            .collect::<Vec<_>>(),
    );
    let response = post_many(server, &body).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let answers: PollAnswers = wire::json::from_str(&response.body).unwrap();
    for answer in &answers.polls {
        if answer.status == 200 {
            let (_, client, _) = polls.iter_mut().find(|(id, ..)| *id == answer.id).unwrap();
            client.apply(&frames(answer));
        }
    }
    answers.polls
}

/// Ana and Ben, polling clients with sessions of their own (named by `n`), joined to room r.
async fn ana_and_ben_in_r(server: &impl support::Addressed, n: &str) -> (PollClient, PollClient) {
    let mut ana = PollClient::new(server, "ana", &format!("session-ana-{n}"));
    let mut ben = PollClient::new(server, "ben", &format!("session-ben-{n}"));
    ana.join("r").await;
    ben.join("r").await;
    (ana, ben)
}

fn frames(answer: &PollAnswer) -> Vec<ServerFrame> {
    wire::json::from_str::<PollFrames>(answer.body.as_text())
        .unwrap()
        .frames
}

fn ids(answers: &[PollAnswer]) -> Vec<&str> {
    let mut ids: Vec<&str> = answers.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    ids
}

fn error_code(answer: &PollAnswer) -> ErrorCode {
    wire::json::from_str::<wire::ErrorBody>(answer.body.as_text())
        .unwrap()
        .code
}

#[tokio::test]
async fn several_sessions_hold_one_request_and_each_gets_what_its_own_poll_would() {
    let server = support::start(&support::config()).await;
    let (mut ana, mut ben) = ana_and_ben_in_r(&server, "1").await;
    ben.join("s").await;
    // Presence and typing first: both answered at once, each with its own rooms' state.
    let answers = poll_many(&server, &mut [("a", &mut ana, 5000), ("b", &mut ben, 5000)]).await;
    assert_eq!(ids(&answers), ["a", "b"]);
    assert_eq!(ana.presence["r"], ["ana", "ben"]);
    assert_eq!(ben.presence["s"], ["ben"]);

    // Nothing due: the request is held; an event in r answers both polls.
    let mut writer = Client::connect(&server, "wes").await;
    writer.join("r", None).await;
    let mut both = [("a", &mut ana, 5000), ("b", &mut ben, 5000)];
    let (answers, ()) = tokio::join!(poll_many(&server, &mut both), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for n in 1..=3 {
            writer.publish("r", &format!("e{n}"), "1").await;
        }
    });
    assert!(!answers.is_empty());
    // Whichever came first, polling again brings each client every event, once and in order.
    let count = |client: &PollClient| client.delivered.get("r").map_or(0, Vec::len);
    for _ in 0..10 {
        if count(&ana) == 3 && count(&ben) == 3 {
            break;
        }
        poll_many(&server, &mut [("a", &mut ana, 2000), ("b", &mut ben, 2000)]).await;
    }
    assert_eq!(ana.delivered["r"], [1, 2, 3]);
    assert_eq!(ben.delivered["r"], [1, 2, 3]);

    // One poll behind, one up to date: only the one with something due is answered (the other
    // took nothing and is asked again), and its frames are those of its own GET.
    let behind = ana.cursors.clone();
    writer.publish("r", "e4", "1").await;
    poll_many(&server, &mut [("b", &mut ben, 5000)]).await;
    assert_eq!(ben.delivered["r"], [1, 2, 3, 4]);
    let get = ana.poll(0).await;
    ana.cursors = behind;
    ana.delivered.get_mut("r").unwrap().pop();
    let answers = poll_many(&server, &mut [("a", &mut ana, 5000), ("b", &mut ben, 5000)]).await;
    assert_eq!(ids(&answers), ["a"]);
    assert_eq!(frames(&answers[0]), get);
    assert_eq!(ana.delivered["r"], [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_poll_whose_wait_runs_out_is_answered_empty_and_alone() {
    let server = support::start(&support::config()).await;
    let (mut ana, mut ben) = ana_and_ben_in_r(&server, "2").await;
    poll_many(&server, &mut [("a", &mut ana, 0), ("b", &mut ben, 0)]).await;
    poll_many(&server, &mut [("a", &mut ana, 0), ("b", &mut ben, 0)]).await;
    let answers = poll_many(
        &server,
        &mut [("a", &mut ana, 200), ("b", &mut ben, 20_000)],
    )
    .await;
    assert_eq!(ids(&answers), ["a"]);
    assert_eq!(answers[0].status, 200);
    assert!(frames(&answers[0]).is_empty());

    // A poll asked again says how long it already waited: it is held only for what is left.
    let request = |waited: u64, client: &PollClient, id: &str| wire::PollRequest {
        id: id.to_owned(),
        token: client.token.clone(),
        query: client.poll_path(20_000)["/v1/poll?".len()..].to_owned(),
        waited: Some(waited),
    };
    let body = wire::json::to_string(&wire::PollMany {
        polls: vec![request(19_800, &ana, "a"), request(0, &ben, "b")],
    });
    let response = post_many(&server, &body).await;
    let answers: PollAnswers = wire::json::from_str(&response.body).unwrap();
    assert_eq!(ids(&answers.polls), ["a"]);
    assert!(frames(&answers.polls[0]).is_empty());
}

#[tokio::test]
async fn each_poll_is_refused_on_its_own_and_the_others_are_answered() {
    let server = support::start(&support::config()).await;
    let mut ana = PollClient::new(&server, "ana", "session-ana-3");
    ana.join("r").await;
    let mut forged = PollClient::new(&server, "ana", "session-ana-4");
    forged.token.push('x');
    let mut thief = PollClient::new(&server, "ben", "session-ana-3");
    let mut bad_session = PollClient::new(&server, "ana", "no");
    let mut not_a_header = PollClient::new(&server, "ana", "session-ana-5");
    not_a_header.token = "a\nb".into();
    for client in [&mut forged, &mut thief, &mut bad_session, &mut not_a_header] {
        client.cursors = ana.cursors.clone();
    }
    let answers = poll_many(
        &server,
        &mut [
            ("ok", &mut ana, 5000),
            ("forged", &mut forged, 5000),
            ("thief", &mut thief, 5000),
            ("bad-session", &mut bad_session, 5000),
            ("header", &mut not_a_header, 5000),
        ],
    )
    .await;
    let by_id = |id: &str| answers.iter().find(|a| a.id == id).unwrap();
    assert_eq!(ids(&answers).len(), 5, "{answers:?}");
    assert_eq!(by_id("ok").status, 200);
    assert_eq!(ana.presence["r"], ["ana"]);
    for (id, status, code) in [
        ("forged", 401, ErrorCode::Unauthenticated),
        ("thief", 403, ErrorCode::Forbidden),
        ("bad-session", 400, ErrorCode::BadRequest),
        ("header", 401, ErrorCode::Unauthenticated),
    ] {
        assert_eq!(by_id(id).status, status, "{id}: {:?}", by_id(id).body);
        assert_eq!(error_code(by_id(id)), code, "{id}");
    }
    // A refused poll is answered at once, even when the others have nothing to say: the
    // request does not wait for them.
    let answers = poll_many(
        &server,
        &mut [("ok", &mut ana, 20_000), ("forged", &mut forged, 20_000)],
    )
    .await;
    assert_eq!(ids(&answers), ["forged"]);
}

#[tokio::test]
async fn a_request_that_is_not_a_list_of_polls_is_refused_whole() {
    let server = support::start(&support::config()).await;
    let ana = PollClient::new(&server, "ana", "session-ana-6");
    let one = |id: &str| {
        format!(
            r#"{{"id":"{id}","token":"{}","query":"session=session-ana-6"}}"#,
            ana.token
        )
    };
    let many = (0..65)
        .map(|n| one(&format!("p{n}")))
        .collect::<Vec<_>>()
        .join(",");
    for (body, says) in [
        ("not json".to_owned(), ""),
        ("{}".to_owned(), "polls"),
        (r#"{"polls":[]}"#.to_owned(), "1 to 64 polls"),
        (format!(r#"{{"polls":[{many}]}}"#), "this one has 65"),
        (format!(r#"{{"polls":[{}]}}"#, one("")), "is not 1 to 64"),
        (format!(r#"{{"polls":[{}]}}"#, one("a b")), "is not 1 to 64"),
        (
            format!(r#"{{"polls":[{},{}]}}"#, one("a"), one("a")),
            "used twice",
        ),
        (r#"{"polls":[{"id":"a","token":"t"}]}"#.to_owned(), "query"),
    ] {
        let response = post_many(&server, &body).await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
        assert_eq!(response.error_code(), ErrorCode::BadRequest, "{body}");
        let message = response.json::<wire::ErrorBody>().message;
        assert!(message.contains(says), "{body}: {message}");
    }
}

#[tokio::test]
async fn a_kept_notice_comes_in_the_answer_of_its_sessions_poll() {
    let server = support::start(&support::backend_config()).await;
    let (mut ana, mut ben) = ana_and_ben_in_r(&server, "7").await;
    poll_many(&server, &mut [("a", &mut ana, 0), ("b", &mut ben, 0)]).await;
    let key = format!("Bearer {}", support::BACKEND_KEY);
    let mut both = [("a", &mut ana, 5000), ("b", &mut ben, 5000)];
    let (answers, sent) = tokio::join!(poll_many(&server, &mut both), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        http(
            &server,
            "POST",
            "/v1/users/ben/notices",
            &[("Authorization", &key)],
            Some(r#"{"id":"n1","body":"hi"}"#),
        )
        .await
    });
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(ids(&answers), ["b"]);
    let notices: Vec<String> = frames(&answers[0])
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Notice(n) => Some(n.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(notices, ["n1"]);
}

#[tokio::test]
async fn a_request_the_client_gives_up_stops_holding_its_polls() {
    use tokio::io::AsyncWriteExt;
    let server = support::start(&support::config()).await;
    let mut ana = PollClient::new(&server, "ana", "session-ana-8");
    ana.join("r").await;
    let mut writer = Client::connect(&server, "wes").await;
    writer.join("r", None).await;
    poll_many(&server, &mut [("a", &mut ana, 0)]).await;
    // A session may hold two polls (`--max-held-polls`). Two requests holding its poll are
    // given up (their connections closed, as a leader's `abort()` does)...
    let body = many_body(&[("a", &ana, 20_000)]);
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        let request = format!(
            "POST /v1/polls HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // ...so the next two are held, not refused with too_many_polls.
    let (one, two, ()) = tokio::join!(
        post_many(&server, &body),
        post_many(&server, &body),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            writer.publish("r", "e1", "1").await;
        }
    );
    for response in [one, two] {
        let answers: PollAnswers = wire::json::from_str(&response.body).unwrap();
        assert_eq!(answers.polls[0].status, 200, "{:?}", answers.polls[0].body);
    }
}
