//! Hooks: [`use_room`] shows one room through the app's client (see [`crate::chorus`]) as
//! read-only signals and follows a reactive room name; [`use_activity_feed`] lists a room's
//! newest messages from the filtered history; [`use_interval`] and [`use_activity`] are the
//! small timers the views need.
//!
//! Every hook cleans up what it started when its owner is disposed (a room view leaves its room,
//! unless another view still shows it).

use std::time::Duration;

use chorus_sdk::client::ClientEvent;
use chorus_sdk::client::live_cursors::LiveCursors;
use chorus_sdk::time::Instant;
use chorus_sdk::web::ConnectionState;
use chorus_sdk::wire::{EventId, Json, LockChange, LockFence, LockInfo, PresenceUser, RoomName};
use leptos::prelude::*;

use crate::chorus::{Chorus, use_chorus};
use crate::model::{self, Activity, FollowUp, Message, RoomModel};
use crate::session;

/// How many history events a join or reset shows.
const HISTORY_PAGE: u64 = 50;

/// The lock that guards writing in a room (the composer): one writer at a time.
pub const EDIT_LOCK: &str = "composer";

/// How long an edit lock lasts without a renewal (the SDK renews it at half of it while the
/// tab holds it, so a closed or frozen tab frees it within this).
const EDIT_LOCK_TTL: Duration = Duration::from_secs(30);

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

/// One room, live: what to show (read-only signals, one per part, so a typing update does not
/// touch the feed) and what the user can do (methods). `Copy`.
#[derive(Clone, Copy, Debug)]
pub struct RoomHandle {
    room: Signal<RoomName>,
    messages: RwSignal<Vec<Message>>,
    presence: RwSignal<Vec<PresenceUser>>,
    typing: RwSignal<Vec<String>>,
    cursors: RwSignal<LiveCursors>,
    notice: RwSignal<Option<String>>,
    /// The locks held in the room (every user's), as the server last said.
    locks: RwSignal<Vec<LockInfo>>,
    /// This tab's grant of the edit lock, while it holds it.
    own_lock: RwSignal<Option<LockInfo>>,
    /// The lock request waiting for its answer.
    lock_request: StoredValue<Option<EventId>>,
    /// The reducer's whole state, not reactive: each event updates it, then only the signal
    /// of the part that changed is set.
    model: StoredValue<RoomModel, LocalStorage>,
    chorus: Chorus,
}

impl RoomHandle {
    /// The room shown.
    pub fn room(&self) -> Signal<RoomName> {
        self.room
    }

    /// The feed: confirmed messages in seq order, then pending ones.
    pub fn messages(&self) -> ReadSignal<Vec<Message>> {
        self.messages.read_only()
    }

    /// Who is here.
    pub fn presence(&self) -> ReadSignal<Vec<PresenceUser>> {
        self.presence.read_only()
    }

    /// The users typing now (ids, never this user).
    pub fn typing(&self) -> ReadSignal<Vec<String>> {
        self.typing.read_only()
    }

    /// The other tabs' live cursors in the room (never this tab's).
    pub fn cursors(&self) -> ReadSignal<LiveCursors> {
        self.cursors.read_only()
    }

    /// Moves this tab's live cursor (`null` hides it); the SDK sends at most one frame per
    /// 50 ms, the last value always among them, and sets it again after a reconnect.
    pub fn set_cursor(&self, value: Json) {
        let room = self.room.get_untracked();
        self.chorus
            .with_client(|client| client.set_cursor(room, value));
    }

    /// A short notice to show (after a reset, a refused publish).
    pub fn notice(&self) -> ReadSignal<Option<String>> {
        self.notice.read_only()
    }

    /// The locks held in the room now (every user's, this tab's too).
    pub fn locks(&self) -> ReadSignal<Vec<LockInfo>> {
        self.locks.read_only()
    }

    /// This tab's grant of the edit lock ([`EDIT_LOCK`]), while it holds it.
    pub fn own_lock(&self) -> ReadSignal<Option<LockInfo>> {
        self.own_lock.read_only()
    }

    /// Asks for the edit lock (renewed automatically while held); refused with a notice when
    /// someone else holds it.
    pub fn take_lock(&self) {
        let room = self.room.get_untracked();
        let name = EventId::parse(EDIT_LOCK).expect("a valid lock name");
        let asked = self
            .chorus
            .with_client(|client| client.lock(room, name, EDIT_LOCK_TTL, None, true));
        match asked {
            Some(Ok(id)) => self.lock_request.set_value(Some(id)),
            Some(Err(error)) => self.set_notice(Some(format!("Not locked: {error}"))),
            None => {}
        }
    }

