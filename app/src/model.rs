//! What the app shows, computed from SDK events with no DOM and no clock: the message feed,
//! presence avatars, the typing sentence and the connection badge. Pure functions and one
//! reducer ([`RoomModel::apply`]), tested natively; components only render these.

use chorus_sdk::client::{
    Badge, ClientEvent, ConnectionState, StreamStatus, StreamView, Transport,
};
use chorus_sdk::wire::{
    self as wire, Event, EventId, Json, PresenceUser, Progress, ResetReason, RoomName,
};
use serde_json::Value;

/// How long without input before a tab counts as idle.
pub const IDLE_AFTER_MS: u64 = 60_000;

/// Avatars shown before the rest fold into "+N more".
pub const MAX_AVATARS: usize = 5;

/// Where a message is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// In the outbox: shown at once, not yet acknowledged by the server.
    Pending,
    /// Stored by the server at this seq (or received from someone else).
    Confirmed,
    /// Refused or expired; the sentence says why.
    Failed(String),
    /// A stream someone produces, this many chunks so far (its stored result confirms it).
    Streaming(u64),
}

/// One message in the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The publish id (unique per room; the feed's key).
    pub id: EventId,
    /// The room's seq, once known.
    pub seq: Option<u64>,
    /// The author's display name.
    pub name: String,
    /// The text.
    pub text: String,
    /// Pending, confirmed or failed.
    pub delivery: Delivery,
}

/// The event type of the app's messages (the body's `"type"`, what the activity panel filters).
pub const MESSAGE_TYPE: &str = "message";

/// The body the app publishes: `{"type": "message", "name": ..., "text": ...}`.
pub fn message_body(name: &str, text: &str) -> Json {
    Json::from_value(&serde_json::json!({ "type": MESSAGE_TYPE, "name": name, "text": text }))
}

/// What a banner shows of a backend notice: its body's `"text"` when it has one, else the
/// body's JSON text.
pub fn notice_text(notice: &chorus_sdk::wire::Notice) -> String {
    let value: Value = notice.body.decode().unwrap_or(Value::Null);
    match value.get("text").and_then(Value::as_str) {
        Some(text) => text.to_owned(),
        None => match value {
            Value::String(text) => text,
            _ => notice.body.as_text().to_owned(),
        },
    }
}

/// The change from `old` to `new` as one splice: where (in Yjs text offsets, UTF-16 code
/// units by default in yrs), how many to remove there, and what to insert.
pub fn text_splice<'n>(old: &str, new: &'n str) -> (u32, u32, &'n str) {
    let prefix: usize = old
        .chars()
        .zip(new.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let (old_rest, new_rest) = (&old[prefix..], &new[prefix..]);
    let suffix: usize = old_rest
        .chars()
        .rev()
        .zip(new_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>()
        .min(old_rest.len())
        .min(new_rest.len());
    let removed = &old_rest[..old_rest.len() - suffix];
    let inserted = &new_rest[..new_rest.len() - suffix];
    let units = |s: &str| s.encode_utf16().count() as u32;
    (units(&old[..prefix]), units(removed), inserted)
}

/// Whether an event belongs in the feed: every one but the shared notes' document updates
/// (`crate::shared_notes` applies those).
fn in_feed(body: &Json) -> bool {
    body.event_type().as_deref() != Some(chorus_sdk::docs::DOC_EVENT_TYPE)
}

/// What a message body shows: its `name` (else `fallback_name`) and its `text` (else its JSON).
pub fn body_fields(body: &Json, fallback_name: &str) -> (String, String) {
    let value: Value = body.decode().unwrap_or(Value::Null);
    let field = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    (
        field("name").unwrap_or_else(|| fallback_name.to_owned()),
        field("text").unwrap_or_else(|| body.as_text().to_owned()),
    )
}

/// Everything the app shows about one room, kept up to date by [`RoomModel::apply`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomModel {
    /// The feed, oldest first: confirmed messages in seq order, then pending ones.
    pub messages: Vec<Message>,
    /// Who is here (one entry per user, all tabs folded in).
    pub presence: Vec<PresenceUser>,
    /// Ids of the users typing right now (never this user).
    pub typing: Vec<String>,
    /// A short notice to show (e.g. after a reset); cleared by the app after a while.
    pub notice: Option<String>,
    /// The streams open in the room, folded from their steps (each is also a feed message).
    pub streams: Vec<StreamView>,
}

/// What the app must do after [`RoomModel::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowUp {
    /// Nothing.
    None,
    /// Fetch the latest history (after a join or a reset) and [`RoomModel::add_history`].
    FetchHistory {
        /// The seq live events follow from, when the event said; otherwise the client's cursor.
        up_to: Option<u64>,
    },
}

