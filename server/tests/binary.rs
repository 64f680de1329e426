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