    /// Releases this tab's edit lock.
    pub fn release_lock(&self) {
        let Some(grant) = self.own_lock.get_untracked() else {
            return;
        };
        let room = self.room.get_untracked();
        let asked = self
            .chorus
            .with_client(|client| client.unlock(room, grant.name, grant.token));
        match asked {
            Some(Ok(id)) => self.lock_request.set_value(Some(id)),
            Some(Err(error)) => self.set_notice(Some(format!("Not released: {error}"))),
            None => {}
        }
    }

    /// Takes the room's locks as the server sent them (opaque JSON the SDK passed through).
    fn show_locks(&self, locks: &chorus_sdk::wire::Json) {
        let locks = LockInfo::list(locks).unwrap_or_default();
        let own = self.own_lock.get_untracked();
        // This tab's grant is gone once the room's list no longer has its token.
        if let Some(own) = own
            && !locks
                .iter()
                .any(|l| l.name == own.name && l.token == own.token)
        {
            self.own_lock.set(None);
        }
        self.locks.set(locks);
    }

    /// Answers to this tab's lock requests: the grant (or its end), or why it was refused.
    fn lock_answered(&self, event: &ClientEvent) {
        match event {
            ClientEvent::LockDone {
                id, change, lock, ..
            } => {
                let ours = self.lock_request.with_value(|r| r.as_ref() == Some(id));
                let renewal = self
                    .own_lock
                    .with_untracked(|own| own.as_ref().is_some_and(|o| o.token == lock.token));
                if !ours && !renewal {
                    return;
                }
                if ours {
                    self.lock_request.set_value(None);
                }
                self.own_lock.set(match change {
                    LockChange::Granted | LockChange::Renewed => Some(lock.clone()),
                    LockChange::Released | LockChange::Expired => None,
                });
            }
            ClientEvent::LockFailed { id, message, .. }
                if self.lock_request.with_value(|r| r.as_ref() == Some(id)) =>
            {
                self.lock_request.set_value(None);
                self.set_notice(Some(format!("Not locked: {message}")));
            }
            _ => {}
        }
    }

    /// The connection state (the app's one client).
    pub fn state(&self) -> ReadSignal<ConnectionState> {
        self.chorus.state()
    }

    /// Publishes waiting for their ack (the app's one client, every room).
    pub fn queued(&self) -> ReadSignal<usize> {
        self.chorus.queued()
    }

    /// Hides the notice.
    pub fn dismiss_notice(&self) {
        self.model.update_value(|m| m.notice = None);
        self.notice.set(None);
    }

    /// Publishes a message; it shows as pending at once and is kept until acked, even offline.
    pub fn send(&self, name: &str, text: &str) {
        let room = self.room.get_untracked();
        let body = model::message_body(name, text);
        // Written under the edit lock when this tab holds it: the server refuses the message
        // (`lock_lost`) if the grant lapsed meanwhile and someone else took over.
        let fence = self.own_lock.get_untracked().map(|grant| LockFence {
            name: grant.name,
            token: grant.token,
        });
        let sent = self.chorus.with_client(|client| match fence {
            Some(fence) => client.publish_fenced(room, body, fence),
            None => client.publish(room, body),
        });
        if let Some(Err(error)) = sent {
            self.set_notice(Some(format!("Not sent: {error}")));
        }
    }

    /// Says whether this user is typing (the SDK throttles and expires it).
    pub fn set_typing(&self, on: bool) {
        let room = self.room.get_untracked();
        self.chorus
            .with_client(|client| client.set_typing(room, on));
    }

    /// Announces this tab's activity in the room's presence.
    pub fn set_activity(&self, activity: Activity) {
        let room = self.room.get_untracked();
        self.chorus
            .with_client(|client| client.set_presence(room, model::presence_meta(activity)));
    }

    fn set_notice(&self, notice: Option<String>) {
        _ = self
            .model
            .try_update_value(|m| m.notice.clone_from(&notice));
        _ = self.notice.try_set(notice);
    }

