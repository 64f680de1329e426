//! Scenario 7, streams (Chorus only; issue 17's figure): one producer streams tokens into one
//! room of `members` members at `tokens_per_s` (open loop), each token one `append` frame with
//! its due time as its text. Every member measures each token's latency (due → received, on
//! the generator's clock) and counts the `stream` frames and the chunks in them: chunks minus
//! frames is what the server's coalescing saved (without it, every chunk is one frame to every
//! member).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use chorus_sdk::wire::{self, ClientFrame};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::due;
use crate::client::{self, Protocol, now_us};
use crate::servers::Server;
use crate::stats::percentile;

/// One run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamsRun {
    /// Members of the room (the producer not counted).
    pub members: usize,
    /// The tokens per second the producer was asked for.
    pub target_tokens_per_s: f64,
    /// Tokens sent per second.
    pub tokens_per_s: f64,
    /// Tokens received per second, over all members.
    pub chunk_deliveries_per_s: f64,
    /// `stream` frames received per second, over all members.
    pub frames_per_s: f64,
    /// Frames per second the coalescing saved: chunk deliveries minus frames.
    pub frames_saved_per_s: f64,
    /// Tokens delivered of those sent times members.
    pub delivered: u64,
    /// Tokens sent times members.
    pub expected: u64,
    /// Token latency, due → received: median, p99, p99.9 (ms).
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// See `p50_ms`.
    pub p999_ms: f64,
    /// The server's CPU seconds per second while streaming.
    pub server_cpu: f64,
    /// The generator's CPU seconds per second while streaming.
    pub generator_cpu: f64,
}

#[derive(Default)]
struct Counts {
    chunks: AtomicU64,
    frames: AtomicU64,
}

/// The due times in a `stream` frame's chunks: each chunk is `"t<due_us>"`. A scan rather than
/// a decode, so the generator's cost per token stays small.
fn scan_due(text: &str, out: &mut Vec<u64>) {
    let Some(at) = text.find(r#""chunks":["#) else {
        return;
    };
    for piece in text[at + 10..].split(r#""t"#).skip(1) {
        let digits = piece.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(due) = piece[..digits].parse() {
            out.push(due);
        }
    }
}

/// Streams for `stream_for` at `tokens_per_s` into a room of `members`.
pub async fn run(
    server: &Server,
    members: usize,
    tokens_per_s: f64,
    stream_for: Duration,
) -> Result<StreamsRun> {
    let room = format!("streams-{}", now_us());
    let counts = Arc::new(Counts::default());
    let mut readers = Vec::new();
    for n in 0..members {
        let mut ws = client::open(Protocol::Chorus, server.addr, n).await?;
        client::join(&mut ws, Protocol::Chorus, &room, None).await?;
        let counts = Arc::clone(&counts);
        readers.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut dues = Vec::new();
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let text = text.as_str();
                if !text.starts_with(r#"{"type":"stream""#) {
                    continue;
                }
                let now = now_us();
                dues.clear();
                scan_due(text, &mut dues);
                counts.frames.fetch_add(1, Ordering::Relaxed);
                counts
                    .chunks
                    .fetch_add(dues.len() as u64, Ordering::Relaxed);
                latencies.extend(dues.iter().map(|due| now.saturating_sub(*due) as u32));
                if text.contains(r#""op":"finish""#) {
                    break;
                }
            }
            latencies
        }));
    }
    let (mut sink, mut source) = client::open(Protocol::Chorus, server.addr, members)
        .await?
        .split();
    // The producer is a member too: its own stream's frames are drained (and not counted).
    let join = ClientFrame::Join(wire::Join {
        room: wire::RoomName::parse(room.as_str())?,
        meta: wire::Json::null(),
        resume: None,
    });
    sink.send(Message::text(join.encode())).await?;
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });
    let step = |rest: &str| {
        Message::text(format!(
            r#"{{"type":"stream","room":"{room}","stream":{{"id":"bench","op":{rest}}}}}"#
        ))
    };
    // Give the join a moment: the start must find the producer in the room.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sink.send(step(r#""start""#)).await?;
    let cpu_before = (server.cpu_seconds()?, super::generator_cpu_seconds());
    let start_us = now_us();
    let interval_us = 1e6 / tokens_per_s;
    let total = (tokens_per_s * stream_for.as_secs_f64()) as u64;
    for k in 0..total {
        let due_us = due(start_us, interval_us, k).await;
        sink.feed(step(&format!(r#""append","n":{k},"chunk":"t{due_us}""#)))
            .await?;
        if k % 16 == 15 {
            sink.flush().await?;
        }
    }
    sink.flush().await?;
    let sent_s = (now_us() - start_us) as f64 / 1e6;
    sink.send(step(r#""finish""#)).await?;
    let mut latencies = Vec::new();
    for reader in readers {
        match tokio::time::timeout(Duration::from_secs(30), reader).await {
            Ok(Ok(mut l)) => latencies.append(&mut l),
            _ => bail!("a member did not see the stream finish within 30 s"),
        }
    }
    let elapsed_s = (now_us() - start_us) as f64 / 1e6;
    let cpu_after = (server.cpu_seconds()?, super::generator_cpu_seconds());
    drain.abort();
    latencies.sort_unstable();
    let ms = |q: f64| percentile(&latencies, q).map_or(f64::NAN, |us| f64::from(us) / 1000.0);
    let chunks = counts.chunks.load(Ordering::Relaxed);
    let frames = counts.frames.load(Ordering::Relaxed);
    Ok(StreamsRun {
        members,
        target_tokens_per_s: tokens_per_s,
        tokens_per_s: total as f64 / sent_s,
        chunk_deliveries_per_s: chunks as f64 / elapsed_s,
        frames_per_s: frames as f64 / elapsed_s,
        frames_saved_per_s: chunks.saturating_sub(frames) as f64 / elapsed_s,
        delivered: chunks,
        expected: total * members as u64,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        server_cpu: (cpu_after.0 - cpu_before.0) / elapsed_s,
        generator_cpu: (cpu_after.1 - cpu_before.1) / elapsed_s,
    })
}

#[cfg(test)]
mod tests {
    use super::scan_due;

    #[test]
    fn due_times_are_read_from_the_chunks() {
        let mut out = Vec::new();
        scan_due(
            r#"{"type":"stream","room":"r","stream":{"id":"bench","from":"u1","op":"append","n":4,"chunks":["t12","t345"]}}"#,
            &mut out,
        );
        assert_eq!(out, [12, 345]);
    }
}
