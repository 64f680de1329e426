//! Amplification and exhaustion limits over real TCP: what one poll may ask for, how large one
//! answer may grow, how many polling sessions a user or an address may open (IPv6 by /64); and
//! the HTTP server's header, idle and stall timeouts and its per-address connection cap; the
//! authentication time, the `POST /v1/poll` in-flight cap and ack wait, the events per poll
//! and per history page, and the REST publish body.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, ErrorCode, ServerFrame};
use support::redis::RedisServer;
use support::{Client, PollClient, is_ack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Publishes `count` events to `room` whose bodies are strings of `size` bytes, and waits for
/// the last ack.
async fn publish_big(client: &mut Client, room: &str, count: usize, size: usize) {
    for n in 0..count {
        let body = format!("\"{}\"", "x".repeat(size));
        client.publish(room, &format!("big{n}"), &body).await;
    }
    client
        .recv_until(|f| is_ack(f, &format!("big{}", count - 1)))
        .await;
}

fn events_in(frames: &[ServerFrame]) -> usize {
    frames
        .iter()
        .filter(|f| matches!(f, ServerFrame::Event(_)))
        .count()
}

#[tokio::test]
async fn a_poll_follows_each_room_once_and_at_most_as_many_rooms_as_a_session_may_join() {
    let mut config = support::config();
    config.max_rooms_per_conn = 3;
    let server = support::start(&config).await;
    let mut poller = PollClient::new(&server, "pia", "session-dup1");
    poller.join("r").await;
    poller.poll(0).await;
    let mut writer = Client::connect(&server, "wes").await;
    writer.join("r", None).await;
    publish_big(&mut writer, "r", 1, 10).await;

    // The same cursor fifty times is one room: the event comes once, not fifty times.
    let cursor = poller.cursors["r"].encode();
    let mut path = format!("/v1/poll?session={}&wait=0", poller.session);
    for _ in 0..50 {
        path.push_str("&r=");
        path.push_str(&cursor);
    }
    let auth = format!("Bearer {}", poller.token);
    let response = support::http(&server, "GET", &path, &[("Authorization", &auth)], None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let frames = response.json::<wire::PollFrames>().frames;
    assert_eq!(events_in(&frames), 1, "{frames:?}");

    // More distinct rooms than a session may join is refused.
    let mut path = format!("/v1/poll?session={}&wait=0", poller.session);
    for room in ["a", "b", "c", "d"] {
        path.push_str(&format!("&r={room}~~~0~0"));
    }
    let response = support::http(&server, "GET", &path, &[("Authorization", &auth)], None).await;
    assert_eq!(
        (response.status, response.error_code()),
        (400, ErrorCode::BadRequest),
        "{}",
        response.body
    );
    assert!(response.body.contains("at most 3"), "{}", response.body);
}

#[tokio::test]
async fn polls_and_history_pages_end_early_past_the_answer_byte_cap_and_clients_continue() {
    let mut config = support::config();
    config.max_answer_bytes = 4000;
    let server = support::start(&config).await;
    let mut poller = PollClient::new(&server, "pia", "session-bytes1");
    poller.join("r").await;
    poller.poll(0).await;
    let start = poller.cursor("r").seq;
    let mut writer = Client::connect(&server, "wes").await;
    writer.join("r", None).await;
    publish_big(&mut writer, "r", 10, 1000).await;

    // Each poll answer stays near the cap; polling again from the cursor gets the rest, in
    // order (the support client checks every event follows its cursor).
    let mut answers = 0;
    while poller.delivered.get("r").map_or(0, Vec::len) < 10 {
        let frames = poller.poll(0).await;
        let events = events_in(&frames);
        assert!((1..=3).contains(&events), "{events} events in one answer");
        answers += 1;
        assert!(answers <= 10, "polling makes progress");
    }
    assert_eq!(
        poller.delivered["r"],
        (start + 1..=start + 10).collect::<Vec<_>>()
    );

    // A history page asked for 1000 events ends early too, and says where to continue.
    let auth = format!("Bearer {}", support::token("pia"));
    let mut after = 0;
    let mut seqs = Vec::new();
    loop {
        let path = format!("/v1/rooms/r/events?after={after}&limit=1000");
        let response =
            support::http(&server, "GET", &path, &[("Authorization", &auth)], None).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            response.body.len() < 4000 + 1200,
            "{} bytes",
            response.body.len()
        );
        let page = response.json::<wire::EventsPage>();
        assert!(!page.events.is_empty());
        seqs.extend(page.events.iter().filter_map(|e| e.seq));
        match page.next_after {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn polling_sessions_are_capped_per_user_and_per_address_with_ipv6_counted_by_64() {
    let mut config = support::config();
    config.max_poll_sessions_per_user = 2;
    config.max_poll_sessions_per_ip = 3;
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let server = support::start(&config).await;
    let open = |user: &'static str, session: &'static str, client: &'static str| {
        let addr = server.local_addr();
        async move {
            let auth = format!("Bearer {}", support::token(user));
            let path = format!("/v1/poll?session={session}&wait=0&r=r~~~0~0");
            support::http(
                &support::Remote(addr),
                "GET",
                &path,
                &[("Authorization", &auth), ("X-Forwarded-For", client)],
                None,
            )
            .await
        }
    };
    let refused = |response: support::HttpResponse| {
        assert_eq!(
            (response.status, response.error_code()),
            (503, ErrorCode::TooManyConnections),
            "{}",
            response.body
        );
        response.body
    };
    assert_eq!(open("ann", "session-a1", "2001:db8::1").await.status, 200);
    assert_eq!(open("ann", "session-a2", "2001:db8::2").await.status, 200);
    let body = refused(open("ann", "session-a3", "198.51.100.7").await);
    assert!(body.contains("per user"), "{body}");
    // Known sessions go on working.
    assert_eq!(open("ann", "session-a1", "2001:db8::1").await.status, 200);
    // Another user from the same /64 (a different address in it): the address's third.
    assert_eq!(
        open("bob", "session-b1", "2001:db8::ffff:1").await.status,
        200
    );
    let body = refused(open("cat", "session-c1", "2001:db8::abcd").await);
    assert!(body.contains("per client address"), "{body}");
    // The next /64 is another client.
    assert_eq!(
        open("cat", "session-c1", "2001:db8:0:1::1").await.status,
        200
    );
}

/// Reads until the server closes the connection (EOF or reset); the bytes read, or `None` if
/// it was still open after `patience`.
async fn read_until_closed(tcp: &mut TcpStream, patience: Duration) -> Option<usize> {
    let mut total = 0;
    let mut buf = vec![0; 64 * 1024];
    let read_all = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    };
    tokio::time::timeout(patience, read_all).await.ok()
}

fn short_http_timeouts() -> chorus_server::config::Config {
    let mut config = support::config();
    config.http_header_timeout_ms = 300;
    config.http_stall_timeout_ms = 300;
    config
}

/// The status line of the server's answer to `request`, sent alone on a new connection.
async fn status_of(server: &chorus_server::RunningServer, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(support::PATIENCE, tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// What the HTTP layer answers before any handler runs, as PROTOCOL.md says: a request it
/// cannot read gets a bare 400, a head over 128 KiB (its target alone, too) or with over 100
/// headers 431; a head under 64 KiB with 90 headers is served.
#[tokio::test]
async fn requests_the_http_layer_cannot_read_get_a_bare_status() {
    let server = support::start(&support::config()).await;
    let head = |padding: usize, headers: usize| {
        let mut request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n".to_vec();
        request.extend(format!("X-Padding: {}\r\n", "a".repeat(padding)).bytes());
        for n in 0..headers {
            request.extend(format!("X-{n}: v\r\n").bytes());
        }
        request.extend(b"Connection: close\r\n\r\n");
        request
    };
    assert_eq!(
        status_of(&server, b"GARBAGE\r\n\r\n").await,
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status_of(&server, &head(60_000, 90)).await,
        "HTTP/1.1 200 OK"
    );
    let too_big = "HTTP/1.1 431 Request Header Fields Too Large";
    assert_eq!(status_of(&server, &head(200_000, 0)).await, too_big);
    assert_eq!(status_of(&server, &head(10, 120)).await, too_big);
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: test\r\n\r\n",
        "a".repeat(200_000)
    );
    assert_eq!(
        status_of(&server, long.as_bytes()).await,
        too_big,
        "a target alone too long"
    );
}

#[tokio::test]
async fn a_slowloris_client_is_cut_after_the_header_timeout() {
    let server = support::start(&short_http_timeouts()).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let (mut reader, mut writer) = tcp.split();
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    // A byte every 50 ms would take 6 s for the whole head; the server gives it 300 ms.
    let trickle = async {
        for byte in request {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::future::pending::<()>().await;
    };
    let mut buf = [0; 1024];
    let closed = tokio::time::timeout(support::PATIENCE, async {
        tokio::select! {
            () = trickle => unreachable!(),
            read = reader.read(&mut buf) => read,
        }
    })
    .await
    .expect("the server closes a slow head within the header timeout");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}

#[tokio::test]
#[allow(clippy::disallowed_methods)] // Measures how long the server waited, on the real clock.
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let server = support::start(&short_http_timeouts()).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    let response = String::from_utf8_lossy(&buf[..n]);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        !response.to_ascii_lowercase().contains("connection: close"),
        "kept alive: {response}"
    );
    // Nothing more is sent: the server closes the idle connection.
    let started = tokio::time::Instant::now();
    assert_eq!(
        read_until_closed(&mut tcp, support::PATIENCE).await,
        Some(0)
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_client_that_never_reads_its_response_is_cut_after_the_stall_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let size = 64 * 1024 * 1024;
    std::fs::File::create(dir.path().join("big.bin"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let mut config = short_http_timeouts();
    config.pkg_dir = Some(dir.path().to_owned());
    let server = support::start(&config).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(b"GET /pkg/big.bin HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // Read nothing while the server's writes stall for longer than the timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let read = read_until_closed(&mut tcp, support::PATIENCE)
        .await
        .expect("the connection was closed");
    assert!(
        (read as u64) < size,
        "cut before the whole response: {read} of {size} bytes"
    );
}

#[tokio::test]
async fn plain_http_connections_beyond_the_per_address_cap_are_refused() {
    let mut config = support::config();
    config.max_http_connections_per_ip = 3;
    let server = support::start(&config).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    let refused = support::http(&server, "GET", "/healthz", &[], None).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (503, ErrorCode::TooManyConnections),
        "{}",
        refused.body
    );
    // A closed connection frees its slot.
    drop(idle.pop());
    let mut answered = None;
    for _ in 0..50 {
        let response = support::http(&server, "GET", "/healthz", &[], None).await;
        if response.status == 200 {
            answered = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered.is_some(), "a slot frees when a connection closes");
}

#[tokio::test]
async fn a_socket_that_never_says_hello_is_refused_after_one_heartbeat() {
    let mut config = support::config();
    config.heartbeat_ms = 200;
    let server = support::start(&config).await;
    let mut silent = Client::open(&server).await;
    // Without the authentication timer the socket would stay open and `until_closed` would
    // give up.
    let (close, frames) = silent.until_closed().await;
    assert!(
        frames.iter().any(|f| matches!(
            f,
            ServerFrame::Error(e) if e.code == ErrorCode::Unauthenticated
        )),
        "{frames:?}"
    );
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4001));
}

/// A `POST /v1/poll` body for `session` carrying `frames`.
fn poll_send_body(session: &str, frames: Vec<wire::ClientFrame>) -> String {
    serde_json::to_string(&wire::PollSend {
        session: session.into(),
        frames,
    })
    .unwrap()
}

/// A server on the Redis engine, so a test can pause Redis's writes (`CLIENT PAUSE`) and keep
/// publishes from being acknowledged.
async fn redis_server(
    redis: &RedisServer,
    edit: impl FnOnce(&mut chorus_server::config::Config),
) -> chorus_server::RunningServer {
    let mut config = support::config();
    config.redis = Some(redis.url());
    edit(&mut config);
    support::start(&config).await
}

#[tokio::test]
async fn a_second_post_while_one_is_in_flight_gets_too_many_polls() {
    let redis = RedisServer::start();
    let server = redis_server(&redis, |_| {}).await;
    let mut poller = PollClient::new(&server, "pia", "session-inflight1");
    poller.join("r").await;
    let auth = format!("Bearer {}", poller.token);
    assert!(redis.command("CLIENT PAUSE 10000 WRITE").contains("OK"));

    // Each publish waits for the store, so whichever `POST` reaches the session first stays in
    // flight and the other is refused at once. Without the cap neither would answer until
    // Redis resumed, and both would answer 200.
    let post = |id: &'static str| {
        let body = poll_send_body(&poller.session, vec![support::publish("r", id, "1")]);
        let (addr, auth) = (server.local_addr(), auth.clone());
        tokio::spawn(async move {
            support::http(
                &support::Remote(addr),
                "POST",
                "/v1/poll",
                &[("Authorization", &auth)],
                Some(&body),
            )
            .await
        })
    };
    let mut first = post("p1");
    let mut second = post("p2");
    let (refused, in_flight) = tokio::select! {
        answer = &mut first => (answer.unwrap(), second),
        answer = &mut second => (answer.unwrap(), first),
    };
    assert_eq!(
        (refused.status, refused.error_code()),
        (429, ErrorCode::TooManyPolls),
        "{}",
        refused.body
    );

    // Once the store answers, the `POST` in flight gets its ack and the session takes posts
    // again (the refused publish is retried with its id).
    assert!(redis.command("CLIENT UNPAUSE").contains("OK"));
    let answered = in_flight.await.unwrap();
    assert_eq!(answered.status, 200, "{}", answered.body);
    let frames = answered.json::<wire::PollFrames>().frames;
    assert!(
        frames.iter().any(|f| is_ack(f, "p1") || is_ack(f, "p2")),
        "{frames:?}"
    );
    let frames = poller
        .send(vec![
            support::publish("r", "p1", "1"),
            support::publish("r", "p2", "1"),
        ])
        .await;
    assert!(
        frames.iter().any(|f| is_ack(f, "p1")) && frames.iter().any(|f| is_ack(f, "p2")),
        "{frames:?}"
    );
}

#[tokio::test]
async fn a_post_whose_acks_do_not_come_in_time_gets_storage_unavailable_and_may_retry() {
    let redis = RedisServer::start();
    let server = redis_server(&redis, |config| config.poll_ack_wait_ms = 300).await;
    let mut poller = PollClient::new(&server, "pia", "session-ackwait1");
    poller.join("r").await;
    let auth = format!("Bearer {}", poller.token);
    assert!(redis.command("CLIENT PAUSE 10000 WRITE").contains("OK"));

    // Redis holds the write for 10 s; the `POST` gives up after 300 ms. Without the ack
    // wait it would answer 200 with a nack (or the ack) once the store did.
    let body = poll_send_body(&poller.session, vec![support::publish("r", "p1", "1")]);
    let response = support::http(
        &server,
        "POST",
        "/v1/poll",
        &[("Authorization", &auth)],
        Some(&body),
    )
    .await;
    assert_eq!(
        (response.status, response.error_code()),
        (503, ErrorCode::StorageUnavailable),
        "{}",
        response.body
    );

    // Retried with the same id once the store is back, the publish is acked and stored once.
    assert!(redis.command("CLIENT UNPAUSE").contains("OK"));
    let frames = poller.send(vec![support::publish("r", "p1", "1")]).await;
    assert!(frames.iter().any(|f| is_ack(f, "p1")), "{frames:?}");
    let token = format!("Bearer {}", support::token("pia"));
    let response = support::http(
        &server,
        "GET",
        "/v1/rooms/r/events?after=0",
        &[("Authorization", &token)],
        None,
    )
    .await;
    assert_eq!(response.json::<wire::EventsPage>().events.len(), 1);
}

#[tokio::test]
async fn polls_carry_at_most_256_events_per_room_and_history_pages_at_most_1000() {
    let mut config = support::config();
    config.publish_rate = 1e6;
    config.publish_burst = 1e6;
    config.outbound_queue = 10_000;
    config.retention_events = 10_000;
    let server = support::start(&config).await;
    let mut poller = PollClient::new(&server, "pia", "session-page1");
    poller.join("r").await;
    poller.poll(0).await;
    let mut writer = Client::connect(&server, "wes").await;
    writer.join("r", None).await;
    publish_big(&mut writer, "r", 1001, 1).await;

    // Each poll answers at most 256 events; the rest come on the next polls, in order.
    let mut answers = Vec::new();
    while poller.delivered.get("r").map_or(0, Vec::len) < 1001 {
        answers.push(events_in(&poller.poll(0).await));
        assert!(answers.len() <= 10, "polling makes progress: {answers:?}");
    }
    assert_eq!(answers, [256, 256, 256, 233]);
    assert_eq!(poller.delivered["r"], (1..=1001).collect::<Vec<_>>());

    // A history page asked for more than 1000 events has 1000 and says where to continue; a
    // page asked for none has one.
    let auth = format!("Bearer {}", support::token("pia"));
    for (limit, events, next_after) in [(5000, 1000, Some(1000)), (0, 1, Some(1))] {
        let path = format!("/v1/rooms/r/events?after=0&limit={limit}");
        let response =
            support::http(&server, "GET", &path, &[("Authorization", &auth)], None).await;
        assert_eq!(response.status, 200, "{}", response.body);
        let page = response.json::<wire::EventsPage>();
        assert_eq!(
            (page.events.len(), page.next_after),
            (events, next_after),
            "limit={limit}"
        );
    }
}

#[tokio::test]
async fn a_rest_publish_body_over_the_frame_cap_is_refused_with_body_too_large() {
    use support::BACKEND_KEY as KEY;
    let mut config = support::backend_config();
    config.max_frame_bytes = 1000;
    let server = support::start(&config).await;
    let auth = format!("Bearer {KEY}");
    let publish = |body_bytes: usize| {
        let addr = server.local_addr();
        let auth = auth.clone();
        async move {
            // The body is a JSON string: its quotes count, so `body_bytes` in all.
            let body = format!(
                r#"{{"id":"big-{body_bytes}","body":"{}"}}"#,
                "x".repeat(body_bytes - 2)
            );
            support::http(
                &support::Remote(addr),
                "POST",
                "/v1/rooms/r/events",
                &[("Authorization", &auth)],
                Some(&body),
            )
            .await
        }
    };
    assert_eq!(publish(1000).await.status, 200);
    // Just over the cap (the request itself is under the router's body limit, the cap plus
    // 1 KiB of envelope), and far over it.
    for bytes in [1001, 5000] {
        let response = publish(bytes).await;
        assert_eq!(
            (response.status, response.error_code()),
            (413, ErrorCode::BodyTooLarge),
            "{bytes}: {}",
            response.body
        );
    }
}
