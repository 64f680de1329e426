//! `chorus-sdk`: the client side of Chorus.
//!
//! - [`wire`]: the protocol's one and only definition of every frame and HTTP body.
//! - [`client`]: the sans-IO client core (connection, transports, outbox, merge, presence,
//!   typing) that every driver runs.
//! - [`js_abi`]: the numbers shared with the package's JavaScript (operations, report kinds).
//! - [`text`]: numbers and messages without `core::fmt` (for the browser build's size).
//! - [`time`]: the core's clock type ([`time::Instant`]), which works in the browser too.
//! - `native` (feature `native`): the tokio driver and [`NativeClient`](native::NativeClient).
//! - `web` (feature `web`, on `wasm32`): the browser driver and `BrowserClient`, which Leptos
//!   apps use; with feature `js` also `WasmClient`, the npm package's export.
//! - `docs` (feature `yjs`): shared documents, a Yjs document (`yrs`) kept in step with a room.
//!
//! Other features: `locks` (lock requests and renewal in the core; the wire's lock codec),
//! `serde` (`Serialize`/`Deserialize` for the wire types). sdk/Cargo.toml says what each pulls in.
//!
//! Everything outside the driver modules is free of I/O and runtimes, because the same code is
//! compiled to WebAssembly.

pub mod client;
#[cfg(feature = "yjs")]
pub mod docs;
pub mod js_abi;
#[cfg(feature = "native")]
pub mod native;
pub mod text;
pub mod time;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;
// The browser driver's storage for several tabs (plain logic, so its tests run natively too).
#[cfg(any(all(feature = "web", target_arch = "wasm32"), test))]
mod tab_storage;
pub mod wire;
