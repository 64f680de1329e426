//! `chorus` against a server serving HTTPS/WSS itself (`--tls-cert/--tls-key`) with a CA made
//! for the test by the `openssl` command (as `server/tests/tls.rs` does): `--ca-file` makes it
//! trusted on both transports, and without it the refused certificate is said.

use std::path::Path;
use std::process::Command;

use chorus_server::config::Config;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`ca.pem`) and a certificate it signed for 127.0.0.1 (`server.pem`, `server.key`).
fn certificates(dir: &Path) {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let args = |text: &str| -> Vec<String> { text.split(' ').map(str::to_owned).collect() };
    let run = |text: String| {
        let owned = args(&text);
        let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
        openssl(dir, &borrowed);
    };
    run(format!(
        "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=Chorus_CLI_Test_CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
    ));
    run(format!(
        "req {ec} -keyout server.key -out server.csr -subj /CN=localhost"
    ));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
         -days 2 -extfile server.ext"
            .to_owned(),
    );
}

fn chorus(url: &str, state: &Path, args: &[&str]) -> std::process::Output {
    let token = {
        let now = chorus_server::clock::unix_ms_now() / 1000;
        chorus_server::auth::Authenticator::hs256(chorus_server::config::DEV_SECRET.as_bytes())
            .issue(&chorus_sdk::wire::TokenClaims {
                sub: "ana".into(),
                name: None,
                exp: now + 3600,
                rooms: [("*".to_owned(), chorus_sdk::wire::RoomRight::Publish)]
                    .into_iter()
                    .collect(),
            })
    };
    Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["--url", url, "--state"])
        .arg(state)
        .args(args)
        .env("CHORUS_TOKEN", token)
        .env_remove("CHORUS_CA_FILE")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_file_makes_a_self_signed_server_trusted_on_both_transports() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let mut config = Config::for_tests();
    config.tls_cert = Some(dir.path().join("server.pem"));
    config.tls_key = Some(dir.path().join("server.key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = chorus_server::start(&config, listener).await.unwrap();
    let url = format!("https://{}", server.local_addr());
    let ca = dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let state = dir.path().join("state");
    let blocking = |args: Vec<String>| {
        let (url, state) = (url.clone(), state.clone());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            chorus(&url, &state, &args)
        })
    };
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    for transport in ["ws", "polling"] {
        let done = blocking(owned(&[
            "--ca-file",
            ca,
            "--transport",
            transport,
            "send",
            "r",
            "1",
        ]))
        .await
        .unwrap();
        assert_eq!(done.status.code(), Some(0), "{transport}: {done:?}");
    }
    let done = blocking(owned(&["--ca-file", ca, "presence", "r"]))
        .await
        .unwrap();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    // Without the CA: not trusted, and the reason is said.
    let done = blocking(owned(&[
        "--transport",
        "ws",
        "send",
        "r",
        "1",
        "--timeout",
        "2",
    ]))
    .await
    .unwrap();
    assert_eq!(done.status.code(), Some(4), "{done:?}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    let done = blocking(owned(&["--ca-file", "/nonexistent.pem", "send", "r", "1"]))
        .await
        .unwrap();
    assert_eq!(done.status.code(), Some(2), "{done:?}");
    server.shutdown().await;
}
