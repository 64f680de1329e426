//! Locks (leases) over real TCP: raw WebSocket clients, raw polling clients and the native
//! SDK over both transports. One holder at a time, everyone told who holds a lock and until
//! when, renewals, releases, expiry, a holder that leaves or disconnects past the presence
//! grace period, fencing tokens that only grow, a stale holder's fenced publish refused with
//! `lock_lost` (over WebSocket, polling and the backend REST API), and `GET
//! /v1/rooms/{room}/locks`.

mod support;

use std::time::Duration;

use chorus_sdk::client::{ClientConfig, ClientEvent, TransportMode};
use chorus_sdk::native::{Events, MemoryStorage, NativeClient};
use chorus_sdk::wire::{
    self, ClientFrame, ErrorCode, EventId, Json, LockChange, LockFence, LockInfo, LockNotice,
    RoomName, ServerFrame,
};
use support::{Client, PollClient, http, is_ack};

const KEY: &str = "backend-secret-key";

fn room() -> RoomName {
    RoomName::parse("r").unwrap()
}

fn lock_frame(id: &str, name: &str, ttl_ms: u64, token: Option<u64>) -> ClientFrame {
    ClientFrame::Lock(wire::LockRequest {
        room: room(),
        id: EventId::parse(id).unwrap(),
        name: EventId::parse(name).unwrap(),
        ttl_ms,
        token,
    })
}

fn unlock_frame(id: &str, name: &str, token: u64) -> ClientFrame {
    ClientFrame::Unlock(wire::UnlockRequest {
        room: room(),
        id: EventId::parse(id).unwrap(),
        name: EventId::parse(name).unwrap(),
        token,
    })
}

