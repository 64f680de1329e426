//! The browser driver's own tests, in headless Chromium (wasm-bindgen-test, run by
//! `cargo xtask test`): deferred first events, the outbox in `localStorage` surviving a
//! restart, reconnecting when the server is unreachable, the JS export's input checks, the
//! back/forward cache, and nothing left behind by a closed or dropped client.
//! Nothing listens on 127.0.0.1:9, so every connection attempt fails fast.
#![cfg(all(target_arch = "wasm32", feature = "js"))]

use std::cell::RefCell;
use std::rc::Rc;

use chorus_sdk::web::{
    BrowserClient, ClientConfig, ClientEvent, ConnectionState, EventCallback, WasmClient, op,
};
use chorus_sdk::wire::{Json, RoomName};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const NOWHERE: &str = "http://127.0.0.1:9";

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

type Seen = Rc<RefCell<Vec<ClientEvent>>>;

fn start(prefix: &str) -> (BrowserClient, Seen) {
    let seen: Seen = Rc::default();
    let sink = seen.clone();
    let client = BrowserClient::start(
        NOWHERE,
        "token".into(),
        ClientConfig::default(),
        prefix.into(),
        move |event| sink.borrow_mut().push(event),
    )
    .unwrap();
    (client, seen)
}

fn storage() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn has_pending(seen: &Seen, id: &chorus_sdk::wire::EventId) -> bool {
    seen.borrow()
        .iter()
        .any(|e| matches!(e, ClientEvent::Pending { id: p, .. } if p == id))
}

/// The `localStorage` keys starting with `prefix`.
fn keys_under(prefix: &str) -> Vec<String> {
    let storage = storage();
    (0..storage.length().unwrap())
        .filter_map(|n| storage.key(n).unwrap())
        .filter(|key| key.starts_with(prefix))
        .collect()
}

