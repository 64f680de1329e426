//! Streams across two nodes on one real `redis-server`: the backend produces on node A through
//! REST; a member on node B who was there from the start, and one who joins node B mid-stream,
//! each get the whole stream (B keeps its own copy, filled by A's signals and, for a room B
//! opens mid-stream, by A's answer to B's `sync`), then the one stored result.

mod support;

use chorus_sdk::wire::{ServerFrame, StreamStep, StreamUpdate};
use support::redis::RedisServer;
use support::{Client, http};

use support::BACKEND_KEY as KEY;

fn stream_frame(frame: &ServerFrame) -> Option<StreamUpdate> {
    match frame {
        ServerFrame::Stream(stream) => Some(stream.update().unwrap()),
        _ => None,
    }
}

/// The text a member folded from `frames` (chunks at their index; one it has is skipped).
fn fold(frames: &[ServerFrame]) -> String {
    let mut text = String::new();
    let mut next = 0u64;
    for stream in frames.iter().filter_map(stream_frame) {
        for (k, chunk) in stream.chunks.iter().enumerate() {
            if stream.n + k as u64 == next {
                text.push_str(&serde_json::from_str::<String>(chunk.as_text()).unwrap());
                next += 1;
            }
        }
    }
    text
}

#[tokio::test]
async fn a_member_joining_another_node_mid_stream_gets_everything_so_far() {
    let redis = RedisServer::start();
    let a = support::start(&support::redis_config(&redis)).await;
    let b = support::start(&support::redis_config(&redis)).await;
    let mut bob = Client::connect(&b, "bob").await;
    bob.join("r", None).await;
    let key = format!("Bearer {KEY}");
    let auth = [("Authorization", key.as_str())];
    let post = |body: String| {
        let a = &a;
        async move {
            let response = http(a, "POST", "/v1/rooms/r/streams/answer", &auth, Some(&body)).await;
            assert_eq!(response.status, 200, "{}", response.body);
        }
    };
    post(r#"{"op":"start","from":"bot"}"#.into()).await;
    for (n, piece) in ["The ", "quick ", "brown "].iter().enumerate() {
        post(format!(
            r#"{{"op":"append","from":"bot","n":{n},"chunk":"{piece}"}}"#
        ))
        .await;
    }
    let mut seen = Vec::new();
    while fold(&seen) != "The quick brown " {
        seen.push(bob.recv().await);
    }
    // Cy joins on node B mid-stream (B already follows the room: its copy serves her).
    let mut cy = Client::connect(&b, "cy").await;
    cy.join("r", None).await;
    let mut cy_seen = vec![
        cy.recv_until(|f| stream_frame(f).is_some())
            .await
            .pop()
            .unwrap(),
    ];
    assert_eq!(fold(&cy_seen), "The quick brown ");
    // A third node opens the room mid-stream: its `sync` makes A send everything so far.
    let c = support::start(&support::redis_config(&redis)).await;
    let mut dee = Client::connect(&c, "dee").await;
    dee.join("r", None).await;
    let mut dee_seen = vec![
        dee.recv_until(|f| stream_frame(f).is_some())
            .await
            .pop()
            .unwrap(),
    ];
    assert_eq!(fold(&dee_seen), "The quick brown ");
    post(r#"{"op":"append","from":"bot","n":3,"chunk":"fox"}"#.into()).await;
    post(r#"{"op":"finish","from":"bot"}"#.into()).await;
    // Retried on the other node: the same one result.
    let response = http(
        &b,
        "POST",
        "/v1/rooms/r/streams/answer",
        &auth,
        Some(r#"{"op":"finish","from":"bot"}"#),
    )
    .await;
    assert_eq!(
        response.body,
        r#"{"room":"r","id":"answer","seq":1,"duplicate":true}"#
    );
    let result = r#"{"stream":"text","text":"The quick brown fox"}"#;
    for (client, seen) in [
        (&mut bob, &mut seen),
        (&mut cy, &mut cy_seen),
        (&mut dee, &mut dee_seen),
    ] {
        seen.extend(
            client
                .recv_until(|f| stream_frame(f).is_some_and(|s| s.op == StreamStep::Finish))
                .await,
        );
        assert_eq!(fold(seen), "The quick brown fox", "{}", client.user);
        let events: Vec<_> = seen
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Event(e) => Some((e.seq, e.body.as_text().to_owned())),
                _ => None,
            })
            .collect();
        assert_eq!(events, [(Some(1), result.to_owned())], "{}", client.user);
    }
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}
