//! The browser driver (feature `web`, target wasm32): runs the [`Client`] core with the
//! browser's WebSocket, `fetch`, one `setTimeout` armed from `poll_timeout`, `online`/`offline`,
//! `visibilitychange` and `pagehide`/`pageshow` (back/forward cache) events,
//! `crypto.getRandomValues` and `localStorage`.
//!
//! Storage is `localStorage`: the outbox is bounded (1 MiB by default) well inside its quota,
//! and its synchronous API lets the core save after every change without an async round trip.
//!
//! [`BrowserClient`] is the Rust API (typed rooms, bodies and [`ClientEvent`]s), used directly by
//! Leptos apps. With feature `js`, `js.rs` exports `WasmClient` to JavaScript: deliberately low
//! level (strings in, `(kind, payload)` callbacks out); the npm package's `chorus.js` builds the
//! JS-shaped API (`ChorusClient`, `Room`, promises) on top. Those payload shapes are the JS
//! API's, defined in `events.rs` and typed in `pkg/chorus.d.ts` (they are not wire frames).
//!
//! Callbacks into JS are made only after every borrow of the driver state is released, so a
//! callback may call back into the client.

#[cfg(feature = "js")]
mod events;
#[cfg(feature = "js")]
mod js;

#[cfg(feature = "js")]
pub use js::WasmClient;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Array;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, MessageEvent, Request, RequestInit, Response, WebSocket};

pub use crate::client::{Badge, ClientConfig, ClientEvent, ConnectionState, TransportMode};
use crate::client::{
    Client, HttpCall, HttpResult, OUTBOX_KEY, Output, PublishError, Restored, TRANSPORT_KEY,
};
use crate::wire::{self, Cursor, EventId, Json, PresenceUser, RoomName, ServerFrame};

/// A socket and the closures that must live as long as it.
struct Socket {
    socket: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

struct Inner {
    core: Client,
    base: String,
    storage_prefix: String,
    sockets: litemap::LiteMap<u64, Socket>,
    timer: Option<i32>,
    timer_callback: Option<Closure<dyn FnMut()>>,
    listeners: Vec<Listener>,
    on_event: Rc<dyn Fn(ClientEvent)>,
}

type Shared = Rc<RefCell<Inner>>;

/// A platform event listener; removed from its target when dropped.
struct Listener {
    target: web_sys::EventTarget,
    kind: &'static str,
    closure: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.closure.as_ref().unchecked_ref());
    }
}

/// Why a [`BrowserClient`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `crypto.getRandomValues` is missing or failed, so there is no seed for ids and jitter.
    #[error("crypto.getRandomValues is not available")]
    NoRandomness,
}

/// The Chorus client core driven by the browser: the Rust API (Leptos apps use it directly;
/// the npm package wraps it). Cheap to clone; every clone drives the same connection.
///
/// Events are delivered to the `on_event` callback given to [`BrowserClient::start`], always
/// after every borrow of the driver state is released, so the callback may call back in.
#[derive(Clone)]
pub struct BrowserClient {
    inner: Shared,
}

impl std::fmt::Debug for BrowserClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserClient")
    }
}

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

