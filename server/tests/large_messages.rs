//! Large messages over real TCP, read frame by frame. The server writes the hub's frames raw
//! (`http::output`): a large message (here the `joined` frame of a room with many members)
//! arrives as one text frame, straight from the hub's shared bytes. A peer that reads slowly
//! takes frames in pieces; every frame still arrives whole, with the pongs to its pings
//! (which tungstenite writes) between frames, never inside one.

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

/// Sends a client frame of `opcode` (masked with a zero key, which leaves the bytes as they
/// are).
async fn write_frame(tcp: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend(u16::try_from(len).unwrap().to_be_bytes());
        }
    }
    frame.extend([0, 0, 0, 0]);
    frame.extend(payload);
    tcp.write_all(&frame).await.unwrap();
}

async fn write_text(tcp: &mut TcpStream, text: &str) {
    write_frame(tcp, 0x1, text.as_bytes()).await;
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

/// Opens a WebSocket by hand as `user` (the kernel's receive buffer at `recv_buffer` bytes if
/// given) and joins `room`.
async fn raw_member(
    server: &impl support::Addressed,
    user: &str,
    room: &str,
    recv_buffer: Option<u32>,
) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut tcp = socket.connect(server.local_addr()).await.unwrap();
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
        token: support::token(user),
    });
    write_text(&mut tcp, &hello.encode()).await;
    let join = ClientFrame::Join(wire::Join {
        room: room.parse().unwrap(),
        meta: wire::Json::null(),
        resume: None,
    });
    write_text(&mut tcp, &join.encode()).await;
    tcp
}

#[tokio::test]
async fn a_large_message_arrives_as_one_frame() {
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

    let mut tcp = raw_member(&server, "raw", "big", None).await;
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
    assert_eq!(shape, [(0x1, true, length)], "one whole text frame");

    // Ordinary clients get it as one message, as before.
    let mut late = Client::connect(&server, "late").await;
    let joined = late.join("big", None).await;
    assert_eq!(joined.presence.users.len(), 17);
}

#[tokio::test]
async fn a_slow_reader_that_pings_gets_every_frame_whole() {
    const EVENTS: usize = 160;
    const PINGS: usize = 10;
    let server = support::start(&config()).await;
    // 6.4 MB of events to a peer that does not read yet: more than the kernel buffers (its
    // send buffer grows to 4 MiB here), so the server's writes are cut off mid-frame.
    let mut tcp = raw_member(&server, "slow", "slow", Some(4096)).await;
    let mut publisher = Client::connect(&server, "publisher").await;
    publisher.join("slow", None).await;
    let pad = "x".repeat(40_000);
    for n in 0..EVENTS {
        let id = format!("e{n}");
        publisher
            .publish("slow", &id, &format!("{{\"n\":{n},\"pad\":\"{pad}\"}}"))
            .await;
        publisher
            .recv_until(|frame| support::is_ack(frame, &id))
            .await;
        // Pings while the server is in the middle of a frame: tungstenite's pongs must wait
        // for the frame's end.
        if n % (EVENTS / PINGS) == 0 {
            let ping = format!("ping-{}", n / (EVENTS / PINGS));
            write_frame(&mut tcp, 0x9, ping.as_bytes()).await;
        }
    }

    let mut events = Vec::new();
    let mut pongs = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while events.len() < EVENTS || pongs.len() < PINGS {
            let frame = read_frame(&mut tcp).await;
            match frame.opcode {
                0xa => pongs.push(String::from_utf8(frame.payload).unwrap()),
                0x1 => {
                    assert!(frame.fin, "a whole frame");
                    let text = String::from_utf8(frame.payload)
                        .map_err(|err| err.utf8_error())
                        .expect("a frame of UTF-8 text");
                    // Events are counted; presence and the join's answers pass.
                    let frame = ServerFrame::decode(&text).expect("a whole frame decodes");
                    if let ServerFrame::Event(event) = frame {
                        let body: serde_json::Value =
                            serde_json::from_str(event.body.as_text()).unwrap();
                        assert_eq!(body["pad"].as_str().map(str::len), Some(pad.len()));
                        events.push(body["n"].as_u64().unwrap() as usize);
                    }
                }
                other => panic!("an unexpected opcode {other:#x}"),
            }
        }
    })
    .await
    .expect("every event and every pong arrives");
    assert_eq!(
        events,
        (0..EVENTS).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let expected: Vec<String> = (0..PINGS).map(|n| format!("ping-{n}")).collect();
    assert_eq!(pongs, expected, "a pong to each ping, in order");
}
