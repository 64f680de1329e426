//! The options every command shares (server URL, token, transport, CA file, state directory),
//! how they become a [`NativeClient`] or an [`HttpApi`], and [`Failure`]: how a command ends
//! when it does not succeed, with its exit code.
//!
//! It must never decide what a command does with the connection; it only opens it.

use std::path::PathBuf;
use std::process::ExitCode;

use chorus_sdk::client::{ClientConfig, ClientEvent, ConnectionState, TransportMode};
use chorus_sdk::native::{Events, HttpAnswer, HttpApi, MemoryStorage, NativeClient, TlsOptions};
use chorus_sdk::wire::{self, ErrorBody, ErrorCode, RoomName};
use clap::{Args, ValueEnum};

use crate::output;

/// Which transports the client may use (`--transport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransportFlag {
    /// WebSocket, falling back to HTTP long polling when it does not work.
    Auto,
    /// WebSocket only.
    #[value(alias = "websocket")]
    Ws,
    /// HTTP long polling only.
    Polling,
}

/// The options every command takes.
#[derive(Debug, Args)]
pub(crate) struct ServerOptions {
    /// The server's base URL: http:// or https:// (ws:// and wss:// are taken to mean the
    /// same server; the WebSocket URL is derived from it).
    #[arg(
        long,
        global = true,
        env = "CHORUS_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// The token (a JWT from your backend, or `chorus token` against a dev server).
    #[arg(long, global = true, env = "CHORUS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Which transports to use.
    #[arg(long, global = true, value_enum, default_value_t = TransportFlag::Auto)]
    transport: TransportFlag,
    /// Also trust the CA certificates in this PEM file for https:// (a self-signed server).
    #[arg(long, global = true, env = "CHORUS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Where `tail` keeps its cursors [default: $XDG_STATE_HOME/chorus or ~/.local/state/chorus].
    #[arg(long, global = true, env = "CHORUS_STATE_DIR")]
    pub(crate) state: Option<PathBuf>,
    /// Print no status lines on stderr (errors still are).
    #[arg(long, short, global = true)]
    quiet: bool,
}

impl ServerOptions {
    /// The server's base URL as the SDK takes it: `http(s)://host[:port][/prefix]`, no
    /// trailing slash.
    pub(crate) fn base_url(&self) -> Result<String, Failure> {
        let url = self.url.trim().trim_end_matches('/');
        let base = if let Some(rest) = url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else {
            return Err(Failure::input(format!(
                "--url must start with http://, https://, ws:// or wss:// (got `{url}`)"
            )));
        };
        let host = base.split_once("://").map_or("", |(_, rest)| rest);
        if host.is_empty() || host.starts_with('/') {
            return Err(Failure::input(format!("--url has no host (got `{url}`)")));
        }
        Ok(base)
    }

    fn tls(&self) -> Result<TlsOptions, Failure> {
        let tls = TlsOptions::default();
        match &self.ca_file {
            Some(path) => tls
                .add_ca_file(path)
                .map_err(|err| Failure::input(format!("--ca-file: {err}"))),
            None => Ok(tls),
        }
    }

    fn token(&self) -> Result<String, Failure> {
        match self.token.as_deref().map(str::trim) {
            Some(token) if !token.is_empty() => Ok(token.to_owned()),
            _ => Err(Failure::input(
                "no token: pass --token or set CHORUS_TOKEN (a dev server gives one: `chorus token --user NAME`)",
            )),
        }
    }

    /// The REST API of the server.
    pub(crate) fn api(&self) -> Result<HttpApi, Failure> {
        Ok(HttpApi::new(&self.base_url()?, &self.tls()?))
    }

    /// The REST API and the token to call it with.
    pub(crate) fn api_with_token(&self) -> Result<(HttpApi, String), Failure> {
        let token = self.token()?;
        Ok((self.api()?, token))
    }

    /// Starts a client with the chosen transports. Its outbox lives in memory: a publish is
    /// resent over every new connection until acked, for as long as the command runs.
    pub(crate) fn start_client(&self) -> Result<Connection, Failure> {
        let base = self.base_url()?;
        let tls = self.tls()?;
        let token = self.token()?;
        let config = ClientConfig {
            transport: match self.transport {
                TransportFlag::Auto => TransportMode::Auto,
                TransportFlag::Ws => TransportMode::WebSocket,
                TransportFlag::Polling => TransportMode::Polling,
            },
            ..ClientConfig::default()
        };
        let (client, events) = NativeClient::start_with_tls(
            &base,
            token,
            config,
            Box::new(MemoryStorage::default()),
            tls,
        );
        Ok(Connection {
            client,
            events,
            quiet: self.quiet,
            last_error: None,
        })
    }

    /// A status line on stderr, unless `--quiet`.
    pub(crate) fn status(&self, line: &str) {
        output::status(self.quiet, line);
    }

    /// Reads a room name given on the command line.
    pub(crate) fn room(name: &str) -> Result<RoomName, Failure> {
        RoomName::parse(name).map_err(|err| Failure::input(format!("room `{name}`: {err}")))
    }
}

/// A running client and what the commands need to know about its connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) client: NativeClient,
    pub(crate) events: Events,
    quiet: bool,
    /// The last `error` the server sent that concerned no room (said again on a refused token).
    last_error: Option<(ErrorCode, String)>,
}