#[allow(clippy::disallowed_methods)] // The driver is where the core's clock lives.
fn now() -> web_time::Instant {
    web_time::Instant::now()
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

impl BrowserClient {
    /// Starts a client for the server at `url` (`http(s)://host[:port]`), restoring the outbox
    /// and the remembered transport from `localStorage` keys starting with `storage_prefix`.
    ///
    /// The first events (e.g. publishes restored after a reload) are delivered from a timer,
    /// never from inside this call.
    pub fn start(
        url: &str,
        token: String,
        config: ClientConfig,
        storage_prefix: String,
        on_event: impl Fn(ClientEvent) + 'static,
    ) -> Result<BrowserClient, StartError> {
        let load = |key: &str| {
            storage().and_then(|s| s.get_item(&format!("{storage_prefix}{key}")).ok().flatten())
        };
        let restored = Restored {
            outbox: load(OUTBOX_KEY),
            transport: load(TRANSPORT_KEY),
        };
        let mut seed = [0u8; 8];
        window()
            .crypto()
            .map_err(|_| StartError::NoRandomness)?
            .get_random_values_with_u8_array(&mut seed)
            .map_err(|_| StartError::NoRandomness)?;
        let core = Client::new(
            config,
            token,
            now(),
            js_sys::Date::now() as u64,
            u64::from_le_bytes(seed),
            restored,
        );
        let inner = Rc::new(RefCell::new(Inner {
            core,
            base: url.trim_end_matches('/').to_owned(),
            storage_prefix,
            sockets: litemap::LiteMap::new(),
            timer: None,
            timer_callback: None,
            listeners: Vec::new(),
            on_event: Rc::new(on_event),
        }));
        listen_to_platform(&inner);
        // The first drive waits for a timer, so the app can subscribe before the first events
        // (e.g. publishes restored from storage after a reload) are emitted.
        arm_timer(&inner);
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

    /// Publishes an ephemeral event (only while connected; never queued).
    pub fn publish_ephemeral(&self, room: RoomName, body: Json) -> Result<EventId, PublishError> {
        self.with(|core| core.publish_ephemeral(now(), room, body))
    }

    /// Says whether the user is typing in a room (throttled and expired by the core).
    pub fn set_typing(&self, room: RoomName, on: bool) {
        self.with(|core| core.set_typing(now(), room, on));
    }

    /// Replaces this tab's presence meta in a room.
    pub fn set_presence(&self, room: RoomName, meta: Json) {
        self.with(|core| core.set_presence(now(), room, meta));
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

    /// Closes the client for good: sockets closed, timer and listeners removed.
    pub fn close(&self) {
        self.with(|core| core.close(now()));
        let mut inner = self.inner.borrow_mut();
        inner.sockets.clear();
        if let Some(timer) = inner.timer.take() {
            window().clear_timeout_with_handle(timer);
        }
        inner.listeners.clear();
    }

    fn with<T>(&self, f: impl FnOnce(&mut Client) -> T) -> T {
        let result = f(&mut self.inner.borrow_mut().core);
        drive(&self.inner);
        result
    }
}

/// Listens for `online`/`offline`, `visibilitychange` and `pageshow`.
fn listen_to_platform(inner: &Shared) {
    let mut listeners = Vec::new();
    let mut listen = |target: &web_sys::EventTarget,
                      kind: &'static str,
                      handler: fn(&mut Client, &web_sys::Event)| {
        let weak = Rc::downgrade(inner);
        let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            if let Some(inner) = weak.upgrade() {
                handler(&mut inner.borrow_mut().core, &event);
                drive(&inner);
            }
        });
        let _ = target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
        listeners.push(Listener {
            target: target.clone(),
            kind,
            closure,
        });
    };
    let window = window();
    listen(&window, "online", |core, _| core.handle_online(now(), true));
    listen(&window, "offline", |core, _| {
        core.handle_online(now(), false)
    });
    // Entering the back/forward cache suspends the client like going offline (the core closes
    // its sockets: a page with an open WebSocket is not kept in that cache); coming back
    // resumes it (and reconnects at once if the network is there).
    listen(&window, "pagehide", |core, event| {
        if persisted(event) {
            core.handle_online(now(), false);
        }
    });
    listen(&window, "pageshow", |core, event| {
        if persisted(event) {
            core.handle_online(now(), self::window().navigator().on_line());
        }
        core.handle_visible(now(), true);
    });
    if let Some(document) = window.document() {
        listen(&document, "visibilitychange", |core, _| {
            let visible = web_sys::window()
                .and_then(|w| w.document())
                .is_some_and(|d| !d.hidden());
            core.handle_visible(now(), visible);
        });
    }
    inner.borrow_mut().listeners = listeners;
}

/// Whether a `pagehide`/`pageshow` event is about the back/forward cache (`persisted`).
fn persisted(event: &web_sys::Event) -> bool {
    js_sys::Reflect::get(event, &JsValue::from_str("persisted")).is_ok_and(|v| v.is_truthy())
}

/// Carries out what the core asked for, tells JS what happened, and re-arms the one timer.
fn drive(inner: &Shared) {
    loop {
        let (outputs, events) = {
            let mut state = inner.borrow_mut();
            let outputs: Vec<Output> = std::iter::from_fn(|| state.core.poll_output()).collect();
            let events: Vec<ClientEvent> = std::iter::from_fn(|| state.core.poll_event()).collect();
            (outputs, events)
        };
        if outputs.is_empty() && events.is_empty() {
            break;
        }
        for output in outputs {
            perform(inner, output);
        }
        let on_event = inner.borrow().on_event.clone();
        for event in events {
            on_event(event);
        }
    }
    arm_timer(inner);
}

fn arm_timer(inner: &Shared) {
    let mut state = inner.borrow_mut();
    if let Some(timer) = state.timer.take() {
        window().clear_timeout_with_handle(timer);
    }
    let Some(deadline) = state.core.poll_timeout() else {
        return;
    };
    let delay = deadline
        .saturating_duration_since(now())
        .as_millis()
        .min(i32::MAX as u128) as i32;
    if state.timer_callback.is_none() {
        let weak: Weak<RefCell<Inner>> = Rc::downgrade(inner);
        state.timer_callback = Some(Closure::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.borrow_mut().timer = None;
                inner.borrow_mut().core.handle_timeout(now());
                drive(&inner);
            }
        }));
    }
    let callback = state
        .timer_callback
        .as_ref()
        .expect("set above")
        .as_ref()
        .unchecked_ref();
    state.timer = window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(callback, delay)
        .ok();
}