fn fenced_publish(id: &str, name: &str, token: u64) -> ClientFrame {
    ClientFrame::Publish(wire::Publish {
        room: room(),
        id: EventId::parse(id).unwrap(),
        body: Json::from_text(r#"{"text":"fenced"}"#).unwrap(),
        durable: true,
        if_seq: None,
        if_lock: Some(LockFence {
            name: EventId::parse(name).unwrap(),
            token,
        }),
    })
}

/// The next `lock` frame (other frames skipped).
async fn next_lock(client: &mut Client) -> LockNotice {
    loop {
        if let ServerFrame::Lock(notice) = client.recv().await {
            return notice;
        }
    }
}

/// The answer to request `id`: its `lock` frame or its `nack`.
async fn answer(client: &mut Client, id: &str) -> Result<LockNotice, wire::Nack> {
    loop {
        match client.recv().await {
            ServerFrame::Lock(notice) if notice.id.as_ref().is_some_and(|i| i.as_str() == id) => {
                return Ok(notice);
            }
            ServerFrame::Nack(nack) if nack.id.as_str() == id => return Err(nack),
            _ => {}
        }
    }
}

/// The ack or nack of publish `id`.
async fn publish_outcome(client: &mut Client, id: &str) -> Result<u64, wire::Nack> {
    loop {
        match client.recv().await {
            frame if is_ack(&frame, id) => {
                let ServerFrame::Ack(ack) = frame else {
                    unreachable!()
                };
                return Ok(ack.seq.unwrap());
            }
            ServerFrame::Nack(nack) if nack.id.as_str() == id => return Err(nack),
            _ => {}
        }
    }
}

fn holders(locks: &Json) -> Vec<(String, String, u64)> {
    LockInfo::list(locks)
        .unwrap()
        .into_iter()
        .map(|l| (l.name.to_string(), l.user, l.token))
        .collect()
}

fn config_with_key() -> chorus_server::config::Config {
    let mut config = support::config();
    config.api_key = Some(KEY.into());
    config
}

#[tokio::test]
async fn websocket_clients_acquire_contend_renew_release_and_fence() {
    let server = support::start(&config_with_key()).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    let joined = ana.join("r", None).await;
    assert_eq!(joined.locks, None, "no lock held: `locks` left out");
    ben.join("r", None).await;

    // Ana takes the lock; she gets the answer with her id, Ben the change without one.
    ana.send(&lock_frame("l1", "doc", 30_000, None)).await;
    let granted = answer(&mut ana, "l1").await.expect("granted");
    assert_eq!(granted.change, LockChange::Granted);
    assert_eq!(
        (granted.lock.user.as_str(), granted.lock.name.as_str()),
        ("ana", "doc")
    );
    let token = granted.lock.token;
    let seen = next_lock(&mut ben).await;
    assert_eq!(
        (seen.change, seen.id, seen.lock.token),
        (LockChange::Granted, None, token)
    );
    assert_eq!(holders(&seen.locks), [("doc".into(), "ana".into(), token)]);

    // A joiner sees it in `joined.locks`; so does the REST API.
    let mut cy = Client::connect(&server, "cy").await;
    let joined = cy.join("r", None).await;
    assert_eq!(
        holders(&joined.locks.unwrap()),
        [("doc".into(), "ana".into(), token)]
    );
    let listed = support::rest_locks(&server, "r", KEY).await;
    assert_eq!(listed, std::slice::from_ref(&granted.lock));
    let listed = support::rest_locks(&server, "r", &support::token("cy")).await;
    assert_eq!(listed.len(), 1);

    // Ben is refused, told who holds it.
    ben.send(&lock_frame("l2", "doc", 30_000, None)).await;
    let refused = answer(&mut ben, "l2").await.expect_err("held by ana");
    assert_eq!(refused.code, ErrorCode::LockHeld);
    assert!(
        refused.message.contains("held by ana"),
        "{}",
        refused.message
    );

    // Ana renews (same token, later `until`) and publishes under her grant.
    ana.send(&lock_frame("l3", "doc", 60_000, Some(token)))
        .await;
    let renewed = answer(&mut ana, "l3").await.expect("renewed");
    assert_eq!(
        (renewed.change, renewed.lock.token),
        (LockChange::Renewed, token)
    );
    assert!(renewed.lock.until > granted.lock.until);
    ana.send(&fenced_publish("p1", "doc", token)).await;
    publish_outcome(&mut ana, "p1")
        .await
        .expect("stored under the grant");

    // Ben can not publish under Ana's grant, nor renew or release it.
    ben.send(&fenced_publish("p2", "doc", token)).await;
    let nack = publish_outcome(&mut ben, "p2")
        .await
        .expect_err("not ben's grant");
    assert_eq!(nack.code, ErrorCode::LockLost);
    ben.send(&unlock_frame("u0", "doc", token)).await;
    assert_eq!(
        answer(&mut ben, "u0").await.unwrap_err().code,
        ErrorCode::LockLost
    );

    // Ana releases; Ben takes it with a greater token.
    ana.send(&unlock_frame("u1", "doc", token)).await;
    let released = answer(&mut ana, "u1").await.expect("released");
    assert_eq!(released.change, LockChange::Released);
    assert!(holders(&released.locks).is_empty());
    ben.send(&lock_frame("l4", "doc", 30_000, None)).await;
    let taken = answer(&mut ben, "l4").await.expect("granted to ben");
    assert!(taken.lock.token > token, "fencing tokens only grow");

    // Ana, a stale holder now, is fenced off with a clear code; nothing is stored.
    ana.send(&fenced_publish("p3", "doc", token)).await;
    let nack = publish_outcome(&mut ana, "p3")
        .await
        .expect_err("stale grant");
    assert_eq!(nack.code, ErrorCode::LockLost);
    assert!(nack.message.contains("held by ben"), "{}", nack.message);
    // The backend too: publishing as Ana with her old token is refused (409 lock_lost).
    let body = format!(
        r#"{{"id":"b1","from":"ana","body":1,"if_lock":{{"name":"doc","token":{token}}}}}"#
    );
    let auth = format!("Bearer {KEY}");
    let response = http(
        &server,
        "POST",
        "/v1/rooms/r/events",
        &[("Authorization", &auth)],
        Some(&body),
    )
    .await;
    assert_eq!(
        (response.status, response.error_code()),
        (409, ErrorCode::LockLost)
    );
    let body = format!(
        r#"{{"id":"b2","from":"ben","body":1,"if_lock":{{"name":"doc","token":{}}}}}"#,
        taken.lock.token
    );
    let response = http(
        &server,
        "POST",
        "/v1/rooms/r/events",
        &[("Authorization", &auth)],
        Some(&body),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);

    // Leaving the room releases Ben's grant at once.
    ben.send(&ClientFrame::Leave(wire::Leave { room: room() }))
        .await;
    // Cy saw every change since joining; the last one is Ben's release.
    let mut seen = next_lock(&mut cy).await;
    while seen.lock.user != "ben" || seen.change != LockChange::Released {
        assert!(seen.lock.until > 0);
        seen = next_lock(&mut cy).await;
    }
    assert!(holders(&seen.locks).is_empty());
    assert!(support::rest_locks(&server, "r", KEY).await.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_grant_expires_at_its_ttl_and_its_holder_is_fenced_off() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    ana.join("r", None).await;
    ben.join("r", None).await;
    ana.send(&lock_frame("l1", "doc", 300, None)).await;
    let token = answer(&mut ana, "l1").await.unwrap().lock.token;
    assert_eq!(next_lock(&mut ben).await.change, LockChange::Granted);
    let expired = next_lock(&mut ben).await;
    assert_eq!(
        (expired.change, expired.lock.token),
        (LockChange::Expired, token)
    );
    assert!(holders(&expired.locks).is_empty());
    assert_eq!(next_lock(&mut ana).await.change, LockChange::Expired);
    // A renewal of the lapsed grant and a publish under it are refused.
    ana.send(&lock_frame("l2", "doc", 300, Some(token))).await;
    assert_eq!(
        answer(&mut ana, "l2").await.unwrap_err().code,
        ErrorCode::LockLost
    );
    ana.send(&fenced_publish("p1", "doc", token)).await;
    let nack = publish_outcome(&mut ana, "p1").await.unwrap_err();
    assert_eq!(nack.code, ErrorCode::LockLost);
    ben.send(&lock_frame("l3", "doc", 30_000, None)).await;
    assert!(answer(&mut ben, "l3").await.unwrap().lock.token > token);
    server.shutdown().await;
}

#[tokio::test]
async fn a_holder_that_disconnects_keeps_its_grant_for_the_grace_period_only() {
    let mut config = support::config();
    config.presence_grace_ms = 400;
    let server = support::start(&config).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    ana.join("r", None).await;
    ben.join("r", None).await;
    ana.send(&lock_frame("l1", "doc", 60_000, None)).await;
    let granted = answer(&mut ana, "l1").await.unwrap();
    next_lock(&mut ben).await;
    drop(ana); // The socket goes without a `leave`.
    // Cut to the grace period (a `renewed` with a sooner `until`), then expired.
    let cut = next_lock(&mut ben).await;
    assert_eq!(cut.change, LockChange::Renewed);
    assert!(cut.lock.until < granted.lock.until);
    let expired = next_lock(&mut ben).await;
    assert_eq!(expired.change, LockChange::Expired);
    ben.send(&lock_frame("l2", "doc", 30_000, None)).await;
    let taken = answer(&mut ben, "l2").await.unwrap();
    assert!(taken.lock.token > granted.lock.token);
    server.shutdown().await;
}

#[tokio::test]
async fn a_polling_client_locks_and_sees_locks_in_state() {
    let server = support::start(&support::config()).await;
    let mut pol = PollClient::new(&server, "ana", "lockpoll1");
    pol.join("r").await;
    let mut ben = Client::connect(&server, "ben").await;
    ben.join("r", None).await;

    // The POST answers the lock request.
    let frames = pol.send(vec![lock_frame("l1", "doc", 30_000, None)]).await;
    let granted = frames
        .iter()
        .find_map(|f| match f {
            ServerFrame::Lock(n) if n.id.as_ref().is_some_and(|i| i.as_str() == "l1") => Some(n),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a lock answer in {frames:?}"));
    let token = granted.lock.token;
    assert_eq!(next_lock(&mut ben).await.lock.user, "ana");
    let frames = pol.send(vec![lock_frame("l2", "doc", 30_000, None)]).await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Lock(n) if n.change == LockChange::Renewed)),
        "the holder's own acquire extends: {frames:?}"
    );
    // Ben is refused; the poll's `state` lists the lock (its version was 0).
    ben.send(&lock_frame("b1", "doc", 30_000, None)).await;
    assert_eq!(
        answer(&mut ben, "b1").await.unwrap_err().code,
        ErrorCode::LockHeld
    );
    let frames = pol.poll(0).await;
    let state = frames
        .iter()
        .find_map(|f| match f {
            ServerFrame::State(s) => s.locks.clone(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("state.locks in {frames:?}"));
    assert_eq!(holders(&state.locks), [("doc".into(), "ana".into(), token)]);
    assert_ne!(state.version, 0);
    // Nothing changed: the next poll brings no `locks`.
    let frames = pol.poll(0).await;
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::State(s) if s.locks.is_some()))
    );

    // A fenced publish over polling; then the release, seen by Ben and by a held poll.
    let frames = pol.send(vec![fenced_publish("p1", "doc", token)]).await;
    assert!(frames.iter().any(|f| is_ack(f, "p1")), "{frames:?}");
    let frames = pol.send(vec![unlock_frame("u1", "doc", token)]).await;
    assert!(frames.iter().any(|f| matches!(f, ServerFrame::Lock(n) if n.change == LockChange::Released && n.id.is_some())), "{frames:?}");
    assert_eq!(next_lock(&mut ben).await.change, LockChange::Released);
    // The next poll has the event and the locks (none now, version 0).
    let frames = pol.poll(0).await;
    let state = frames.iter().find_map(|f| match f {
        ServerFrame::State(s) => s.locks.clone(),
        _ => None,
    });
    let state = state.unwrap_or_else(|| panic!("state.locks in {frames:?}"));
    assert_eq!((state.version, state.locks.as_text()), (0, "[]"));
    // A held poll wakes when someone else takes the lock.
    let held = {
        let mut pol2 = PollClient::new(&server, "ana", "lockpoll1");
        pol2.cursors = pol.cursors.clone();
        tokio::spawn(async move { pol2.poll(10_000).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    ben.send(&lock_frame("b2", "doc", 30_000, None)).await;
    let taken = answer(&mut ben, "b2").await.expect("ben's now");
    let frames = held.await.unwrap();
    let state = frames.iter().find_map(|f| match f {
        ServerFrame::State(s) => s.locks.clone(),
        _ => None,
    });
    let state = state.unwrap_or_else(|| panic!("a held poll wakes for a lock change: {frames:?}"));
    assert_eq!(
        holders(&state.locks),
        [("doc".into(), "ben".into(), taken.lock.token)]
    );
    // Stale now: refused over polling too.
    let frames = pol.send(vec![fenced_publish("p2", "doc", token)]).await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Nack(n) if n.code == ErrorCode::LockLost)),
        "{frames:?}"
    );
    // A client that follows no locks (its polls carry no lock version, as the npm package's)
    // gets none: a `state` without `locks` while Ben holds one, and none after a change.
    let mut plain = PollClient::new(&server, "cy", "lockpoll2");
    plain.join("r").await;
    for cursor in plain.cursors.values_mut() {
        cursor.lock_version = None;
    }
    let no_locks = |frames: &[ServerFrame]| {
        !frames.iter().any(|f| {
            matches!(f, ServerFrame::State(s) if s.locks.is_some())
                || matches!(f, ServerFrame::Lock(_))
        })
    };
    let frames = plain.poll(0).await;
    assert!(no_locks(&frames), "{frames:?}");
    ben.send(&unlock_frame("b3", "doc", taken.lock.token)).await;
    answer(&mut ben, "b3").await.expect("released");
    let frames = plain.poll(0).await;
    assert!(no_locks(&frames), "{frames:?}");
    server.shutdown().await;
}

