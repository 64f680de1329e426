//! `cargo xtask <command>`: all project automation, in Rust.
//!
//! - `setup`: installs what the other commands need when it is missing (idempotent).
//! - `dev [ARGS...]`: setup, then build and run `chorus-server --dev` on an embedded SQLite file
//!   (extra arguments go to the server).
//! - `test`: setup, then format check, clippy with warnings denied, and every test.
//!
//! It must only orchestrate: no product logic lives here.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("dev") => dev(&args[1..]),
        Some("test") => test(),
        _ => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("usage: cargo xtask <setup | dev [server args...] | test>");
            }
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("xtask: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn say(message: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("xtask: {message}");
    }
}

/// Runs a command in the workspace root, failing if it fails.
fn run(program: &str, args: &[&str]) -> Result<()> {
    say(&format!("$ {program} {}", args.join(" ")));
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("could not start {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Whether a command runs and exits successfully (output discarded).
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

fn setup() -> Result<()> {
    for component in ["rustfmt", "clippy"] {
        let probe = if component == "rustfmt" {
            "fmt"
        } else {
            "clippy"
        };
        if !succeeds("cargo", &[probe, "--version"]) {
            run("rustup", &["component", "add", component])?;
        }
    }
    say("setup complete");
    Ok(())
}

fn dev(server_args: &[String]) -> Result<()> {
    setup()?;
    let data = root().join(".chorus");
    std::fs::create_dir_all(&data).context("creating .chorus/")?;
    let db = data.join("dev.db");
    let db = db.to_str().context("the database path is not UTF-8")?;
    let mut args = vec![
        "run",
        "--package",
        "chorus-server",
        "--",
        "--dev",
        "--db",
        db,
    ];
    args.extend(server_args.iter().map(String::as_str));
    say("starting chorus-server in dev mode on http://127.0.0.1:8080 (Ctrl-C stops it)");
    run("cargo", &args)
}

fn test() -> Result<()> {
    setup()?;
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace", "--all-features"])?;
    say("all checks and tests passed");
    Ok(())
}
