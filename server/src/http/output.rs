//! What a WebSocket connection task writes, and how.
//!
//! tokio-tungstenite reads the socket (frames, pings, closes) and writes what it makes itself
//! (pongs, the close frame, the rare messages of the closing paths). The data frames of the
//! hub's queue do not go through it: each one's header is formed here and written raw, with
//! its payload's shared bytes, the frames waiting (up to 16) by one vectored write ([`Output`]).
//! Nothing is copied between the hub's buffer and the socket, and no write buffer keeps the
//! capacity of a large frame for the connection's life.
//!
//! The two writers share the socket through [`RawFrames`], under tungstenite: a data frame the
//! socket takes only part of is finished before any other byte goes out (tungstenite's writes
//! wait for it), and tungstenite's own bytes are flushed before a data frame starts.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{FrameHeader, Utf8Bytes};

use super::upgrade::Socket as WebSocket;
use crate::driver::FrameReceiver;
use crate::hub::Payload;

/// Frames moved into the socket per poll at most, so one busy connection yields in between.
const FRAMES_PER_POLL: usize = 64;
/// Frames written by one vectored write at most (three slices each: header, prefix, body).
const FRAMES_PER_WRITE: usize = 16;

/// One text message as a single unmasked WebSocket frame: its header, an optional prefix (a
/// multiplexed socket's `<tab>:`) and the body, the last two shared, not copied.
pub(super) struct Outgoing {
    head: [u8; 10],
    head_len: u8,
    prefix: Bytes,
    body: Bytes,
}

impl Outgoing {
    /// A hub payload.
    pub(super) fn new(payload: Payload) -> Outgoing {
        Outgoing::text(payload.into_bytes())
    }

    /// A message of UTF-8 text `body`.
    pub(super) fn text(body: Bytes) -> Outgoing {
        Outgoing::prefixed(Bytes::new(), body)
    }

    /// A message of UTF-8 text `prefix` followed by UTF-8 text `body`.
    pub(super) fn prefixed(prefix: Bytes, body: Bytes) -> Outgoing {
        debug_assert!(std::str::from_utf8(&prefix).is_ok() && std::str::from_utf8(&body).is_ok());
        // A final text frame, unmasked as server frames are: its header, then the payload as
        // it is (tungstenite formats the header, in the shortest length form).
        let header = FrameHeader {
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        };
        let mut head = [0; 10];
        let mut cursor = std::io::Cursor::new(&mut head[..]);
        let len = (prefix.len() + body.len()) as u64;
        header
            .format(len, &mut cursor)
            .expect("an unmasked header takes at most 10 bytes");
        let head_len = cursor.position() as u8;
        Outgoing {
            head,
            head_len,
            prefix,
            body,
        }
    }

    /// The frame's length in bytes, header included.
    fn len(&self) -> usize {
        usize::from(self.head_len) + self.prefix.len() + self.body.len()
    }

    /// The frame's bytes from `from` on, in up to three slices, none empty.
    fn slices(&self, from: usize) -> impl Iterator<Item = &[u8]> {
        let parts = [
            &self.head[..usize::from(self.head_len)],
            &self.prefix[..],
            &self.body[..],
        ];
        let mut skip = from;
        parts.into_iter().filter_map(move |part| {
            let taken = skip.min(part.len());
            skip -= taken;
            Some(&part[taken..]).filter(|rest| !rest.is_empty())
        })
    }

    /// The message for tungstenite to send (the closing paths, which write through it).
    pub(super) fn into_message(self) -> Message {
        let bytes = if self.prefix.is_empty() {
            self.body
        } else {
            [self.prefix, self.body].concat().into()
        };
        Message::Text(Utf8Bytes::try_from(bytes).expect("a message is UTF-8 text"))
    }
}

/// The socket under tungstenite: it also takes data frames written raw
/// ([`RawFrames::poll_write_frames`]) and keeps each whole. A frame the socket took only part
/// of is finished first by every later write, tungstenite's included, so no byte of another
/// frame lands inside it.
pub(super) struct RawFrames<S> {
    io: S,
    /// A frame the socket took part of, and how many of its bytes. Boxed: it is rare (a full
    /// socket), and every connection holds a `RawFrames`.
    partial: Option<Box<(Outgoing, usize)>>,
}

