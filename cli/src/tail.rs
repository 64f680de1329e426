//! `chorus tail ROOM`: the room's events as JSON lines on stdout, each exactly once and in
//! order, resuming after the last event an earlier run printed (its cursor is saved per
//! server and room after every line, see `state.rs`).
//!
//! The first run (no saved cursor) starts at the room's live head; `--from-start` starts at
//! the oldest event the server keeps. When the server cannot serve the saved cursor (history
//! trimmed by retention, rebuilt), its `reset` is said on stderr and the tail goes on from the
//! head. It must never print anything but events on stdout.

use chorus_sdk::client::ClientEvent;
use chorus_sdk::wire::{self, Cursor, EventsPage, Json, RoomName};
use clap::Args;

use crate::connect::{self, Failure, ServerOptions};
use crate::output;
use crate::state::CursorFile;

/// `chorus tail` arguments.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The room.
    room: String,
    /// Start at the oldest event the server still keeps, whatever was saved.
    #[arg(long, conflicts_with = "no_resume")]
    from_start: bool,
    /// Start at the room's live head and save no cursor.
    #[arg(long)]
    no_resume: bool,
    /// Exit after printing this many events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

pub(crate) async fn run(server: &ServerOptions, args: TailArgs) -> Result<(), Failure> {
    let room = ServerOptions::room(&args.room)?;
    let base = server.base_url()?;
    let state_dir = server
        .state
        .clone()
        .unwrap_or_else(crate::default_state_dir);
    let file = (!args.no_resume).then(|| CursorFile::new(&state_dir, &base, &room));
    let start = if args.from_start {
        Some(oldest_kept(server, &room).await?)
    } else {
        match &file {
            Some(file) => file.load()?,
            None => None,
        }
    };
    if let Some(file) = &file {
        server.status(&format!("cursor kept in {}", file.path().display()));
    }
    if args.limit == Some(0) {
        return Ok(());
    }
    let mut connection = server.start_client()?;
    connection
        .client
        .join_from(room.clone(), Json::null(), start);
    let mut tail = Tail {
        room,
        file,
        epoch: None,
        printed: 0,
        limit: args.limit,
    };
    let stop = connect::stop_requested();
    tokio::pin!(stop);
    let result = loop {
        let event = tokio::select! {
            event = connection.next(&tail.room) => event,
            () = &mut stop => break Ok(()),
        };
        match event.and_then(|event| tail.handle(server, event)) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(failure) => break Err(failure),
        }
    };
    connection.close().await;
    result
}

/// What a running tail keeps.
struct Tail {
    room: RoomName,
    /// Where the cursor is saved (`None` with `--no-resume`).
    file: Option<CursorFile>,
    /// The epoch of the room's history the events are in (from `joined` or `reset`).
    epoch: Option<u64>,
    printed: u64,
    limit: Option<u64>,
}

impl Tail {
    /// Handles one event; `Ok(false)` when the tail is done (limit reached, stdout closed).
    fn handle(&mut self, server: &ServerOptions, event: ClientEvent) -> Result<bool, Failure> {
        match event {
            ClientEvent::Joined { room, cursor } if room == self.room => {
                server.status(&format!(
                    "following {room} after seq {} (epoch {})",
                    cursor.seq, cursor.epoch
                ));
                self.epoch = Some(cursor.epoch);
                self.save(cursor)?;
            }
            ClientEvent::Reset {
                room,
                reason,
                cursor,
            } if room == self.room => {
                // Always said, even with --quiet: events were lost to this reader.
                output::stderr(&format!(
                    "the history of {room} cannot be resumed from the saved cursor ({}): \
                     events after it are no longer kept; going on from seq {} (epoch {})",
                    reason.as_str(),
                    cursor.seq,
                    cursor.epoch
                ));
                self.epoch = Some(cursor.epoch);
                self.save(cursor)?;
            }
            ClientEvent::Event { event, .. } if event.room == self.room => {
                if !output::line(&wire::json::to_string(&event)) {
                    return Ok(false);
                }
                if let (Some(epoch), Some(seq)) = (self.epoch, event.seq) {
                    self.save(Cursor { epoch, seq })?;
                }
                self.printed += 1;
                if self.limit.is_some_and(|limit| self.printed >= limit) {
                    return Ok(false);
                }
            }
            _ => {}
        }
        Ok(true)
    }

    fn save(&self, cursor: Cursor) -> Result<(), Failure> {
        match &self.file {
            Some(file) => file.save(cursor),
            None => Ok(()),
        }
    }
}

/// The cursor just before the oldest event the server keeps in `room` (one history page read
/// tells the epoch and the oldest seq).
async fn oldest_kept(server: &ServerOptions, room: &RoomName) -> Result<Cursor, Failure> {
    let (api, token) = server.api_with_token()?;
    let path = wire::events_path(room, 0, 1);
    let answer = connect::request(&api, "GET", &path, Some(&token), None).await?;
    if answer.status != 200 {
        return Err(Failure::answered(&answer));
    }
    let page: EventsPage = wire::json::from_str(&answer.body)
        .map_err(|err| Failure::io(format!("the server's history page does not read: {err}")))?;
    Ok(Cursor {
        epoch: page.epoch,
        seq: page.oldest.saturating_sub(1),
    })
}
