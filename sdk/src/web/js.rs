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
use crate::text::{Message, concat};
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

    /// Calls it. It must not throw (`chorus.js`'s catches everything): an exception would
    /// unwind through the client.
    #[wasm_bindgen(method, js_name = call)]
    fn call2(this: &EventCallback, this_arg: &JsValue, kind: &str, payload: &str);
}

/// A refused call: a stable code and a sentence.
pub(super) type Refusal = (&'static str, String);

fn publish_refusal(err: PublishError) -> Refusal {
    let code = match err {
        PublishError::NotJoined(_) => client_code::NOT_JOINED,
        PublishError::OutboxFull(_) => client_code::OUTBOX_FULL,
        PublishError::Offline => client_code::OFFLINE,
        PublishError::Closed => client_code::CLOSED,
    };
    (code, err.message())
}

pub(super) fn id_json(id: Result<EventId, PublishError>) -> Result<String, Refusal> {
    Ok(json::to_string(&id.map_err(publish_refusal)?))
}

#[wasm_bindgen]
impl WasmClient {
    /// Starts a client. `transport` is 0 (auto), 1 (WebSocket only) or 2 (polling only);
    /// with `share`, its WebSocket is shared with the page's other tabs (`platform.js`);
    /// `on_event` is called as `on_event(kind, payload)` for every event, the payload as JSON
    /// text; it must not throw. `undefined` when the browser has no `crypto.getRandomValues`.
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
        share: bool,
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
            on_event.call2(&JsValue::NULL, kind, &payload);
        });
        let client = BrowserClient::start_reporting_to(
            url,
            token,
            config,
            storage_prefix,
            report,
            share,
            on_event,
        )
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
            Ok(value) => concat(&["{\"ok\":", &value, "}"]),
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
    fn run(&self, op: u32, room: &str, arg: &str) -> Result<String, Refusal> {
        let client = &self.client;
        match op {
            op::TOKEN => client.set_token(arg.to_owned()),
            op::CLOSE => client.close(),
            op::JOIN..=op::PRESENCE | op::SET_CURSOR | op::STREAM => {
                let room = RoomName::parse(room)
                    .map_err(|err| (client_code::INVALID_ROOM, err.message()))?;
                if op == op::PRESENCE {
                    let users = client.presence(&room).unwrap_or_default();
                    return Ok(events::users_json(&users));
                }
                let json = || {
                    Json::from_text(arg)
                        .map_err(|err| (client_code::INVALID_JSON, err.into_message()))
                };
                // What `BrowserClient`'s methods do, in one `with` (one borrow and drive for
                // all of them, rather than one inlined per method: this ships in the package).
                // An argument refused before the core is called leaves nothing to drive.
                return client.with(|core| {
                    let now = super::now();
                    match op {
                        op::JOIN => core.join(now, room, json()?),
                        op::LEAVE => core.leave(now, room),
                        op::PUBLISH => return id_json(core.publish(now, room, json()?)),
                        op::EPHEMERAL => {
                            return id_json(core.publish_ephemeral(now, room, json()?));
                        }
                        op::TYPING => core.set_typing(now, room, arg == "true"),
                        op::SET_PRESENCE => core.set_presence(now, room, json()?),
                        op::SET_CURSOR => core.set_cursor(now, room, json()?),
                        _ => core.stream(now, room, json()?).map_err(publish_refusal)?,
                    }
                    Ok("null".to_owned())
                });
            }
            #[cfg(feature = "locks")]
            op::LOCK..=op::LOCKS => {
                let room = RoomName::parse(room)
                    .map_err(|err| (client_code::INVALID_ROOM, err.message()))?;
                return super::js_locks::run(client, op, room, arg);
            }
            _ => {
                return Err((
                    "unknown_op",
                    concat(&["no operation ", &crate::text::decimal(op.into())]),
                ));
            }
        }
        Ok("null".to_owned())
    }
}