    /// Folds one client event into the model and sets the signal of the part it changed.
    fn apply(&self, event: &ClientEvent) {
        let Some(room) = self.room.try_get_untracked() else {
            return;
        };
        let Some(follow_up) = self.model.try_update_value(|m| m.apply(&room, event)) else {
            return;
        };
        let concerns_room = |r: &RoomName| r == &room;
        match event {
            ClientEvent::Locks { room: r, locks } if concerns_room(r) => self.show_locks(locks),
            ClientEvent::LockDone { room: r, .. } | ClientEvent::LockFailed { room: r, .. }
                if concerns_room(r) =>
            {
                self.lock_answered(event);
            }
            _ => {}
        }
        self.model.with_value(|m| match event {
            ClientEvent::Presence { room: r, .. } if concerns_room(r) => {
                self.presence.set(m.presence.clone());
            }
            ClientEvent::Typing { room: r, .. } if concerns_room(r) => {
                self.typing.set(m.typing.clone());
            }
            ClientEvent::Cursors {
                room: r,
                cursors,
                whole,
            } if concerns_room(r) => {
                self.cursors.update(|kept| {
                    kept.apply(cursors, *whole);
                });
            }
            ClientEvent::Pending { room: r, .. }
            | ClientEvent::PublishFailed { room: r, .. }
            | ClientEvent::Expired { room: r, .. }
            | ClientEvent::Reset { room: r, .. }
                if concerns_room(r) =>
            {
                self.messages.set(m.messages.clone());
                self.notice.set(m.notice.clone());
            }
            ClientEvent::Event { event, .. } if concerns_room(&event.room) => {
                self.messages.set(m.messages.clone());
            }
            _ => {}
        });
        if let FollowUp::FetchHistory { up_to } = follow_up {
            self.fetch_history(room, up_to);
        }
    }

    fn fetch_history(self, room: RoomName, up_to: Option<u64>) {
        let up_to = up_to.or_else(|| self.chorus.cursor(&room).map(|c| c.seq));
        let token = self.chorus.session().token;
        leptos::task::spawn_local(async move {
            let page = session::history(&token, &room, up_to, HISTORY_PAGE).await;
            // The view may be gone, or on another room, by the time the page arrives.
            if self.room.try_get_untracked().as_ref() != Some(&room) {
                return;
            }
            match page {
                Ok(page) => {
                    _ = self.model.try_update_value(|m| m.add_history(&page.events));
                    if let Some(messages) = self.model.try_with_value(|m| m.messages.clone()) {
                        _ = self.messages.try_set(messages);
                    }
                }
                Err(why) => self.set_notice(Some(format!("History unavailable: {why}"))),
            }
        });
    }

    /// Starts showing `room`: the room joined, who is there already, and this tab's publishes
    /// in it that are not confirmed yet (their `Pending` events came while another room was
    /// shown, or before this view existed).
    fn show(&self, room: &RoomName) {
        // The fresh model first: joining may deliver the client's queued events at once, and
        // they belong in it.
        self.model.set_value(RoomModel::default());
        self.messages.set(Vec::new());
        self.typing.set(Vec::new());
        self.notice.set(None);
        self.own_lock.set(None);
        self.lock_request.set_value(None);
        // The room's cursors come with its `joined` (a room another view holds already shows
        // them from the next change on).
        self.cursors.set(LiveCursors::default());
        self.chorus
            .hold(room, model::presence_meta(Activity::Active));
        if let Some(locks) = self.chorus.with_client(|c| c.locks(room)) {
            self.show_locks(&locks);
        }
        let present = self.chorus.presence(room);
        let waiting = self
            .chorus
            .with_client(|c| c.unconfirmed(room))
            .unwrap_or_default();
        self.model.update_value(|m| {
            m.presence.clone_from(&present);
            for record in waiting {
                let pending = ClientEvent::Pending {
                    room: record.room,
                    id: record.id,
                    body: record.body,
                };
                // Already shown ones (delivered while joining) are skipped.
                m.apply(room, &pending);
            }
        });
        self.messages
            .set(self.model.with_value(|m| m.messages.clone()));
        self.presence.set(present);
        // A room already joined by another view has no `joined` event coming: load its history now.
        if let Some(cursor) = self.chorus.cursor(room) {
            self.fetch_history(room.clone(), Some(cursor.seq));
        }
    }
}

