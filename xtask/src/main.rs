//! `cargo xtask <command>`: all project automation, in Rust.
//!
//! - `setup`: installs what the other commands need when it is missing (idempotent).
//! - `dev [ARGS...]`: setup, build the browser SDK and the app, then run `chorus-server --dev`
//!   on an embedded SQLite file serving them (extra arguments go to the server).
//! - `test`: setup, then format check, clippy with warnings denied, and every test.
//! - `build-web`: builds the browser SDK into `pkg/` (wasm-bindgen, then esbuild bundles one
//!   minified module; no wasm-opt, see `build_web`; the store and React entries minified
//!   beside it) and the app into `app/dist`, and prints the gzipped sizes (the core entry
//!   against its budget, the other entries apart).
//! - `bench [--quick]`: the benchmark suite against socket.io and socketioxide (`bench.rs`).
//! - `fuzz [--seconds N | --smoke] [TARGET...]`: the fuzz targets in `fuzz/` for N seconds
//!   each (`fuzz.rs`); `test` runs each of them for a few seconds (`--smoke`).
//!
//! It must only orchestrate: no product logic lives here.

mod bench;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(Needs::Tests),
        Some("dev") => dev(&args[1..]),
        Some("test") => test(),
        Some("build-web") => setup(Needs::Build).and_then(|()| build_web()),
        Some("bench") => setup(Needs::Tests).and_then(|()| bench::bench(&args[1..])),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        _ => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "usage: cargo xtask <setup | dev [server args...] | test | build-web | bench [--quick] | fuzz [--seconds N | --smoke] [target...]>"
                );
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
///
/// Read from the environment `cargo run` sets, not only from the compile-time value: clones
/// sharing one `CARGO_TARGET_DIR` share one xtask binary, whose compile-time path may name
/// another (even a deleted) clone.
fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
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

/// What a command needs installed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Building and running Chorus: Rust components, the wasm toolchain, wasm-bindgen.
    Build,
    /// Also the browser tests' Chromium, chromedriver and nginx, the Redis engine's tests'
    /// `redis-server`, and `openssl` for the TLS tests' certificates.
    Tests,
}

fn setup(needs: Needs) -> Result<()> {
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
    // The browser SDK: the wasm target and wasm-bindgen's CLI at exactly the crate's version;
    // for the browser tests Chromium, chromedriver and nginx (npm packages come later); for the
    // Redis engine's tests Debian's redis-server (the tests start their own on free ports).
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !installed.contains("wasm32-unknown-unknown") {
        run("rustup", &["target", "add", "wasm32-unknown-unknown"])?;
    }
    // The browser builds use a pinned nightly (see `build_wasm`), with the standard library's
    // source to rebuild it.
    if !succeeds(
        "rustup",
        &["run", WASM_TOOLCHAIN, "rustc", "--print", "sysroot"],
    ) || !rust_src_installed()
    {
        run(
            "rustup",
            &[
                "toolchain",
                "install",
                WASM_TOOLCHAIN,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ],
        )?;
    }
    let version = wasm_bindgen_version()?;
    let have = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !have.contains(&version) {
        run(
            "cargo",
            &["install", "wasm-bindgen-cli", "--version", &version],
        )?;
    }
    if needs == Needs::Build {
        say("setup complete");
        return Ok(());
    }
    // The fuzz targets' bounded runs (on the same pinned nightly).
    fuzz::install()?;
    let missing: Vec<&str> = [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("nginx", "nginx"),
        ("redis-server", "redis-server"),
        // `ss` shows a listening socket's backlog (server/tests/binary.rs).
        ("ss", "iproute2"),
        // The TLS tests make their CA and server certificate with it (server/tests/tls.rs).
        ("openssl", "openssl"),
    ]
    .into_iter()
    .filter(|(program, _)| !on_path(program))
    .map(|(_, package)| package)
    .collect();
    if !missing.is_empty() {
        run("apt-get", &["update", "-qq"])?;
        let mut args = vec!["install", "-y", "-qq"];
        args.extend(&missing);
        run("apt-get", &args)?;
    }
    say("setup complete");
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        || Path::new("/usr/sbin").join(program).is_file()
}

