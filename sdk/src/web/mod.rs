//! The browser driver (feature `web`, target wasm32): runs the [`Client`] core with the
//! browser's WebSocket, `fetch`, one `setTimeout` armed from `poll_timeout`, `online`/`offline`,
//! `visibilitychange` and `pagehide`/`pageshow` (back/forward cache) events,
//! `crypto.getRandomValues` and `localStorage`.
//!
//! The I/O itself is `platform.js` (a wasm-bindgen snippet): a small class that opens sockets,
//! fetches, arms the timer and listens to the page, and reports everything through one callback
//! (`report`). Every decision stays in Rust; keeping the I/O in JavaScript saves the wasm
//! size of a web-sys binding per browser API and a closure type per callback.
//!
//! Storage is `localStorage`: the outbox is bounded (1 MiB by default) well inside its quota,
//! and its synchronous API lets the core save after every change without an async round trip.
//!
//! [`BrowserClient`] is the Rust API (typed rooms, bodies and [`ClientEvent`]s), used directly by
//! Leptos apps. With feature `js`, `js.rs` exports `WasmClient` to JavaScript: deliberately low
//! level (numbered operations with strings in and JSON answers out, `(kind, payload)` callbacks);
//! the npm package's `src/chorus.js` builds the JS-shaped API (`ChorusClient`, `Room`, promises) on top. Those payload shapes are the JS
//! API's, defined in `events.rs` and typed in `pkg/chorus.d.ts` (they are not wire frames).
//!
//! Callbacks into JS are made only after every borrow of the driver state is released, so a
//! callback may call back into the client.

#[cfg(feature = "js")]
mod events;
#[cfg(feature = "js")]
mod js;
#[cfg(all(feature = "js", feature = "locks"))]
mod js_locks;

#[cfg(feature = "js")]
pub use js::{EventCallback, WasmClient, op};

use crate::text::concat;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;

pub use crate::client::{Badge, ClientConfig, ClientEvent, ConnectionState, TransportMode};
use crate::client::{
    Client, HttpCall, HttpResult, OUTBOX_KEY, Output, PublishError, Restored, TRANSPORT_KEY,
};
use crate::tab_storage::{self as tabs, TabKeys};
use crate::time::Instant;
use crate::wire::{self, Cursor, EventId, Json, PresenceUser, RoomName, ServerFrame};

#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// The browser I/O of one client (`platform.js`).
    type Platform;

    /// `report` is a JS function: a Rust [`ReportFn`] or, in the npm package, a plain JS
    /// function that calls [`WasmClient`]'s `report` export. With `share`, the page's sockets
    /// to a server share one connection with the other tabs (where the browser allows it).
    #[wasm_bindgen(constructor)]
    fn new(report: &JsValue, share: bool) -> Platform;

    #[wasm_bindgen(method)]
    fn open(this: &Platform, link: u64, url: &str, protocol: &str, token_protocol: &str) -> bool;

    #[wasm_bindgen(method)]
    fn send(this: &Platform, link: u64, text: &str);

    #[wasm_bindgen(method, js_name = closeSocket)]
    fn close_socket(this: &Platform, link: u64);

    #[wasm_bindgen(method)]
    fn fetch(
        this: &Platform,
        request: u64,
        method: &str,
        url: &str,
        token: &str,
        body: Option<String>,
    );

    #[wasm_bindgen(method)]
    fn arm(this: &Platform, ms: Option<f64>);

    #[wasm_bindgen(method)]
    fn load(this: &Platform, key: &str) -> Option<String>;

    #[wasm_bindgen(method)]
    fn save(this: &Platform, key: &str, value: &str);

    /// `save` without a value removes the key.
    #[wasm_bindgen(method, js_name = save)]
    fn remove(this: &Platform, key: &str);

    /// Every `localStorage` key (none where storage is forbidden).
    #[wasm_bindgen(method)]
    fn keys(this: &Platform) -> Vec<String>;

    /// This tab's lease (`tab_storage.rs`): `platform.js` writes the time into it now and
    /// every 5 s, and removes it when the page goes away or the platform is disposed.
    #[wasm_bindgen(method, setter)]
    fn set_lease(this: &Platform, key: &str);

    /// `None` when there is no `crypto.getRandomValues` (`platform.js` catches what it throws).
    #[wasm_bindgen(method)]
    fn seed(this: &Platform) -> Option<u64>;

    #[wasm_bindgen(method)]
    fn dispose(this: &Platform);
}

