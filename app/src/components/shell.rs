//! The page: sign in with a display name, pick or create a room, then the room view. The room
//! lives in the URL fragment (`#room=design`) so a reload returns to it.

use chorus_sdk::wire::RoomName;
use leptos::prelude::*;

use super::{
    ActivityPanel, Composer, ConnectionBadge, Feed, LockBar, NoticeBanner, PresenceBar,
    SharedSurface, TypingIndicator,
};
use crate::chorus::provide_chorus_with_sign_out;
use crate::hooks::{use_activity, use_room};
use crate::model;
use crate::session::{self, Session};

/// Rooms offered in the picker (any other name can be typed in).
const SUGGESTED_ROOMS: [&str; 3] = ["lobby", "design", "launch"];

fn room_from_fragment() -> Option<RoomName> {
    let hash = window().location().hash().ok()?;
    RoomName::parse(hash.strip_prefix("#room=")?).ok()
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let session = RwSignal::new(session::saved());
    // Set by "Sign out" before the session goes, so the workspace signs its client out (the
    // user's queued messages dropped) instead of only closing it.
    let signing_out = StoredValue::new(false);
    view! {
        <main class="app">
            <header class="top">
                <h1>"Chorus"</h1>
                {move || {
                    session
                        .get()
                        .map(|s| {
                            view! {
                                <span class="me">{s.name}</span>
                                <button
                                    class="link"
                                    on:click=move |_| {
                                        signing_out.set_value(true);
                                        session::forget();
                                        session.set(None);
                                    }
                                >
                                    "Sign out"
                                </button>
                            }
                        })
                }}
            </header>
            {move || match session.get() {
                None => {
                    view! {
                        <SignIn on_signed_in=Callback::new(move |s| {
                            signing_out.set_value(false);
                            session.set(Some(s));
                        }) />
                    }
                        .into_any()
                }
                Some(s) => view! { <Workspace session=s signing_out /> }.into_any(),
            }}
        </main>
    }
}

/// Asks for a display name and gets a dev token for it.
#[component]
fn SignIn(
    /// Called once the server issued a token.
    on_signed_in: Callback<Session>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = name.get_untracked().trim().to_owned();
        if value.is_empty() {
            error.set(Some("Type a name first.".into()));
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            match session::sign_in(&value).await {
                Ok(s) => on_signed_in.run(s),
                Err(why) => error.set(Some(why)),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="sign-in" on:submit=submit>
            <label for="name">"Your name"</label>
            <input
                id="name"
                autocomplete="nickname"
                required
                prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev))
            />
            <button type="submit" disabled=move || busy.get()>
                "Join"
            </button>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
        </form>
    }
}

/// The room picker and the current room, on the app's one client (provided here for
/// everything below; signed out on sign-out).
#[component]
fn Workspace(
    /// Who is signed in.
    session: Session,
    /// Whether the client is to be signed out, not only closed, when the workspace goes.
    signing_out: StoredValue<bool>,
) -> impl IntoView {
    provide_chorus_with_sign_out(&session::server_url(), session.clone(), signing_out);
    let room = RwSignal::new(
        room_from_fragment()
            .unwrap_or_else(|| RoomName::parse(SUGGESTED_ROOMS[0]).expect("a valid room name")),
    );
    // Back/forward between rooms (the fragment changes without a reload).
    let on_hash = window_event_listener_untyped("hashchange", move |_| {
        if let Some(from_url) = room_from_fragment()
            && from_url != room.get_untracked()
        {
            room.set(from_url);
        }
    });
    on_cleanup(move || on_hash.remove());
    let new_room = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let go = move |name: &str| match RoomName::parse(name) {
        Ok(parsed) => {
            let _ = window().location().set_hash(&format!("room={parsed}"));
            error.set(None);
            room.set(parsed);
        }
        Err(why) => error.set(Some(why.to_string())),
    };
    view! {
        <NoticeBanner />
        <nav class="rooms" aria-label="Rooms">
            {SUGGESTED_ROOMS
                .map(|name| {
                    view! {
                        <button
                            class="room-link"
                            aria-current=move || (room.read().as_str() == name).then_some("page")
                            on:click=move |_| go(name)
                        >
                            {format!("#{name}")}
                        </button>
                    }
                })
                .collect_view()}
            <form
                class="new-room"
                on:submit=move |ev| {
                    ev.prevent_default();
                    go(new_room.get_untracked().trim());
                    new_room.set(String::new());
                }
            >
                <label for="new-room">"Open room"</label>
                <input
                    id="new-room"
                    placeholder="room name"
                    prop:value=move || new_room.get()
                    on:input=move |ev| new_room.set(event_target_value(&ev))
                />
            </form>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
        </nav>
        <RoomView name=session.name.clone() room=room />
    }
}

/// One room: badge, presence, feed, typing, edit lock, composer. Follows `room` (the same view, the same
/// client: the old room is left and the new one joined).
#[component]
fn RoomView(
    /// The signed-in user's display name (put in message bodies).
    name: String,
    /// The room shown.
    #[prop(into)]
    room: Signal<RoomName>,
) -> impl IntoView {
    let handle = use_room(room);
    let _activity = use_activity(handle);
    let presence = handle.presence();
    let typing = handle.typing();
    // Recomputed on typing or presence changes only; the feed is a signal of its own.
    let typing_names = Memo::new(move |_| {
        let presence = presence.read();
        typing
            .read()
            .iter()
            .map(|u| model::display_name(&presence, u))
            .collect()
    });
    let notice = handle.notice();
    // Someone else holds the edit lock: the composer is read-only until they let go.
    let (locks, own_lock) = (handle.locks(), handle.own_lock());
    let locked_out = Signal::derive(move || {
        super::lock::held_by_other(&locks.read(), own_lock.read().as_ref()).is_some()
    });
    let messages = handle.messages();
    // The newest stored seq: the activity panel fetches again once per newly stored message
    // (a publish still pending is not in the history yet).
    let newest = Signal::derive(move || {
        messages.with(|feed| feed.iter().filter_map(|m| m.seq).max().unwrap_or(0))
    });
    view! {
        <section class="room" aria-label=move || format!("Room {}", room.read())>
            <header class="room-header">
                <h2>{move || format!("#{}", room.read())}</h2>
                <PresenceBar users=presence />
                <ConnectionBadge state=handle.state() queued=handle.queued() />
            </header>
            {move || {
                notice
                    .get()
                    .map(|text| {
                        view! {
                            <p class="notice" role="status">
                                {text}
                                <button class="link" on:click=move |_| handle.dismiss_notice()>
                                    "Dismiss"
                                </button>
                            </p>
                        }
                    })
            }}
            <SharedSurface handle=handle />
            <Feed messages=messages />
            <TypingIndicator names=typing_names />
            <LockBar room=handle presence=presence />
            <Composer
                disabled=locked_out
                on_send=Callback::new(move |text: String| handle.send(&name, &text))
                on_typing=Callback::new(move |on| handle.set_typing(on))
            />
            <ActivityPanel room=room newest=newest />
        </section>
    }
}
