//! The JavaScript export (feature `js`): `WasmClient`, a thin string-typed shell over
//! [`BrowserClient`] for the npm package's `src/chorus.js`. It validates JS input at the edge and
//! turns every [`ClientEvent`] into `on_event(kind, payload)` with the payload shapes of
//! `events.rs`.

use wasm_bindgen::prelude::*;

/// The npm package's allocator: Talc instead of Rust's default dlmalloc, for size (a Rust app
/// using the SDK through `BrowserClient` keeps its own choice; this is only in the `js` build).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use super::{BrowserClient, ClientConfig, TransportMode, events};
use crate::wire::{Json, RoomName};

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

fn js_error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

fn room(room: &str) -> Result<RoomName, JsError> {
    RoomName::parse(room).map_err(js_error)
}

fn json(text: &str) -> Result<Json, JsError> {
    Json::from_text(text).map_err(js_error)
}

#[wasm_bindgen]
impl WasmClient {
    /// Starts a client. `transport` is `auto`, `websocket` or `polling`; `on_event` is called
    /// as `on_event(kind, payload)` for every event, the payload as JSON text.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: &str,
        token: String,
        transport: &str,
        storage_prefix: String,
        on_event: EventCallback,
    ) -> Result<WasmClient, JsError> {
        let transport = match transport {
            "auto" | "" => TransportMode::Auto,
            "websocket" => TransportMode::WebSocket,
            "polling" => TransportMode::Polling,
            other => {
                return Err(js_error(format!(
                    "transport must be auto, websocket or polling, not \"{other}\""
                )));
            }
        };
        let config = ClientConfig {
            transport,
            ..ClientConfig::default()
        };
        let client = BrowserClient::start(url, token, config, storage_prefix, move |event| {
            let (kind, payload) = events::to_js(&event);
            let _ = on_event.call2(&JsValue::NULL, kind, &payload);
        })
        .map_err(js_error)?;
        Ok(WasmClient { client })
    }

    /// Joins a room; `meta` is JSON text.
    pub fn join(&self, room_name: &str, meta: &str) -> Result<(), JsError> {
        self.client.join(room(room_name)?, json(meta)?);
        Ok(())
    }

    /// Leaves a room.
    pub fn leave(&self, room_name: &str) -> Result<(), JsError> {
        self.client.leave(room(room_name)?);
        Ok(())
    }

    /// Publishes a durable event (`body` is JSON text); returns its id.
    pub fn publish(&self, room_name: &str, body: &str) -> Result<String, JsError> {
        self.client
            .publish(room(room_name)?, json(body)?)
            .map(|id| id.to_string())
            .map_err(js_error)
    }

    /// Publishes an ephemeral event (only while connected).
    #[wasm_bindgen(js_name = publishEphemeral)]
    pub fn publish_ephemeral(&self, room_name: &str, body: &str) -> Result<String, JsError> {
        self.client
            .publish_ephemeral(room(room_name)?, json(body)?)
            .map(|id| id.to_string())
            .map_err(js_error)
    }

    /// Says whether the user is typing in a room.
    pub fn typing(&self, room_name: &str, on: bool) -> Result<(), JsError> {
        self.client.set_typing(room(room_name)?, on);
        Ok(())
    }

    /// Replaces this tab's presence meta (JSON text) in a room.
    #[wasm_bindgen(js_name = setPresence)]
    pub fn set_presence(&self, room_name: &str, meta: &str) -> Result<(), JsError> {
        self.client.set_presence(room(room_name)?, json(meta)?);
        Ok(())
    }

    /// Hands over a fresh token.
    #[wasm_bindgen(js_name = setToken)]
    pub fn set_token(&self, token: String) {
        self.client.set_token(token);
    }

    /// A room's presence as JSON text (`[]` when not joined).
    pub fn presence(&self, room_name: &str) -> Result<String, JsError> {
        let users = self.client.presence(&room(room_name)?).unwrap_or_default();
        Ok(events::users_json(&users))
    }

    /// Publishes waiting for their ack.
    #[wasm_bindgen(js_name = outboxLength)]
    pub fn outbox_length(&self) -> usize {
        self.client.outbox_len()
    }

    /// Closes the client for good.
    pub fn close(&self) {
        self.client.close();
    }
}