#[wasm_bindgen]
extern "C" {
    /// `Date.now()`: milliseconds since the Unix epoch.
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
}

/// `platform.js`'s one callback: `(kind, id, number, text)`, kinds as in [`report`].
type ReportFn = Closure<dyn FnMut(u32, u64, u32, Option<String>)>;

use crate::js_abi::report;

struct Inner {
    core: Client,
    base: String,
    storage_prefix: String,
    platform: Platform,
    /// Keeps the Rust callback `platform` holds alive (none when it reports to JS). A
    /// [`ReportFn`] behind `dyn Any`, so that a build that never makes one (the npm package's)
    /// carries none of a closure's code, not even its drop.
    _report: Option<Box<dyn std::any::Any>>,
    /// HTTP calls in flight, to read their answers.
    calls: Vec<(u64, HttpCall)>,
    /// The deadline the timer is armed for.
    armed: Option<Instant>,
    on_event: Rc<dyn Fn(ClientEvent)>,
    /// The Rust API's per-tab storage keys (`tab_storage.rs`; the npm package keeps its own in
    /// `chorus.js`).
    tab: Option<TabKeys>,
}

impl tabs::KeyValue for Platform {
    fn keys(&self) -> Vec<String> {
        Platform::keys(self)
    }
    fn load(&self, key: &str) -> Option<String> {
        Platform::load(self, key)
    }
    fn save(&self, key: &str, value: &str) {
        Platform::save(self, key, value)
    }
    fn remove(&self, key: &str) {
        Platform::remove(self, key)
    }
}

/// Options of the Rust API's [`BrowserClient::start_with`].
#[derive(Clone, Debug)]
pub struct BrowserOptions {
    /// `true` (default): this page's client shares one connection to the server with the other
    /// tabs of this origin (one WebSocket, or in polling mode one long poll; see
    /// `platform.js`), where the browser has the APIs; `false`: a connection of its own.
    pub share_connection: bool,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            share_connection: true,
        }
    }
}

type Shared = Rc<RefCell<Inner>>;

impl Drop for Inner {
    /// The last handle is gone (with or without `close`): stop `platform.js` too, so no socket,
    /// timer or page listener outlives the callback it would report to.
    fn drop(&mut self) {
        self.platform.dispose();
    }
}

/// Why a [`BrowserClient`] could not start.
#[derive(Debug)]
pub enum StartError {
    /// `crypto.getRandomValues` is missing or failed, so there is no seed for ids and jitter.
    NoRandomness,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::NoRandomness => f.write_str("crypto.getRandomValues is not available"),
        }
    }
}

impl std::error::Error for StartError {}

