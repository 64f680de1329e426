//! Shared documents (docs/PROTOCOL.md, "Documents") against the real binary over real TCP:
//! Yjs documents (edited with `yrs`, whose updates are the JS library's bytes) carried as
//! `yjs` events, with the server checking, compacting and serving them.

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chorus_sdk::wire::{self, ServerFrame};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::{BACKEND_KEY, Client, ServerProcess, http, token};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

const ROOM: &str = "doc-room";
const DOC: &str = "notes";

/// A document update event's body.
fn update_body(update: &[u8]) -> String {
    serde_json::json!({ "type": "yjs", "doc": DOC, "update": BASE64.encode(update) }).to_string()
}

fn apply(doc: &Doc, update: &[u8]) {
    doc.transact_mut()
        .apply_update(Update::decode_v1(update).unwrap())
        .unwrap();
}

fn text_of(doc: &Doc) -> String {
    let text = doc.get_or_insert_text("body");
    text.get_string(&doc.transact())
}

/// `GET /v1/rooms/{room}/docs/{doc}` with the client's state vector.
async fn fetch(server: &ServerProcess, doc: &Doc) -> wire::DocState {
    let sv = BASE64.encode(doc.transact().state_vector().encode_v1());
    let path = format!(
        "/v1/rooms/{ROOM}/docs/{DOC}?sv={}",
        sv.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    // A member's read: a user token with a grant on the room.
    let auth = format!("Bearer {}", token("reader"));
    let response = http(server, "GET", &path, &[("Authorization", &auth)], None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json::<wire::DocState>()
}

/// A request with the backend API key.
async fn as_backend(
    server: &ServerProcess,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> support::HttpResponse {
    let auth = format!("Bearer {BACKEND_KEY}");
    http(server, method, path, &[("Authorization", &auth)], body).await
}

/// Publishes `body` as `id` and returns the `nack` it gets.
async fn refused(client: &mut Client, id: &str, body: &str) -> wire::Nack {
    client.publish(ROOM, id, body).await;
    let frames = client
        .recv_until(|f| matches!(f, ServerFrame::Nack(n) if n.id.as_str() == id))
        .await;
    match frames.last() {
        Some(ServerFrame::Nack(nack)) => nack.clone(),
        other => panic!("{id}: no nack but {other:?}"),
    }
}

/// One editor: its document, its socket while online, and the updates it made offline.
struct Peer {
    user: String,
    doc: Doc,
    client: Option<Client>,
    cursor: Option<wire::Cursor>,
    outbox: Vec<Vec<u8>>,
    sent: u64,
}

impl Peer {
    fn new(user: &str) -> Peer {
        Peer {
            user: user.to_owned(),
            doc: Doc::new(),
            client: None,
            cursor: None,
            outbox: Vec::new(),
            sent: 0,
        }
    }

    /// A random edit: insert a short word somewhere, or delete a few characters.
    fn edit(&mut self, rng: &mut SmallRng) {
        let text = self.doc.get_or_insert_text("body");
        let mut txn = self.doc.transact_mut();
        let len = text.len(&txn);
        if len > 4 && rng.random_bool(0.3) {
            let at = rng.random_range(0..len - 2);
            text.remove_range(&mut txn, at, 2);
        } else {
            let at = rng.random_range(0..=len);
            let word = format!("{}{} ", self.user, rng.random_range(0..100));
            text.insert(&mut txn, at, &word);
        }
        self.outbox.push(txn.encode_update_v1());
    }

    /// Connects, joins (resuming from its cursor) and applies what the server has: the replay,
    /// or on a reset the document from REST.
    async fn connect(&mut self, server: &ServerProcess) {
        let mut client = Client::connect(server, &self.user).await;
        let joined = client.join(ROOM, self.cursor).await;
        self.cursor = Some(wire::Cursor {
            epoch: joined.epoch,
            seq: self.cursor.map_or(joined.head, |c| c.seq),
        });
        self.client = Some(client);
        // Everything up to the head at join: replayed events or, when history no longer
        // reaches back, a `reset` (then REST has the document).
        let state = fetch(server, &self.doc).await;
        apply(&self.doc, &BASE64.decode(&state.update).unwrap());
        self.flush().await;
    }

    /// Publishes the outbox, one acked event at a time, applying whatever arrives meanwhile.
    async fn flush(&mut self) {
        while let Some(update) = self.outbox.first().cloned() {
            self.sent += 1;
            let id = format!("{}-{}", self.user, self.sent);
            let client = self.client.as_mut().unwrap();
            client.publish(ROOM, &id, &update_body(&update)).await;
            let frames = client
                .recv_until(|f| {
                    support::is_ack(f, &id)
                        || matches!(f, ServerFrame::Nack(n) if n.id.as_str() == id)
                })
                .await;
            if let Some(ServerFrame::Nack(nack)) = frames.last() {
                panic!("{id} refused: {nack:?}");
            }
            self.take(&frames);
            self.outbox.remove(0);
        }
    }

    /// Applies the document updates among `frames` and moves the cursor.
    fn take(&mut self, frames: &[ServerFrame]) {
        for frame in frames {
            if let ServerFrame::Event(event) = frame {
                let body: serde_json::Value = serde_json::from_str(event.body.as_text()).unwrap();
                if body["type"] == "yjs" {
                    apply(
                        &self.doc,
                        &BASE64.decode(body["update"].as_str().unwrap()).unwrap(),
                    );
                }
                if let (Some(seq), Some(cursor)) = (event.seq, self.cursor.as_mut()) {
                    cursor.seq = cursor.seq.max(seq);
                }
            }
        }
    }

    fn go_offline(&mut self) {
        self.client = None;
    }

    /// A reload: the page's document is gone, its outbox (stored) is not. The new page applies
    /// the outbox's updates at once (as the provider does with `pending` events), then reads
    /// the rest from the server when it connects.
    fn reload(&mut self) {
        self.client = None;
        self.cursor = None;
        self.doc = Doc::new();
        for update in &self.outbox {
            apply(&self.doc, update);
        }
    }
}

/// The settings of the convergence runs: a short history, so most updates are soon trimmed and
/// only the snapshots hold them, and quick compaction.
const DOC_ARGS: [&str; 8] = [
    "--api-key",
    BACKEND_KEY,
    "--retention-events",
    "25",
    "--doc-compact-every",
    "8",
    "--doc-compact-after-ms",
    "200",
];

/// Three peers editing one document for 240 seeded steps, going offline and back and reloading
/// (the document gone, the outbox kept), on the
/// servers `start(i)` makes (peer `p` on server `p % n`); half-way server 0 is SIGKILLed and
/// started again. Then every peer, a newcomer and the server's own reading hold the same text,
/// though history holds only the last 25 events.
async fn converge(nodes: usize, start: impl Fn(usize) -> ServerProcess) {
    let mut servers: Vec<ServerProcess> = (0..nodes).map(&start).collect();
    let mut rng = SmallRng::seed_from_u64(18);
    let mut peers: Vec<Peer> = ["ana", "ben", "cy"].iter().map(|u| Peer::new(u)).collect();
    for (p, peer) in peers.iter_mut().enumerate() {
        peer.connect(&servers[p % nodes]).await;
    }
    for step in 0..240 {
        if step == 120 {
            // SIGKILL: whatever was acknowledged is stored, snapshots included.
            servers.remove(0).stop(false);
            servers.insert(0, start(0));
            for (p, peer) in peers.iter_mut().enumerate() {
                if p % nodes == 0 {
                    peer.go_offline();
                }
            }
        }
        let p = rng.random_range(0..3);
        let (peer, server) = (&mut peers[p], &servers[p % nodes]);
        match rng.random_range(0..12) {
            0 if peer.client.is_some() => peer.go_offline(),
            0 | 1 if peer.client.is_none() => peer.connect(server).await,
            11 => peer.reload(),
            _ => {
                peer.edit(&mut rng);
                if peer.client.is_some() {
                    peer.flush().await;
                }
            }
        }
    }
    for (p, peer) in peers.iter_mut().enumerate() {
        if peer.client.is_none() {
            peer.connect(&servers[p % nodes]).await;
        }
        peer.flush().await;
    }
    // Every peer catches up with what the server has (its sv: only what it lacks).
    for (p, peer) in peers.iter_mut().enumerate() {
        let state = fetch(&servers[p % nodes], &peer.doc).await;
        apply(&peer.doc, &BASE64.decode(&state.update).unwrap());
    }
    let texts: Vec<String> = peers.iter().map(|p| text_of(&p.doc)).collect();
    assert!(texts[0].len() > 100, "edits happened: {texts:?}");
    assert_eq!(texts[0], texts[1]);
    assert_eq!(texts[1], texts[2]);
    for server in &servers {
        // A newcomer gets it all from REST (history was trimmed long ago) ...
        let newcomer = Doc::new();
        let state = fetch(server, &newcomer).await;
        apply(&newcomer, &BASE64.decode(&state.update).unwrap());
        assert_eq!(text_of(&newcomer), texts[0]);
        // ... and the server's own reading of the content agrees.
        let path = format!("/v1/rooms/{ROOM}/docs/{DOC}/content?text=body");
        let response = as_backend(server, "GET", &path, None).await;
        assert_eq!(response.status, 200, "{}", response.body);
        let content = response.json::<wire::DocContent>();
        let content: serde_json::Value = serde_json::from_str(content.content.as_text()).unwrap();
        assert_eq!(content["body"], texts[0]);
        // History holds only the last 25 events: the document came from snapshots.
        let path = format!("/v1/rooms/{ROOM}/events?after=0");
        let events = as_backend(server, "GET", &path, None).await;
        let page = events.json::<wire::EventsPage>();
        assert!(
            page.oldest > 100,
            "history was trimmed: oldest {}",
            page.oldest
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_converge_through_offline_edits_compaction_trimmed_history_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("docs.db");
    let db = db.to_str().unwrap();
    converge(1, |_| {
        ServerProcess::start(&[&["--db", db][..], &DOC_ARGS].concat())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_converge_across_two_nodes_on_redis() {
    let redis = support::redis::RedisServer::start();
    let url = redis.url();
    converge(2, |_| {
        ServerProcess::start(&[&["--redis", &url][..], &DOC_ARGS].concat())
    })
    .await;
}

#[tokio::test]
async fn a_client_with_part_of_the_document_receives_only_what_it_lacks_and_bad_updates_are_refused()
 {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("docs.db");
    let server = ServerProcess::start(&["--db", db.to_str().unwrap(), "--api-key", BACKEND_KEY]);
    let mut ana = Peer::new("ana");
    ana.connect(&server).await;
    let mut rng = SmallRng::seed_from_u64(1);
    for _ in 0..10 {
        ana.edit(&mut rng);
    }
    ana.flush().await;
    // Ben read the document then; ten edits later he gets only those.
    let ben = Doc::new();
    let then = fetch(&server, &ben).await;
    apply(&ben, &BASE64.decode(&then.update).unwrap());
    assert!(
        !StateVector::decode_v1(&BASE64.decode(&then.state_vector).unwrap())
            .unwrap()
            .is_empty()
    );
    for _ in 0..10 {
        ana.edit(&mut rng);
    }
    ana.flush().await;
    let now = fetch(&server, &ben).await;
    let whole = fetch(&server, &Doc::new()).await;
    let (diff, all) = (
        BASE64.decode(&now.update).unwrap(),
        BASE64.decode(&whole.update).unwrap(),
    );
    assert!(
        diff.len() < all.len(),
        "{} bytes of {}",
        diff.len(),
        all.len()
    );
    assert!(now.seq > then.seq);
    apply(&ben, &diff);
    assert_eq!(text_of(&ben), text_of(&ana.doc));
    // Ben has it all now: what comes is at most the delete set, which changes nothing.
    let nothing = fetch(&server, &ben).await;
    apply(&ben, &BASE64.decode(&nothing.update).unwrap());
    assert_eq!(text_of(&ben), text_of(&ana.doc));

    // A malformed update is refused with a clear code, and nothing is stored.
    let client = ana.client.as_mut().unwrap();
    let nack = refused(
        client,
        "bad-1",
        r#"{"type":"yjs","doc":"notes","update":"AAAA!"}"#,
    )
    .await;
    assert_eq!(nack.code, wire::ErrorCode::BadFrame);
    assert!(nack.message.contains("base64"), "{}", nack.message);
    let not_yjs =
        serde_json::json!({"type":"yjs","doc":"notes","update": BASE64.encode([255u8, 255, 255])});
    let nack = refused(client, "bad-2", &not_yjs.to_string()).await;
    assert!(
        nack.message.contains("not a Yjs update"),
        "{}",
        nack.message
    );

    // A backend's update (REST) reaches members as a `yjs` event; posting it again is a duplicate.
    let other = Doc::new();
    let update = {
        let text = other.get_or_insert_text("body");
        let mut txn = other.transact_mut();
        text.insert(&mut txn, 0, "from the backend ");
        txn.encode_update_v1()
    };
    let body = serde_json::json!({ "update": BASE64.encode(&update), "from": "bot" }).to_string();
    let path = format!("/v1/rooms/{ROOM}/docs/{DOC}");
    let posted = as_backend(&server, "POST", &path, Some(&body)).await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let published = posted.json::<wire::Published>();
    assert!(!published.duplicate);
    let client = ana.client.as_mut().unwrap();
    let frames = client
        .recv_until(|f| support::event_seq(f) == Some(published.seq))
        .await;
    ana.take(&frames);
    assert!(text_of(&ana.doc).contains("from the backend"));
    let again = as_backend(&server, "POST", &path, Some(&body)).await;
    assert!(again.json::<wire::Published>().duplicate);
    let bad = as_backend(&server, "POST", &path, Some(r#"{"update":"@@"}"#)).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_code(), wire::ErrorCode::BadRequest);
    let no_roots = as_backend(&server, "GET", &format!("{path}/content"), None).await;
    assert_eq!(no_roots.status, 400);
    assert!(no_roots.body.contains("text="), "{}", no_roots.body);
    let refused = http(&server, "GET", &path, &[], None).await;
    assert_eq!(refused.status, 401);
    // The backend update and Ana's edits, merged.
    let content = as_backend(&server, "GET", &format!("{path}/content?text=body"), None).await;
    let content: serde_json::Value =
        serde_json::from_str(content.json::<wire::DocContent>().content.as_text()).unwrap();
    assert_eq!(content["body"], text_of(&ana.doc));
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A Rust app's path: `NativeClient` (its outbox) with the SDK's `SharedDoc` and `HttpApi`. It
/// edits while offline, a raw peer edits meanwhile, and once back both hold the same text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_client_with_a_shared_doc_edits_offline_through_its_outbox_and_converges() {
    use chorus_sdk::client::{ClientConfig, ClientEvent};
    use chorus_sdk::docs::SharedDoc;
    use chorus_sdk::native::{HttpApi, MemoryStorage, NativeClient, TlsOptions};
    use chorus_sdk::wire::{EventId, Json, RoomName};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("docs.db");
    let server = ServerProcess::start(&["--db", db.to_str().unwrap()]);
    let base = format!("http://{}", server.addr);
    let (client, mut events) = NativeClient::start(
        &base,
        token("ana"),
        ClientConfig::default(),
        Box::new(MemoryStorage::default()),
    );
    let room = RoomName::parse(ROOM).unwrap();
    client.join(room.clone(), Json::null());
    support::wait_for(&mut events, "joined", |e| {
        matches!(e, ClientEvent::Joined { .. })
    })
    .await;
    let shared = SharedDoc::new(EventId::parse(DOC).unwrap());
    let api = HttpApi::new(&base, &TlsOptions::default());
    let read = |path: String| {
        let api = &api;
        async move {
            let answer = api
                .request("GET", &path, Some(&token("ana")), None)
                .await
                .unwrap();
            assert_eq!(answer.status, 200, "{}", answer.body);
            serde_json::from_str::<wire::DocState>(&answer.body).unwrap()
        }
    };
    assert_eq!(
        shared.apply_state(&read(shared.state_path(&room)).await),
        Ok(None)
    );

    // Offline: the edit waits in the outbox.
    client.set_online(false);
    {
        let text = shared.doc().get_or_insert_text("body");
        text.insert(&mut shared.doc().transact_mut(), 0, "native offline. ");
    }
    let id = client
        .publish(room.clone(), shared.take_local().unwrap())
        .await
        .unwrap();
    let mut ben = Peer::new("ben");
    ben.connect(&server).await;
    ben.edit(&mut SmallRng::seed_from_u64(3));
    ben.flush().await;
    // Back online: acknowledged, and Ben's edit arrives as an event.
    client.set_online(true);
    let mut acked = false;
    while !(acked && text_of(shared.doc()).contains("ben")) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("events in time")
            .expect("client running");
        match event {
            ClientEvent::Acked { id: done, .. } if done == id => acked = true,
            ClientEvent::Event { event, .. } => {
                shared.apply_event(&event.body);
            }
            _ => {}
        }
    }
    let state = fetch(&server, &ben.doc).await;
    apply(&ben.doc, &BASE64.decode(&state.update).unwrap());
    assert_eq!(text_of(&ben.doc), text_of(shared.doc()));
    assert!(text_of(&ben.doc).contains("native offline. "));
    client.close();
}
