//! Scenario 9, shared documents (Chorus only; issue 18's figures): a Yjs document built from
//! 10,000 small edits, each the backend's update, on a server that compacts documents (the
//! defaults) and on one that does not (and keeps the whole history): what opening the document
//! downloads (the server's merged answer) against replaying every update from history, the
//! server's answer time, and the time to open it in Chromium through the npm package's Yjs
//! entry. The measuring is `bench/client/docs.mjs`; this runs it and reads its figures.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::client;
use crate::servers::Server;

/// The backend API key the scenario's servers take.
pub const API_KEY: &str = "bench-docs-key";

/// The server flags of the two configurations: compacting (the defaults, with the API key) and
/// not (no compaction in the run, history kept whole).
pub fn flags(compacting: bool) -> Vec<String> {
    let mut flags = vec!["--api-key".to_owned(), API_KEY.to_owned()];
    if !compacting {
        for flag in [
            "--doc-compact-every",
            "1000000000",
            "--doc-compact-after-ms",
            "86400000",
            "--retention-events",
            "1000000",
        ] {
            flags.push(flag.to_owned());
        }
    }
    flags
}

/// One run's figures (see `bench/client/docs.mjs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocsRun {
    /// Whether the server compacted the document.
    #[serde(default)]
    pub compacting: bool,
    /// Edits made.
    pub edits: u64,
    /// The document's text length at the end.
    pub text_chars: u64,
    /// Update events in history at the end.
    pub history_events: u64,
    /// Bytes of those events as history pages carry them (`None` when history no longer holds
    /// every update).
    pub history_bytes: Option<f64>,
    /// Bytes of the server's answer to opening the document.
    pub open_bytes: u64,
    /// The same, gzipped.
    pub open_gzip_bytes: u64,
    /// That answer's time, milliseconds (median of 5).
    pub server_ms: f64,
    /// A fresh page's connect to the provider synced with the whole text, milliseconds.
    pub browser_open_ms: f64,
    /// The provider's part of it (from `new ChorusProvider` on a joined room).
    pub browser_sync_ms: f64,
}

/// Runs `docs.mjs` against `server` with `edits` edits.
pub async fn run(server: &Server, script: &Path, edits: u64, compacting: bool) -> Result<DocsRun> {
    let output = tokio::time::timeout(
        Duration::from_secs(600),
        Command::new("node")
            .arg(script)
            .args([
                &format!("http://{}", server.addr),
                &client::chorus_token("reader"),
                API_KEY,
                &edits.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("bench/client/docs.mjs took over 10 minutes")?
    .context("running node bench/client/docs.mjs")?;
    if !output.status.success() {
        bail!("bench/client/docs.mjs failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().context("docs.mjs printed nothing")?;
    let mut run: DocsRun =
        serde_json::from_str(line).with_context(|| format!("docs.mjs printed {line}"))?;
    run.compacting = compacting;
    Ok(run)
}
