//! The `chorus` binary end to end: each test starts a real server on a free port (in this
//! process, over real TCP) and runs the real binary against it, reading its stdout, stderr
//! and exit code as a script would.

use std::process::Stdio;
use std::time::Duration;

use chorus_sdk::native::{HttpApi, TlsOptions};
use chorus_sdk::wire::{RoomRight, TokenClaims};
use chorus_server::RunningServer;
use chorus_server::auth::Authenticator;
use chorus_server::config::{Config, DEV_SECRET};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

// The test CA and server certificate the server's own TLS tests use.
#[allow(unreachable_pub)]
#[path = "../../server/tests/support/certificates.rs"]
mod certificates;

/// How long a test waits for a line or an exit that should come.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start_server(config: Config) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    chorus_server::start(&config, listener).await.unwrap()
}

fn url(server: &RunningServer) -> String {
    format!("http://{}", server.local_addr())
}

/// A token for `user` with these grants, signed as the test server expects.
fn token_with(user: &str, grants: &[(&str, RoomRight)]) -> String {
    let now = chorus_server::clock::unix_ms_now() / 1000;
    Authenticator::hs256(DEV_SECRET.as_bytes()).issue(&TokenClaims {
        sub: user.into(),
        name: None,
        exp: now + 3600,
        rooms: grants.iter().map(|&(p, r)| (p.to_owned(), r)).collect(),
    })
}

fn token(user: &str) -> String {
    token_with(user, &[("*", RoomRight::Publish)])
}

/// One test's view of the binary: its server, token and state directory.
struct Cli {
    url: String,
    token: String,
    transport: &'static str,
    state: tempfile::TempDir,
}

