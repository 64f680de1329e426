//! `cargo xtask bench [--quick] [chorus-bench args...]`: builds the release `chorus-server`,
//! the load generator `chorus-bench` and both peers (socket.io with `npm ci`, socketioxide with
//! `cargo build --locked`), then runs the suite with the open-file limit raised to the hard
//! limit, the generator pinned to core 1 (it pins the servers to core 0). The report lands in
//! `bench/results/`.
//!
//! It only orchestrates: the scenarios, measurements and report live in `bench/`.

use anyhow::{Context, Result};

use crate::{npm_ci_if_stale, root, run, say, target_dir};

/// Builds everything and runs the benchmark suite.
pub(crate) fn bench(args: &[String]) -> Result<()> {
    run(
        "cargo",
        &[
            "build",
            "--release",
            "--package",
            "chorus-server",
            "--package",
            "chorus-bench",
        ],
    )?;
    let target = target_dir();
    let socketio = root().join("bench/peers/socketio");
    npm_ci_if_stale(&socketio)?;
    // The client-CPU scenario's page loads the npm package from pkg/ and socket.io-client.
    crate::build_web()?;
    let page = root().join("bench/client");
    npm_ci_if_stale(&page)?;
    // The socketioxide peer is its own Cargo project (its own lock file); it shares the target
    // directory so repeated runs do not rebuild it.
    run(
        "cargo",
        &[
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            "bench/peers/socketioxide/Cargo.toml",
            "--target-dir",
            target.to_str().context("UTF-8 target path")?,
        ],
    )?;
    let release = target.join("release");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let (server_core, generator_core) = if cores >= 2 {
        ("0", "1")
    } else {
        say("only one core: the servers and the generator share it (figures are not comparable)");
        ("0", "0")
    };
    let command = ["cargo xtask bench".to_owned()]
        .into_iter()
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut suite = vec![
        "--chorus".to_owned(),
        path(&release.join("chorus-server"))?,
        "--socketio".to_owned(),
        path(&socketio)?,
        "--socketioxide".to_owned(),
        path(&release.join("chorus-bench-socketioxide-peer"))?,
        "--page".to_owned(),
        path(&page.join("page.mjs"))?,
        "--server-core".to_owned(),
        server_core.to_owned(),
        "--command".to_owned(),
        command,
    ];
    // The committed report lives in bench/results; smoke runs (`cargo xtask test`) write elsewhere.
    if !args.iter().any(|arg| arg == "--out") {
        suite.extend(["--out".to_owned(), path(&root().join("bench/results"))?]);
    }
    suite.extend(args.iter().cloned());
    // `ulimit -n` raises the soft open-file limit to the hard one for the generator and the
    // servers it starts; the report states the limit in force.
    let script = r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec taskset -c "$0" "$@""#;
    let mut shell_args = vec![
        "-c".to_owned(),
        script.to_owned(),
        generator_core.to_owned(),
        path(&release.join("chorus-bench"))?,
    ];
    shell_args.extend(suite);
    let shell_args: Vec<&str> = shell_args.iter().map(String::as_str).collect();
    run("sh", &shell_args)
}

fn path(path: &std::path::Path) -> Result<String> {
    Ok(path.to_str().context("UTF-8 path")?.to_owned())
}
