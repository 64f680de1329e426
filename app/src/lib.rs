//! The Chorus app: a Leptos 0.8 client-side-rendered page where people in a room see each
//! other's presence avatars, typing badges and messages, with a Live / Syncing / Offline badge.
//!
//! It uses the SDK's Rust API ([`chorus_sdk::web::BrowserClient`]) directly: one client per app,
//! provided as context ([`chorus::provide_chorus`]), and one hook ([`hooks::use_room`]) that
//! turns its events for a room into signals. What is shown is computed by
//! [`model`] (pure, tested natively); components only render it. Nothing here talks to the
//! server except through the SDK, apart from the dev-token and history requests in `session`.

pub mod model;

#[cfg(target_arch = "wasm32")]
pub mod chorus;
#[cfg(target_arch = "wasm32")]
pub mod components;
#[cfg(target_arch = "wasm32")]
pub mod hooks;
#[cfg(target_arch = "wasm32")]
pub mod session;
#[cfg(target_arch = "wasm32")]
pub mod shared_notes;

#[cfg(target_arch = "wasm32")]
pub use components::App;