async fn wait_for(
    events: &mut Events,
    what: &str,
    mut done: impl FnMut(&ClientEvent) -> bool,
) -> ClientEvent {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s; saw {seen:#?}"))
            .expect("client running");
        if done(&event) {
            return event;
        }
        seen.push(event);
    }
}

fn is_joined(event: &ClientEvent) -> bool {
    matches!(event, ClientEvent::Joined { .. })
}

/// Two native SDK clients over `mode`: the holder's auto-renewal keeps a short grant alive,
/// the other is refused and sees who holds it, a fenced publish goes through, a stale one is
/// refused, and the lock passes on after the release.
async fn native_clients_share_a_lock(mode: TransportMode) {
    let server = support::start(&support::config()).await;
    let base = format!("http://{}", server.local_addr());
    let config = ClientConfig {
        transport: mode,
        ..ClientConfig::default()
    };
    let start = |user: &str| {
        NativeClient::start(
            &base,
            support::token(user),
            config.clone(),
            Box::new(MemoryStorage::default()),
        )
    };
    let (ana, mut ana_events) = start("ana");
    let (ben, mut ben_events) = start("ben");
    ana.join(room(), Json::null());
    ben.join(room(), Json::null());
    wait_for(&mut ana_events, "ana joined", is_joined).await;
    wait_for(&mut ben_events, "ben joined", is_joined).await;
    let doc = EventId::parse("doc").unwrap();

    // Short TTL, renewed automatically at half of it.
    let ttl = Duration::from_millis(600);
    let id = ana
        .lock(room(), doc.clone(), ttl, None, true)
        .await
        .unwrap();
    let ClientEvent::LockDone {
        lock: grant,
        change,
        ..
    } = wait_for(
        &mut ana_events,
        "granted",
        |e| matches!(e, ClientEvent::LockDone { id: i, .. } if *i == id),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(change, LockChange::Granted);
    let seen = wait_for(
        &mut ben_events,
        "ana's lock",
        |e| matches!(e, ClientEvent::Locks { locks, .. } if !holders(locks).is_empty()),
    )
    .await;
    let ClientEvent::Locks { locks, .. } = seen else {
        unreachable!()
    };
    assert_eq!(holders(&locks), [("doc".into(), "ana".into(), grant.token)]);
    // Two renewals later (more than the TTL), it is still Ana's, with the same token.
    for _ in 0..2 {
        wait_for(&mut ana_events, "a renewal", |e| {
            matches!(
                e,
                ClientEvent::LockDone {
                    change: LockChange::Renewed,
                    ..
                }
            )
        })
        .await;
    }
    let id = ben
        .lock(room(), doc.clone(), ttl, None, false)
        .await
        .unwrap();
    let refused = wait_for(
        &mut ben_events,
        "refused",
        |e| matches!(e, ClientEvent::LockFailed { id: i, .. } if *i == id),
    )
    .await;
    assert!(
        matches!(
            refused,
            ClientEvent::LockFailed {
                code: ErrorCode::LockHeld,
                ..
            }
        ),
        "{refused:?}"
    );

    let fence = LockFence {
        name: doc.clone(),
        token: grant.token,
    };
    let id = ana
        .publish_fenced(room(), Json::from_text("1").unwrap(), fence.clone())
        .await
        .unwrap();
    wait_for(
        &mut ana_events,
        "the fenced ack",
        |e| matches!(e, ClientEvent::Acked { id: i, .. } if *i == id),
    )
    .await;

    let id = ana.unlock(room(), doc.clone(), grant.token).await.unwrap();
    wait_for(&mut ana_events, "released", |e| matches!(e, ClientEvent::LockDone { id: i, change: LockChange::Released, .. } if *i == id)).await;
    let id = ben
        .lock(room(), doc.clone(), Duration::from_secs(30), None, true)
        .await
        .unwrap();
    let ClientEvent::LockDone { lock: taken, .. } = wait_for(&mut ben_events, "ben's grant", |e| matches!(e, ClientEvent::LockDone { id: i, .. } | ClientEvent::LockFailed { id: i, .. } if *i == id)).await else {
        panic!("ben's lock refused")
    };
    assert!(taken.token > grant.token);
    let id = ana
        .publish_fenced(room(), Json::from_text("2").unwrap(), fence)
        .await
        .unwrap();
    let failed = wait_for(
        &mut ana_events,
        "the stale publish refused",
        |e| matches!(e, ClientEvent::PublishFailed { id: i, .. } if *i == id),
    )
    .await;
    assert!(
        matches!(
            failed,
            ClientEvent::PublishFailed {
                code: ErrorCode::LockLost,
                ..
            }
        ),
        "{failed:?}"
    );
    ana.close();
    ben.close();
    server.shutdown().await;
}

#[tokio::test]
async fn native_websocket_clients_share_a_lock() {
    native_clients_share_a_lock(TransportMode::WebSocket).await;
}

#[tokio::test]
async fn native_polling_clients_share_a_lock() {
    native_clients_share_a_lock(TransportMode::Polling).await;
}
