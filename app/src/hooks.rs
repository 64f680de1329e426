//! Hooks: [`use_room`] wraps the SDK for one room and turns its events into signals;
//! [`use_interval`] and [`use_activity`] are the small timers the views need.
//!
//! Every hook cleans up what it started when its owner is disposed (a room view is rebuilt when
//! the room changes, which closes the old client).

use std::time::Duration;

use chorus_sdk::client::ClientEvent;
use chorus_sdk::time::Instant;
use chorus_sdk::web::{BrowserClient, ClientConfig, ConnectionState};
use chorus_sdk::wire::RoomName;
use leptos::prelude::*;

use crate::model::{self, Activity, FollowUp, RoomModel};
use crate::session::{self, Session};

/// How many history events a join or reset shows.
const HISTORY_PAGE: u64 = 50;

/// The current time for countdowns. Views read the clock only through this function.
#[allow(clippy::disallowed_methods)] // Hooks are the app's driver: they own the clock.
pub fn now() -> Instant {
    Instant::now()
}

/// Calls `tick` every `period` until the owner is disposed.
pub fn use_interval(period: Duration, tick: impl Fn() + 'static) {
    if let Ok(handle) = set_interval_with_handle(tick, period) {
        on_cleanup(move || handle.clear());
    }
}

/// One room, live: what to show (signals) and what the user can do (methods).
#[derive(Clone, Copy, Debug)]
pub struct RoomHandle {
    /// The room.
    pub room: StoredValue<RoomName>,
    /// Feed, presence, typing and notice.
    pub model: RwSignal<RoomModel>,
    /// The connection state.
    pub state: RwSignal<ConnectionState>,
    /// Publishes waiting for their ack.
    pub queued: RwSignal<usize>,
    client: StoredValue<Option<BrowserClient>, LocalStorage>,
}

impl RoomHandle {
    /// Publishes a message; it shows as pending at once and is kept until acked, even offline.
    pub fn send(&self, name: &str, text: &str) {
        let room = self.room.get_value();
        self.client.with_value(|client| {
            if let Some(client) = client
                && let Err(error) = client.publish(room, model::message_body(name, text))
            {
                self.model
                    .update(|m| m.notice = Some(format!("Not sent: {error}")));
            }
        });
    }

    /// Says whether this user is typing (the SDK throttles and expires it).
    pub fn typing(&self, on: bool) {
        let room = self.room.get_value();
        self.client.with_value(|client| {
            if let Some(client) = client {
                client.set_typing(room, on);
            }
        });
    }

    /// Announces this tab's activity in the room's presence.
    pub fn set_activity(&self, activity: Activity) {
        let room = self.room.get_value();
        self.client.with_value(|client| {
            if let Some(client) = client {
                client.set_presence(room, model::presence_meta(activity));
            }
        });
    }
}

/// Connects to the server as `session`, joins `room` and keeps the returned signals up to date
/// until the calling component is disposed (then the client is closed).
///
/// `url` is the server's origin; the outbox and remembered transport are kept in
/// `localStorage` under a per-user prefix, so a reload while offline loses nothing.
pub fn use_room(url: &str, session: &Session, room: RoomName) -> RoomHandle {
    let handle = RoomHandle {
        room: StoredValue::new(room.clone()),
        model: RwSignal::new(RoomModel::default()),
        state: RwSignal::new(ConnectionState::Connecting {
            transport: chorus_sdk::client::Transport::WebSocket,
        }),
        queued: RwSignal::new(0),
        client: StoredValue::new_local(None),
    };
    let token = session.token.clone();
    let on_event = move |event: ClientEvent| {
        match &event {
            // `try_*`: the client's last events (on close) may outlive this view's signals.
            ClientEvent::State(state) => _ = handle.state.try_set(state.clone()),
            ClientEvent::Outbox { queued } => _ = handle.queued.try_set(*queued),
            _ => {}
        }
        let Some(room) = handle.room.try_get_value() else {
            return;
        };
        let follow_up = handle
            .model
            .try_update(|model| model.apply(&room, &event))
            .unwrap_or(FollowUp::None);
        if let FollowUp::FetchHistory { up_to } = follow_up {
            let up_to = up_to.or_else(|| {
                handle
                    .client
                    .try_with_value(|c| c.as_ref().and_then(|c| c.cursor(&room)).map(|c| c.seq))
                    .flatten()
            });
            let token = token.clone();
            leptos::task::spawn_local(async move {
                let page = session::history(&token, &room, up_to, HISTORY_PAGE).await;
                // The view may be gone by the time the page arrives.
                _ = handle.model.try_update(|m| match page {
                    Ok(page) => m.add_history(&page.events),
                    Err(why) => m.notice = Some(format!("History unavailable: {why}")),
                });
            });
        }
    };
    let prefix = format!("chorus-app.{}.", session.user);
    match BrowserClient::start(
        url,
        session.token.clone(),
        ClientConfig::default(),
        prefix,
        on_event,
    ) {
        Ok(client) => {
            handle.state.set(client.state());
            client.join(room, model::presence_meta(Activity::Active));
            handle.queued.set(client.outbox_len());
            handle.client.set_value(Some(client));
        }
        Err(error) => handle
            .model
            .update(|m| m.notice = Some(format!("Cannot start: {error}"))),
    }
    on_cleanup(move || {
        handle.client.update_value(|client| {
            if let Some(client) = client.take() {
                client.close();
            }
        });
    });
    handle
}

/// Tracks this tab's activity (input, visibility) and announces changes through `room`.
pub fn use_activity(room: RoomHandle) -> ReadSignal<Activity> {
    let (activity, set_activity) = signal(Activity::Active);
    let last_input = StoredValue::new(js_sys::Date::now());
    let update = move || {
        let hidden = document().hidden();
        let idle_ms = (js_sys::Date::now() - last_input.get_value()).max(0.0) as u64;
        let now = Activity::of_tab(hidden, idle_ms);
        if now != activity.get_untracked() {
            set_activity.set(now);
            room.set_activity(now);
        }
    };
    let on_input = move || {
        last_input.set_value(js_sys::Date::now());
        update();
    };
    let handles = [
        window_event_listener(leptos::ev::keydown, move |_| on_input()),
        window_event_listener(leptos::ev::pointerdown, move |_| on_input()),
        window_event_listener(leptos::ev::pointermove, move |_| on_input()),
    ];
    let visibility = window_event_listener_untyped("visibilitychange", move |_| update());
    on_cleanup(move || {
        for handle in handles {
            handle.remove();
        }
        visibility.remove();
    });
    use_interval(Duration::from_secs(5), update);
    activity
}