/// The Chorus client core driven by the browser: the Rust API (Leptos apps use it directly;
/// the npm package wraps it). Cheap to clone; every clone drives the same connection.
///
/// Events are delivered to the `on_event` callback given to [`BrowserClient::start`], always
/// after every borrow of the driver state is released, so the callback may call back in.
///
/// In a browser (wasm32; a Leptos room on it is `examples/leptos_room.rs`, the app's context
/// and hook are `app/src/chorus.rs` and `app/src/hooks.rs`):
///
/// ```no_run
/// use chorus_sdk::client::ClientEvent;
/// use chorus_sdk::web::{BrowserClient, ClientConfig};
/// use chorus_sdk::wire::{Json, RoomName};
///
/// let token = "a JWT from your backend".to_owned();
/// let client = BrowserClient::start(
///     "https://rt.example.com",
///     token,
///     ClientConfig::default(),
///     "chorus:".to_owned(), // localStorage prefix (outbox, remembered transport)
///     |event| match event {
///         ClientEvent::Pending { body, .. } => { /* show it at once, marked pending */ }
///         ClientEvent::Event { event, own } => { /* show it; `own` confirms a pending one */ }
///         ClientEvent::TokenNeeded => { /* fetch a fresh token, then `set_token` */ }
///         _ => {}
///     },
/// )
/// .expect("crypto.getRandomValues is available");
/// let room = RoomName::parse("doc:1").unwrap();
/// client.join(room.clone(), Json::null());
/// // Shown at once (a `Pending` event), kept in localStorage until the server stores it.
/// let id = client.publish(room, Json::from_text(r#"{"text":"hello"}"#).unwrap());
/// ```
#[derive(Clone)]
pub struct BrowserClient {
    inner: Shared,
}

impl std::fmt::Debug for BrowserClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserClient")
    }
}

#[allow(clippy::disallowed_methods)] // The driver is where the core's clock lives.
fn now() -> Instant {
    Instant::now()
}

impl BrowserClient {
    /// Starts a client for the server at `url` (`http(s)://host[:port]`) with the default
    /// [`BrowserOptions`] (sharing one connection with the other tabs); see
    /// [`BrowserClient::start_with`].
    pub fn start(
        url: &str,
        token: String,
        config: ClientConfig,
        storage_prefix: String,
        on_event: impl Fn(ClientEvent) + 'static,
    ) -> Result<BrowserClient, StartError> {
        let options = BrowserOptions::default();
        BrowserClient::start_with(url, token, config, storage_prefix, options, on_event)
    }

    /// Starts a client for the server at `url`. Its outbox and remembered transport live in
    /// `localStorage` under `storage_prefix`, in the npm package's layout for several tabs and
    /// users (`<storage_prefix><url>|<user>|<tab>:`; ARCHITECTURE.md, "Client storage"): each
    /// tab has its own, and a starting tab takes over the outboxes of its user's tabs that
    /// closed, reloaded or crashed, so none is overwritten and none is lost. The user is the
    /// token's `sub` (without a token, the last user started here; a token that is not a JWT
    /// counts as no user), fixed for the client's life: unlike the npm package's `setToken`,
    /// [`BrowserClient::set_token`] does not check that a new token is the same user's.
    ///
    /// The first events (e.g. publishes restored after a reload) are delivered from a timer,
    /// never from inside this call.
    pub fn start_with(
        url: &str,
        token: String,
        config: ClientConfig,
        storage_prefix: String,
        options: BrowserOptions,
        on_event: impl Fn(ClientEvent) + 'static,
    ) -> Result<BrowserClient, StartError> {
        // The callback needs the state, which needs the platform, which needs the callback:
        // the callback finds the state through a slot filled in below.
        let slot: Rc<RefCell<Weak<RefCell<Inner>>>> = Rc::default();
        let report: ReportFn = Closure::new({
            let slot = slot.clone();
            move |kind, id, number, text| {
                let inner = slot.borrow().upgrade();
                if let Some(inner) = inner {
                    on_report(&inner, kind, id, number, text);
                }
            }
        });
        let platform = Platform::new(report.as_ref(), options.share_connection);
        let Some(tab) = platform.seed() else {
            platform.dispose();
            return Err(StartError::NoRandomness);
        };
        let url = without_trailing_slashes(url);
        let keys = TabKeys::new(&platform, &storage_prefix, url, &token, format!("{tab:x}"));
        platform.set_lease(&keys.lease());
        keys.adopt(&platform, date_now());
        let client = BrowserClient::launch(
            url,
            token,
            config,
            keys.core_prefix(),
            platform,
            Some(Box::new(report)),
            Rc::new(on_event),
        )?;
        client.inner.borrow_mut().tab = Some(keys);
        *slot.borrow_mut() = Rc::downgrade(&client.inner);
        Ok(client)
    }

