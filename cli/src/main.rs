//! `chorus`, the command-line client: a room's events as JSON lines (`tail`, resuming where
//! the last run left off), publishes through the native SDK's outbox (`send`), presence, and
//! dev tokens, for operators and scripts.
//!
//! Every command is a thin use of `chorus_sdk::native` (`NativeClient`, `HttpApi`): it must
//! never speak the protocol itself. Stdout carries only the command's JSON (or the token);
//! status and errors go to stderr; the exit code says how it ended ([`Failure`]).

mod connect;
mod output;
mod presence;
mod send;
mod state;
mod tail;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use connect::{Failure, ServerOptions};

/// The exit codes, as `--help` lists them.
const EXIT_CODES: &str = "\
Exit codes:
  0  done (tail/presence --watch: stopped by Ctrl-C or SIGTERM, or --limit reached)
  1  failed: the server could not be reached, a file could not be read or written
  2  bad input: a bad flag, URL, room name, JSON body or CA file, or no token
  3  refused by the server: its code and sentence are printed (forbidden, frame_too_large,
     unauthenticated, token_expired, not_found for tokens without --dev, ...)
  4  timed out: `send` was not acknowledged within --timeout (it may still be stored)";

/// The `chorus` command line.
#[derive(Debug, Parser)]
#[command(
    name = "chorus",
    version,
    about = "Chorus command-line client: tail a room as JSON lines, send events, show presence, get dev tokens.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    server: ServerOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints a room's events as JSON lines, one per event, resuming where the last run left
    /// off (the cursor is saved per server and room in the state directory).
    ///
    /// Each line is an event as in the history endpoint:
    /// {"room":"doc:1","seq":42,"id":"c7f3-0001","from":"ana","at":1767139200123,"body":{...}}
    /// (`seq` is absent for ephemeral events, `at` is milliseconds since the Unix epoch).
    Tail(tail::TailArgs),
    /// Publishes one durable event through the outbox and waits for the server's ack; prints
    /// {"room":...,"id":...,"seq":...}.
    Send(send::SendArgs),
    /// Prints who is in a room, as the presence endpoint's JSON; --watch prints each change
    /// as a JSON line.
    Presence(presence::PresenceArgs),
    /// Asks a dev-mode server (`chorus-server --dev`) for a token and prints it.
    Token(token::TokenArgs),
}

/// Where `tail` keeps its cursors: `--state`, else `$XDG_STATE_HOME/chorus`, else
/// `~/.local/state/chorus`.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("chorus");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/chorus")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return Failure::io(format!("cannot start the runtime: {err}")).exit(),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Tail(args) => tail::run(&cli.server, args).await,
            Command::Send(args) => send::run(&cli.server, args).await,
            Command::Presence(args) => presence::run(&cli.server, args).await,
            Command::Token(args) => token::run(&cli.server, args).await,
        }
    });
    // Background tasks (sockets, polls) end with the runtime.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}