impl RoomModel {
    /// Folds one SDK event into the model. Events for other rooms are ignored.
    pub fn apply(&mut self, room: &RoomName, event: &ClientEvent) -> FollowUp {
        match event {
            ClientEvent::Joined { room: r, cursor } if r == room => {
                return FollowUp::FetchHistory {
                    up_to: Some(cursor.seq),
                };
            }
            ClientEvent::Pending { room: r, id, body }
                if r == room && in_feed(body) && !self.messages.iter().any(|m| &m.id == id) =>
            {
                let (name, text) = body_fields(body, "me");
                self.messages.push(Message {
                    id: id.clone(),
                    seq: None,
                    name,
                    text,
                    delivery: Delivery::Pending,
                });
            }
            ClientEvent::Event { event, .. } if &event.room == room => self.confirm(event),
            ClientEvent::PublishFailed {
                room: r,
                id,
                message,
                ..
            } if r == room => self.fail(id, message.clone()),
            ClientEvent::Expired { room: r, id } if r == room => {
                self.fail(id, "not delivered within a day; dropped".to_owned())
            }
            ClientEvent::Presence { room: r, users } if r == room => {
                self.presence = users.clone();
            }
            ClientEvent::Typing { room: r, users } if r == room => self.typing = users.clone(),
            ClientEvent::Stream(frame) if &frame.room == room => {
                if let Ok(update) = frame.update() {
                    self.stream(&update);
                }
            }
            ClientEvent::Reset {
                room: r, reason, ..
            } if r == room => {
                self.messages.retain(|m| m.delivery == Delivery::Pending);
                self.notice = Some(match reason {
                    ResetReason::HistoryTrimmed => {
                        "Older messages are gone from the server; the feed was reloaded.".into()
                    }
                    _ => "The room's history was reset; the feed was reloaded.".into(),
                });
                return FollowUp::FetchHistory { up_to: None };
            }
            _ => {}
        }
        FollowUp::None
    }

    /// Adds events read from history (those already shown are skipped).
    pub fn add_history(&mut self, events: &[Event]) {
        for event in events {
            self.confirm(event);
        }
    }

    fn confirm(&mut self, event: &Event) {
        if !in_feed(&event.body) {
            return;
        }
        let (name, text) = body_fields(&event.body, &event.from);
        match self.messages.iter_mut().find(|m| m.id == event.id) {
            Some(message) => {
                if matches!(message.delivery, Delivery::Streaming(_)) {
                    // A stream's stored result: the whole text, as stored.
                    message.text = text;
                }
                message.seq = event.seq;
                message.delivery = Delivery::Confirmed;
            }
            None => self.messages.push(Message {
                id: event.id.clone(),
                seq: event.seq,
                name,
                text,
                delivery: Delivery::Confirmed,
            }),
        }
        // Confirmed messages in seq order, pending ones after them in publish order.
        self.messages
            .sort_by_key(|m| (m.delivery == Delivery::Pending, m.seq.unwrap_or(u64::MAX)));
    }