    /// Starts a client whose `platform.js` reports to `report`, a JS function that must pass
    /// each report to [`BrowserClient::report`] (the npm package's way: no Rust closure type);
    /// with `share`, its socket is shared with the other tabs (see `platform.js`).
    #[cfg(feature = "js")]
    fn start_reporting_to(
        url: &str,
        token: String,
        config: ClientConfig,
        storage_prefix: String,
        report: &JsValue,
        share: bool,
        on_event: Rc<dyn Fn(ClientEvent)>,
    ) -> Result<BrowserClient, StartError> {
        let platform = Platform::new(report, share);
        BrowserClient::launch(url, token, config, storage_prefix, platform, None, on_event)
    }

    /// Feeds one report of `platform.js` (see [`BrowserClient::start_reporting_to`]).
    #[cfg(feature = "js")]
    fn report(&self, kind: u32, id: u64, number: u32, text: Option<String>) {
        on_report(&self.inner, kind, id, number, text);
    }

    fn launch(
        url: &str,
        token: String,
        config: ClientConfig,
        storage_prefix: String,
        platform: Platform,
        report: Option<Box<dyn std::any::Any>>,
        on_event: Rc<dyn Fn(ClientEvent)>,
    ) -> Result<BrowserClient, StartError> {
        let Some(seed) = platform.seed() else {
            platform.dispose();
            return Err(StartError::NoRandomness);
        };
        let load = |key: &str| platform.load(&concat(&[storage_prefix.as_str(), key]));
        let restored = Restored {
            outbox: load(OUTBOX_KEY),
            transport: load(TRANSPORT_KEY),
        };
        let core = Client::new(config, token, now(), date_now() as u64, seed, restored);
        let inner = Rc::new(RefCell::new(Inner {
            core,
            base: without_trailing_slashes(url).to_owned(),
            storage_prefix,
            platform,
            _report: report,
            calls: Vec::new(),
            armed: None,
            on_event,
            tab: None,
        }));
        // The first drive waits for a timer, so the app can subscribe before the first events
        // (e.g. publishes restored from storage after a reload) are emitted.
        arm_timer(&mut inner.borrow_mut());
        Ok(BrowserClient { inner })
    }

    /// Joins a room with this tab's presence `meta`.
    pub fn join(&self, room: RoomName, meta: Json) {
        self.with(|core| core.join(now(), room, meta));
    }

    /// Leaves a room.
    pub fn leave(&self, room: RoomName) {
        self.with(|core| core.leave(now(), room));
    }

    /// Publishes a durable event: pending at once, kept in the outbox until acked.
    pub fn publish(&self, room: RoomName, body: Json) -> Result<EventId, PublishError> {
        self.with(|core| core.publish(now(), room, body))
    }

    #[cfg(feature = "locks")]
    /// Publishes a durable event like [`BrowserClient::publish`], stored only while this user
    /// holds the lock grant `if_lock` (refused with `lock_lost` otherwise).
    pub fn publish_fenced(
        &self,
        room: RoomName,
        body: Json,
        if_lock: crate::wire::LockFence,
    ) -> Result<EventId, PublishError> {
        self.with(|core| core.publish_with(now(), room, body, None, Some(if_lock)))
    }

    #[cfg(feature = "locks")]
    /// Asks for the lock `name` in a joined room (see [`crate::client::Client::lock`]).
    pub fn lock(
        &self,
        room: RoomName,
        name: EventId,
        ttl: std::time::Duration,
        token: Option<u64>,
        auto_renew: bool,
    ) -> Result<EventId, PublishError> {
        self.with(|core| core.lock(now(), room, name, ttl, token, auto_renew))
    }

