//! The real `chorus-server` binary: start-up, refusal without a secret, SIGTERM drain.

mod support;

use std::process::Command;

use chorus_sdk::wire::{ServerFrame, close_code};
use support::{Client, is_ack};

fn server_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chorus-server"));
    command
        .env_clear()
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
    command
}

#[test]
fn refuses_to_start_without_a_token_secret_and_says_why() {
    let output = server_command()
        .args(["--store", "memory", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--jwt-secret"), "{stderr}");
}

#[tokio::test]
async fn sigterm_drains_clients_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chorus.db");
    let server = support::ServerProcess::start(&["--db", db.to_str().unwrap()]);
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    ana.publish("r", "before-term", "1").await;
    ana.recv_until(|f| is_ack(f, "before-term")).await;

    let stopping = std::thread::spawn(move || server.stop(true));
    let (close, frames) = ana.until_closed().await;
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Draining(_))),
        "{frames:?}"
    );
    assert_eq!(
        close.map(|c| u16::from(c.code)),
        Some(close_code::SERVICE_RESTART)
    );
    let status = tokio::task::spawn_blocking(move || stopping.join().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(db.exists(), "the SQLite file was created");
}

/// What one client saw of a shutdown under load.
#[derive(Debug, Default)]
struct Witness {
    /// Ids it published.
    sent: Vec<String>,
    /// Ids acked.
    acked: std::collections::BTreeSet<String>,
    /// Ids nacked, with the code.
    nacked: Vec<(String, chorus_sdk::wire::ErrorCode)>,
    /// Whether `draining` arrived (before the close).
    draining: bool,
    /// The close code, if a close frame arrived.
    close: Option<u16>,
}

/// One client publishing as fast as a busy app would until the server closes it.
async fn publish_until_closed(client: Client, user: &str) -> Witness {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut write, mut read) = client.ws.split();
    let prefix = user.to_owned();
    // The reader pokes the writer when `draining` arrives: a busy app's next publish is then
    // on its way at once, so publishes reach the server while it drains in every round, not
    // only where the 2 ms pace happens to fall into that short window (a loaded machine
    // could go 30 rounds without one).
    let poke = std::sync::Arc::new(tokio::sync::Notify::new());
    let poked = std::sync::Arc::clone(&poke);
    let writer = tokio::spawn(async move {
        let mut sent = Vec::new();
        for n in 0.. {
            let id = format!("{prefix}-{n}");
            let frame = support::publish("r", &id, "1").encode();
            if write.send(Message::text(frame)).await.is_err() {
                break;
            }
            sent.push(id);
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(2)) => {}
                () = poked.notified() => {}
            }
        }
        sent
    });
    let mut witness = Witness::default();
    while let Some(message) = read.next().await {
        match message {
            Ok(Message::Text(text)) => match ServerFrame::decode(&text).unwrap() {
                ServerFrame::Ack(ack) => {
                    witness.acked.insert(ack.id.to_string());
                }
                ServerFrame::Nack(nack) => witness.nacked.push((nack.id.to_string(), nack.code)),
                ServerFrame::Draining(_) => {
                    witness.draining = true;
                    poke.notify_one();
                }
                _ => {}
            },
            Ok(Message::Close(frame)) => {
                witness.close = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    witness.sent = writer.await.unwrap();
    witness
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shutdown_under_load_acks_everything_stored_and_closes_every_connection_cleanly() {
    // Dozens of SIGTERMs while clients publish: every time, each connection gets `draining`
    // and close 1012, every stored event was acked, and a publish that was not stored got a
    // `nack draining` or nothing (the client resends it after reconnecting).
    const SHUTDOWNS: usize = 30;
    const CLIENTS: usize = 4;
    let mut nacked_draining = 0;
    for round in 0..SHUTDOWNS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chorus.db");
        let server = support::ServerProcess::start(&[
            "--db",
            db.to_str().unwrap(),
            "--publish-rate",
            "100000",
            "--publish-burst",
            "100000",
        ]);
        let mut clients = Vec::new();
        for k in 0..CLIENTS {
            let user = format!("u{k}");
            let mut client = Client::connect(&server, &user).await;
            client.join("r", None).await;
            clients.push(tokio::spawn(async move {
                publish_until_closed(client, &user).await
            }));
        }
        // Let the load build up, a little differently each round.
        tokio::time::sleep(std::time::Duration::from_millis(100 + 7 * round as u64)).await;
        let stopping = std::thread::spawn(move || server.stop(true));
        let mut witnesses = Vec::new();
        for client in clients {
            witnesses.push(client.await.unwrap());
        }
        let status = tokio::task::spawn_blocking(move || stopping.join().unwrap())
            .await
            .unwrap();
        assert!(status.success(), "round {round}: exit status {status}");

        let stored: std::collections::BTreeSet<String> = {
            let conn = rusqlite::Connection::open(&db).unwrap();
            let mut query = conn.prepare("SELECT id FROM events").unwrap();
            query
                .query_map([], |row| row.get::<_, String>(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for (k, witness) in witnesses.iter().enumerate() {
            let context = format!(
                "round {round}, client u{k}: {} sent, {} acked, {} nacked",
                witness.sent.len(),
                witness.acked.len(),
                witness.nacked.len()
            );
            assert!(witness.draining, "{context}: no draining frame");
            assert_eq!(
                witness.close,
                Some(close_code::SERVICE_RESTART),
                "{context}: no close 1012"
            );
            let prefix = format!("u{k}-");
            let own_stored: Vec<&String> =
                stored.iter().filter(|id| id.starts_with(&prefix)).collect();
            let unacked: Vec<&&String> = own_stored
                .iter()
                .filter(|id| !witness.acked.contains(id.as_str()))
                .collect();
            assert!(
                unacked.is_empty(),
                "{context}: stored but never acked: {unacked:?}"
            );
            assert_eq!(
                own_stored.len(),
                witness.acked.len(),
                "{context}: acked but not stored"
            );
            for (id, code) in &witness.nacked {
                assert_eq!(
                    *code,
                    chorus_sdk::wire::ErrorCode::Draining,
                    "{context}: {id}"
                );
                assert!(!stored.contains(id), "{context}: {id} nacked but stored");
                nacked_draining += 1;
            }
        }
    }
    assert!(
        nacked_draining > 0,
        "in {SHUTDOWNS} shutdowns under load, no publish arrived during a drain"
    );
}

/// The listen backlog of the socket listening on `port`, as `ss` shows it (its Send-Q column).
fn listen_backlog(port: u16) -> u32 {
    let output = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) is installed: cargo xtask setup");
    let text = String::from_utf8_lossy(&output.stdout);
    let columns: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(columns.first(), Some(&"LISTEN"), "{text}");
    columns[2].parse().unwrap()
}

#[test]
fn the_listen_backlog_is_set_by_its_flag_and_defaults_to_4096() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let check = |args: &[&str], expect: u32| {
        let server = support::ServerProcess::start(&[&["--store", "memory"], args].concat());
        assert_eq!(
            listen_backlog(server.addr.port()),
            expect.min(somaxconn),
            "{args:?}"
        );
    };
    check(&[], 4096);
    check(&["--listen-backlog", "1000"], 1000);
}
