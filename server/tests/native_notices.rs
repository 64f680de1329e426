//! The native Rust client gets the backend's notices as `ClientEvent::Notice`, over WebSocket
//! and over polling (with its next poll), from a real server over real TCP.

mod support;

use chorus_sdk::client::{ClientConfig, ClientEvent, TransportMode};
use chorus_sdk::native::{Events, MemoryStorage, NativeClient};
use chorus_sdk::wire::{Json, RoomName};
use support::http;

use support::BACKEND_KEY as KEY;

async fn next_notice(events: &mut Events) -> chorus_sdk::wire::Notice {
    let seen = support::wait_for(events, "notice", |e| matches!(e, ClientEvent::Notice(_))).await;
    match seen.last() {
        Some(ClientEvent::Notice(notice)) => notice.clone(),
        _ => unreachable!("wait_for ends with the event it picked"),
    }
}

async fn notice_reaches_the_native_client(mode: TransportMode) {
    let config = support::backend_config();
    let server = support::start(&config).await;
    let base = format!("http://{}", server.local_addr());
    let client_config = ClientConfig {
        transport: mode,
        ..ClientConfig::default()
    };
    let (ana, mut events) = NativeClient::start(
        &base,
        support::token("ana"),
        client_config,
        Box::new(MemoryStorage::default()),
    );
    // In a room, so that a polling client polls.
    ana.join(RoomName::parse("r").unwrap(), Json::null());
    support::wait_for(&mut events, "joined", |e| {
        matches!(e, ClientEvent::Joined { .. })
    })
    .await;
    let key = format!("Bearer {KEY}");
    let response = http(
        &server,
        "POST",
        "/v1/users/ana/notices",
        &[("Authorization", &key)],
        Some(r#"{"id":"hello-ana","level":"critical","body":{"text":"restart"}}"#),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let notice = next_notice(&mut events).await;
    assert_eq!(
        (
            notice.id.as_str(),
            notice.level.as_str(),
            notice.body.as_text()
        ),
        ("hello-ana", "critical", r#"{"text":"restart"}"#)
    );
    ana.close();
}

#[tokio::test]
async fn the_native_client_gets_notices_over_websocket() {
    notice_reaches_the_native_client(TransportMode::WebSocket).await;
}

#[tokio::test]
async fn the_native_client_gets_notices_over_polling() {
    notice_reaches_the_native_client(TransportMode::Polling).await;
}
