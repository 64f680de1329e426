//! The native SDK driver against the real server, one transport mode at a time.

mod support;

use chorus_sdk::client::{ClientConfig, ClientEvent, ConnectionState, Transport, TransportMode};
use chorus_sdk::native::{Events, MemoryStorage, NativeClient};
use chorus_sdk::wire::{Json, RoomName};
use support::wait_for;

/// A native client of `user` on the server at `base`, its outbox in memory.
fn client(base: &str, user: &str, config: ClientConfig) -> (NativeClient, Events) {
    let storage = Box::new(MemoryStorage::default());
    NativeClient::start(base, support::token(user), config, storage)
}

async fn round_trip(mode: TransportMode, expected: Transport) {
    let server = support::start(&support::config()).await;
    let base = format!("http://{}", server.local_addr());
    let config = ClientConfig {
        transport: mode,
        ..ClientConfig::default()
    };
    let (ana, mut ana_events) = client(&base, "ana", config.clone());
    let (ben, mut ben_events) = client(&base, "ben", config);
    let room = RoomName::parse("r").unwrap();
    ana.join(room.clone(), Json::null());
    ben.join(room.clone(), Json::null());
    wait_for(&mut ana_events, "connected", |e| matches!(e, ClientEvent::State(ConnectionState::Connected { transport }) if *transport == expected)).await;
    wait_for(&mut ana_events, "joined", |e| {
        matches!(e, ClientEvent::Joined { .. })
    })
    .await;
    wait_for(&mut ben_events, "joined", |e| {
        matches!(e, ClientEvent::Joined { .. })
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            ana.publish(room.clone(), Json::from_text(n.to_string()).unwrap())
                .await
                .unwrap(),
        );
    }
    let last = ids.last().unwrap().clone();
    wait_for(
        &mut ana_events,
        "the last ack",
        |e| matches!(e, ClientEvent::Acked { id, .. } if *id == last),
    )
    .await;
    let seen = wait_for(
        &mut ben_events,
        "five events",
        |e| matches!(e, ClientEvent::Event { event, .. } if event.seq == Some(5)),
    )
    .await;
    let seqs: Vec<u64> = seen
        .iter()
        .filter_map(|e| {
            if let ClientEvent::Event { event, .. } = e {
                event.seq
            } else {
                None
            }
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    ana.close();
    ben.close();
    server.shutdown().await;
}

#[tokio::test]
async fn a_websocket_client_publishes_and_receives() {
    round_trip(TransportMode::WebSocket, Transport::WebSocket).await;
}

#[tokio::test]
async fn a_polling_client_publishes_and_receives() {
    round_trip(TransportMode::Polling, Transport::Polling).await;
}

#[tokio::test]
async fn an_auto_client_uses_the_websocket_when_it_works() {
    round_trip(TransportMode::Auto, Transport::WebSocket).await;
}

#[tokio::test]
async fn an_auto_client_past_its_users_connection_cap_is_told_and_carries_on_over_polling() {
    let mut config = support::config();
    config.max_connections_per_user = 1;
    let server = support::start(&config).await;
    let _first = support::Client::connect(&server, "ana").await;
    let base = format!("http://{}", server.local_addr());
    let (ana, mut events) = client(&base, "ana", ClientConfig::default());
    let room = RoomName::parse("r").unwrap();
    ana.join(room.clone(), Json::null());
    wait_for(&mut events, "the refusal", |e| {
        matches!(e, ClientEvent::Error { code, .. } if *code == chorus_sdk::wire::ErrorCode::TooManyConnections)
    })
    .await;
    wait_for(&mut events, "connected over polling", |e| {
        matches!(e, ClientEvent::State(ConnectionState::Connected { transport }) if *transport == Transport::Polling)
    })
    .await;
    let id = ana
        .publish(room, Json::from_text("1").unwrap())
        .await
        .unwrap();
    wait_for(
        &mut events,
        "the ack",
        |e| matches!(e, ClientEvent::Acked { id: acked, .. } if *acked == id),
    )
    .await;
    ana.close();
    server.shutdown().await;
}
