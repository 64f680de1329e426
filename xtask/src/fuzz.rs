//! `cargo xtask fuzz [--seconds N | --smoke] [TARGET...]`: the fuzz targets in `fuzz/` (cargo-fuzz,
//! libFuzzer) for longer runs, and the bounded run of each that `cargo xtask test` makes.
//!
//! The targets build on the pinned nightly ([`crate::WASM_TOOLCHAIN`]) with AddressSanitizer,
//! debug assertions and overflow checks, into `$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/`.
//! The seed corpus is kept in the repository (`fuzz/corpus/<target>/`, with dictionaries in
//! `fuzz/dict/`); a crash leaves its input in `fuzz/artifacts/<target>/` (not committed: a
//! crash found is fixed at its cause with a regression test, and its input joins the corpus).
//!
//! - `cargo xtask fuzz` runs every target for `--seconds` (default 300) each, adding what it
//!   finds to the corpus, then minimizes each corpus (`cargo fuzz cmin`) so it stays small.
//! - `cargo xtask test` (through [`smoke`]; `cargo xtask fuzz --smoke` alone) runs each target
//!   for a few seconds with a fixed seed over the committed corpus, writing nothing into the
//!   repository.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{WASM_TOOLCHAIN, root, run, say, target_dir};

/// Every target, in the order they run.
pub(crate) const TARGETS: [&str; 5] = ["json_codec", "client_frame", "poll_query", "grants", "hub"];

/// The cargo-fuzz release installed when it is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seconds per target in `cargo xtask test`.
const SMOKE_SECONDS: u64 = 5;

/// Installs cargo-fuzz at [`CARGO_FUZZ_VERSION`] unless it is there already.
pub(crate) fn install() -> Result<()> {
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !have.contains(CARGO_FUZZ_VERSION) {
        run(
            "cargo",
            &["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION],
        )?;
    }
    Ok(())
}

/// `cargo xtask fuzz [--seconds N | --smoke] [TARGET...]`.
pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    if args.iter().any(|arg| arg == "--smoke") {
        crate::setup(crate::Needs::Build)?;
        return smoke();
    }
    let mut seconds: u64 = 300;
    let mut targets: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .context("--seconds takes a number")?;
            }
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(target) => targets.push(target),
                None => bail!(
                    "unknown fuzz target {name:?}; the targets are {}",
                    TARGETS.join(", ")
                ),
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    crate::setup(crate::Needs::Build)?;
    install()?;
    build()?;
    for target in &targets {
        let corpus = format!("fuzz/corpus/{target}");
        // New inputs go into the committed corpus, which cmin then shrinks to what adds coverage.
        run_target(
            target,
            &[&corpus],
            &["-max_total_time", &seconds.to_string()],
        )?;
        let before = corpus_files(target);
        run(
            "cargo",
            &[
                &format!("+{WASM_TOOLCHAIN}"),
                "fuzz",
                "cmin",
                "--debug-assertions",
                target,
                &corpus,
            ],
        )?;
        say(&format!(
            "fuzz {target}: corpus minimized from {before} to {} files",
            corpus_files(target)
        ));
    }
    Ok(())
}

/// The bounded run of every target in `cargo xtask test`: a few seconds each, seed 1, over
/// the committed corpus (new inputs go to a scratch directory in the target directory).
pub(crate) fn smoke() -> Result<()> {
    install()?;
    build()?;
    for target in TARGETS {
        let scratch = target_dir().join("fuzz-smoke").join(target);
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .with_context(|| format!("clearing {}", scratch.display()))?;
        }
        std::fs::create_dir_all(&scratch)?;
        let scratch = scratch.to_str().context("UTF-8 path")?.to_owned();
        let corpus = format!("fuzz/corpus/{target}");
        run_target(
            target,
            &[&scratch, &corpus],
            &["-seed", "1", "-max_total_time", &SMOKE_SECONDS.to_string()],
        )?;
    }
    Ok(())
}

/// Builds every target (once; `cargo fuzz run` then finds them built).
fn build() -> Result<()> {
    #[allow(clippy::disallowed_methods)] // A tool measuring its own steps, not a core.
    let started = Instant::now();
    run(
        "cargo",
        &[
            &format!("+{WASM_TOOLCHAIN}"),
            "fuzz",
            "build",
            "--debug-assertions",
        ],
    )?;
    say(&format!(
        "fuzz targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Runs one target over `corpora` (the first receives new inputs) with libFuzzer `options`
/// (pairs of name and value), then says how many inputs it ran in how long.
fn run_target(target: &str, corpora: &[&str], options: &[&str]) -> Result<()> {
    let toolchain = format!("+{WASM_TOOLCHAIN}");
    let mut args = vec![
        toolchain.as_str(),
        "fuzz",
        "run",
        "--debug-assertions",
        target,
    ];
    args.extend_from_slice(corpora);
    args.extend([
        "--",
        "-print_final_stats=1",
        "-timeout=20",
        "-rss_limit_mb=2048",
    ]);
    let dict_name = if target == "poll_query" {
        "poll_query"
    } else {
        "json"
    };
    let dict = format!("-dict=fuzz/dict/{dict_name}.dict");
    if matches!(target, "json_codec" | "client_frame" | "poll_query") {
        args.push(&dict);
    }
    let options: Vec<String> = options
        .chunks(2)
        .map(|pair| format!("-{}={}", pair[0].trim_start_matches('-'), pair[1]))
        .collect();
    args.extend(options.iter().map(String::as_str));
    say(&format!("$ cargo {}", args.join(" ")));
    #[allow(clippy::disallowed_methods)] // A tool measuring its own steps, not a core.
    let started = Instant::now();
    let output = Command::new("cargo")
        .args(&args)
        .current_dir(root())
        .output()
        .with_context(|| format!("could not start cargo fuzz run {target}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "fuzz target {target} failed ({}); the crashing input is in fuzz/artifacts/{target}/ \
             (reproduce: cargo +{WASM_TOOLCHAIN} fuzz run --debug-assertions {target} FILE):\n{}",
            output.status,
            tail.join("\n")
        );
    }
    let stat = |name: &str| {
        log.lines()
            .find_map(|line| line.strip_prefix(name))
            .map_or("?", |value| value.trim_start_matches(':').trim())
    };
    say(&format!(
        "fuzz {target}: {} runs in {seconds:.1} s, coverage {} (corpus {} files, peak RSS {} MB)",
        stat("stat::number_of_executed_units"),
        log.lines()
            .rev()
            .find_map(|line| line.split("cov: ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("?"),
        corpus_files(target),
        stat("stat::peak_rss_mb"),
    ));
    Ok(())
}

/// How many inputs the committed corpus of `target` holds.
fn corpus_files(target: &str) -> usize {
    std::fs::read_dir(root().join(Path::new("fuzz/corpus")).join(target))
        .map(|dir| dir.count())
        .unwrap_or(0)
}