    #[cfg(feature = "locks")]
    /// Releases the lock grant of `name` with `token` (see [`crate::client::Client::unlock`]).
    pub fn unlock(
        &self,
        room: RoomName,
        name: EventId,
        token: u64,
    ) -> Result<EventId, PublishError> {
        self.with(|core| core.unlock(now(), room, name, token))
    }

    #[cfg(feature = "locks")]
    /// The locks held in a room, as last reported by the server.
    pub fn locks(&self, room: &RoomName) -> Json {
        self.inner.borrow().core.locks(room)
    }

    /// Publishes an ephemeral event (only while connected; never queued).
    pub fn publish_ephemeral(&self, room: RoomName, body: Json) -> Result<EventId, PublishError> {
        self.with(|core| core.publish_ephemeral(now(), room, body))
    }

    /// Sends one step of a stream this tab produces in `room` (see [`Client::stream`]).
    pub fn stream(&self, room: RoomName, step: Json) -> Result<(), PublishError> {
        self.with(|core| core.stream(now(), room, step))
    }

    /// Says whether the user is typing in a room (throttled and expired by the core).
    pub fn set_typing(&self, room: RoomName, on: bool) {
        self.with(|core| core.set_typing(now(), room, on));
    }

    /// Replaces this tab's presence meta in a room.
    pub fn set_presence(&self, room: RoomName, meta: Json) {
        self.with(|core| core.set_presence(now(), room, meta));
    }

    /// Replaces this tab's live cursor in a room (`null` removes it); throttled to one frame
    /// per 50 ms, the last value always sent.
    pub fn set_cursor(&self, room: RoomName, value: Json) {
        self.with(|core| core.set_cursor(now(), room, value));
    }

    /// Hands over a fresh token (after [`ClientEvent::TokenNeeded`]).
    pub fn set_token(&self, token: String) {
        self.with(|core| core.handle_token(now(), token));
    }

    /// A room's presence (`None` when not joined).
    pub fn presence(&self, room: &RoomName) -> Option<Vec<PresenceUser>> {
        self.inner.borrow().core.presence(room)
    }

    /// A room's cursor (the last seq seen), if it has one.
    pub fn cursor(&self, room: &RoomName) -> Option<Cursor> {
        self.inner.borrow().core.cursor(room)
    }

    /// This tab's publishes in `room` not confirmed yet, oldest first (see
    /// [`Client::unconfirmed`]): what a room view opened after publishing shows as pending.
    pub fn unconfirmed(&self, room: &RoomName) -> Vec<wire::OutboxRecord> {
        self.inner.borrow().core.unconfirmed(room)
    }

    /// The authenticated user id, once the server has welcomed the client.
    pub fn user(&self) -> Option<String> {
        self.inner.borrow().core.user().map(str::to_owned)
    }

    /// The current connection state.
    pub fn state(&self) -> ConnectionState {
        self.inner.borrow().core.state().clone()
    }

    /// Publishes waiting for their ack.
    pub fn outbox_len(&self) -> usize {
        self.inner.borrow().core.outbox_len()
    }

    /// Closes the client for good: sockets closed, timer and listeners removed. Its
    /// unacknowledged publishes stay stored for the next tab of its user that starts.
    pub fn close(&self) {
        self.with(|core| core.close(now()));
        let mut inner = self.inner.borrow_mut();
        inner.platform.dispose();
        inner.armed = None;
    }

    /// Closes the client and removes what this browser stores for its user on this server:
    /// every tab's outbox (publishes not yet sent are dropped), remembered transport and lease,
    /// and the server's last-user key.
    pub fn sign_out(&self) {
        let keys = self.inner.borrow_mut().tab.take();
        self.close();
        if let Some(keys) = keys {
            keys.sign_out(&self.inner.borrow().platform);
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Client) -> T) -> T {
        let result = f(&mut self.inner.borrow_mut().core);
        drive(&self.inner);
        result
    }
}