fn perform(inner: &Shared, output: Output) {
    match output {
        Output::OpenSocket { link, token } => open_socket(inner, link, &token),
        Output::Send { link, frame } => {
            if let Some(socket) = inner.borrow().sockets.get(&link) {
                let _ = socket.socket.send_with_str(&frame.encode());
            }
        }
        Output::CloseSocket { link } => {
            inner.borrow_mut().sockets.remove(&link);
        }
        Output::Http {
            request,
            token,
            call,
        } => http_call(inner, request, token, call),
        Output::Save { key, value } => {
            let prefix = inner.borrow().storage_prefix.clone();
            if let Some(storage) = storage() {
                let _ = storage.set_item(&format!("{prefix}{key}"), &value);
            }
        }
    }
}

fn open_socket(inner: &Shared, link: u64, token: &str) {
    let url = {
        let base = &inner.borrow().base;
        // http://host → ws://host, https://host → wss://host.
        let rest = base.strip_prefix("http").unwrap_or(base);
        ["ws", rest, "/v1/ws"].concat()
    };
    let protocols = Array::of2(
        &JsValue::from_str(wire::WS_SUBPROTOCOL),
        &JsValue::from_str(&format!("{}{token}", wire::WS_TOKEN_PREFIX)),
    );
    let Ok(socket) = WebSocket::new_with_str_sequence(&url, &protocols) else {
        inner
            .borrow_mut()
            .core
            .handle_socket_closed(now(), link, None);
        return;
    };
    let weak = Rc::downgrade(inner);
    let on_open = Closure::<dyn FnMut()>::new({
        let weak = weak.clone();
        move || {
            if let Some(inner) = weak.upgrade() {
                inner.borrow_mut().core.handle_socket_open(now(), link);
                drive(&inner);
            }
        }
    });
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let weak = weak.clone();
        move |message: MessageEvent| {
            let (Some(inner), Some(text)) = (weak.upgrade(), message.data().as_string()) else {
                return;
            };
            if let Ok(frame) = ServerFrame::decode(&text) {
                inner
                    .borrow_mut()
                    .core
                    .handle_socket_frame(now(), link, frame);
                drive(&inner);
            }
        }
    });
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        if let Some(inner) = weak.upgrade() {
            inner.borrow_mut().sockets.remove(&link);
            inner
                .borrow_mut()
                .core
                .handle_socket_closed(now(), link, Some(event.code()));
            drive(&inner);
        }
    });
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    inner.borrow_mut().sockets.insert(
        link,
        Socket {
            socket,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        },
    );
}

fn http_call(inner: &Shared, request: u64, token: String, call: HttpCall) {
    let url = [&inner.borrow().base, call.path().as_str()].concat();
    let weak = Rc::downgrade(inner);
    wasm_bindgen_futures::spawn_local(async move {
        let result = fetch(&url, &token, &call)
            .await
            .unwrap_or(HttpResult::Failed);
        if let Some(inner) = weak.upgrade() {
            inner
                .borrow_mut()
                .core
                .handle_http_response(now(), request, result);
            drive(&inner);
        }
    });
}

async fn fetch(url: &str, token: &str, call: &HttpCall) -> Option<HttpResult> {
    let init = RequestInit::new();
    init.set_method(call.method());
    let body = call.body();
    if let Some(body) = &body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(url, &init).ok()?;
    request
        .headers()
        .set("authorization", &["Bearer ", token].concat())
        .ok()?;
    if body.is_some() {
        request
            .headers()
            .set("content-type", "application/json")
            .ok()?;
    }
    let response: Response = JsFuture::from(window().fetch_with_request(&request))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    let text = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    Some(call.read_response(response.status(), &text))
}