/// Shows the room named by `room` through the app's client (from
/// [`provide_chorus`](crate::chorus::provide_chorus)) and keeps the returned signals up to date
/// until the calling component is disposed. When `room` changes, the view follows it: the old
/// room is left (unless another view still shows it), the new one joined, its feed loaded from
/// history.
///
/// # Panics
/// Outside a component tree that called [`provide_chorus`](crate::chorus::provide_chorus).
///
/// # Example
///
/// ```no_run
/// use chorus_app::chorus::provide_chorus;
/// use chorus_app::hooks::use_room;
/// use chorus_app::session::Session;
/// use chorus_sdk::wire::RoomName;
/// use leptos::prelude::*;
///
/// #[component]
/// fn Rooms(session: Session) -> impl IntoView {
///     // One client for everything below; every room view shares it.
///     provide_chorus("https://rt.example.com", session);
///     let room = RwSignal::new(RoomName::parse("lobby").unwrap());
///     view! { <Room room=room /> }
/// }
///
/// #[component]
/// fn Room(#[prop(into)] room: Signal<RoomName>) -> impl IntoView {
///     let handle = use_room(room); // follows `room` when it changes
///     let (messages, typing) = (handle.messages(), handle.typing());
///     view! {
///         <p>{move || messages.read().len()} " messages, " {move || typing.read().len()} " typing"</p>
///         <button on:click=move |_| handle.send("Ana", "hello")>"Say hello"</button>
///     }
/// }
/// ```
pub fn use_room(room: Signal<RoomName>) -> RoomHandle {
    let chorus = use_chorus();
    let handle = RoomHandle {
        room,
        messages: RwSignal::new(Vec::new()),
        presence: RwSignal::new(Vec::new()),
        typing: RwSignal::new(Vec::new()),
        cursors: RwSignal::new(LiveCursors::default()),
        notice: RwSignal::new(chorus.problem().get_untracked()),
        locks: RwSignal::new(Vec::new()),
        own_lock: RwSignal::new(None),
        lock_request: StoredValue::new(None),
        model: StoredValue::new_local(RoomModel::default()),
        chorus,
    };
    let listener = chorus.listen(move |event| handle.apply(event));
    let first = room.get_untracked();
    handle.show(&first);
    // The room joined now; changes of `room` move the view to the new one.
    let shown = StoredValue::new(first);
    Effect::watch(
        move || room.get(),
        move |next, _, _| {
            let previous = shown.get_value();
            if &previous != next {
                chorus.release(&previous);
                shown.set_value(next.clone());
                handle.show(next);
            }
        },
        false,
    );
    on_cleanup(move || {
        chorus.unlisten(listener);
        if let Some(room) = shown.try_get_value() {
            chorus.release(&room);
        }
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

/// One row of the activity panel: the event's seq, its author's name and its text.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityRow {
    /// The event's seq (the row's key).
    pub seq: u64,
    /// Who wrote it (the body's `name`, else the sender).
    pub name: String,
    /// What it says.
    pub text: String,
}

/// How many events the activity panel lists.
const ACTIVITY_COUNT: u64 = 10;

/// The newest messages of `room`, newest first, from the stored history filtered by the
/// server (type [`model::MESSAGE_TYPE`], and only the signed-in user's while `only_mine`);
/// fetched again whenever the room, `only_mine` or `newest` (the newest stored seq the live feed
/// has seen) changes. The second signal is why the last fetch failed, if it did.
pub fn use_activity_feed(
    room: Signal<RoomName>,
    only_mine: Signal<bool>,
    newest: Signal<u64>,
) -> (ReadSignal<Vec<ActivityRow>>, ReadSignal<Option<String>>) {
    let chorus = use_chorus();
    let rows = RwSignal::new(Vec::new());
    let error = RwSignal::new(None);
    Effect::new(move |_| {
        let room = room.get();
        let mine = only_mine.get();
        newest.track();
        let session = chorus.session();
        leptos::task::spawn_local(async move {
            let user = mine.then_some(session.user.as_str());
            let page = session::activity(
                &session.token,
                &room,
                model::MESSAGE_TYPE,
                user,
                ACTIVITY_COUNT,
            )
            .await;
            match page {
                Ok(page) => {
                    let found = page
                        .events
                        .iter()
                        .rev()
                        .map(|event| {
                            let (name, text) = model::body_fields(&event.body, &event.from);
                            ActivityRow {
                                seq: event.seq.unwrap_or_default(),
                                name,
                                text,
                            }
                        })
                        .collect();
                    _ = rows.try_set(found);
                    _ = error.try_set(None);
                }
                Err(why) => _ = error.try_set(Some(why)),
            }
        });
    });
    (rows.read_only(), error.read_only())
}
