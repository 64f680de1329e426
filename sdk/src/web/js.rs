//! The JavaScript export (feature `js`): `WasmClient`, a thin string-typed shell over
//! [`BrowserClient`] for the npm package's `src/chorus.js`. It validates JS input at the edge and
//! turns every [`ClientEvent`](super::ClientEvent) into `on_event(kind, payload)` with the
//! payload shapes of `events.rs`.
//!
//! Everything after the start goes through one method, [`WasmClient::call`], with an operation
//! number from [`op`] (`src/chorus.js` has the same numbers) and an answer in JSON: each
//! exported method costs wasm-bindgen glue on both sides of the boundary, and the SDK has a size
//! budget (docs/SIZE.md).

use wasm_bindgen::prelude::*;

/// The npm package's allocator: Talc instead of Rust's default dlmalloc, for size (a Rust app
/// using the SDK through `BrowserClient` keeps its own choice; this is only in the `js` build).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use std::rc::Rc;

use super::{BrowserClient, ClientConfig, ClientEvent, TransportMode, events};
use crate::client::PublishError;
use crate::text::Message;
use crate::wire::json::{self, Writer};
use crate::wire::{EventId, Json, RoomName};

use crate::js_abi::client_code;
pub use crate::js_abi::op;

/// The Chorus client core with browser I/O. Use it through the npm package's `ChorusClient`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmClient {
    client: BrowserClient,
}

#[wasm_bindgen]
extern "C" {
    /// The JS function `WasmClient` reports events to: `(kind: string, payload: string)`.
    #[wasm_bindgen(typescript_type = "(kind: string, payload: string) => void")]
    pub type EventCallback;

    /// Calls it; an exception it throws is caught (one listener must not stop the client).
    #[wasm_bindgen(method, catch, js_name = call)]
    fn call2(
        this: &EventCallback,
        this_arg: &JsValue,
        kind: &str,
        payload: &str,
    ) -> Result<JsValue, JsValue>;
}

