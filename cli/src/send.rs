//! `chorus send ROOM JSON`: one durable publish through the native client's outbox (resent
//! over each new connection until the server answers), then exit: 0 once acked (printing
//! `{"room":...,"id":...,"seq":...}`), 3 when refused, 4 when no ack came within `--timeout`.
//!
//! The outbox lives only as long as the command: a send that timed out is not sent again by a
//! later one (so a script that retries after exit code 4 does not get a second copy from the
//! first run), though the first copy may have been stored.

use std::io::Read;
use std::time::Duration;

use chorus_sdk::client::ClientEvent;
use chorus_sdk::wire::{ErrorCode, EventId, Json, RoomName};
use clap::Args;

use crate::connect::{Failure, ServerOptions};
use crate::output;

/// `chorus send` arguments.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The room.
    room: String,
    /// The event's body: JSON text, or `-` to read it from stdin.
    json: String,
    /// How long to wait for the server's ack, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
}

pub(crate) async fn run(server: &ServerOptions, args: SendArgs) -> Result<(), Failure> {
    let room = ServerOptions::room(&args.room)?;
    let body = read_body(&args.json)?;
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|timeout| !timeout.is_zero())
        .ok_or_else(|| Failure::input("--timeout must be a positive number of seconds"))?;
    let mut connection = server.start_client()?;
    let result = tokio::time::timeout(timeout, send(&mut connection, room, body)).await;
    let why = connection
        .client
        .last_error()
        .map_or(String::new(), |why| format!(" (last error: {why})"));
    connection.close().await;
    match result {
        Ok(result) => result,
        Err(_) => Err(Failure::timed_out(format!(
            "not acknowledged within {} s{why}; the event may still have been stored",
            args.timeout
        ))),
    }
}

async fn send(
    connection: &mut crate::connect::Connection,
    room: RoomName,
    body: Json,
) -> Result<(), Failure> {
    connection.client.join(room.clone(), Json::null());
    let id = connection
        .client
        .publish(room.clone(), body)
        .await
        .map_err(|err| Failure::input(format!("cannot publish: {err}")))?;
    loop {
        match connection.next(&room).await? {
            ClientEvent::Acked {
                room: acked_room,
                id: acked,
                seq,
            } if acked == id => {
                let line = AckLine {
                    room: &acked_room,
                    id: &acked,
                    seq,
                };
                output::line(&serde_json::to_string(&line).expect("plain data serializes"));
                return Ok(());
            }
            ClientEvent::PublishFailed {
                id: failed,
                code,
                message,
                ..
            } if failed == id => return Err(Failure::refused(code, message)),
            // A WebSocket server refuses a frame over its limit without reading it, so the
            // `error` names neither room nor id; the publish is the only frame here that large.
            ClientEvent::Error {
                code: code @ (ErrorCode::FrameTooLarge | ErrorCode::BodyTooLarge),
                message,
                room: None,
            } => return Err(Failure::refused(code, message)),
            ClientEvent::Expired { id: expired, .. } if expired == id => {
                return Err(Failure::timed_out(
                    "the publish expired in the outbox before the server took it",
                ));
            }
            _ => {}
        }
    }
}

/// What `send` prints once acked (fields in this order).
#[derive(serde::Serialize)]
struct AckLine<'a> {
    room: &'a RoomName,
    id: &'a EventId,
    seq: u64,
}

/// The body from the argument, or stdin for `-`, checked to be JSON.
fn read_body(argument: &str) -> Result<Json, Failure> {
    let text = if argument == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| Failure::input(format!("cannot read the body from stdin: {err}")))?;
        text
    } else {
        argument.to_owned()
    };
    Json::from_text(text.trim())
        .map_err(|err| Failure::input(format!("the body is not valid JSON: {err}")))
}
