//! Locks across nodes on a real `redis-server`: a holder on node A (the real binary), a
//! contender on node B. B's members see A's grant and are refused while it lasts; when A is
//! killed outright (SIGKILL: it releases nothing), B expires the grant at its `until` on its own
//! clock, the contender takes the lock with a greater fencing token, and the dead holder's
//! token is fenced off on B. `GET /v1/rooms/{room}/locks` answers the same on every node.
//! When A shuts down instead (SIGTERM), the holder's grant outlives the drain and is renewed
//! from B.

mod support;

use chorus_sdk::wire::{
    self, ClientFrame, ErrorCode, EventId, LockChange, LockNotice, RoomName, ServerFrame,
};
use support::redis::RedisServer;
use support::{Client, Remote, ServerProcess, http};

const KEY: &str = "backend-secret-key";

fn lock_frame(id: &str, ttl_ms: u64) -> ClientFrame {
    ClientFrame::Lock(wire::LockRequest {
        room: RoomName::parse("r").unwrap(),
        id: EventId::parse(id).unwrap(),
        name: EventId::parse("doc").unwrap(),
        ttl_ms,
        token: None,
    })
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

/// The next `lock` frame (other frames skipped).
async fn next_lock(client: &mut Client) -> LockNotice {
    loop {
        if let ServerFrame::Lock(notice) = client.recv().await {
            return notice;
        }
    }
}

/// Node A (the real binary) and node B (in this process) on one `redis-server`, with ana on
/// A and ben on B, both in room `r`.
struct TwoNodes {
    redis: RedisServer,
    node_a: ServerProcess,
    node_b: chorus_server::RunningServer,
    ana: Client,
    ben: Client,
}

impl TwoNodes {
    async fn start() -> TwoNodes {
        let redis = RedisServer::start();
        let node_a = ServerProcess::start(&["--redis", &redis.url(), "--api-key", KEY]);
        let mut config = support::config();
        config.redis = Some(redis.url());
        config.api_key = Some(KEY.into());
        let node_b = support::start(&config).await;
        let mut ana = Client::connect(&Remote(node_a.addr), "ana").await;
        let mut ben = Client::connect(&node_b, "ben").await;
        ana.join("r", None).await;
        ben.join("r", None).await;
        TwoNodes {
            redis,
            node_a,
            node_b,
            ana,
            ben,
        }
    }
}

#[tokio::test]
async fn a_lease_held_on_a_killed_node_expires_on_the_other_and_passes_on() {
    let TwoNodes {
        redis: _redis,
        node_a,
        node_b,
        mut ana,
        mut ben,
    } = TwoNodes::start().await;

    // Ana holds it on A, for 2 s, never renewed.
    ana.send(&lock_frame("a1", 2000)).await;
    let grant = answer(&mut ana, "a1").await.expect("granted on A").lock;
    // B hears of it and refuses Ben, naming Ana.
    let seen = next_lock(&mut ben).await;
    assert_eq!((seen.change, &seen.lock), (LockChange::Granted, &grant));
    ben.send(&lock_frame("b1", 30_000)).await;
    let refused = answer(&mut ben, "b1").await.expect_err("held on A");
    assert_eq!(refused.code, ErrorCode::LockHeld);
    assert!(
        refused.message.contains("held by ana"),
        "{}",
        refused.message
    );
    assert_eq!(
        support::rest_locks(&node_b, "r", KEY).await,
        std::slice::from_ref(&grant)
    );
    assert_eq!(
        support::rest_locks(&Remote(node_a.addr), "r", KEY).await,
        std::slice::from_ref(&grant)
    );

    // A dies without a word; B expires the grant at its `until`.
    node_a.stop(false);
    let expired = next_lock(&mut ben).await;
    assert_eq!(
        (expired.change, expired.lock.token),
        (LockChange::Expired, grant.token)
    );
    assert_eq!(expired.locks.as_text(), "[]");
    assert!(support::rest_locks(&node_b, "r", KEY).await.is_empty());

    // Ben takes it with a greater token; Ana's old token is refused on B.
    ben.send(&lock_frame("b2", 30_000)).await;
    let taken = answer(&mut ben, "b2").await.expect("granted to ben").lock;
    assert!(taken.token > grant.token, "fencing tokens only grow");
    let auth = format!("Bearer {KEY}");
    let body = format!(
        r#"{{"id":"stale","from":"ana","body":1,"if_lock":{{"name":"doc","token":{}}}}}"#,
        grant.token
    );
    let headers = [("Authorization", auth.as_str())];
    let response = http(&node_b, "POST", "/v1/rooms/r/events", &headers, Some(&body)).await;
    assert_eq!(
        (response.status, response.error_code()),
        (409, ErrorCode::LockLost),
        "{}",
        response.body
    );
    assert!(response.body.contains("held by ben"), "{}", response.body);
    node_b.shutdown().await;
}

/// Node A shuts down (SIGTERM) while ana holds a lock through it. The drain closes her
/// connection and leaves her grant as it is: ben, on node B, hears no change, and ana renews
/// it with her token from a new connection on B (same token, her new connection), which ben
/// hears as `renewed`.
#[tokio::test]
async fn a_lease_held_on_a_node_that_shuts_down_is_renewed_from_another() {
    let TwoNodes {
        redis: _redis,
        node_a,
        node_b,
        mut ana,
        mut ben,
    } = TwoNodes::start().await;
    ana.send(&lock_frame("a1", 60_000)).await;
    let grant = answer(&mut ana, "a1").await.expect("granted on A").lock;
    assert_eq!(next_lock(&mut ben).await.lock, grant);

    assert!(node_a.stop(true).success(), "A drains and exits cleanly");
    let (_, frames) = ana.until_closed().await;
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Draining(_))),
        "{frames:?}"
    );
    let still = support::rest_locks(&node_b, "r", KEY).await;
    assert_eq!(
        still,
        std::slice::from_ref(&grant),
        "the drain kept the grant"
    );

    let mut ana = Client::connect(&node_b, "ana").await;
    ana.join("r", None).await;
    let mut renew = lock_frame("a2", 60_000);
    if let ClientFrame::Lock(request) = &mut renew {
        request.token = Some(grant.token);
    }
    ana.send(&renew).await;
    let renewed = answer(&mut ana, "a2").await.expect("renewed on B");
    assert_eq!(
        (renewed.change, renewed.lock.token),
        (LockChange::Renewed, grant.token)
    );
    assert_ne!(renewed.lock.conn, grant.conn, "moved to her new connection");
    let seen = next_lock(&mut ben).await;
    assert_eq!(
        (seen.change, &seen.lock),
        (LockChange::Renewed, &renewed.lock)
    );
    node_b.shutdown().await;
}
