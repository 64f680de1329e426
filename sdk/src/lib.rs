//! `chorus-sdk`: the client side of Chorus.
//!
//! For now this crate holds [`wire`], the protocol's one and only definition of every frame and
//! HTTP body; the sans-IO client core (`client`) and its browser and tokio drivers come next.
//! It must stay free of I/O and runtimes outside the driver modules, because the same code is
//! compiled to WebAssembly.

pub mod wire;
