//! Runnable examples of each way of using Chorus (nothing to import from here):
//!
//! - `native_client.rs`: a Rust program on the tokio driver (`chorus_sdk::native`) that joins
//!   a room, publishes one message and prints what arrives until it is stored.
//!   `cargo run -p chorus-examples --example native_client -- lobby "hello"`.
//! - `leptos_room.rs`: a minimal Leptos room on the app's client in context
//!   (`chorus_app::chorus::provide_chorus`) and `chorus_app::hooks::use_room`; built for
//!   `wasm32-unknown-unknown`.
//!
//! The npm package's ways (plain JS, the store, React, bundlers) are in `pkg/README.md`, with
//! running apps in `www/` and `tests/browser/`.
