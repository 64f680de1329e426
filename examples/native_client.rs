//! A minimal native Chorus client: joins a room, publishes one message, prints the events that
//! arrive until its own message is stored, then closes.
//!
//! With a dev server running (`cargo xtask dev`, on http://127.0.0.1:8080):
//!
//! ```text
//! export CHORUS_TOKEN=$(curl -s -X POST http://127.0.0.1:8080/v1/dev/token \
//!   -H 'content-type: application/json' -d '{"name":"Ana"}' | jq -r .token)
//! cargo run -p chorus-examples --example native_client -- lobby "hello from Rust"
//! ```
//!
//! `CHORUS_URL` points it at another server.

// Printing what arrives is the point of this program.
#![allow(clippy::print_stdout)]

// The tokio driver is for native programs; for the browser see `leptos_room.rs`.
#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), String> {
    native::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use chorus_sdk::client::{ClientConfig, ClientEvent, ConnectionState, Transport};
    use chorus_sdk::native::{MemoryStorage, NativeClient};
    use chorus_sdk::wire::{Json, RoomName};

    #[tokio::main]
    pub(super) async fn main() -> Result<(), String> {
        let url =
            std::env::var("CHORUS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
        let token = std::env::var("CHORUS_TOKEN")
            .map_err(|_| "set CHORUS_TOKEN to a token (see the top of this file)".to_owned())?;
        let mut args = std::env::args().skip(1);
        let room = RoomName::parse(args.next().unwrap_or_else(|| "lobby".to_owned()))
            .map_err(|e| e.to_string())?;
        let text = args.next().unwrap_or_else(|| "hello from Rust".to_owned());

        // MemoryStorage: the outbox lives as long as the program (FileStorage keeps it on disk).
        let (client, mut events) = NativeClient::start(
            &url,
            token,
            ClientConfig::default(),
            Box::new(MemoryStorage::default()),
        );
        client.join(
            room.clone(),
            Json::from_value(&serde_json::json!({ "via": "native" })),
        );
        // Queued at once, sent when connected, kept until the server stores it.
        let id = client
            .publish(room, Json::from_value(&serde_json::json!({ "text": text })))
            .await
            .map_err(|e| e.to_string())?;

        while let Some(event) = events.next().await {
            match event {
                ClientEvent::State(ConnectionState::Connected { transport }) => {
                    let over = match transport {
                        Transport::WebSocket => "a WebSocket",
                        Transport::Polling => "HTTP long polling",
                    };
                    println!("connected over {over}");
                }
                ClientEvent::Event { event, own } => {
                    let who = if own { "me" } else { event.from.as_str() };
                    println!(
                        "#{} {who}: {}",
                        event.seq.unwrap_or(0),
                        event.body.as_text()
                    );
                }
                ClientEvent::Acked { id: acked, seq, .. } if acked == id => {
                    println!("stored as seq {seq}");
                    break;
                }
                ClientEvent::PublishFailed { message, .. } => return Err(message),
                ClientEvent::State(ConnectionState::Failed { .. }) | ClientEvent::TokenNeeded => {
                    return Err("the server refused the token".to_owned());
                }
                _ => {}
            }
        }
        client.close();
        Ok(())
    }
}
