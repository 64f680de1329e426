//! Writing lines: the command's JSON to stdout, flushed line by line so a pipe sees each event
//! at once, and status to stderr prefixed with `chorus: `.
//!
//! A closed stdout (`chorus tail ROOM | head -3`) is not an error to report: the command
//! stops quietly, as Unix tools do.

use std::io::Write;

/// Writes one line to stdout and flushes it. `false` when stdout is closed: stop.
pub(crate) fn line(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// Writes one status or error line to stderr.
pub(crate) fn stderr(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "chorus: {text}");
}

/// Writes one status line to stderr, unless `quiet` (`--quiet`).
pub(crate) fn status(quiet: bool, text: &str) {
    if !quiet {
        stderr(text);
    }
}
