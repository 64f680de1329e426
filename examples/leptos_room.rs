//! A minimal Leptos room: signs in with a dev token, provides the app's one Chorus client as
//! context, and shows the `lobby` room through `use_room` — the connection badge, who is here,
//! the feed (pending until stored) and a box to publish.
//!
//! Build for the browser (the server serves the page and answers its requests):
//!
//! ```text
//! cargo build --target wasm32-unknown-unknown -p chorus-examples --example leptos_room
//! wasm-bindgen --target web --out-dir dist \
//!   target/wasm32-unknown-unknown/debug/examples/leptos_room.wasm
//! ```
//!
//! then load `dist/leptos_room.js` from a page served by a `--dev` server (e.g. from its
//! `--demo-dir`).

#[cfg(target_arch = "wasm32")]
fn main() {
    leptos::mount::mount_to_body(room::SignIn);
}

// The components: a module so one `cfg` covers them (they use the browser-only client).

/// The example is for the browser (see the top of the file); natively there is nothing to run.
#[cfg(not(target_arch = "wasm32"))]
fn main() {}

#[cfg(target_arch = "wasm32")]
#[allow(unreachable_pub)] // `#[component]` makes the props struct `pub`: it is the example's own.
mod room {
    use chorus_app::chorus::provide_chorus;
    use chorus_app::hooks::use_room;
    use chorus_app::model::{self, Message};
    use chorus_app::session::{self, Session};
    use chorus_sdk::wire::RoomName;
    use leptos::prelude::*;

    /// Gets a dev token, then shows the room.
    #[component]
    pub fn SignIn() -> impl IntoView {
        let session = RwSignal::new(None::<Result<Session, String>>);
        leptos::task::spawn_local(
            async move { session.set(Some(session::sign_in("Guest").await)) },
        );
        move || match session.get() {
            None => view! { <p>"Signing in…"</p> }.into_any(),
            Some(Err(why)) => view! { <p>{why}</p> }.into_any(),
            Some(Ok(session)) => view! { <Lobby session=session /> }.into_any(),
        }
    }

    /// The lobby on the app's client (provided here, closed when this component goes).
    #[component]
    fn Lobby(session: Session) -> impl IntoView {
        provide_chorus(&session::server_url(), session.clone());
        let lobby = RoomName::parse("lobby").expect("a valid room name");
        let room = use_room(Signal::stored(lobby));
        let (state, queued) = (room.state(), room.queued());
        let badge = move || model::badge(&state.get(), queued.get(), None).label;
        let text = RwSignal::new(String::new());
        let name = session.name;
        view! {
            <p>{badge}</p>
            <p>{move || room.presence().get().len()} " here"</p>
            <ul>
                <For
                    each=move || room.messages().get()
                    key=|m: &Message| (m.id.clone(), m.delivery.clone())
                    let:message
                >
                    <li>{message.name} ": " {message.text}</li>
                </For>
            </ul>
            <form on:submit=move |ev| {
                ev.prevent_default();
                room.send(&name, &text.get_untracked());
                text.set(String::new());
            }>
                <input
                    prop:value=move || text.get()
                    on:input=move |ev| {
                        text.set(event_target_value(&ev));
                        room.set_typing(!text.get_untracked().is_empty());
                    }
                />
            </form>
        }
    }
}
