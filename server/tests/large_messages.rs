//! Large messages over real TCP, read frame by frame: a message longer than 1 KiB (here the
//! `joined` frame of a room with many members) arrives as a text frame and continuation
//! frames of at most 1 KiB each, so the server's per-connection write buffer never holds (and
//! keeps the capacity of) a whole large message. Clients see one message as usual.

mod support;

use chorus_sdk::wire::{self, ClientFrame, ServerFrame};
use support::{Client, PATIENCE, config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One WebSocket frame as it came off the wire.
#[derive(Debug)]
struct RawFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

async fn read_frame(tcp: &mut TcpStream) -> RawFrame {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => u64::from(tcp.read_u16().await.unwrap()),
        127 => tcp.read_u64().await.unwrap(),
        short => u64::from(short),
    };
    let mut payload = vec![0; usize::try_from(len).unwrap()];
    tcp.read_exact(&mut payload).await.unwrap();
    RawFrame {
        fin: head[0] & 0x80 != 0,
        opcode: head[0] & 0x0f,
        payload,
    }
}

/// Sends a client text frame (masked with a zero key, which leaves the bytes as they are).
async fn write_text(tcp: &mut TcpStream, text: &str) {
    let mut frame = vec![0x81];
    match text.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend(u16::try_from(len).unwrap().to_be_bytes());
        }
    }
    frame.extend([0, 0, 0, 0]);
    frame.extend(text.as_bytes());
    tcp.write_all(&frame).await.unwrap();
}

/// Reads frames until a whole message has arrived; returns it and the frames it came in.
async fn read_message(tcp: &mut TcpStream) -> (String, Vec<RawFrame>) {
    let mut frames: Vec<RawFrame> = Vec::new();
    loop {
        let frame = read_frame(tcp).await;
        if matches!(frame.opcode, 0x9 | 0xa) {
            continue; // Pings and pongs may come between the frames of a message.
        }
        let fin = frame.fin;
        frames.push(frame);
        if fin {
            break;
        }
    }
    let text: Vec<u8> = frames.iter().flat_map(|f| f.payload.clone()).collect();
    (String::from_utf8(text).unwrap(), frames)
}

#[tokio::test]
async fn a_large_message_arrives_in_frames_of_at_most_1_kib() {
    let server = support::start(&config()).await;
    let mut members = Vec::new();
    for n in 0..15 {
        let mut member = Client::connect(&server, &format!("member-{n}")).await;
        member
            .send(&ClientFrame::Join(wire::Join {
                room: "big".parse().unwrap(),
                // A meta of 300 characters, some of them several bytes long in UTF-8.
                meta: wire::Json::from_text(format!("{{\"bio\":\"{}\"}}", "é€-".repeat(100)))
                    .unwrap(),
                resume: None,
            }))
            .await;
        member
            .recv_until(|f| matches!(f, ServerFrame::Joined(_)))
            .await;
        members.push(member);
    }

    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let request = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
        wire::WS_SUBPROTOCOL
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(tcp.read_u8().await.unwrap());
    }
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert!(
        response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the accept key of RFC 6455's example: {response}"
    );

    let hello = ClientFrame::Hello(wire::Hello {
        token: support::token("raw"),
    });
    write_text(&mut tcp, &hello.encode()).await;
    let join = ClientFrame::Join(wire::Join {
        room: "big".parse().unwrap(),
        meta: wire::Json::null(),
        resume: None,
    });
    write_text(&mut tcp, &join.encode()).await;

    let joined = tokio::time::timeout(PATIENCE, async {
        loop {
            let (text, frames) = read_message(&mut tcp).await;
            if let ServerFrame::Joined(joined) = ServerFrame::decode(&text).unwrap() {
                return (joined, text.len(), frames);
            }
        }
    })
    .await
    .expect("joined arrives");
    let (joined, length, frames) = joined;
    assert_eq!(joined.presence.users.len(), 16, "everyone is listed");
    assert!(length > 4 * 1024, "a large message: {length} bytes");
    let shape: Vec<(u8, bool, usize)> = frames
        .iter()
        .map(|f| (f.opcode, f.fin, f.payload.len()))
        .collect();
    assert!(
        shape.iter().all(|&(_, _, len)| len <= 1024),
        "no frame over 1 KiB: {shape:?}"
    );
    assert_eq!(shape[0].0, 0x1, "a text frame first: {shape:?}");
    assert!(
        shape[1..].iter().all(|&(opcode, _, _)| opcode == 0x0),
        "then continuation frames: {shape:?}"
    );
    assert!(
        shape[..shape.len() - 1].iter().all(|&(_, fin, _)| !fin),
        "{shape:?}"
    );

    // Ordinary clients get it as one message, as before.
    let mut late = Client::connect(&server, "late").await;
    let joined = late.join("big", None).await;
    assert_eq!(joined.presence.users.len(), 17);
}
