//! WebSocket connections at their edges, over real TCP: messages over the hard size cap
//! (close 1009, never a bare disconnect), frames against the WebSocket rules (1007, 1002) and a slow link draining a backlog while it pings
//! (it must be read while it is written to, and not be cut as idle).

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, ClientFrame, ErrorCode, ServerFrame, close_code};
use futures_util::{SinkExt, StreamExt};
use support::{Client, Remote, event_seq, is_ack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Reads until the close frame and checks it is `code` after one `error` with `error`.
async fn expect_closed_with(client: &mut Client, code: u16, error: ErrorCode, case: &str) {
    let (close, frames) = client.until_closed().await;
    assert_eq!(
        close.map(|c| u16::from(c.code)),
        Some(code),
        "{case}: {frames:?}"
    );
    assert!(
        matches!(frames.as_slice(), [ServerFrame::Error(e)] if e.code == error),
        "{case}: {frames:?}"
    );
}

/// Reads until the close frame and checks it is 1009 after an `error frame_too_large`.
async fn expect_closed_as_too_big(client: &mut Client, case: &str) {
    let code = close_code::MESSAGE_TOO_BIG;
    expect_closed_with(client, code, ErrorCode::FrameTooLarge, case).await;
}

#[tokio::test]
async fn messages_over_the_hard_cap_are_closed_with_1009() {
    // The default frame limit is 64 KiB, so the hard cap is 256 KiB (262,144 bytes).
    let server = support::start(&support::config()).await;

    // One text message a byte over the cap.
    let mut client = Client::connect(&server, "ana").await;
    let text = format!("\"{}\"", "x".repeat(262_145 - 2));
    client.ws.send(Message::text(text)).await.unwrap();
    expect_closed_as_too_big(&mut client, "262,145 bytes").await;

    // The same as the first message, before any `hello`.
    let mut client = Client::open(&server).await;
    let text = format!("\"{}\"", "x".repeat(262_145 - 2));
    client.ws.send(Message::text(text)).await.unwrap();
    expect_closed_as_too_big(&mut client, "262,145 bytes before hello").await;

    // A message in fragments of 60 KB each, 420 KB in all.
    let mut client = Client::connect(&server, "ana").await;
    let chunk = vec![b'x'; 60_000];
    for n in 0..7 {
        let opcode = if n == 0 { Data::Text } else { Data::Continue };
        let frame = Frame::message(chunk.clone(), OpCode::Data(opcode), n == 6);
        if client.ws.send(Message::Frame(frame)).await.is_err() {
            break; // Closed before the whole message went out: fine, the close is read below.
        }
    }
    expect_closed_as_too_big(&mut client, "420 KB in fragments").await;

    // A frame header announcing 2^62 bytes (masked, as from a client), and no payload.
    let mut client = Client::connect(&server, "ana").await;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let MaybeTlsStream::Plain(tcp) = client.ws.get_mut() else {
        unreachable!("a plain test socket")
    };
    tcp.write_all(&header).await.unwrap();
    expect_closed_as_too_big(&mut client, "2^62 length header").await;

    // The server is fine.
    let mut client = Client::connect(&server, "ana").await;
    client.join("r", None).await;
}

#[tokio::test]
async fn frames_against_the_websocket_rules_are_told_and_closed_with_their_code() {
    let server = support::start(&support::config()).await;

    // A text message that is not UTF-8: 1007, before and after `hello`.
    for hello in [true, false] {
        let mut client = if hello {
            Client::connect(&server, "ana").await
        } else {
            Client::open(&server).await
        };
        let frame = Frame::message(vec![b'"', 0xff, 0xfe, b'"'], OpCode::Data(Data::Text), true);
        client.ws.send(Message::Frame(frame)).await.unwrap();
        expect_closed_with(
            &mut client,
            close_code::INVALID_PAYLOAD,
            ErrorCode::BadFrame,
            "not UTF-8",
        )
        .await;
    }

    // An unmasked frame, which a client must never send: 1002.
    let mut client = Client::connect(&server, "ana").await;
    let MaybeTlsStream::Plain(tcp) = client.ws.get_mut() else {
        unreachable!("a plain test socket")
    };
    tcp.write_all(&[0x81, 2, b'{', b'}']).await.unwrap();
    expect_closed_with(
        &mut client,
        close_code::PROTOCOL_ERROR,
        ErrorCode::BadFrame,
        "unmasked",
    )
    .await;

    // The server is fine.
    let mut client = Client::connect(&server, "ana").await;
    client.join("r", None).await;
}

/// A proxy that passes client→server traffic at once and server→client traffic at about
/// `bytes_per_second`, with small socket buffers on its server side, so the server's writes
/// block as they would on a slow link.
async fn throttling_proxy(server: std::net::SocketAddr, bytes_per_second: usize) -> Remote {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = tokio::net::TcpSocket::new_v4().unwrap();
            upstream.set_recv_buffer_size(4096).unwrap();
            let upstream = upstream.connect(server).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                // 1/100 of a second's worth every 10 ms.
                let mut slice = vec![0; bytes_per_second / 100];
                loop {
                    match server_read.read(&mut slice).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if client_write.write_all(&slice[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
    });
    Remote(addr)
}

#[tokio::test]
async fn a_slow_link_draining_a_backlog_is_read_while_written_and_never_cut_as_idle() {
    // Sockets silent for two heartbeats (2 s) are cut. A client resumes 1000 events of 8 KB
    // over a link of about 1 MB/s and pings every 300 ms. The kernel's buffers take up to
    // 4 MB at once; the rest is written for seconds while the link lets it through, and the
    // server reads the pings meanwhile, counts them, and the replay completes.
    let mut config = support::config();
    config.heartbeat_ms = 1000;
    config.publish_burst = 10_000.0;
    let server = support::start(&config).await;
    let mut writer = Client::connect(&server, "ana").await;
    let joined = writer.join("r", None).await;
    let body = format!("\"{}\"", "b".repeat(8 * 1024));
    for n in 0..1000 {
        writer.publish("r", &format!("e{n}"), &body).await;
        writer.recv_until(|f| is_ack(f, &format!("e{n}"))).await;
    }
    drop(writer);

    let proxy = throttling_proxy(server.local_addr(), 1024 * 1024).await;
    let slow = Client::connect(&proxy, "ben").await;
    let (mut write, mut read) = slow.ws.split();
    let join = ClientFrame::Join(wire::Join {
        room: wire::RoomName::parse("r").unwrap(),
        meta: wire::Json::null(),
        resume: Some(wire::Cursor {
            epoch: joined.epoch,
            seq: 0,
        }),
    });
    write.send(Message::text(join.encode())).await.unwrap();
    let pinger = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let ping = ClientFrame::Ping(wire::Ping { nonce: None }).encode();
            if write.send(Message::text(ping)).await.is_err() {
                break;
            }
        }
    });
    let mut last = 0;
    let mut pongs = 0;
    while last < 1000 {
        let message = tokio::time::timeout(Duration::from_secs(30), read.next())
            .await
            .expect("the replay goes on")
            .expect("the socket stays open")
            .unwrap_or_else(|err| panic!("after #{last}: {err}"));
        let text = match message {
            Message::Text(text) => text,
            Message::Close(close) => panic!("cut after #{last}: {close:?}"),
            _ => continue,
        };
        let frame = ServerFrame::decode(&text).unwrap();
        match &frame {
            ServerFrame::Event(_) => {
                let seq = event_seq(&frame).unwrap();
                assert_eq!(seq, last + 1, "in order, no gaps");
                last = seq;
            }
            ServerFrame::Pong(_) => pongs += 1,
            ServerFrame::Error(error) => panic!("after #{last}: {error:?}"),
            _ => {}
        }
    }
    // The pongs to the pings read meanwhile were queued behind the backlog; they follow it.
    while pongs == 0 {
        let message = tokio::time::timeout(Duration::from_secs(5), read.next())
            .await
            .expect("a pong")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            pongs += usize::from(matches!(
                ServerFrame::decode(&text),
                Ok(ServerFrame::Pong(_))
            ));
        }
    }
    pinger.abort();
}