/// The wasm-bindgen version the workspace pins (its CLI must match exactly).
fn wasm_bindgen_version() -> Result<String> {
    let manifest =
        std::fs::read_to_string(root().join("Cargo.toml")).context("reading Cargo.toml")?;
    let line = manifest
        .lines()
        .find(|l| l.starts_with("wasm-bindgen = "))
        .context("wasm-bindgen is not pinned in Cargo.toml")?;
    Ok(line
        .split('"')
        .nth(1)
        .context("a quoted version")?
        .trim_start_matches('=')
        .to_owned())
}

fn build_web() -> Result<()> {
    let pkg = root().join("pkg");
    wasm_bindgen(
        &build_wasm(
            &["--package", "chorus-sdk", "--features", "js"],
            "chorus_sdk",
        )?,
        &pkg.join("wasm"),
        "chorus",
    )?;
    // No Binaryen `wasm-opt` pass: on this module `-Oz` (binaryen 132 from npm) shrinks the raw
    // file ~10% but grows it ~7% gzipped, and `-O1` saves 0.4%; Debian's binaryen 108 can no
    // longer parse it (`table.fill`). See ARCHITECTURE.md.
    // The linker's `target_features` section is for tools (wasm-bindgen reads it to choose its
    // glue); browsers ignore it, so the module the package ships goes without it.
    let module = pkg.join("wasm/chorus_bg.wasm");
    let bytes = std::fs::read(&module).context("reading the module")?;
    let bytes = without_custom_section(&bytes, "target_features")?;
    std::fs::write(&module, &bytes).context("writing the module")?;
    std::fs::copy(&module, pkg.join("chorus_bg.wasm")).context("copying the module into pkg/")?;
    // One minified ES module (with a source map) from the hand-written API (pkg/src), the
    // wasm-bindgen glue and the snippet it imports (platform.js): what bundlers would make of
    // it anyway, measured as users receive it.
    npm_ci_if_stale(&pkg)?;
    run(
        "pkg/node_modules/.bin/esbuild",
        &[
            "pkg/src/chorus.js",
            "--bundle",
            "--format=esm",
            "--minify",
            "--sourcemap",
            "--legal-comments=none",
            "--log-level=warning",
            "--outfile=pkg/chorus.js",
        ],
    )?;
    // What the package ships to browsers: the module and the wasm it loads (not the typings,
    // the README or the source map, which browsers fetch only with developer tools open).
    let mut total = 0;
    for file in ["pkg/chorus.js", "pkg/chorus_bg.wasm"] {
        let bytes = std::fs::read(root().join(file)).with_context(|| format!("reading {file}"))?;
        let gz = gzipped_len(&bytes)?;
        total += gz;
        say(&format!(
            "{file}: {} bytes, {gz} bytes gzipped",
            bytes.len()
        ));
    }
    // Enforced: the core entry (the module and its wasm) may not grow past its budget; every
    // build, and so every test run, fails when it does. docs/SIZE.md keeps the history.
    const BUDGET: usize = 44 * 1024;
    let verdict = if total <= BUDGET {
        format!("{} bytes to spare", BUDGET - total)
    } else {
        format!("{} bytes over", total - BUDGET)
    };
    say(&format!(
        "browser SDK total: {total} bytes gzipped ({:.1} KB; budget 44 KB: {verdict})",
        total as f64 / 1024.0,
    ));
    if total > BUDGET {
        bail!(
            "the browser SDK's core entry is {total} bytes gzipped, over its 44 KB budget ({verdict})"
        );
    }
    build_locks_module(&pkg)?;
    build_extra_entries()?;
    build_app()
}