    /// A stream's step: the stream's feed message grows (a text stream's text so far, a
    /// progress stream's percent and step) until its stored result confirms it.
    fn stream(&mut self, update: &chorus_sdk::wire::StreamUpdate) {
        let at = match self
            .streams
            .iter()
            .position(|s| s.id == update.id && s.from == update.from)
        {
            Some(at) => {
                self.streams[at].apply(update);
                at
            }
            None => {
                self.streams.push(StreamView::new(update));
                self.streams.len() - 1
            }
        };
        let view = &self.streams[at];
        let text = match &view.progress {
            Some(progress) => {
                let progress = wire::json::from_str::<Progress>(progress.as_text());
                let (percent, step) = progress.map_or((0.0, None), |p| (p.percent, p.step));
                format!("{percent:.0}% {}", step.unwrap_or_default())
            }
            None => view.text.clone(),
        };
        let delivery = match &view.status {
            StreamStatus::Open => Delivery::Streaming(view.chunks),
            StreamStatus::Finished(_) => Delivery::Confirmed,
            StreamStatus::Failed { message, .. } => Delivery::Failed(message.clone()),
        };
        let (id, from, ended) = (
            view.id.clone(),
            view.from.clone(),
            view.status != StreamStatus::Open,
        );
        if ended {
            self.streams.remove(at);
        }
        match self.messages.iter_mut().find(|m| m.id == id) {
            // The stored result came first: it stays as it is.
            Some(message) if message.delivery == Delivery::Confirmed => {}
            Some(message) => {
                message.text = text;
                message.delivery = delivery;
            }
            None => {
                let name = self.name_of(&from);
                self.messages.push(Message {
                    id,
                    seq: None,
                    name,
                    text,
                    delivery,
                });
            }
        }
    }

    fn fail(&mut self, id: &EventId, why: String) {
        if let Some(message) = self.messages.iter_mut().find(|m| &m.id == id) {
            message.delivery = Delivery::Failed(why);
        }
    }

    /// A user's display name (from presence), or the id when unknown.
    pub fn name_of(&self, user: &str) -> String {
        display_name(&self.presence, user)
    }
}

/// A user's display name from a presence list, or the id when the user is not in it.
pub fn display_name(presence: &[PresenceUser], user: &str) -> String {
    presence
        .iter()
        .find(|u| u.user == user)
        .and_then(|u| u.name.clone())
        .unwrap_or_else(|| user.to_owned())
}

/// Up to two initials: "Ana Lima" -> "AL", "ben" -> "B", "" -> "?".
pub fn initials(name: &str) -> String {
    let letters: String = name
        .split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect();
    if letters.is_empty() {
        "?".into()
    } else {
        letters
    }
}

/// A stable colour per user id (the same on every page and every visit).
pub fn colour(user: &str) -> String {
    // FNV-1a: tiny, stable across platforms and releases (unlike std's hasher).
    let hash = user.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("hsl({}, 55%, 42%)", hash % 360)
}

/// The typing sentence: "Ana is typing…", "Ana and Ben are typing…", "3 people are typing…".
pub fn typing_sentence(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("{one} is typing…")),
        [one, two] => Some(format!("{one} and {two} are typing…")),
        more => Some(format!("{} people are typing…", more.len())),
    }
}

/// A tab's activity, announced in its presence meta as `"status"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Activity {
    /// Input within the last minute, tab visible.
    Active,
    /// No input for a minute.
    Idle,
    /// The tab is hidden.
    Away,
}

impl Activity {
    /// The tab's activity from whether it is hidden and how long since the last input.
    pub fn of_tab(hidden: bool, since_input_ms: u64) -> Activity {
        if hidden {
            Activity::Away
        } else if since_input_ms >= IDLE_AFTER_MS {
            Activity::Idle
        } else {
            Activity::Active
        }
    }

    /// The name used in presence meta and CSS classes.
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Active => "active",
            Activity::Idle => "idle",
            Activity::Away => "away",
        }
    }

    fn parse(text: &str) -> Option<Activity> {
        [Activity::Active, Activity::Idle, Activity::Away]
            .into_iter()
            .find(|a| a.as_str() == text)
    }
}