/// A refused call: a stable code and a sentence.
type Refusal = (&'static str, String);

fn publish_refusal(err: PublishError) -> Refusal {
    let code = match err {
        PublishError::NotJoined(_) => client_code::NOT_JOINED,
        PublishError::OutboxFull(_) => client_code::OUTBOX_FULL,
        PublishError::Offline => client_code::OFFLINE,
        PublishError::Closed => client_code::CLOSED,
    };
    (code, err.message())
}

fn id_json(id: Result<EventId, PublishError>) -> Result<String, Refusal> {
    Ok(json::to_string(&id.map_err(publish_refusal)?))
}

#[wasm_bindgen]
impl WasmClient {
    /// Starts a client. `transport` is 0 (auto), 1 (WebSocket only) or 2 (polling only);
    /// `on_event` is called as `on_event(kind, payload)` for every event, the payload as JSON
    /// text. `undefined` when the browser has no `crypto.getRandomValues`.
    ///
    /// `report` must pass each of its calls on to [`WasmClient::report`] of the client this
    /// returns: `platform.js` reports through it (a plain JS function, not a Rust closure, which
    /// would cost wasm-bindgen closure glue).
    pub fn start(
        url: &str,
        token: String,
        transport: u32,
        storage_prefix: String,
        on_event: EventCallback,
        report: &JsValue,
    ) -> Option<WasmClient> {
        let transport = match transport {
            1 => TransportMode::WebSocket,
            2 => TransportMode::Polling,
            _ => TransportMode::Auto,
        };
        let config = ClientConfig {
            transport,
            ..ClientConfig::default()
        };
        let on_event = Rc::new(move |event: ClientEvent| {
            let (kind, payload) = events::to_js(&event);
            let _ = on_event.call2(&JsValue::NULL, kind, &payload);
        });
        let client =
            BrowserClient::start_reporting_to(url, token, config, storage_prefix, report, on_event)
                .ok()?;
        Some(WasmClient { client })
    }

    /// What `platform.js` reports (see `start`): `kind` as in `web::report`, a socket or
    /// request `id`, a `number` (status, close code, flag) and an optional `text`.
    pub fn report(&self, kind: u32, id: u64, number: u32, text: Option<String>) {
        self.client.report(kind, id, number, text);
    }

    /// Runs operation `op` (see [`op`]) on `room` with `arg`. Answers JSON text:
    /// `{"ok":value}`, or `{"code":…,"message":…}` when refused (`invalid_room`,
    /// `invalid_json`, `not_joined`, `outbox_full`, `offline`, `closed`, `unknown_op`).
    pub fn call(&self, op: u32, room: &str, arg: &str) -> String {
        match self.run(op, room, arg) {
            Ok(value) => ["{\"ok\":", &value, "}"].concat(),
            Err((code, message)) => {
                let mut out = Writer::default();
                let mut object = out.object();
                object.str("code", code).str("message", &message);
                object.end();
                out.finish()
            }
        }
    }
}

impl WasmClient {
    /// The lock operations: `arg` is fields joined by `~` (which no name or number holds),
    /// the lock's name last but for a fenced publish's body (see [`op`]).
    fn lock_op(&self, op: u32, room: RoomName, arg: &str) -> Result<String, Refusal> {
        let bad = || {
            (
                client_code::INVALID_LOCK,
                "invalid lock name or token".to_owned(),
            )
        };
        let mut parts = arg.splitn(if op == op::LOCK { 4 } else { 3 }, '~');
        let mut next = || parts.next().ok_or_else(bad);
        let number = |text: &str| json::parse_u64(text).ok_or_else(bad);
        let client = &self.client;
        if op == op::LOCK {
            let ttl = std::time::Duration::from_millis(number(next()?)?);
            let auto = next()? == "1";
            let token = match next()? {
                "" => None,
                text => Some(number(text)?),
            };
            let name = EventId::parse(next()?).map_err(|_| bad())?;
            return id_json(client.lock(room, name, ttl, token, auto));
        }
        let token = number(next()?)?;
        let name = EventId::parse(next()?).map_err(|_| bad())?;
        if op == op::UNLOCK {
            return id_json(client.unlock(room, name, token));
        }
        let body = Json::from_text(next()?)
            .map_err(|err| (client_code::INVALID_JSON, err.into_message()))?;
        let fence = crate::wire::LockFence { name, token };
        id_json(client.publish_fenced(room, body, fence))
    }

    fn run(&self, op: u32, room: &str, arg: &str) -> Result<String, Refusal> {
        let client = &self.client;
        match op {
            op::TOKEN => client.set_token(arg.to_owned()),
            op::CLOSE => client.close(),
            op::JOIN..=op::PRESENCE | op::LOCK..=op::PUBLISH_FENCED => {
                let room = RoomName::parse(room)
                    .map_err(|err| (client_code::INVALID_ROOM, err.message()))?;
                let json = || {
                    Json::from_text(arg)
                        .map_err(|err| (client_code::INVALID_JSON, err.into_message()))
                };
                match op {
                    op::JOIN => client.join(room, json()?),
                    op::LEAVE => client.leave(room),
                    op::PUBLISH => return id_json(client.publish(room, json()?)),
                    op::EPHEMERAL => return id_json(client.publish_ephemeral(room, json()?)),
                    op::TYPING => client.set_typing(room, arg == "true"),
                    op::SET_PRESENCE => client.set_presence(room, json()?),
                    op::LOCK..=op::PUBLISH_FENCED => return self.lock_op(op, room, arg),
                    _ => {
                        let users = client.presence(&room).unwrap_or_default();
                        return Ok(events::users_json(&users));
                    }
                }
            }
            _ => {
                return Err((
                    "unknown_op",
                    ["no operation ", &crate::text::decimal(op.into())].concat(),
                ));
            }
        }
        Ok("null".to_owned())
    }
}