/// The module of the locks entry (`@chorus/client/locks`): the SDK built with its `locks`
/// feature too, loaded by the core entry's own glue (`pkg/chorus.js`), so the two builds must
/// make identical glue. Only apps that import the locks entry download it instead of the core
/// module; it is printed apart and not held to the core entry's budget (docs/SIZE.md).
fn build_locks_module(pkg: &Path) -> Result<()> {
    let out = pkg.join("wasm-locks");
    wasm_bindgen(
        &build_wasm(
            &["--package", "chorus-sdk", "--features", "js,locks"],
            "chorus_sdk",
        )?,
        &out,
        "chorus",
    )?;
    let glue = |dir: &Path| std::fs::read(dir.join("chorus.js")).context("reading the glue");
    if glue(&out)? != glue(&pkg.join("wasm"))? {
        bail!(
            "the SDK built with `locks` made other wasm-bindgen glue than the core build (pkg/wasm-locks/chorus.js differs from pkg/wasm/chorus.js): the locks module would not load through pkg/chorus.js; keep lock code off the JS boundary"
        );
    }
    let bytes = std::fs::read(out.join("chorus_bg.wasm")).context("reading the locks module")?;
    let bytes = without_custom_section(&bytes, "target_features")?;
    std::fs::write(pkg.join("chorus_locks_bg.wasm"), &bytes).context("writing the locks module")?;
    say(&format!(
        "locks module (@chorus/client/locks, instead of chorus_bg.wasm): pkg/chorus_locks_bg.wasm: {} bytes, {} bytes gzipped",
        bytes.len(),
        gzipped_len(&bytes)?
    ));
    Ok(())
}

/// The package's other entry points (`@chorus/client/store`, `@chorus/client/react`,
/// `@chorus/client/locks`, `@chorus/client/yjs`): minified
/// one by one, not bundled (react.js keeps importing `react` and `./store.js`), and counted
/// apart from the core entry, whose budget they do not touch: only apps that import them load them.
fn build_extra_entries() -> Result<()> {
    run(
        "pkg/node_modules/.bin/esbuild",
        &[
            "pkg/src/store.js",
            "pkg/src/react.js",
            "pkg/src/locks.js",
            "pkg/src/yjs.js",
            "--format=esm",
            "--minify",
            "--sourcemap",
            "--legal-comments=none",
            "--log-level=warning",
            "--outdir=pkg",
        ],
    )?;
    for (file, entry) in [
        ("pkg/store.js", "store entry (@chorus/client/store)"),
        (
            "pkg/react.js",
            "React entry (@chorus/client/react; it imports the store entry, React not counted)",
        ),
        (
            "pkg/locks.js",
            "locks entry (@chorus/client/locks; it imports the core entry and loads the locks module)",
        ),
        (
            "pkg/yjs.js",
            "Yjs entry (@chorus/client/yjs; yjs and y-protocols, its peer dependencies, not counted)",
        ),
    ] {
        let bytes = std::fs::read(root().join(file)).with_context(|| format!("reading {file}"))?;
        say(&format!(
            "{entry}: {file}: {} bytes, {} bytes gzipped",
            bytes.len(),
            gzipped_len(&bytes)?
        ));
    }
    Ok(())
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, or `target/` in the repository).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// The toolchain of the browser builds: a pinned nightly, for rebuilding the standard library
/// for size (see `build_wasm`). Everything else (tests, clippy, the server) uses stable.
const WASM_TOOLCHAIN: &str = "nightly-2026-05-20";

/// Whether the pinned nightly has the standard library's source (`rust-src`).
fn rust_src_installed() -> bool {
    Command::new("rustup")
        .args([
            "component",
            "list",
            "--installed",
            "--toolchain",
            WASM_TOOLCHAIN,
        ])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("rust-src"))
}

/// `cargo build` for wasm32 with the size-optimized `wasm` profile; returns the built module
/// (`artifact` is its file stem).
///
/// Built with [`WASM_TOOLCHAIN`], rebuilding `std` optimized for size with panics that abort
/// without a message (`immediate-abort`: no panic formatting or locations in the module) and
/// `Debug` formatting compiled out (user-facing messages never use `{:?}`): the SDK's module is
/// about a fifth smaller gzipped than the same build on stable (ARCHITECTURE.md, "Browser build").
fn build_wasm(package_args: &[&str], artifact: &str) -> Result<PathBuf> {
    let toolchain = format!("+{WASM_TOOLCHAIN}");
    let mut args = vec![
        toolchain.as_str(),
        "build",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm",
        "-Zbuild-std=std,panic_abort",
        "-Zbuild-std-features=optimize_for_size",
        "--config",
        r#"target.wasm32-unknown-unknown.rustflags = ["-Zunstable-options", "-Cpanic=immediate-abort", "-Zfmt-debug=none", "-Zlocation-detail=none"]"#,
    ];
    args.extend_from_slice(package_args);
    run("cargo", &args)?;
    let target = target_dir();
    Ok(target.join(format!("wasm32-unknown-unknown/wasm/{artifact}.wasm")))
}