/// The presence meta a tab announces.
pub fn presence_meta(activity: Activity) -> Json {
    Json::from_value(&serde_json::json!({ "status": activity.as_str() }))
}

/// One avatar: a user with all their tabs folded in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Avatar {
    /// The user id (the list's key).
    pub user: String,
    /// Display name.
    pub name: String,
    /// Initials shown in the circle.
    pub initials: String,
    /// Background colour.
    pub colour: String,
    /// The most present of the user's tabs.
    pub activity: Activity,
    /// How many tabs the user has here.
    pub tabs: usize,
    /// When the user's oldest tab arrived (ms since the Unix epoch).
    pub since_ms: u64,
}

/// Avatars for a presence list: at most [`MAX_AVATARS`], and how many more are folded away.
pub fn avatars(users: &[PresenceUser]) -> (Vec<Avatar>, usize) {
    let all: Vec<Avatar> = users
        .iter()
        .map(|u| {
            let name = u.name.clone().unwrap_or_else(|| u.user.clone());
            let activity = u
                .conns
                .iter()
                .map(|c| {
                    c.meta
                        .decode::<Value>()
                        .ok()
                        .and_then(|m| m.get("status")?.as_str().and_then(Activity::parse))
                        .unwrap_or(Activity::Active)
                })
                .min()
                .unwrap_or(Activity::Active);
            Avatar {
                user: u.user.clone(),
                initials: initials(&name),
                colour: colour(&u.user),
                name,
                activity,
                tabs: u.conns.len(),
                since_ms: u.conns.iter().map(|c| c.since).min().unwrap_or(0),
            }
        })
        .collect();
    let more = all.len().saturating_sub(MAX_AVATARS);
    (all.into_iter().take(MAX_AVATARS).collect(), more)
}

/// "here for 5 min" style durations for tooltips.
pub fn here_for(since_ms: u64, now_ms: u64) -> String {
    let minutes = now_ms.saturating_sub(since_ms) / 60_000;
    match minutes {
        0 => "here for less than a minute".into(),
        1..=59 => format!("here for {minutes} min"),
        _ => format!("here for {} h {} min", minutes / 60, minutes % 60),
    }
}

/// The connection badge: a class (`live`, `syncing`, `offline`) and its sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadgeView {
    /// `live`, `syncing` or `offline` (also the CSS class).
    pub class: &'static str,
    /// The short label: Live, Syncing, Offline.
    pub label: &'static str,
    /// The detail: transport, retry countdown, pending count.
    pub detail: String,
}

/// The badge for a connection state, `queued` outbox items and, when reconnecting, the
/// milliseconds until the next attempt.
pub fn badge(state: &ConnectionState, queued: usize, retry_in_ms: Option<u64>) -> BadgeView {
    let pending_text = match queued {
        0 => String::new(),
        1 => "1 pending".into(),
        n => format!("{n} pending"),
    };
    let join = |a: String, b: &str| match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a,
        _ => format!("{a} · {b}"),
    };
    let (class, label, detail) = match (state.badge(), state) {
        (Badge::Live, _) => ("live", "Live", "WebSocket".to_owned()),
        (Badge::Offline, _) => ("offline", "Offline", String::new()),
        (
            Badge::Syncing,
            ConnectionState::Connected {
                transport: Transport::Polling,
            },
        ) => ("syncing", "Syncing", "polling".to_owned()),
        (Badge::Syncing, ConnectionState::Reconnecting { .. }) => (
            "syncing",
            "Syncing",
            match retry_in_ms {
                Some(ms) => format!("retry in {} s", ms.div_ceil(1000)),
                None => "reconnecting".to_owned(),
            },
        ),
        (Badge::Syncing, _) => ("syncing", "Syncing", "connecting".to_owned()),
    };
    BadgeView {
        class,
        label,
        detail: join(detail, &pending_text),
    }
}

mod cursors;
pub use cursors::{CursorMark, cursor_marks, cursor_value};

#[cfg(test)]
mod tests;
