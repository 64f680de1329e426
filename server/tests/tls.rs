//! The server's own TLS (`--tls-cert/--tls-key`) and the native SDK's `https://`/`wss://`,
//! against the real `chorus-server` binary with a CA and certificate made for the test
//! (`support/certificates.rs`).

mod support;

use std::process::Command;

use chorus_sdk::client::{ClientConfig, ClientEvent, ConnectionState, Transport, TransportMode};
use chorus_sdk::native::{Events, MemoryStorage, NativeClient, TlsOptions};
use chorus_sdk::wire::{Json, RoomName};
use support::certificates::{Certificates, certificates};
use support::{ServerProcess, wait_for};

fn start_tls_server(certificates: &Certificates) -> ServerProcess {
    ServerProcess::start(&[
        "--store",
        "memory",
        "--tls-cert",
        certificates.cert.to_str().unwrap(),
        "--tls-key",
        certificates.key.to_str().unwrap(),
    ])
}

fn mode(transport: TransportMode) -> ClientConfig {
    ClientConfig {
        transport,
        ..ClientConfig::default()
    }
}

/// A client on `base` in `transport` mode, joined to `room` and connected over `expected`.
async fn joined(
    base: &str,
    user: &str,
    transport: TransportMode,
    expected: Transport,
    tls: TlsOptions,
    room: &RoomName,
) -> (NativeClient, Events) {
    let (client, mut events) = NativeClient::start_with_tls(
        base,
        support::token(user),
        mode(transport),
        Box::new(MemoryStorage::default()),
        tls,
    );
    client.join(room.clone(), Json::null());
    wait_for(&mut events, "connected", |e| {
        matches!(e, ClientEvent::State(ConnectionState::Connected { transport }) if *transport == expected)
    })
    .await;
    wait_for(&mut events, "joined", |e| {
        matches!(e, ClientEvent::Joined { .. })
    })
    .await;
    (client, events)
}

/// `from` publishes `body`; it is acked to `from` and delivered to `to`.
async fn publish_and_deliver(
    from: (&NativeClient, &mut Events),
    to: &mut Events,
    room: &RoomName,
    body: &str,
) {
    let id = from
        .0
        .publish(room.clone(), Json::from_text(body).unwrap())
        .await
        .unwrap();
    wait_for(
        from.1,
        "the ack",
        |e| matches!(e, ClientEvent::Acked { id: acked, .. } if *acked == id),
    )
    .await;
    wait_for(to, "the event", |e| {
        matches!(e, ClientEvent::Event { event, own: false } if event.id == id && event.body.as_text() == body)
    })
    .await;
}

#[tokio::test]
async fn wss_and_https_polling_clients_trusting_the_ca_join_publish_receive_and_ack() {
    let certificates = certificates();
    let server = start_tls_server(&certificates);
    let base = format!("https://{}", server.addr);
    let tls = TlsOptions::default().add_ca_file(&certificates.ca).unwrap();
    let room = RoomName::parse("secure").unwrap();
    let (ana, mut ana_events) = joined(
        &base,
        "ana",
        TransportMode::WebSocket,
        Transport::WebSocket,
        tls.clone(),
        &room,
    )
    .await;
    let (ben, mut ben_events) = joined(
        &base,
        "ben",
        TransportMode::Polling,
        Transport::Polling,
        tls,
        &room,
    )
    .await;
    publish_and_deliver(
        (&ana, &mut ana_events),
        &mut ben_events,
        &room,
        r#"{"over":"wss"}"#,
    )
    .await;
    publish_and_deliver(
        (&ben, &mut ben_events),
        &mut ana_events,
        &room,
        r#"{"over":"https"}"#,
    )
    .await;
    assert_eq!(ana.last_error(), None);
    assert_eq!(ben.last_error(), None);
    ana.close();
    ben.close();
}

#[tokio::test]
async fn a_client_without_the_ca_refuses_the_server_and_says_why() {
    let certificates = certificates();
    let server = start_tls_server(&certificates);
    let base = format!("https://{}", server.addr);
    for (transport, what) in [
        (TransportMode::WebSocket, "wss"),
        (TransportMode::Polling, "https"),
    ] {
        // The platform's roots only: they do not vouch for the test's CA.
        let (client, mut events) = NativeClient::start_with_tls(
            &base,
            support::token("eve"),
            mode(transport),
            Box::new(MemoryStorage::default()),
            TlsOptions::default(),
        );
        client.join(RoomName::parse("secure").unwrap(), Json::null());
        let seen = wait_for(&mut events, "a failed attempt", |e| {
            matches!(e, ClientEvent::State(ConnectionState::Reconnecting { .. }))
        })
        .await;
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e, ClientEvent::State(ConnectionState::Connected { .. }))),
            "{what}: {seen:?}"
        );
        let error = client.last_error().unwrap_or_default();
        assert!(
            error.contains("invalid peer certificate") && error.contains("UnknownIssuer"),
            "{what}: {error}"
        );
        client.close();
    }
}

#[tokio::test]
async fn the_plain_path_still_works_next_to_tls() {
    let server = ServerProcess::start(&["--store", "memory"]);
    let base = format!("http://{}", server.addr);
    let room = RoomName::parse("plain").unwrap();
    let tls = TlsOptions::default();
    let (ana, mut ana_events) = joined(
        &base,
        "ana",
        TransportMode::WebSocket,
        Transport::WebSocket,
        tls.clone(),
        &room,
    )
    .await;
    let (_ben, mut ben_events) = joined(
        &base,
        "ben",
        TransportMode::Polling,
        Transport::Polling,
        tls,
        &room,
    )
    .await;
    publish_and_deliver((&ana, &mut ana_events), &mut ben_events, &room, "1").await;
}

/// Runs the binary with `args` (and a secret) and returns its stderr, asserting it failed.
fn start_up_error(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_chorus-server"))
        .args(["--store", "memory", "--bind", "127.0.0.1:0", "--dev"])
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!output.status.success(), "{args:?} started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn missing_or_invalid_certificate_files_stop_the_start_with_a_clear_error() {
    let certificates = certificates();
    let (cert, key) = (
        certificates.cert.to_str().unwrap(),
        certificates.key.to_str().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a PEM file\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let ca_key = certificates.ca.with_file_name("ca.key");
    let other_key = ca_key.to_str().unwrap();

    let check = |args: &[&str], expected: &[&str]| {
        let stderr = start_up_error(args);
        for part in expected {
            assert!(stderr.contains(part), "{args:?}: {stderr}");
        }
    };
    check(
        &["--tls-cert", missing, "--tls-key", key],
        &["--tls-cert", missing, "No such file"],
    );
    check(
        &["--tls-cert", cert, "--tls-key", missing],
        &["--tls-key", missing, "No such file"],
    );
    check(
        &["--tls-cert", garbage, "--tls-key", key],
        &["--tls-cert", garbage, "no CERTIFICATE"],
    );
    check(
        &["--tls-cert", cert, "--tls-key", garbage],
        &["--tls-key", garbage, "private key"],
    );
    check(
        &["--tls-cert", cert, "--tls-key", other_key],
        &["KeyMismatch", "cannot be used together"],
    );
    check(&["--tls-cert", cert], &["--tls-key"]);
}