impl Connection {
    /// The next event, after handling what every command handles alike: connection states
    /// become status lines, a refused token ends the command (nobody can hand a fresh one),
    /// and an `error` about `room` that joining again will not cure ends it too.
    pub(crate) async fn next(&mut self, room: &RoomName) -> Result<ClientEvent, Failure> {
        let Some(event) = self.events.next().await else {
            return Err(Failure::io("the client stopped"));
        };
        match &event {
            ClientEvent::State(state) => self.state_changed(state)?,
            ClientEvent::TokenNeeded => {
                let (code, message) = self.last_error.clone().unwrap_or((
                    ErrorCode::Unauthenticated,
                    "the server refused the token".to_owned(),
                ));
                return Err(Failure::refused(code, message));
            }
            ClientEvent::Error {
                code,
                message,
                room: about,
            } => match about {
                Some(about) if about == room && ends_the_command(*code) => {
                    return Err(Failure::refused(*code, message.clone()));
                }
                Some(_) => self.status(&format!("server error: {code}: {message}")),
                None => {
                    self.last_error = Some((*code, message.clone()));
                    self.status(&format!("server error: {code}: {message}"));
                }
            },
            _ => {}
        }
        Ok(event)
    }

    fn state_changed(&mut self, state: &ConnectionState) -> Result<(), Failure> {
        match state {
            ConnectionState::Connected { transport } => {
                self.status(&format!("connected over {}", transport.as_str()));
            }
            ConnectionState::Reconnecting { attempt, .. } => {
                let why = self
                    .client
                    .last_error()
                    .map_or(String::new(), |why| format!(": {why}"));
                self.status(&format!("not connected; retrying (attempt {attempt}){why}"));
            }
            ConnectionState::Failed { reason } => {
                let message = match reason {
                    chorus_sdk::client::FailReason::AuthRefused(message) => message.clone(),
                };
                let code = self
                    .last_error
                    .as_ref()
                    .map_or(ErrorCode::Unauthenticated, |(code, _)| *code);
                return Err(Failure::refused(code, message));
            }
            ConnectionState::Connecting { .. }
            | ConnectionState::Offline
            | ConnectionState::Closed => {}
        }
        Ok(())
    }

    pub(crate) fn status(&self, line: &str) {
        output::status(self.quiet, line);
    }

    /// Closes the client and gives its task a moment to say goodbye (leave its rooms, close
    /// its socket), so the server drops this member at once rather than after its grace.
    pub(crate) async fn close(mut self) {
        self.client.close();
        let drained = async { while self.events.next().await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drained).await;
        // The socket's own task writes the close frame once the driver has let go of it.
        tokio::task::yield_now().await;
    }
}

/// Whether an `error` about the command's room means it cannot go on: the token does not
/// allow it, or the server will not take it (passing conditions — a full server, a slow
/// connection, draining, storage — are retried by the client instead).
fn ends_the_command(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Forbidden
            | ErrorCode::TooManyRooms
            | ErrorCode::MetaTooLarge
            | ErrorCode::NotFound
            | ErrorCode::BadRequest
            | ErrorCode::BadFrame
    )
}

/// How a command ends when it does not succeed: a sentence for stderr and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Exit code 1: the server could not be reached, a file could not be used.
    pub(crate) fn io(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 2: the input is bad (as clap's own usage errors).
    pub(crate) fn input(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit code 3: the server refused, with its code and sentence.
    pub(crate) fn refused(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code: 3,
            message: format!("refused: {code}: {}", message.into()),
        }
    }

    /// Exit code 4: no answer in time.
    pub(crate) fn timed_out(message: impl Into<String>) -> Failure {
        Failure {
            code: 4,
            message: message.into(),
        }
    }

    /// An HTTP answer that is not a success: the server's code and sentence.
    pub(crate) fn answered(answer: &HttpAnswer) -> Failure {
        match wire::json::from_str::<ErrorBody>(&answer.body) {
            Ok(body) => Failure::refused(body.code, body.message),
            Err(_) => Failure::io(format!(
                "the server answered {} with an unexpected body: {}",
                answer.status,
                answer.body.chars().take(200).collect::<String>()
            )),
        }
    }

    /// Adds what the user should know to act on the failure.
    pub(crate) fn with_hint(mut self, hint: &str) -> Failure {
        self.message = format!("{} ({hint})", self.message);
        self
    }

    /// Says why on stderr and gives the exit code.
    pub(crate) fn exit(self) -> ExitCode {
        output::stderr(&self.message);
        ExitCode::from(self.code)
    }
}

/// Resolves when the user or the system asks the command to stop (Ctrl-C, SIGTERM).
pub(crate) async fn stop_requested() {
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// One REST request, given 30 s to be answered; an answer that never comes is an I/O failure.
pub(crate) async fn request(
    api: &HttpApi,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> Result<HttpAnswer, Failure> {
    let wait = std::time::Duration::from_secs(30);
    match tokio::time::timeout(wait, api.request(method, path, bearer, body)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(why)) => Err(Failure::io(format!("cannot reach the server: {why}"))),
        Err(_) => Err(Failure::io(format!(
            "the server did not answer {method} {path} within {} s",
            wait.as_secs()
        ))),
    }
}
