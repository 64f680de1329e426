//! The real `chorus-server` binary at its open-file limit: started from `sh` under a low
//! `ulimit -n`, it raises the soft limit to the hard one, caps WebSocket connections below it,
//! refuses the rest with 503 `too_many_connections`, keeps answering `/healthz`, rides out
//! accept errors, and accepts again once connections close.

mod support;

use chorus_sdk::wire::{self, ErrorCode};
use support::{Client, PATIENCE, ServerProcess, http};
use tokio_tungstenite::tungstenite;

/// A value from the server's `/metrics`.
async fn metric(server: &ServerProcess, name: &str) -> Option<f64> {
    let response = http(server, "GET", "/metrics", &[], None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let lines = response.body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("reason").is_none_or(|r| r == "total_limit"))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
            _ => f64::NAN,
        })
}

/// Opens a WebSocket that the server must refuse; returns the status and the error body.
async fn refused(server: &ServerProcess) -> (u16, wire::ErrorBody) {
    let url = format!("ws://{}/v1/ws", server.addr);
    let attempt = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .expect("an answer, not a hang");
    match attempt {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let body = serde_json::from_slice(&body)
                .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&body)));
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, but the WebSocket opened"),
    }
}

async fn healthy(server: &ServerProcess) {
    let health = tokio::time::timeout(PATIENCE, http(server, "GET", "/healthz", &[], None))
        .await
        .expect("/healthz answers");
    assert_eq!(health.status, 200, "{}", health.body);
}

#[tokio::test]
async fn the_soft_open_file_limit_is_raised_to_the_hard_limit_at_start() {
    let server = ServerProcess::start_after(
        "ulimit -S -n 256 && ulimit -H -n 4096",
        &["--store", "memory"],
    );
    let log = server.startup_log.join("\n");
    assert!(log.contains("raised the soft open-file limit"), "{log}");
    assert_eq!(
        metric(&server, "chorus_open_files_limit").await,
        Some(4096.0)
    );
    assert_eq!(
        metric(&server, "chorus_connections_max").await,
        Some(4096.0 - 128.0),
        "the limit less --reserved-files"
    );
}

#[tokio::test]
async fn past_the_open_file_limit_connections_are_refused_and_health_checks_still_answer() {
    // `ulimit -n` sets both: hard and soft at 256: nothing to raise. 256 less the 128 reserved leaves 128.
    let server = ServerProcess::start_after("ulimit -n 256", &["--store", "memory"]);
    let log = server.startup_log.join("\n");
    assert!(
        log.contains("connection_cap=128") && log.contains("open_files=256"),
        "the start-up log says which cap is in force and why:\n{log}"
    );
    assert_eq!(metric(&server, "chorus_connections_max").await, Some(128.0));
    assert_eq!(
        metric(&server, "chorus_open_files_limit").await,
        Some(256.0)
    );

    let mut clients = Vec::new();
    for n in 0..128 {
        clients.push(Client::connect(&server, &format!("u{n}")).await);
    }
    for _ in 0..20 {
        let (status, body) = refused(&server).await;
        assert_eq!((status, body.code), (503, ErrorCode::TooManyConnections));
        assert!(body.message.contains("128"), "{}", body.message);
    }
    healthy(&server).await;
    assert_eq!(
        metric(&server, "chorus_connections_rejected_total").await,
        Some(20.0)
    );
    assert_eq!(
        metric(&server, "chorus_accept_errors_total").await,
        Some(0.0)
    );

    // The ones still connected keep working.
    clients[0].join("r", None).await;

    // Closing some frees their places.
    for mut client in clients.drain(..10) {
        client.ws.close(None).await.unwrap();
        let _ = client.until_closed().await;
    }
    let mut again = Vec::new();
    while again.len() < 10 {
        let url = format!("ws://{}/v1/ws", server.addr);
        match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
            .await
            .expect("an answer, not a hang")
        {
            Ok((ws, _)) => {
                let mut client = Client {
                    ws,
                    user: "again".into(),
                };
                let hello = wire::Hello {
                    token: support::token("again"),
                };
                client.send(&wire::ClientFrame::Hello(hello)).await;
                assert!(matches!(client.recv().await, wire::ServerFrame::Welcome(_)));
                again.push(client);
            }
            // The server notices a close a moment after the client sees it.
            Err(tungstenite::Error::Http(response)) if response.status() == 503 => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    let (status, body) = refused(&server).await;
    assert_eq!((status, body.code), (503, ErrorCode::TooManyConnections));
    healthy(&server).await;
}

#[tokio::test]
async fn out_of_files_the_listener_backs_off_and_recovers() {
    // Plain TCP connections are not WebSockets: nothing caps them, so 300 of them run the
    // server out of files (256) and accepting fails until they close.
    let server = ServerProcess::start_after("ulimit -n 256", &["--store", "memory"]);
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    let health = tokio::spawn({
        let addr = server.addr;
        async move {
            let server = support::Remote(addr);
            http(&server, "GET", "/healthz", &[], None).await.status
        }
    });
    // The listener is out of files now; once they are freed it must get going again.
    while !health.is_finished() && !idle.is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        idle.truncate(idle.len().saturating_sub(20));
    }
    assert_eq!(health.await.unwrap(), 200);
    healthy(&server).await;
    assert!(
        metric(&server, "chorus_accept_errors_total")
            .await
            .is_some_and(|errors| errors >= 1.0),
        "accepting failed and was counted"
    );
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
}