/// Runs the wasm-bindgen CLI (ES module for the web, no generated typings, no name or producers
/// sections) on `wasm`, writing `out_name.js` and `out_name_bg.wasm` into `out_dir`.
fn wasm_bindgen(wasm: &Path, out_dir: &Path, out_name: &str) -> Result<()> {
    // A fresh directory: snippets (hash-named) of earlier builds must not linger.
    if out_dir.exists() {
        std::fs::remove_dir_all(out_dir)
            .with_context(|| format!("clearing {}", out_dir.display()))?;
    }
    run(
        "wasm-bindgen",
        &[
            "--target",
            "web",
            "--no-typescript",
            "--remove-name-section",
            "--remove-producers-section",
            "--out-name",
            out_name,
            "--out-dir",
            out_dir.to_str().context("UTF-8 path")?,
            wasm.to_str().context("UTF-8 path")?,
        ],
    )
}

/// The wasm module `bytes` without its custom sections called `name` (the others as they are).
fn without_custom_section(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    // An unsigned LEB128 number at `*at`, moving past it.
    fn leb(bytes: &[u8], at: &mut usize) -> Result<usize> {
        let mut value = 0;
        for shift in (0..35).step_by(7) {
            let byte = *bytes.get(*at).context("a truncated wasm module")?;
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        bail!("a malformed wasm module")
    }
    let mut out = bytes.get(..8).context("a truncated wasm module")?.to_vec();
    let mut at = 8;
    while at < bytes.len() {
        let start = at;
        let id = bytes[at];
        at += 1;
        let size = leb(bytes, &mut at)?;
        let end = at.checked_add(size).filter(|&end| end <= bytes.len());
        let end = end.context("a truncated wasm module")?;
        let mut payload = at;
        let custom = id == 0 && {
            let len = leb(bytes, &mut payload)?;
            bytes.get(payload..payload + len) == Some(name.as_bytes())
        };
        if !custom {
            out.extend_from_slice(&bytes[start..end]);
        }
        at = end;
    }
    Ok(out)
}

/// Builds the Leptos app (`app/`) into `app/dist`: wasm, its wasm-bindgen glue, the page and
/// the stylesheet. The server serves that directory at `/` (`--app-dir`).
fn build_app() -> Result<()> {
    let dist = root().join("app/dist");
    wasm_bindgen(
        &build_wasm(&["--package", "chorus-app"], "chorus-app")?,
        &dist,
        "chorus_app",
    )?;
    for file in ["index.html", "style.css"] {
        std::fs::copy(root().join("app").join(file), dist.join(file))
            .with_context(|| format!("copying app/{file}"))?;
    }
    let bytes = std::fs::read(dist.join("chorus_app_bg.wasm")).context("reading the app")?;
    say(&format!(
        "app/dist/chorus_app_bg.wasm: {} bytes, {} bytes gzipped",
        bytes.len(),
        gzipped_len(&bytes)?
    ));
    Ok(())
}

/// The size of `bytes` after `gzip -9`.
fn gzipped_len(bytes: &[u8]) -> Result<usize> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("gzip")?;
    child.stdin.take().context("stdin")?.write_all(bytes)?;
    Ok(child.wait_with_output()?.stdout.len())
}

fn dev(server_args: &[String]) -> Result<()> {
    setup(Needs::Build)?;
    let data = root().join(".chorus");
    std::fs::create_dir_all(&data).context("creating .chorus/")?;
    let db = data.join("dev.db");
    let db = db.to_str().context("the database path is not UTF-8")?;
    build_web()?;
    let dir = |path: &str| root().join(path).to_string_lossy().into_owned();
    let (app, demo, pkg) = (dir("app/dist"), dir("www"), dir("pkg"));
    let mut args = vec![
        "run",
        "--package",
        "chorus-server",
        "--",
        "--dev",
        "--db",
        db,
        "--app-dir",
        &app,
        "--demo-dir",
        &demo,
        "--pkg-dir",
        &pkg,
    ];
    args.extend(server_args.iter().map(String::as_str));
    say(
        "starting chorus-server in dev mode: the app at http://127.0.0.1:8080/, the plain-JS demo at /demo/ (Ctrl-C stops it)",
    );
    run("cargo", &args)
}