#[wasm_bindgen_test]
async fn the_outbox_is_kept_in_local_storage_and_restored_after_a_restart() {
    let prefix = "web-test-outbox.";
    let room = RoomName::parse("doc:1").unwrap();
    let (client, seen) = start(prefix);
    client.join(room.clone(), Json::null());
    let id = client
        .publish(room.clone(), Json::from_text(r#"{"text":"kept"}"#).unwrap())
        .unwrap();
    assert!(has_pending(&seen, &id));
    // Under the tab's own key (`<prefix><url>|<user>|<tab>:`), with its lease beside it.
    let keys = keys_under(prefix);
    let outbox = keys
        .iter()
        .find(|k| k.ends_with(":chorus.outbox"))
        .expect("the outbox is saved");
    assert!(
        outbox.starts_with(&format!("{prefix}http%3A%2F%2F127.0.0.1%3A9||")),
        "{outbox}"
    );
    assert!(keys.iter().any(|k| k.ends_with(":lease")), "{keys:?}");
    let saved = storage().get_item(outbox).unwrap().unwrap();
    assert!(saved.contains(id.as_str()), "{saved}");

    // A second client (another tab) keeps its own outbox beside the first one's.
    let (other, _) = start(prefix);
    other.join(room.clone(), Json::null());
    let other_id = other
        .publish(room.clone(), Json::from_text("2").unwrap())
        .unwrap();
    let outboxes = keys_under(prefix)
        .into_iter()
        .filter(|k| k.ends_with(":chorus.outbox"))
        .count();
    assert_eq!(outboxes, 2);
    assert_eq!(other.outbox_len(), 1, "the live tab's outbox is not taken");
    client.close();
    other.close();

    // A new client (a reload) takes over both closed tabs' publishes and shows them pending.
    let (again, seen) = start(prefix);
    assert_eq!(again.outbox_len(), 2);
    // The restored publishes are announced from a timer, never inside start(): the app can
    // subscribe first.
    assert!(seen.borrow().is_empty(), "{:?}", seen.borrow());
    sleep(20).await;
    assert!(has_pending(&seen, &id), "{:?}", seen.borrow());
    assert!(has_pending(&seen, &other_id), "{:?}", seen.borrow());
    // Signing out removes everything of the user on that server.
    again.sign_out();
    assert_eq!(keys_under(prefix), Vec::<String>::new());
}

#[wasm_bindgen_test]
async fn an_unreachable_server_means_reconnecting_with_backoff() {
    let (client, seen) = start("web-test-reconnect.");
    client.join(RoomName::parse("doc:2").unwrap(), Json::null());
    for _ in 0..100 {
        if matches!(client.state(), ConnectionState::Reconnecting { .. }) {
            break;
        }
        sleep(20).await;
    }
    assert!(
        matches!(client.state(), ConnectionState::Reconnecting { .. }),
        "{:?}",
        seen.borrow()
    );
    assert!(
        seen.borrow()
            .iter()
            .any(|e| matches!(e, ClientEvent::State(ConnectionState::Reconnecting { .. })))
    );
    client.close();
    assert!(matches!(client.state(), ConnectionState::Closed));
}

#[wasm_bindgen_test]
fn the_js_export_refuses_bad_input_with_a_code_and_a_sentence() {
    let noop = || js_sys::Function::new_no_args("").unchecked_into::<EventCallback>();
    let client = WasmClient::start(
        NOWHERE,
        "t".into(),
        2,
        "x.".into(),
        noop(),
        &noop().into(),
        false,
    )
    .unwrap();
    let refused = |answer: String, code: &str| {
        let prefix = format!(r#"{{"code":"{code}","message":""#);
        assert!(answer.starts_with(&prefix), "{answer}");
        assert!(answer.len() > prefix.len() + 10, "a sentence: {answer}");
    };
    refused(
        client.call(op::JOIN, "no spaces allowed", "null"),
        "invalid_room",
    );
    refused(client.call(op::JOIN, "doc:3", "{not json"), "invalid_json");
    refused(client.call(op::PUBLISH, "doc:3", "1"), "not_joined");
    refused(client.call(99, "doc:3", ""), "unknown_op");
    assert_eq!(
        client.call(op::JOIN, "doc:3", r#"{"m":1}"#),
        r#"{"ok":null}"#
    );
    let id = client.call(op::PUBLISH, "doc:3", "[1,2]");
    assert!(id.starts_with(r#"{"ok":""#), "{id}");
    assert_eq!(client.call(op::PRESENCE, "doc:3", ""), r#"{"ok":[]}"#);
    // Ephemeral events are never queued, and the client is not connected.
    refused(client.call(op::EPHEMERAL, "doc:3", "1"), "offline");
    assert_eq!(client.call(op::CLOSE, "", ""), r#"{"ok":null}"#);
    refused(client.call(op::PUBLISH, "doc:3", "1"), "closed");
}

/// Dispatches a `pagehide`/`pageshow` event as the browser does around the back/forward cache.
fn page_transition(kind: &str, persisted: bool) {
    let event = web_sys::Event::new(kind).unwrap();
    js_sys::Reflect::set(&event, &"persisted".into(), &persisted.into()).unwrap();
    web_sys::window().unwrap().dispatch_event(&event).unwrap();
}

#[wasm_bindgen_test]
async fn the_back_forward_cache_suspends_and_resumes_the_client() {
    let (client, _seen) = start("web-test-bfcache.");
    client.join(RoomName::parse("doc:4").unwrap(), Json::null());
    // A real unload (not persisted) leaves the client alone.
    page_transition("pagehide", false);
    assert!(!matches!(client.state(), ConnectionState::Offline));
    page_transition("pagehide", true);
    assert!(matches!(client.state(), ConnectionState::Offline));
    page_transition("pageshow", true);
    assert!(
        matches!(
            client.state(),
            ConnectionState::Connecting { .. } | ConnectionState::Reconnecting { .. }
        ),
        "{:?}",
        client.state()
    );
    client.close();
    // A closed client's listeners are removed: a later event reaches no dropped closure (which
    // would throw and be reported as an `error` event on the window).
    assert_eq!(errors_during(page_events), 0);
}

#[wasm_bindgen_test]
async fn a_client_dropped_without_close_leaves_nothing_behind() {
    let (client, seen) = start("web-test-drop.");
    client.join(RoomName::parse("doc:5").unwrap(), Json::null());
    drop((client, seen));
    assert_eq!(errors_during(page_events), 0);
    // Nor does its timer fire into a dropped closure.
    let timers = errors_during_async(|| sleep(50)).await;
    assert_eq!(timers, 0);
}

/// The page events a client listens to.
fn page_events() {
    page_transition("pagehide", true);
    page_transition("pageshow", true);
    let window = web_sys::window().unwrap();
    for kind in ["online", "offline"] {
        window
            .dispatch_event(&web_sys::Event::new(kind).unwrap())
            .unwrap();
    }
}

/// Counts the uncaught exceptions (`error` events on the window) while `f` runs.
fn errors_during(f: impl FnOnce()) -> usize {
    let (count, on_error) = count_errors();
    f();
    stop_counting(&on_error);
    *count.borrow()
}

async fn errors_during_async<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> usize {
    let (count, on_error) = count_errors();
    f().await;
    stop_counting(&on_error);
    *count.borrow()
}

type ErrorListener = wasm_bindgen::closure::Closure<dyn FnMut(web_sys::Event)>;

fn count_errors() -> (Rc<RefCell<usize>>, ErrorListener) {
    let count = Rc::new(RefCell::new(0));
    let counter = count.clone();
    let on_error = ErrorListener::new(move |_: web_sys::Event| *counter.borrow_mut() += 1);
    web_sys::window()
        .unwrap()
        .add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref())
        .unwrap();
    (count, on_error)
}

fn stop_counting(on_error: &ErrorListener) {
    web_sys::window()
        .unwrap()
        .remove_event_listener_with_callback("error", on_error.as_ref().unchecked_ref())
        .unwrap();
}