impl<S: AsyncWrite + Unpin> RawFrames<S> {
    pub(super) fn new(io: S) -> RawFrames<S> {
        RawFrames { io, partial: None }
    }

    /// Writes the rest of the frame the socket took part of, if any.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(cut) = &mut self.partial {
            let (frame, written) = &mut **cut;
            let slices: SmallVec<[IoSlice<'_>; 3]> =
                frame.slices(*written).map(IoSlice::new).collect();
            let n = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices))?;
            drop(slices);
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            if *written == frame.len() {
                self.partial = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes the front of `frames` with one vectored write, after finishing a frame cut off
    /// before. The frames the socket took whole and the one it took part of (kept here and
    /// finished first by the next write) leave `frames`; the count of them is returned.
    fn poll_write_frames(
        &mut self,
        cx: &mut Context<'_>,
        frames: &mut SmallVec<[Outgoing; FRAMES_PER_WRITE]>,
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_finish(cx))?;
        let slices: SmallVec<[IoSlice<'_>; 3 * FRAMES_PER_WRITE]> = frames
            .iter()
            .flat_map(|frame| frame.slices(0))
            .map(IoSlice::new)
            .collect();
        let mut left = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices))?;
        drop(slices);
        if left == 0 && !frames.is_empty() {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        let mut whole = 0;
        while whole < frames.len() && left >= frames[whole].len() {
            left -= frames[whole].len();
            whole += 1;
        }
        frames.drain(..whole);
        if left == 0 {
            return Poll::Ready(Ok(whole));
        }
        self.partial = Some(Box::new((frames.remove(0), left)));
        // Try the rest now: either it goes, or the socket wakes the task when it has room.
        if let Poll::Ready(Err(err)) = self.poll_finish(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(whole + 1))
    }

    /// Whether a frame waits to be finished.
    pub(super) fn is_cut(&self) -> bool {
        self.partial.is_some()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RawFrames<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RawFrames<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_finish(cx))?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_finish(cx))?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_finish(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_finish(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What happened on the socket (see [`Output::poll`]).
pub(super) enum Io {
    /// A message arrived (or the stream ended, or reading failed).
    Read(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    /// Output moved on: frames went into the socket.
    Wrote,
    /// Writing failed: the connection is broken.
    Failed,
    /// The source of frames ended (the hub dropped the connection's queue).
    QueueEnded,
}

/// What a connection writes, moved into the socket as fast as the peer takes it while the
/// same task keeps reading: the socket is one object (no lock, no split halves), and one
/// future polls its reading and writing sides together. A slow reader therefore never stops
/// its pings from being read (they prove it is alive), and it falls behind only in its queue
/// (which the hub bounds: slow consumer).
#[derive(Default)]
pub(super) struct Output {
    /// The connection's own answer to the last frame it read, not yet started; reading waits
    /// until the socket has taken some of it, so a peer that sends bad frames without reading
    /// the answers cannot pile them up. Boxed: answers are rare, and every connection holds
    /// an `Output`.
    reply: Option<Box<Outgoing>>,
    /// Frames taken from the source that the socket has not taken yet, in order. Empty (no
    /// storage) unless the socket was full.
    backlog: VecDeque<Outgoing>,
    /// The last poll left bytes the socket would not take.
    blocked: bool,
}

impl Output {
    /// Whether something waits for the peer to take it.
    pub(super) fn busy(&self) -> bool {
        self.blocked || self.reply.is_some() || !self.backlog.is_empty()
    }

    /// Queues the connection's own answer.
    pub(super) fn reply(&mut self, message: Outgoing) {
        debug_assert!(self.reply.is_none(), "reading waits for the last reply");
        self.reply = Some(Box::new(message));
    }

    /// The messages taken and not started, in order (a frame the socket took part of is
    /// finished by the socket's next write).
    pub(super) fn take(&mut self) -> impl Iterator<Item = Outgoing> + use<> {
        let backlog = std::mem::take(&mut self.backlog);
        self.reply
            .take()
            .map(|reply| *reply)
            .into_iter()
            .chain(backlog)
    }

    /// Writes what it can (the reply first, then what waits, then the source's frames), then
    /// reads.
    pub(super) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut WebSocket,
        source: &mut impl Outbound,
    ) -> Poll<Io> {
        let mut wrote = false;
        let mut ended = false;
        // tungstenite's own bytes (a pong, a frame cut off) go out before any data frame.
        self.blocked = match socket.poll_flush_unpin(cx) {
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(_)) => return Poll::Ready(Io::Failed),
            Poll::Pending => true,
        };
        let mut budget = FRAMES_PER_POLL;
        while !self.blocked && budget > 0 {
            let mut frames: SmallVec<[Outgoing; FRAMES_PER_WRITE]> = SmallVec::new();
            let reply_first = self.reply.is_some();
            frames.extend(self.reply.take().map(|reply| *reply));
            while frames.len() < FRAMES_PER_WRITE.min(budget)
                && let Some(frame) = self.backlog.pop_front()
            {
                frames.push(frame);
            }
            while !ended && frames.len() < FRAMES_PER_WRITE.min(budget) {
                match source.poll_next(cx) {
                    Poll::Ready(Some(frame)) => frames.push(frame),
                    Poll::Ready(None) => ended = true,
                    Poll::Pending => break,
                }
            }
            if frames.is_empty() {
                break;
            }
            let offered = frames.len();
            match socket.get_mut().poll_write_frames(cx, &mut frames) {
                Poll::Ready(Ok(taken)) => {
                    budget = budget.saturating_sub(taken);
                    wrote = true;
                    // A frame cut off still waiting: the socket is full.
                    self.blocked = socket.get_ref().is_cut();
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Io::Failed),
                Poll::Pending => self.blocked = true,
            }
            // What the socket did not take waits, in order, ahead of the source.
            let mut rest = frames.into_iter();
            if reply_first && rest.len() == offered {
                self.reply = rest.next().map(Box::new);
            }
            for (at, frame) in rest.enumerate() {
                self.backlog.insert(at, frame);
            }
        }
        if self.backlog.is_empty() && self.backlog.capacity() > 0 {
            self.backlog = VecDeque::new();
        }
        if ended && self.backlog.is_empty() && self.reply.is_none() {
            return Poll::Ready(Io::QueueEnded);
        }
        if self.reply.is_none()
            && source.may_read()
            && let Poll::Ready(incoming) = socket.poll_next_unpin(cx)
        {
            return Poll::Ready(Io::Read(incoming));
        }
        if wrote {
            Poll::Ready(Io::Wrote)
        } else {
            Poll::Pending
        }
    }
}

/// Where the messages a connection task writes come from: the hub's queue of one connection
/// ([`FrameReceiver`]), or the queues of a multiplexed socket's logical connections
/// (`http::mux`).
pub(super) trait Outbound {
    /// The next message to write; `Ready(None)` once the source has ended.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>>;

    /// Whether the peer's next message may be read now (a source holding answers of its own
    /// says no until they are out, so a peer that does not read cannot pile them up).
    fn may_read(&self) -> bool {
        true
    }
}

impl Outbound for FrameReceiver {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        self.poll_recv(cx).map(|payload| payload.map(Outgoing::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(frame: &Outgoing, from: usize) -> Vec<u8> {
        frame.slices(from).flatten().copied().collect()
    }

    #[test]
    fn headers_carry_the_length_in_the_shortest_form() {
        for (len, head) in [
            (0, vec![0x81, 0]),
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65_535, vec![0x81, 126, 0xff, 0xff]),
            (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let frame = Outgoing::text(Bytes::from(vec![b'a'; len]));
            let bytes = frame_bytes(&frame, 0);
            assert_eq!(bytes[..head.len()], head[..], "header of {len} bytes");
            assert_eq!(bytes.len(), head.len() + len);
            assert_eq!(frame.len(), bytes.len());
        }
    }

    #[test]
    fn a_frame_resumes_at_any_byte() {
        let frame = Outgoing::prefixed(Bytes::from_static(b"t1:"), Bytes::from_static(b"{}"));
        let whole = frame_bytes(&frame, 0);
        assert_eq!(whole, b"\x81\x05t1:{}");
        for from in 0..=whole.len() {
            assert_eq!(frame_bytes(&frame, from), whole[from..], "from {from}");
            assert!(frame.slices(from).all(|slice| !slice.is_empty()));
        }
    }

    #[test]
    fn the_message_for_tungstenite_has_the_prefix() {
        let frame = Outgoing::prefixed(Bytes::from_static(b"t1:"), Bytes::from_static(b"{}"));
        assert_eq!(frame.into_message(), Message::text("t1:{}"));
    }
}
