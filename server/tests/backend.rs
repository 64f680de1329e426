//! The backend API, operations endpoints, origins and connection limits over real HTTP.

mod support;

use chorus_sdk::wire::{self, Cursor, ErrorCode, RoomRight, ServerFrame};
use futures_util::SinkExt;
use support::{Client, event_seq, http};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use support::BACKEND_KEY as KEY;

fn key_header() -> String {
    format!("Bearer {KEY}")
}

#[tokio::test]
async fn a_backend_publishes_as_the_system_or_a_user_idempotently() {
    let server = support::start(&support::backend_config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("doc:1", None).await;
    let key = key_header();
    let auth = [("Authorization", key.as_str())];

    let response = http(
        &server,
        "POST",
        "/v1/rooms/doc:1/events",
        &auth,
        Some(r#"{"id":"job-1","body":{"saved":true}}"#),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.json::<wire::Published>(),
        wire::Published {
            room: wire::RoomName::parse("doc:1").unwrap(),
            seq: 1,
            duplicate: false
        }
    );
    let again = http(
        &server,
        "POST",
        "/v1/rooms/doc:1/events",
        &auth,
        Some(r#"{"id":"job-1","body":{"saved":true}}"#),
    )
    .await;
    assert!(again.json::<wire::Published>().duplicate);
    let as_user = http(
        &server,
        "POST",
        "/v1/rooms/doc:1/events",
        &auth,
        Some(r#"{"id":"job-2","body":2,"from":"ben"}"#),
    )
    .await;
    assert_eq!(as_user.json::<wire::Published>().seq, 2);

    let frames = ana.recv_until(|f| event_seq(f) == Some(2)).await;
    let events: Vec<(String, u64)> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Event(e) => Some((e.from.clone(), e.seq.unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [("system".to_owned(), 1), ("ben".to_owned(), 2)],
        "delivered once each"
    );

    let conflict = http(
        &server,
        "POST",
        "/v1/rooms/doc:1/events",
        &auth,
        Some(r#"{"id":"job-3","body":3,"if_seq":1}"#),
    )
    .await;
    assert_eq!(
        (conflict.status, conflict.error_code()),
        (409, ErrorCode::Conflict)
    );
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16, ErrorCode);
    let cases: [Case<'_>; 5] = [
        (
            "/v1/rooms/doc:1/events",
            r#"{"id":"x","body":1}"#,
            &[],
            401,
            ErrorCode::Unauthenticated,
        ),
        (
            "/v1/rooms/doc:1/events",
            r#"{"id":"x","body":1}"#,
            &[("Authorization", "Bearer wrong-key")],
            401,
            ErrorCode::Unauthenticated,
        ),
        (
            "/v1/rooms/doc:1/events",
            r#"{"id":"bad id","body":1}"#,
            &auth,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "/v1/rooms/doc:1/events",
            r#"{"id":"x","body":1,"from":""}"#,
            &auth,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "/v1/rooms/bad%20room/events",
            r#"{"id":"x","body":1}"#,
            &auth,
            400,
            ErrorCode::BadRequest,
        ),
    ];
    for (path, body, headers, status, code) in cases {
        let response = http(&server, "POST", path, headers, Some(body)).await;
        assert_eq!(
            (response.status, response.error_code()),
            (status, code),
            "{path} {body}: {}",
            response.body
        );
    }
    // The API key also reads a room's history and presence, whatever the room.
    let page = http(
        &server,
        "GET",
        "/v1/rooms/doc:1/events?after=0",
        &auth,
        None,
    )
    .await;
    assert_eq!(page.json::<wire::EventsPage>().events.len(), 2);
    let presence = http(&server, "GET", "/v1/rooms/doc:1/presence", &auth, None).await;
    let users: Vec<String> = presence
        .json::<wire::PresenceBody>()
        .users
        .into_iter()
        .map(|u| u.user)
        .collect();
    assert_eq!(users, ["ana"]);
    // A user token is not an API key.
    let user = format!("Bearer {}", support::token("ana"));
    let response = http(
        &server,
        "POST",
        "/v1/rooms/doc:1/events",
        &[("Authorization", &user)],
        Some(r#"{"id":"x","body":1}"#),
    )
    .await;
    assert_eq!(response.status, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn direct_messages_reach_every_tab_and_wait_in_the_inbox_for_an_offline_user() {
    let server = support::start(&support::backend_config()).await;
    let key = key_header();
    let auth = [("Authorization", key.as_str())];
    // Ben was online once: he joined his inbox and knows his cursor.
    let mut ben = Client::connect(&server, "ben").await;
    let inbox = ben.join("@ben", None).await;
    drop(ben);
    for n in 1..=2 {
        let body = format!(r#"{{"id":"dm-{n}","body":{{"text":"hello {n}"}}}}"#);
        let response = http(&server, "POST", "/v1/users/ben/events", &auth, Some(&body)).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.json::<wire::Published>().room.as_str(), "@ben");
    }
    // He comes back and resumes his inbox: both messages, in order.
    let mut ben = Client::connect(&server, "ben").await;
    ben.join(
        "@ben",
        Some(Cursor {
            epoch: inbox.epoch,
            seq: inbox.head,
        }),
    )
    .await;
    let mut tab2 = Client::connect(&server, "ben").await;
    tab2.join("@ben", None).await;
    let frames = ben.recv_until(|f| event_seq(f) == Some(2)).await;
    assert_eq!(
        frames.iter().filter_map(event_seq).collect::<Vec<_>>(),
        [1, 2]
    );
    // A live message reaches both tabs.
    http(
        &server,
        "POST",
        "/v1/users/ben/events",
        &auth,
        Some(r#"{"id":"dm-3","body":3}"#),
    )
    .await;
    for tab in [&mut ben, &mut tab2] {
        tab.recv_until(|f| event_seq(f) == Some(3)).await;
    }
    // Nobody else can read Ben's inbox, whatever their grants say.
    let mut ana = Client::connect(&server, "ana").await;
    ana.send(&wire::ClientFrame::Join(wire::Join {
        room: wire::RoomName::parse("@ben").unwrap(),
        meta: wire::Json::null(),
        resume: None,
    }))
    .await;
    assert!(matches!(ana.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Forbidden));
    let bad = http(
        &server,
        "POST",
        "/v1/users/bad%20user/events",
        &auth,
        Some(r#"{"id":"x","body":1}"#),
    )
    .await;
    assert_eq!((bad.status, bad.error_code()), (400, ErrorCode::BadRequest));
    server.shutdown().await;
}

#[tokio::test]
async fn stats_readiness_and_prometheus_metrics_describe_the_server() {
    let server = support::start(&support::backend_config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    ana.publish("r", "e1", "1").await;
    ana.recv_until(|f| support::is_ack(f, "e1")).await;
    let mut pol = support::PollClient::new(&server, "pol", "session-stats");
    pol.join("r").await;

    let key = key_header();
    let stats = http(
        &server,
        "GET",
        "/v1/stats",
        &[("Authorization", &key)],
        None,
    )
    .await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let stats: wire::Stats = stats.json();
    assert_eq!(
        (
            stats.connections,
            stats.peak_connections,
            stats.polling_sessions
        ),
        (1, 1, 1)
    );
    assert_eq!((stats.rooms, stats.users, stats.events_total), (1, 2, 1));
    assert_eq!(
        stats.nodes, None,
        "one node: its own figures, no node count"
    );
    assert_eq!(
        http(&server, "GET", "/v1/stats", &[], None).await.status,
        401
    );

    let ready = http(&server, "GET", "/readyz", &[], None).await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, r#"{"status":"ready"}"#)
    );

    let metrics = http(&server, "GET", "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let lines = metrics.body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(value("chorus_connections"), Some(1.0));
    assert_eq!(value("chorus_polling_sessions"), Some(1.0));
    assert_eq!(value("chorus_events_stored_total"), Some(1.0));
    assert_eq!(
        value("chorus_frames_received_total"),
        Some(3.0),
        "hello, join, publish"
    );
    assert!(
        scrape
            .docs
            .contains_key("chorus_connections_rejected_total")
    );
    server.shutdown().await;
}

/// `--private-metrics`: `/metrics` answers only the backend API key, with the same 401 body as
/// `/v1/stats`; and a server told to keep its metrics private without a key does not start.
#[tokio::test]
async fn private_metrics_answer_only_the_api_key() {
    let mut config = support::backend_config();
    config.private_metrics = true;
    let server = support::start(&config).await;
    let refused = http(&server, "GET", "/metrics", &[], None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let error = refused.json::<wire::ErrorBody>();
    assert_eq!(error.code, ErrorCode::Unauthenticated, "{}", refused.body);
    assert!(
        error.message.contains("backend API key"),
        "{}",
        error.message
    );
    let wrong = [("Authorization", "Bearer not-the-key")];
    assert_eq!(
        http(&server, "GET", "/metrics", &wrong, None).await.status,
        401
    );
    let key = key_header();
    let auth = [("Authorization", key.as_str())];
    let metrics = http(&server, "GET", "/metrics", &auth, None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("chorus_connections "),
        "{}",
        metrics.body
    );
    server.shutdown().await;

    let mut keyless = support::config();
    keyless.private_metrics = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let Err(err) = chorus_server::start(&keyless, listener).await else {
        panic!("a server with --private-metrics and no --api-key started");
    };
    assert!(
        err.to_string()
            .contains("--private-metrics needs --api-key"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_gauge_counts_a_task_per_connection_and_closed_ones_leave_none_behind() {
    let server = support::start(&support::backend_config()).await;
    let tasks = || async {
        let metrics = http(&server, "GET", "/metrics", &[], None).await;
        let line = metrics
            .body
            .lines()
            .find_map(|line| line.strip_prefix("chorus_tasks "))
            .map(str::to_owned);
        line.and_then(|value| value.parse::<f64>().ok())
            .expect("a chorus_tasks sample")
    };
    let before = tasks().await;
    let mut clients = Vec::new();
    for n in 0..10 {
        let mut client = Client::connect(&server, &format!("u{n}")).await;
        client.join("r", None).await;
        clients.push(client);
    }
    let open = tasks().await;
    assert!(
        open >= before + 10.0,
        "10 connections open: {before} tasks before, {open} now"
    );
    drop(clients);
    let mut now = open;
    for _ in 0..100 {
        now = tasks().await;
        if now <= before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        now <= before,
        "every closed connection's task ended: {before} tasks before, {now} after"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pages_from_origins_off_the_allow_list_are_refused() {
    let mut config = support::backend_config();
    config.allowed_origins = vec!["https://app.example".into()];
    let server = support::start(&config).await;
    let open_from = |origin: &'static str| {
        let mut request = format!("ws://{}/v1/ws", server.local_addr())
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_static(origin));
        tokio_tungstenite::connect_async(request)
    };
    let (mut socket, _) = open_from("https://app.example")
        .await
        .expect("an allowed origin connects");
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            wire::ClientFrame::Hello(wire::Hello {
                token: support::token("ana"),
            })
            .encode(),
        ))
        .await
        .unwrap();
    match open_from("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body: wire::ErrorBody =
                serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body.code, ErrorCode::ForbiddenOrigin);
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    // CORS: the allowed origin is echoed on a preflight, a foreign one is not.
    let preflight = |origin: &'static str| {
        let headers = [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type",
            ),
        ];
        http(
            &server,
            "OPTIONS",
            "/v1/poll",
            &headers.to_vec().leak()[..],
            None,
        )
    };
    let allowed = preflight("https://app.example").await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let foreign = preflight("https://evil.example").await;
    assert_eq!(foreign.header("access-control-allow-origin"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn connection_limits_refuse_with_a_code_in_total_and_per_address() {
    let mut config = support::backend_config();
    config.max_connections = 3;
    config.max_connections_per_ip = 2;
    let server = support::start(&config).await;
    let url = format!("ws://{}/v1/ws", server.local_addr());
    let from = |ip: &'static str| {
        let url = url.clone();
        let addr = server.local_addr();
        async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
            let stream = socket.connect(addr).await.unwrap();
            tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
                .await
        }
    };
    let refused_with = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body: wire::ErrorBody =
                serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            (response.status().as_u16(), body.code, body.message)
        }
        Ok(_) => panic!("expected a refusal"),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    };
    let _a1 = from("127.0.0.1").await.unwrap();
    let _a2 = from("127.0.0.1").await.unwrap();
    let (status, code, message) = refused_with(from("127.0.0.1").await);
    assert_eq!((status, code), (503, ErrorCode::TooManyConnections));
    assert!(message.contains("per client address"), "{message}");
    let b1 = from("127.0.0.2").await.unwrap();
    let (_, code, message) = refused_with(from("127.0.0.3").await);
    assert_eq!(code, ErrorCode::TooManyConnections);
    assert!(message.contains("maximum of 3"), "{message}");
    // Closing one frees its slot.
    drop(b1);
    let mut freed = false;
    for _ in 0..50 {
        if from("127.0.0.3").await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(freed, "a closed connection's slot is reused");
    let metrics = http(&server, "GET", "/metrics", &[], None).await.body;
    let rejected = |reason: &str| -> f64 {
        let prefix = format!("chorus_connections_rejected_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {reason} in:\n{metrics}"))
    };
    assert_eq!(
        rejected("per_ip_limit"),
        1.0,
        "one refusal for the address limit"
    );
    // Waiting for the freed slot may be refused a few more times before the close lands.
    assert!(
        rejected("total_limit") >= 1.0,
        "refusals for the total limit are counted apart"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn publishing_too_fast_is_refused_with_rate_limited_and_recovers() {
    let mut config = support::backend_config();
    config.publish_rate = 5.0;
    config.publish_burst = 5.0;
    let server = support::start(&config).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    for n in 0..8 {
        ana.publish("r", &format!("p{n}"), "0").await;
    }
    let frames = ana
        .recv_until(|f| matches!(f, ServerFrame::Nack(n) if n.id.as_str() == "p7"))
        .await;
    let nacks: Vec<&str> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Nack(n) if n.code == ErrorCode::RateLimited => Some(n.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(nacks, ["p5", "p6", "p7"]);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    ana.publish("r", "p5", "0").await;
    ana.recv_until(|f| support::is_ack(f, "p5")).await;
    server.shutdown().await;
}

#[tokio::test]
async fn dev_tokens_are_only_issued_in_dev_mode() {
    let server = support::start(&support::backend_config()).await;
    let response = http(
        &server,
        "POST",
        "/v1/dev/token",
        &[],
        Some(r#"{"name":"Ana"}"#),
    )
    .await;
    assert_eq!(
        (response.status, response.error_code()),
        (404, ErrorCode::NotFound)
    );
    server.shutdown().await;

    let mut dev = support::backend_config();
    dev.dev = true;
    let server = support::start(&dev).await;
    let response = http(
        &server,
        "POST",
        "/v1/dev/token",
        &[],
        Some(r#"{"name":"Ana Lima"}"#),
    )
    .await;
    let token: wire::DevTokenResponse = response.json();
    assert_eq!(token.user, "ana-lima");
    let mut client = Client::open(&server).await;
    client
        .send(&wire::ClientFrame::Hello(wire::Hello {
            token: token.token,
        }))
        .await;
    assert!(matches!(client.recv().await, ServerFrame::Welcome(w) if w.user == "ana-lima"));
    let empty = http(
        &server,
        "POST",
        "/v1/dev/token",
        &[],
        Some(r#"{"name":"  "}"#),
    )
    .await;
    assert_eq!(
        (empty.status, empty.error_code()),
        (400, ErrorCode::BadRequest)
    );
    // `ttl_seconds` sets the token's life (12 hours without it), within 1 s to 12 hours.
    let auth =
        chorus_server::auth::Authenticator::hs256(chorus_server::config::DEV_SECRET.as_bytes());
    let now_ms = chorus_server::clock::unix_ms_now();
    for (body, life_s) in [
        (r#"{"name":"Ana"}"#, 12 * 3600),
        (r#"{"name":"Ana","ttl_seconds":30}"#, 30),
    ] {
        let token: wire::DevTokenResponse = http(&server, "POST", "/v1/dev/token", &[], Some(body))
            .await
            .json();
        let expires_at_ms = auth.verify(&token.token).unwrap().expires_at_ms.unwrap();
        let life_ms = expires_at_ms - now_ms / 1000 * 1000;
        assert!(
            (life_s * 1000..=(life_s + 2) * 1000).contains(&life_ms),
            "{body}: {life_ms} ms"
        );
    }
    // `rooms` sets the grants (publish on every room without it).
    for (body, grants) in [
        (
            r#"{"name":"Ana"}"#,
            vec![("*".to_owned(), RoomRight::Publish)],
        ),
        (
            r#"{"name":"Ana","rooms":{"doc:*":"publish","lobby":"read"}}"#,
            vec![
                ("doc:*".to_owned(), RoomRight::Publish),
                ("lobby".to_owned(), RoomRight::Read),
            ],
        ),
    ] {
        let token: wire::DevTokenResponse = http(&server, "POST", "/v1/dev/token", &[], Some(body))
            .await
            .json();
        assert_eq!(auth.verify(&token.token).unwrap().grants, grants, "{body}");
    }
    let many: Vec<String> = (0..65).map(|n| format!(r#""r{n}":"read""#)).collect();
    for rooms in [
        r#"{"":"read"}"#.to_owned(),
        format!("{{{}}}", many.join(",")),
    ] {
        let body = format!(r#"{{"name":"Ana","rooms":{rooms}}}"#);
        let refused = http(&server, "POST", "/v1/dev/token", &[], Some(&body)).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (400, ErrorCode::BadRequest),
            "{rooms}"
        );
    }
    for ttl in ["0", "43201"] {
        let body = format!(r#"{{"name":"Ana","ttl_seconds":{ttl}}}"#);
        let refused = http(&server, "POST", "/v1/dev/token", &[], Some(&body)).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (400, ErrorCode::BadRequest),
            "{ttl}"
        );
        assert!(
            refused.body.contains("ttl_seconds must be 1 to 43200"),
            "{}",
            refused.body
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_app_is_served_at_the_root_and_api_paths_stay_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>app</title>",
    )
    .unwrap();
    std::fs::write(dir.path().join("style.css"), "body{}").unwrap();
    let mut config = support::backend_config();
    config.app_dir = Some(dir.path().to_owned());
    let server = support::start(&config).await;
    for (path, expect) in [
        ("/", "<title>app</title>"),
        ("/style.css", "body{}"),
        ("/rooms/design", "<title>app</title>"),
    ] {
        let response = http(&server, "GET", path, &[], None).await;
        assert_eq!((path, response.status), (path, 200));
        assert!(response.body.contains(expect), "{path}: {}", response.body);
    }
    let api = http(&server, "GET", "/v1/no-such-endpoint", &[], None).await;
    assert_eq!(api.status, 404);
    assert_eq!(api.json::<wire::ErrorBody>().code, ErrorCode::NotFound);
    let health = http(&server, "GET", "/healthz", &[], None).await;
    assert_eq!(health.status, 200);
    // A path segment that is not UTF-8 once percent-decoded: a JSON 400 like any bad input.
    let key = format!("Bearer {}", support::BACKEND_KEY);
    for (method, path, body) in [
        ("GET", "/v1/rooms/%FF/events", None),
        ("GET", "/v1/rooms/%FF/presence", None),
        (
            "POST",
            "/v1/rooms/%C3/events",
            Some(r#"{"id":"a","body":1}"#),
        ),
        (
            "POST",
            "/v1/users/%FF/events",
            Some(r#"{"id":"a","body":1}"#),
        ),
        ("POST", "/v1/users/%FF/notices", Some(r#"{"body":1}"#)),
        ("POST", "/v1/connections/%FF/notices", Some(r#"{"body":1}"#)),
        (
            "POST",
            "/v1/rooms/r/streams/%FF",
            Some(r#"{"op":"finish"}"#),
        ),
        ("POST", "/v1/rooms/r/streams/%FF/text", Some("hi")),
    ] {
        let response = http(&server, method, path, &[("Authorization", &key)], body).await;
        assert_eq!(response.status, 400, "{path}: {}", response.body);
        let error = response.json::<wire::ErrorBody>();
        assert_eq!(error.code, ErrorCode::BadRequest, "{path}");
        assert!(
            error.message.starts_with("bad path: "),
            "{path}: {}",
            error.message
        );
    }
}

/// Opens a WebSocket to `server` saying it was forwarded for `forwarded` (`X-Forwarded-For`).
async fn connect_forwarded(
    server: &chorus_server::RunningServer,
    forwarded: &'static str,
) -> Result<impl Sized, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/v1/ws", server.local_addr())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-forwarded-for", HeaderValue::from_static(forwarded));
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

/// Whether a connection attempt was refused with 503 (a connection limit).
fn refused<T>(result: Result<T, tokio_tungstenite::tungstenite::Error>) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    matches!(result, Err(Error::Http(r)) if r.status() == 503)
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let mut config = support::backend_config();
    config.max_connections_per_ip = 1;
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = support::start(&config).await;
    // Two clients behind the same proxy address: one slot each.
    let _ana = connect_forwarded(&server, "198.51.100.1").await.unwrap();
    let _ben = connect_forwarded(&server, "198.51.100.2").await.unwrap();
    assert!(refused(connect_forwarded(&server, "198.51.100.1").await));
    // A client cannot dodge its limit by prepending a forged address.
    assert!(refused(
        connect_forwarded(&server, "6.6.6.6, 198.51.100.2").await
    ));

    // Without trusting the proxy, the header means nothing: everyone is 127.0.0.1.
    config.trusted_proxies.clear();
    let plain = support::start(&config).await;
    let _first = connect_forwarded(&plain, "198.51.100.1").await.unwrap();
    assert!(refused(connect_forwarded(&plain, "198.51.100.2").await));
}

/// A method an endpoint does not take gets 405 with `Allow` and a JSON `bad_request` body,
/// like every other refusal (not axum's empty 405).
#[tokio::test]
async fn a_wrong_method_or_a_bad_room_segment_gets_a_json_error() {
    let server = support::start(&support::backend_config()).await;
    for (method, path, allow) in [
        ("POST", "/v1/ws", "GET,HEAD"),
        ("DELETE", "/v1/rooms/r/events", "GET,HEAD,POST"),
        ("PUT", "/healthz", "GET,HEAD"),
    ] {
        let response = http(&server, method, path, &[], None).await;
        assert_eq!(
            (response.status, response.error_code()),
            (405, ErrorCode::BadRequest),
            "{method} {path}: {}",
            response.body
        );
        assert!(response.body.contains(path), "{}", response.body);
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
    }
    // A room segment that is not UTF-8 is a JSON 400 on every room endpoint.
    for path in [
        "/v1/rooms/%FF/events",
        "/v1/rooms/%FF/presence",
        "/v1/rooms/%FF/locks",
    ] {
        let response = http(&server, "GET", path, &[], None).await;
        assert_eq!(
            (response.status, response.error_code()),
            (400, ErrorCode::BadRequest),
            "{path}: {}",
            response.body
        );
    }
    server.shutdown().await;
}
