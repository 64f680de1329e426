//! The Chorus app's entry point: mounts [`chorus_app::App`] on the page (browser only).

#[cfg(target_arch = "wasm32")]
fn main() {
    leptos::mount::mount_to_body(chorus_app::App);
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::print_stderr)] // A binary telling its user where it runs.
fn main() {
    eprintln!("chorus-app runs in the browser: `cargo xtask dev` builds it and serves it at /");
}
