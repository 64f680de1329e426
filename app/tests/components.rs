//! Component and hook tests in a real browser (wasm-bindgen-test in headless Chromium, run by
//! `cargo xtask test`): the connection badge, the typing indicator, the presence bar, and
//! `use_room` turning SDK events into signals with the outbox surviving a "reload", and following
//! a reactive room name on the app's one client.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use chorus_app::chorus::provide_chorus;
use chorus_app::components::{ConnectionBadge, PresenceBar, TypingIndicator};
use chorus_app::hooks::{now, use_room};
use chorus_app::model::Delivery;
use chorus_app::session::Session;
use chorus_sdk::client::{ConnectionState, Transport};
use chorus_sdk::wire::{Json, PresenceConn, PresenceUser, RoomName};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Starts Leptos's executor (for effects and tasks) as mounting an app does (an empty view:
/// `mount_to_body` keeps it mounted for the rest of the page).
fn start_executor() {
    leptos::mount::mount_to_body(|| ());
}

/// Waits for timers and Leptos's scheduled effects.
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

/// A fresh element to mount into.
fn host() -> web_sys::HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let div = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&div).unwrap();
    div.unchecked_into()
}

fn text(root: &web_sys::HtmlElement, selector: &str) -> Option<String> {
    root.query_selector(selector)
        .unwrap()
        .and_then(|e| e.text_content())
}

#[wasm_bindgen_test]
async fn the_badge_follows_state_queued_count_and_retry_countdown() {
    let root = host();
    let state = RwSignal::new(ConnectionState::Connected {
        transport: Transport::WebSocket,
    });
    let queued = RwSignal::new(0usize);
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        view! { <ConnectionBadge state=state queued=queued /> }
    });
    sleep(10).await;
    assert_eq!(
        text(&root, ".badge.live .badge-label").as_deref(),
        Some("Live")
    );
    assert_eq!(text(&root, ".badge-detail").as_deref(), Some("WebSocket"));

    state.set(ConnectionState::Offline);
    queued.set(2);
    sleep(10).await;
    assert_eq!(
        text(&root, ".badge.offline .badge-label").as_deref(),
        Some("Offline")
    );
    assert_eq!(text(&root, ".badge-detail").as_deref(), Some("2 pending"));

    state.set(ConnectionState::Reconnecting {
        attempt: 3,
        next_attempt: now() + Duration::from_millis(2_500),
    });
    sleep(10).await;
    assert_eq!(
        text(&root, ".badge.syncing .badge-label").as_deref(),
        Some("Syncing")
    );
    assert_eq!(
        text(&root, ".badge-detail").as_deref(),
        Some("retry in 3 s · 2 pending")
    );
    // The countdown moves on its own.
    sleep(1_000).await;
    assert_eq!(
        text(&root, ".badge-detail").as_deref(),
        Some("retry in 2 s · 2 pending")
    );
}

#[wasm_bindgen_test]
async fn the_typing_indicator_names_one_two_or_counts_more() {
    let root = host();
    let names = RwSignal::new(Vec::<String>::new());
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        view! { <TypingIndicator names=names /> }
    });
    sleep(10).await;
    assert_eq!(text(&root, ".typing-text"), None);
    for (who, expect) in [
        (vec!["Ana"], "Ana is typing…"),
        (vec!["Ana", "Ben"], "Ana and Ben are typing…"),
        (vec!["Ana", "Ben", "Caio"], "3 people are typing…"),
    ] {
        names.set(who.into_iter().map(String::from).collect());
        sleep(10).await;
        assert_eq!(text(&root, ".typing-text").as_deref(), Some(expect));
    }
    names.set(Vec::new());
    sleep(10).await;
    assert_eq!(text(&root, ".typing-text"), None);
}

