//! `chorus presence ROOM`: who is in a room, once (the presence endpoint's JSON,
//! `{"room":...,"version":...,"users":[...]}`), or with `--watch` as JSON lines
//! `{"room":...,"users":[...]}`, the first the full list on joining, then one per change.
//!
//! Watching joins the room (with the presence meta `{"watcher":"chorus-cli"}`), so the
//! watcher is itself among the users it prints; asking once does not join.

use chorus_sdk::client::ClientEvent;
use chorus_sdk::wire::{self, Json, PresenceBody, PresenceUser, RoomName};
use clap::Args;

use crate::connect::{self, Failure, ServerOptions};
use crate::output;

/// `chorus presence` arguments.
#[derive(Debug, Args)]
pub(crate) struct PresenceArgs {
    /// The room.
    room: String,
    /// Keep printing the list each time it changes (until Ctrl-C).
    #[arg(long)]
    watch: bool,
}

/// One line of `--watch` (fields in this order).
#[derive(serde::Serialize)]
struct PresenceLine<'a> {
    room: &'a RoomName,
    users: &'a [PresenceUser],
}

pub(crate) async fn run(server: &ServerOptions, args: PresenceArgs) -> Result<(), Failure> {
    let room = ServerOptions::room(&args.room)?;
    if !args.watch {
        let (api, token) = server.api_with_token()?;
        let path = format!("/v1/rooms/{}/presence", wire::percent_encode(room.as_str()));
        let answer = connect::request(&api, "GET", &path, Some(&token), None).await?;
        if answer.status != 200 {
            return Err(Failure::answered(&answer));
        }
        let body: PresenceBody = wire::json::from_str(&answer.body).map_err(|err| {
            Failure::io(format!("the server's presence answer does not read: {err}"))
        })?;
        output::line(&wire::json::to_string(&body));
        return Ok(());
    }
    let mut connection = server.start_client()?;
    let meta = Json::from_text(r#"{"watcher":"chorus-cli"}"#).expect("valid JSON");
    connection.client.join(room.clone(), meta);
    let stop = connect::stop_requested();
    tokio::pin!(stop);
    let result = loop {
        let event = tokio::select! {
            event = connection.next(&room) => event,
            () = &mut stop => break Ok(()),
        };
        match event {
            Ok(ClientEvent::Presence {
                room: changed,
                users,
            }) if changed == room => {
                let line = PresenceLine {
                    room: &changed,
                    users: &users,
                };
                let line = serde_json::to_string(&line).expect("plain data serializes");
                if !output::line(&line) {
                    break Ok(());
                }
            }
            Ok(_) => {}
            Err(failure) => break Err(failure),
        }
    };
    connection.close().await;
    result
}