/// What a finished run printed and how it ended.
#[derive(Debug)]
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn new(server: &RunningServer, user: &str) -> Cli {
        Cli {
            url: url(server),
            token: token(user),
            transport: "auto",
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// The binary with this server, token, transport and state directory (and nothing from
    /// the environment the tests run in).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chorus"));
        command
            .args(["--url", &self.url, "--transport", self.transport, "--state"])
            .arg(self.state.path())
            .args(args)
            .env("CHORUS_TOKEN", &self.token)
            .env_remove("CHORUS_URL")
            .env_remove("CHORUS_STATE_DIR")
            .env_remove("CHORUS_CA_FILE")
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Finished {
        self.run_with_stdin(args, "").await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Finished {
        use tokio::io::AsyncWriteExt;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("chorus {args:?} did not finish"))
            .unwrap();
        Finished {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// `chorus send ROOM BODY`, which must succeed; its ack line.
    async fn send(&self, room: &str, body: &str) -> Value {
        let done = self.run(&["send", room, body]).await;
        assert_eq!(done.code, Some(0), "send {body} failed: {done:?}");
        serde_json::from_str(done.stdout.trim()).unwrap()
    }

    /// A long-running command (`tail`, `presence --watch`), read line by line.
    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        Running {
            child,
            stdout,
            stderr,
        }
    }
}

struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Running {
    /// The next stdout line, as JSON.
    async fn next_json(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("a line on stdout in time")
            .unwrap()
            .expect("stdout still open");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
    }

    /// Reads stderr until a line containing `text`; returns that line.
    async fn stderr_until(&mut self, text: &str) -> String {
        let wait = async {
            loop {
                let line = self.stderr.next_line().await.unwrap().expect("stderr open");
                if line.contains(text) {
                    return line;
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("no stderr line with `{text}`"))
    }

    /// Asks it to stop as Ctrl-C does; its exit code.
    async fn interrupt(mut self) -> Option<i32> {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("it stops on SIGINT")
            .unwrap();
        // Nothing more was printed after the last line read.
        let rest = self.stdout.next_line().await.unwrap();
        assert_eq!(rest, None, "nothing unread on stdout");
        status.code()
    }
}

fn field(value: &Value, name: &str) -> Value {
    value.get(name).cloned().unwrap_or(Value::Null)
}

/// The `n` of each event body.
fn numbers(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|event| event["body"]["n"].as_u64().unwrap())
        .collect()
}

async fn tail_resumes_where_it_left_off(transport: &'static str) {
    let server = start_server(Config::for_tests()).await;
    let mut cli = Cli::new(&server, "ana");
    cli.transport = transport;
    let mut tail = cli.spawn(&["tail", "doc:1"]);
    let name = if transport == "ws" {
        "websocket"
    } else {
        "polling"
    };
    tail.stderr_until(&format!("connected over {name}")).await;
    tail.stderr_until("following doc:1").await;
    for n in 1..=3 {
        cli.send("doc:1", &format!(r#"{{"n":{n}}}"#)).await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(tail.next_json().await);
    }
    assert_eq!(numbers(&seen), [1, 2, 3]);
    let first = &seen[0];
    assert_eq!(field(first, "room"), "doc:1");
    assert_eq!(field(first, "seq"), 1);
    assert_eq!(field(first, "from"), "ana");
    assert!(
        field(first, "id").is_string() && field(first, "at").is_u64(),
        "{first}"
    );
    assert_eq!(tail.interrupt().await, Some(0), "Ctrl-C is a clean exit");

    // Published while no tail runs: the next one prints them first, then live ones.
    for n in 4..=5 {
        cli.send("doc:1", &format!(r#"{{"n":{n}}}"#)).await;
    }
    let mut tail = cli.spawn(&["tail", "doc:1"]);
    let mut seen = vec![tail.next_json().await, tail.next_json().await];
    cli.send("doc:1", r#"{"n":6}"#).await;
    seen.push(tail.next_json().await);
    assert_eq!(numbers(&seen), [4, 5, 6], "no duplicates, no gaps");
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [4, 5, 6]);
    assert_eq!(tail.interrupt().await, Some(0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_events_as_json_lines_and_resumes_where_it_left_off_over_websocket() {
    tail_resumes_where_it_left_off("ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_events_as_json_lines_and_resumes_where_it_left_off_over_polling() {
    tail_resumes_where_it_left_off("polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_from_start_prints_the_kept_history_and_limit_ends_it() {
    let server = start_server(Config::for_tests()).await;
    let cli = Cli::new(&server, "ana");
    for n in 1..=3 {
        cli.send("log", &format!(r#"{{"n":{n}}}"#)).await;
    }
    let done = cli
        .run(&["tail", "log", "--from-start", "--limit", "2"])
        .await;
    assert_eq!(done.code, Some(0), "{done:?}");
    let lines: Vec<Value> = done
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(numbers(&lines), [1, 2], "only events on stdout: {done:?}");
    // The saved cursor goes on after the last one printed.
    let done = cli.run(&["tail", "log", "--limit", "1"]).await;
    let line: Value = serde_json::from_str(done.stdout.trim()).unwrap();
    assert_eq!(numbers(&[line]), [3]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_says_on_stderr_when_the_history_after_its_cursor_was_trimmed_and_goes_on() {
    let mut config = Config::for_tests();
    config.retention_events = 2;
    let server = start_server(config).await;
    let cli = Cli::new(&server, "ana");
    cli.send("r", r#"{"n":1}"#).await;
    let done = cli
        .run(&["tail", "r", "--from-start", "--limit", "1"])
        .await;
    assert_eq!(done.code, Some(0), "{done:?}");
    // Five more while it is away: only the last two are kept.
    for n in 2..=6 {
        cli.send("r", &format!(r#"{{"n":{n}}}"#)).await;
    }
    let mut tail = cli.spawn(&["tail", "r"]);
    let line = tail.stderr_until("cannot be resumed").await;
    assert!(line.contains("history_trimmed"), "{line}");
    cli.send("r", r#"{"n":7}"#).await;
    assert_eq!(numbers(&[tail.next_json().await]), [7]);
    assert_eq!(tail.interrupt().await, Some(0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_exits_0_once_acked_and_the_event_is_in_the_history() {
    let server = start_server(Config::for_tests()).await;
    let cli = Cli::new(&server, "ana");
    let ack = cli.send("doc:2", r#"{"text":"hello"}"#).await;
    assert_eq!(field(&ack, "room"), "doc:2");
    assert_eq!(field(&ack, "seq"), 1);
    // The body from stdin.
    let done = cli
        .run_with_stdin(&["send", "doc:2", "-"], "{\"text\":\"from stdin\"}\n")
        .await;
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(
        done.stdout.starts_with(r#"{"room":"doc:2","id":""#)
            && done.stdout.contains(r#","seq":2}"#),
        "the ack line: {done:?}"
    );
    let api = HttpApi::new(&cli.url, &TlsOptions::default());
    let answer = api
        .request("GET", "/v1/rooms/doc%3A2/events", Some(&cli.token), None)
        .await
        .unwrap();
    let page: Value = serde_json::from_str(&answer.body).unwrap();
    let events = page["events"].as_array().unwrap();
    let texts: Vec<&str> = events
        .iter()
        .map(|e| e["body"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello", "from stdin"]);
    assert_eq!(events[0]["id"], ack["id"], "the acked id is the stored one");
    // `--token` instead of CHORUS_TOKEN, and over it.
    for environment in [None, Some("not-a-token")] {
        let mut command = cli.command(&["send", "doc:2", "3", "--token", &cli.token]);
        match environment {
            Some(value) => command.env("CHORUS_TOKEN", value),
            None => command.env_remove("CHORUS_TOKEN"),
        };
        let output = command.output().await.unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refused_by_the_server_exits_3_with_its_code() {
    let server = start_server(Config::for_tests()).await;
    let mut cli = Cli::new(&server, "ana");
    cli.token = token_with("ana", &[("news", RoomRight::Read)]);
    // May join, may not publish: the publish's nack.
    let done = cli.run(&["send", "news", r#"{"n":1}"#]).await;
    assert_eq!(done.code, Some(3), "{done:?}");
    assert!(done.stderr.contains("forbidden"), "{done:?}");
    assert_eq!(done.stdout, "");
    // No grant at all: the join's error.
    let done = cli.run(&["send", "secret", r#"{"n":1}"#]).await;
    assert_eq!(done.code, Some(3), "{done:?}");
    assert!(done.stderr.contains("forbidden"), "{done:?}");
    // No grant at all: tail ends too, rather than waiting for events it will never get.
    let done = cli.run(&["tail", "secret"]).await;
    assert_eq!(done.code, Some(3), "{done:?}");
    assert!(done.stderr.contains("forbidden"), "{done:?}");
    // A token the server does not take: nobody can hand a fresh one, so it ends.
    for transport in ["ws", "polling"] {
        cli.transport = transport;
        cli.token = "not-a-token".into();
        let done = cli.run(&["tail", "news"]).await;
        assert_eq!(done.code, Some(3), "{transport}: {done:?}");
        assert!(
            done.stderr.contains("unauthenticated"),
            "{transport}: {done:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_of_a_body_over_the_server_limit_exits_3_with_frame_too_large_on_either_transport() {
    let mut config = Config::for_tests();
    config.max_frame_bytes = 1000;
    let server = start_server(config).await;
    for transport in ["ws", "polling"] {
        let mut cli = Cli::new(&server, "ana");
        cli.transport = transport;
        let body = format!(r#"{{"text":"{}"}}"#, "x".repeat(2000));
        let done = cli.run(&["send", "big", &body]).await;
        assert_eq!(done.code, Some(3), "{transport}: {done:?}");
        assert!(
            done.stderr.contains("frame_too_large"),
            "{transport}: {done:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_with_a_clear_error() {
    let server = start_server(Config::for_tests()).await;
    let cli = Cli::new(&server, "ana");
    let check = |done: Finished, says: &str| {
        assert_eq!(done.code, Some(2), "{done:?}");
        assert!(done.stderr.contains(says), "expected `{says}` in {done:?}");
        assert_eq!(done.stdout, "");
    };
    check(cli.run(&["send", "r", "{not json"]).await, "not valid JSON");
    check(cli.run(&["send", "bad room", "1"]).await, "room `bad room`");
    let mut no_token = cli.command(&["send", "r", "1"]);
    no_token.env_remove("CHORUS_TOKEN");
    let output = no_token.output().await.unwrap();
    check(
        Finished {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        },
        "no token",
    );
    let mut bad_url = Cli::new(&server, "ana");
    bad_url.url = "ftp://example".into();
    check(bad_url.run(&["tail", "r"]).await, "--url must start with");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_a_server_that_is_not_there_times_out_with_exit_4() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let server = start_server(Config::for_tests()).await;
    let mut cli = Cli::new(&server, "ana");
    cli.url = format!("http://{address}");
    let done = cli.run(&["send", "r", "1", "--timeout", "1"]).await;
    assert_eq!(done.code, Some(4), "{done:?}");
    assert!(
        done.stderr.contains("not acknowledged within 1 s"),
        "{done:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_shows_who_is_connected_once_and_watch_prints_changes() {
    let server = start_server(Config::for_tests()).await;
    let ana = Cli::new(&server, "ana");
    let ben = Cli::new(&server, "ben");
    let mut watch = ben.spawn(&["presence", "lobby", "--watch"]);
    let first = watch.next_json().await;
    let users = |line: &Value| -> Vec<String> {
        let mut users: Vec<String> = line["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user"].as_str().unwrap().to_owned())
            .collect();
        users.sort();
        users
    };
    assert_eq!(field(&first, "room"), "lobby");
    assert_eq!(users(&first), ["ben"], "the watcher itself");
    let mut tail = ana.spawn(&["tail", "lobby"]);
    tail.stderr_until("following lobby").await;
    assert_eq!(users(&watch.next_json().await), ["ana", "ben"]);
    let done = ana.run(&["presence", "lobby"]).await;
    assert_eq!(done.code, Some(0), "{done:?}");
    let once: Value = serde_json::from_str(done.stdout.trim()).unwrap();
    assert_eq!(users(&once), ["ana", "ben"]);
    assert!(once["version"].is_u64(), "{once}");
    assert_eq!(tail.interrupt().await, Some(0));
    assert_eq!(users(&watch.next_json().await), ["ben"], "ana left");
    assert_eq!(watch.interrupt().await, Some(0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_comes_from_a_dev_server_and_works() {
    let mut config = Config::for_tests();
    config.dev = true;
    let server = start_server(config).await;
    let mut cli = Cli::new(&server, "ana");
    cli.token = String::new();
    let done = cli.run(&["token", "--user", "Zoe"]).await;
    assert_eq!(done.code, Some(0), "{done:?}");
    cli.token = done.stdout.trim().to_owned();
    assert_eq!(done.stdout.lines().count(), 1, "the token alone: {done:?}");
    let ack = cli.send("doc:9", r#"{"n":1}"#).await;
    assert_eq!(field(&ack, "seq"), 1);
    let done = cli.run(&["token", "--user", "Zoe", "--json"]).await;
    let answer: Value = serde_json::from_str(done.stdout.trim()).unwrap();
    assert_eq!(field(&answer, "user"), "zoe");
    // Grants asked for: read-only here, nothing elsewhere.
    let done = cli
        .run(&[
            "token",
            "--user",
            "Zoe",
            "--rooms",
            "news=read,doc:*=publish",
        ])
        .await;
    assert_eq!(done.code, Some(0), "{done:?}");
    cli.token = done.stdout.trim().to_owned();
    cli.send("doc:9", r#"{"n":2}"#).await;
    let done = cli.run(&["send", "news", r#"{"n":1}"#]).await;
    assert_eq!(done.code, Some(3), "{done:?}");
    assert!(done.stderr.contains("forbidden"), "{done:?}");
    let done = cli.run(&["token", "--rooms", "news=admin"]).await;
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(done.stderr.contains("not a right"), "{done:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_from_a_server_not_in_dev_mode_exits_3_and_says_so() {
    let server = start_server(Config::for_tests()).await;
    let cli = Cli::new(&server, "ana");
    let done = cli.run(&["token"]).await;
    assert_eq!(done.code, Some(3), "{done:?}");
    assert!(done.stderr.contains("not_found"), "{done:?}");
    assert!(done.stderr.contains("--dev"), "{done:?}");
    assert_eq!(done.stdout, "");
    server.shutdown().await;
}

/// `--ca-file` makes a server that serves HTTPS and WSS itself (`--tls-cert/--tls-key`), with a
/// CA made for the test, trusted on both transports; without it the refused certificate is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_file_makes_a_self_signed_server_trusted_on_both_transports() {
    let certificates = certificates::certificates();
    let mut config = Config::for_tests();
    config.tls_cert = Some(certificates.cert.clone());
    config.tls_key = Some(certificates.key.clone());
    let server = start_server(config).await;
    let mut cli = Cli::new(&server, "ana");
    cli.url = format!("https://{}", server.local_addr());
    let ca = certificates.ca.to_str().unwrap();
    for transport in ["ws", "polling"] {
        cli.transport = transport;
        let done = cli.run(&["--ca-file", ca, "send", "r", "1"]).await;
        assert_eq!(done.code, Some(0), "{transport}: {done:?}");
    }
    let done = cli.run(&["--ca-file", ca, "presence", "r"]).await;
    assert_eq!(done.code, Some(0), "{done:?}");
    // Without the CA: not trusted, and the reason is said.
    cli.transport = "ws";
    let done = cli.run(&["send", "r", "1", "--timeout", "2"]).await;
    assert_eq!(done.code, Some(4), "{done:?}");
    assert!(done.stderr.contains("certificate"), "{done:?}");
    let done = cli
        .run(&["--ca-file", "/nonexistent.pem", "send", "r", "1"])
        .await;
    assert_eq!(done.code, Some(2), "{done:?}");
    server.shutdown().await;
}