fn user(id: &str, tabs: usize) -> PresenceUser {
    PresenceUser {
        user: id.into(),
        name: Some(format!("{id} Person")),
        conns: (0..tabs)
            .map(|i| PresenceConn {
                conn: format!("{id}-{i}"),
                meta: Json::from_text(r#"{"status":"active"}"#).unwrap(),
                since: 0,
            })
            .collect(),
    }
}

#[wasm_bindgen_test]
async fn the_presence_bar_folds_tabs_and_overflows() {
    let root = host();
    let users = RwSignal::new(vec![user("ana", 2), user("ben", 1)]);
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        view! { <PresenceBar users=users /> }
    });
    sleep(10).await;
    assert_eq!(
        text(&root, r#"[data-user="ana"] .tabs"#).as_deref(),
        Some("2")
    );
    assert_eq!(
        text(&root, r#"[data-user="ana"] .initials"#).as_deref(),
        Some("AP")
    );
    assert_eq!(text(&root, r#"[data-user="ben"] .tabs"#), None);
    users.set(
        ["a", "b", "c", "d", "e", "f", "g"]
            .map(|u| user(u, 1))
            .to_vec(),
    );
    sleep(10).await;
    assert_eq!(
        root.query_selector_all(".avatar:not(.more)")
            .unwrap()
            .length(),
        5
    );
    assert_eq!(text(&root, ".avatar.more").as_deref(), Some("+2"));
}

#[wasm_bindgen_test]
async fn use_room_shows_pending_publishes_and_keeps_them_across_a_reload() {
    // No server listens on port 9: the client keeps retrying, so publishes stay pending.
    let session = Session {
        name: "Tess".into(),
        user: "tess-hook-test".into(),
        token: "not-checked-offline".into(),
    };
    let room = RoomName::parse("hook:1").unwrap();
    start_executor();
    let owner = Owner::new();
    let handle = owner.with(|| {
        provide_chorus("http://127.0.0.1:9", session.clone());
        use_room(Signal::stored(room.clone()))
    });
    handle.send("Tess", "written offline");
    sleep(50).await;
    let messages = handle.messages().get_untracked();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].text.as_str(), &messages[0].delivery),
        ("written offline", &Delivery::Pending)
    );
    assert_eq!(handle.queued().get_untracked(), 1);
    // The SDK's state events reach the signal: the unreachable server means reconnecting.
    for _ in 0..100 {
        if matches!(
            handle.state().get_untracked(),
            ConnectionState::Reconnecting { .. }
        ) {
            break;
        }
        sleep(20).await;
    }
    assert!(
        matches!(
            handle.state().get_untracked(),
            ConnectionState::Reconnecting { .. }
        ),
        "{:?}",
        handle.state().get_untracked()
    );
    // Disposing the owner closes the client; a new one (a reload) restores the outbox.
    drop(owner);
    let owner = Owner::new();
    let again = owner.with(|| {
        provide_chorus("http://127.0.0.1:9", session.clone());
        use_room(Signal::stored(room))
    });
    sleep(50).await;
    assert_eq!(again.queued().get_untracked(), 1);
    let restored = again.messages().get_untracked();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(restored[0].text, "written offline");
    assert_eq!(restored[0].delivery, Delivery::Pending);
    drop(owner);
}

#[wasm_bindgen_test]
async fn use_room_follows_the_room_signal_on_one_client() {
    let session = Session {
        name: "Uma".into(),
        user: "uma-follow-test".into(),
        token: "not-checked-offline".into(),
    };
    let first = RoomName::parse("follow:a").unwrap();
    let second = RoomName::parse("follow:b").unwrap();
    start_executor();
    let owner = Owner::new();
    let room = owner.with(|| RwSignal::new(first.clone()));
    let (one, two) = owner.with(|| {
        provide_chorus("http://127.0.0.1:9", session.clone());
        // Two views of the same room share the app's client (and its outbox).
        (
            use_room(room.into()),
            use_room(Signal::stored(first.clone())),
        )
    });
    one.send("Uma", "in a");
    sleep(50).await;
    assert_eq!(one.messages().get_untracked().len(), 1);
    assert_eq!(
        two.messages().get_untracked().len(),
        1,
        "the other view sees it too"
    );
    assert_eq!(one.queued().get_untracked(), 1);
    room.set(second.clone());
    sleep(50).await;
    assert_eq!(one.room().get_untracked(), second);
    assert!(
        one.messages().get_untracked().is_empty(),
        "the new room's feed"
    );
    one.send("Uma", "in b");
    sleep(50).await;
    let texts: Vec<String> = one
        .messages()
        .get_untracked()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["in b"]);
    assert_eq!(
        two.messages().get_untracked().len(),
        1,
        "the other view stays on a"
    );
    assert_eq!(one.queued().get_untracked(), 2, "one client, one outbox");
    // Back on the first room: its unsent message is shown as pending again.
    room.set(first.clone());
    sleep(50).await;
    let back: Vec<(String, Delivery)> = one
        .messages()
        .get_untracked()
        .into_iter()
        .map(|m| (m.text, m.delivery))
        .collect();
    assert_eq!(back, [("in a".to_owned(), Delivery::Pending)]);
    drop(owner);
}