/// `url` without trailing `/`s (`str::trim_end_matches` brings a pattern searcher along).
fn without_trailing_slashes(mut url: &str) -> &str {
    while let Some(rest) = url.strip_suffix('/') {
        url = rest;
    }
    url
}

/// Feeds one report from `platform.js` to the core, then drives it.
fn on_report(inner: &Shared, kind: u32, id: u64, number: u32, text: Option<String>) {
    {
        let mut state = inner.borrow_mut();
        let now = now();
        match kind {
            report::TIMER => {
                state.armed = None;
                state.core.handle_timeout(now);
            }
            report::OPEN => state.core.handle_socket_open(now, id),
            report::MESSAGE => {
                // A frame that does not decode is dropped; the server never sends one.
                let Some(Ok(frame)) = text.as_deref().map(ServerFrame::decode) else {
                    return;
                };
                state.core.handle_socket_frame(now, id, frame);
            }
            report::CLOSED => {
                let code = u16::try_from(number).ok();
                state.core.handle_socket_closed(now, id, code);
            }
            report::HTTP => {
                let Some(at) = state.calls.iter().position(|(request, _)| *request == id) else {
                    return;
                };
                let (_, call) = state.calls.swap_remove(at);
                let result = match (number, text) {
                    (0, _) | (_, None) => HttpResult::Failed,
                    (status, Some(text)) => {
                        call.read_response(u16::try_from(status).unwrap_or(0), &text)
                    }
                };
                state.core.handle_http_response(now, id, result);
            }
            report::NETWORK => state.core.handle_online(now, number == 1),
            report::VISIBLE => state.core.handle_visible(now, number == 1),
            _ => return,
        }
    }
    drive(inner);
}

/// Carries out what the core asked for, tells the app what happened, and re-arms the timer.
fn drive(inner: &Shared) {
    loop {
        let events = {
            let mut state = inner.borrow_mut();
            loop {
                let outputs = state.core.poll_outputs();
                if outputs.is_empty() {
                    break;
                }
                for output in outputs {
                    perform(&mut state, output);
                }
            }
            state.core.poll_events()
        };
        if events.is_empty() {
            break;
        }
        let on_event = inner.borrow().on_event.clone();
        for event in events {
            on_event(event);
        }
    }
    arm_timer(&mut inner.borrow_mut());
}

/// Arms the one timer for the core's next deadline, unless it already is.
fn arm_timer(state: &mut Inner) {
    let deadline = state.core.poll_timeout();
    if deadline == state.armed {
        return;
    }
    state.armed = deadline;
    let delay = deadline.map(|at| crate::time::millis(at.saturating_duration_since(now())) as f64);
    state.platform.arm(delay);
}

/// Carries out one output. `platform.js` never reports from inside a call, so the state stays
/// borrowed throughout.
fn perform(state: &mut Inner, output: Output) {
    match output {
        Output::OpenSocket { link, token } => {
            // http://host → ws://host, https://host → wss://host.
            let rest = state.base.strip_prefix("http").unwrap_or(&state.base);
            let url = concat(&["ws", rest, "/v1/ws"]);
            let token_protocol = concat(&[wire::WS_TOKEN_PREFIX, &token]);
            if !state
                .platform
                .open(link, &url, wire::WS_SUBPROTOCOL, &token_protocol)
            {
                state.core.handle_socket_closed(now(), link, None);
            }
        }
        Output::Send { link, frame } => state.platform.send(link, &frame.encode()),
        Output::CloseSocket { link } => state.platform.close_socket(link),
        Output::Http {
            request,
            token,
            call,
        } => {
            let url = concat(&[state.base.as_str(), &call.path()]);
            state
                .platform
                .fetch(request, call.method(), &url, &token, call.body());
            state.calls.push((request, call));
        }
        Output::Save { key, value } => {
            let key = concat(&[state.storage_prefix.as_str(), key]);
            state.platform.save(&key, &value);
        }
    }
}