/// wasm-bindgen-test suites in headless Chromium (the browser driver's own tests and the app's
/// component and hook tests), after building the Leptos example for wasm32 (natively it is an
/// empty `main`). Chromium's flags are in `tests/webdriver.json`.
fn wasm_tests() -> Result<()> {
    run(
        "cargo",
        &[
            "build",
            "--target",
            "wasm32-unknown-unknown",
            "--package",
            "chorus-examples",
            "--example",
            "leptos_room",
        ],
    )?;
    for args in [
        &[
            "--package",
            "chorus-sdk",
            "--features",
            "js",
            "--test",
            "web",
        ][..],
        &["--package", "chorus-app", "--test", "components"][..],
    ] {
        say(&format!(
            "$ cargo test --target wasm32-unknown-unknown {}",
            args.join(" ")
        ));
        let status = Command::new("cargo")
            .args(["test", "--target", "wasm32-unknown-unknown"])
            .args(args)
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                "wasm-bindgen-test-runner",
            )
            .env("CHROMEDRIVER", "/usr/bin/chromedriver")
            .current_dir(root())
            .status()
            .context("cargo test (wasm32)")?;
        if !status.success() {
            bail!("wasm32 tests failed ({status})");
        }
    }
    Ok(())
}

/// The npm package in real Chromium (tests/browser), against the real server and nginx.
fn browser_tests() -> Result<()> {
    build_web()?;
    // The same feature set as `cargo test --workspace --all-features`, so this reuses its build.
    run(
        "cargo",
        &[
            "build",
            "--workspace",
            "--all-features",
            "--bin",
            "chorus-server",
        ],
    )?;
    let browser = root().join("tests/browser");
    npm_ci_if_stale(&browser)?;
    let target = target_dir();
    say("$ node --test (tests/browser)");
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .env("CHORUS_SERVER_BIN", target.join("debug/chorus-server"))
        .current_dir(&browser)
        .status()
        .context("could not start node")?;
    if !status.success() {
        bail!("browser tests failed ({status})");
    }
    Ok(())
}

/// `npm ci` in `dir` when its packages are missing or older than its lock file.
pub(crate) fn npm_ci_if_stale(dir: &Path) -> Result<()> {
    if !npm_install_is_stale(dir) {
        return Ok(());
    }
    say(&format!("$ npm ci ({})", dir.display()));
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .context("could not start npm")?;
    if !status.success() {
        bail!("npm ci failed ({status})");
    }
    Ok(())
}

/// Whether `dir/node_modules` is missing or older than `dir/package-lock.json` (npm writes
/// `node_modules/.package-lock.json` on every install).
fn npm_install_is_stale(dir: &Path) -> bool {
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match (
        modified(dir.join("node_modules/.package-lock.json")),
        modified(dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(locked)) => installed < locked,
        _ => true,
    }
}

fn test() -> Result<()> {
    setup(Needs::Tests)?;
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
    // The browser driver, the app's components and the Leptos example only exist on wasm32:
    // lint them there too.
    run(
        "cargo",
        &[
            "clippy",
            "--package",
            "chorus-sdk",
            "--package",
            "chorus-app",
            "--package",
            "chorus-examples",
            "--features",
            "chorus-sdk/js",
            "--target",
            "wasm32-unknown-unknown",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace", "--all-features"])?;
    // The client core as the npm package builds it, without the `locks` feature (the workspace
    // run above has it on): `client::tests::without_locks`, and the rest still pass without it.
    run("cargo", &["test", "--package", "chorus-sdk", "--lib"])?;
    wasm_tests()?;
    browser_tests()?;
    // The benchmark suite at its smallest, one round, so the harness and the peers keep working;
    // its report goes to the target directory, not over the committed bench/results.
    let target = target_dir();
    let smoke = target.join("bench-smoke");
    bench::bench(&[
        "--quick".to_owned(),
        "--rounds".to_owned(),
        "1".to_owned(),
        "--out".to_owned(),
        smoke.to_str().context("UTF-8 path")?.to_owned(),
    ])?;
    // Each fuzz target for a few seconds with a fixed seed over the committed corpus.
    fuzz::smoke()?;
    say("all checks and tests passed");
    Ok(())
}
