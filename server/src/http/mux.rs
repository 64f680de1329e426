//! A multiplexed WebSocket (subprotocol `chorus.v1.mux`): the tabs of one browser as logical
//! connections over one socket, one task for all of them.
//!
//! Only the transport is shared. Each logical connection is opened with its own token
//! (verified as a socket's), takes its own connection slot ([`ConnectionPermit`]: the total and
//! per-address limits count logical connections), and is its own hub connection (its own
//! connection id, presence entry, rooms, rate limits, outbound queue, token expiry); it ends
//! on its own (the client's `<tab>-`, its token's expiry, the hub's close), and all of them end
//! with the socket. Its frames are read by the same code as a plain socket's
//! (`ws::read_frame`: frame size, `auth` renewal, decoding), and written by the same
//! [`Output`], which polls reading and writing together; here the messages to write come
//! from every logical connection's queue in turn ([`Tabs`]). The envelope is
//! `chorus_sdk::wire::MuxIn`; the contract is `docs/PROTOCOL.md`, "Several tabs on one socket".

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use chorus_sdk::text::Message as _;
use chorus_sdk::wire::{self, ErrorCode, MuxIn, ServerFrame, close_code};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use super::AppState;
use super::limits::{ConnectionPermit, UserPermit};
use super::metrics::EdgeCounters;
use super::output::{Io, Outbound, Outgoing, Output};
use super::upgrade::Socket as WebSocket;
use super::ws::{
    TokenHolder, acquire_permit, acquire_user_permit, close, connect_to_hub, draining,
    hub_close_message, in_from_now, instant_of_unix_ms, read_frame, read_refusal,
};
use crate::driver::{FrameReceiver, HubMsg, sleep_until};
use crate::hub::{ConnId, Payload};

/// The most logical connections one multiplexed socket holds at once.
pub(super) const MAX_TABS_PER_SOCKET: usize = 64;

/// One logical connection.
struct Tab {
    /// The id the client gave it.
    id: String,
    /// Its envelope, `<id>:`, which every frame to it starts with.
    prefix: Bytes,
    conn: ConnId,
    frames: FrameReceiver,
    close: oneshot::Receiver<(u16, ErrorCode)>,
    token: TokenHolder,
    /// Its connection slots (of the total and its address, and of its user), released when the
    /// tab goes.
    _permit: (ConnectionPermit, UserPermit),
}

/// The logical connections of one socket and the messages the socket owes of its own: it is
/// the [`Outbound`] the socket's [`Output`] writes from.
#[derive(Default)]
struct Tabs {
    open: Vec<Tab>,
    /// Answers and closes of the socket's own making, written before any tab's frames.
    control: VecDeque<Outgoing>,
    /// Connections the hub closed, whose `Disconnect` the task still owes the hub.
    gone: Vec<ConnId>,
    /// The tab whose queue is looked at first next time (each gets its turn).
    next: usize,
    /// The server is shutting down: a logical connection was closed with 1012.
    drained: bool,
}

/// A message of the socket's own.
fn text(text: String) -> Outgoing {
    Outgoing::text(Bytes::from(text))
}

impl Tabs {
    fn position(&self, tab: &str) -> Option<usize> {
        self.open.iter().position(|open| open.id == tab)
    }

    /// Queues `frame` to `tab` (`""`: to the socket as a whole).
    fn say(&mut self, tab: &str, frame: &ServerFrame) {
        self.control
            .push_back(text(wire::mux_frame(tab, &frame.encode())));
    }

    /// Queues the message saying `tab` is closed with `code`.
    fn closed(&mut self, tab: &str, code: u16) {
        self.control.push_back(text(wire::mux_closed(tab, code)));
    }

    /// Tells `tab` why it is refused or closed, and closes it.
    fn refuse(&mut self, tab: &str, code: u16, reason: ErrorCode, message: impl Into<String>) {
        self.say(tab, &ServerFrame::error(reason, message, None));
        self.closed(tab, code);
    }

    /// Refuses an open that a connection limit does not allow: try again later.
    fn refuse_busy(&mut self, tab: &str, message: String) {
        let code = close_code::TRY_AGAIN_LATER;
        self.refuse(tab, code, ErrorCode::TooManyConnections, message);
    }

    /// Carries out the hub's close of a tab: a slow consumer or a silent tab is told why; a
    /// draining server's tab first gets what is queued for it (acks, `draining`), then 1012.
    fn hub_closed(
        &mut self,
        mut tab: Tab,
        closing: Result<(u16, ErrorCode), oneshot::error::RecvError>,
    ) {
        match closing {
            Ok((code, reason)) if code != close_code::SERVICE_RESTART => {
                self.refuse(&tab.id, code, reason, hub_close_message(reason));
            }
            _ => {
                while let Some(payload) = tab.frames.try_recv() {
                    self.control.push_back(to_tab(&tab.prefix, payload));
                }
                self.closed(&tab.id, close_code::SERVICE_RESTART);
                self.drained = true;
            }
        }
        self.gone.push(tab.conn);
    }

    /// The earliest token expiry of the open tabs (ms since the Unix epoch).
    fn earliest_expiry(&self) -> Option<u64> {
        self.open
            .iter()
            .filter_map(|tab| tab.token.expires_at_ms)
            .min()
    }

    /// Closes every tab whose token has expired by `now_ms` (4001, like a socket).
    fn expire(&mut self, now_ms: u64) {
        let mut at = 0;
        while at < self.open.len() {
            if self.open[at]
                .token
                .expires_at_ms
                .is_some_and(|exp| exp <= now_ms)
            {
                let tab = self.open.remove(at);
                let message = "the token has expired; reconnect with a fresh one";
                self.refuse(
                    &tab.id,
                    close_code::UNAUTHENTICATED,
                    ErrorCode::TokenExpired,
                    message,
                );
                self.gone.push(tab.conn);
            } else {
                at += 1;
            }
        }
    }
}

/// A hub payload to the tab of envelope `prefix` (`<tab>:`), the payload's bytes shared.
fn to_tab(prefix: &Bytes, payload: Payload) -> Outgoing {
    Outgoing::prefixed(prefix.clone(), payload.into_bytes())
}

impl Outbound for Tabs {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        if let Some(message) = self.control.pop_front() {
            return Poll::Ready(Some(message));
        }
        let count = self.open.len();
        for step in 0..count {
            let at = (self.next + step) % count;
            let tab = &mut self.open[at];
            // The close first, as on a plain socket: a slow consumer's backlog is not sent.
            if let Poll::Ready(closing) = Pin::new(&mut tab.close).poll(cx) {
                let tab = self.open.remove(at);
                self.hub_closed(tab, closing);
                return Poll::Ready(self.control.pop_front());
            }
            // A queue that ended is followed by its close, whose waker is set above.
            if let Poll::Ready(Some(payload)) = tab.frames.poll_recv(cx) {
                self.next = at + 1;
                return Poll::Ready(Some(to_tab(&tab.prefix, payload)));
            }
        }
        Poll::Pending
    }

    fn may_read(&self) -> bool {
        self.control.len() < 8
    }
}

/// Runs a multiplexed socket from `client` (its per-address key) until it closes.
pub(super) async fn connection(mut socket: WebSocket, state: AppState, client: IpAddr) {
    let heartbeat = state.limits.heartbeat;
    let write_timeout = heartbeat * 2;
    let mut tabs = Tabs::default();
    let mut output = Output::default();
    let write_stall = tokio::time::sleep(write_timeout);
    tokio::pin!(write_stall);
    let mut was_busy = false;
    // A socket with no logical connection for a heartbeat interval is closed, as a plain
    // socket that does not authenticate in time is: it would hold a connection slot for nobody.
    let lonely = tokio::time::sleep(heartbeat);
    tokio::pin!(lonely);
    let mut was_alone = true;
    let mut expiry_at = None;
    let token_expiry = sleep_until(None);
    tokio::pin!(token_expiry);
    loop {
        for conn in std::mem::take(&mut tabs.gone) {
            state.hub.send(HubMsg::Disconnect { conn }).await;
        }
        if tabs.drained && tabs.open.is_empty() {
            // Every logical connection has its 1012: write what is left, then close the socket.
            let left: Vec<Message> = output
                .take()
                .chain(tabs.control.drain(..))
                .map(Outgoing::into_message)
                .collect();
            for message in left {
                if !super::ws::send(&mut socket, message, std::time::Duration::from_secs(1)).await {
                    break;
                }
            }
            close(
                &mut socket,
                close_code::SERVICE_RESTART,
                ErrorCode::Draining,
            )
            .await;
            break;
        }
        let stalling = output.busy();
        if stalling && !was_busy {
            write_stall.as_mut().reset(in_from_now(write_timeout));
        }
        was_busy = stalling;
        let alone = tabs.open.is_empty();
        if alone && !was_alone {
            lonely.as_mut().reset(in_from_now(heartbeat));
        }
        was_alone = alone;
        let earliest = tabs.earliest_expiry();
        if earliest != expiry_at {
            expiry_at = earliest;
            token_expiry.set(sleep_until(earliest.map(instant_of_unix_ms)));
        }
        tokio::select! {
            biased;
            () = &mut token_expiry => {
                tabs.expire(crate::clock::unix_ms_now());
                // The finished timer is never polled again: it is replaced here.
                expiry_at = tabs.earliest_expiry();
                token_expiry.set(sleep_until(expiry_at.map(instant_of_unix_ms)));
            }
            () = &mut lonely, if alone => {
                let message = "no logical connection was open on this multiplexed socket for a heartbeat interval";
                Box::pin(mux_goodbye(&mut socket, close_code::UNAUTHENTICATED, ErrorCode::Unauthenticated, message)).await;
                break;
            }
            () = &mut write_stall, if stalling => break,
            io = std::future::poll_fn(|cx| output.poll(cx, &mut socket, &mut tabs)) => match io {
                Io::Wrote => write_stall.as_mut().reset(in_from_now(write_timeout)),
                Io::Failed | Io::QueueEnded => break,
                Io::Read(incoming) => {
                    write_stall.as_mut().reset(in_from_now(write_timeout));
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(reply) = Box::pin(read_message(&state, client, &mut tabs, &text)).await {
                                output.reply(reply);
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            EdgeCounters::bump(&state.counters.frames_refused);
                            let frame = ServerFrame::error(ErrorCode::BadFrame, "binary frames are not supported; send text messages", None);
                            output.reply(text(wire::mux_frame("", &frame.encode())));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                            for tab in &tabs.open {
                                state.hub.send(HubMsg::Activity { conn: tab.conn }).await;
                            }
                        }
                        Some(Err(err)) => {
                            if let Some((code, reason, message)) = read_refusal(err, state.limits.max_frame_bytes) {
                                Box::pin(mux_goodbye(&mut socket, code, reason, &message)).await;
                            }
                            break;
                        }
                        Some(Ok(Message::Close(_))) | None => break,
                    }
                }
            },
        }
    }
    // The socket is gone: so is every logical connection on it.
    let conns = tabs.open.iter().map(|tab| tab.conn).chain(tabs.gone);
    for conn in conns.collect::<Vec<_>>() {
        state.hub.send(HubMsg::Disconnect { conn }).await;
    }
}

/// Tells the client why with an `error` to the socket as a whole (`:<frame>`), then closes
/// the socket with `code`.
async fn mux_goodbye(socket: &mut WebSocket, code: u16, reason: ErrorCode, message: &str) {
    let frame = ServerFrame::error(reason, message, None);
    let text = Message::text(wire::mux_frame("", &frame.encode()));
    let _ = super::ws::send(socket, text, std::time::Duration::from_secs(1)).await;
    close(socket, code, reason).await;
}

/// Takes one text message: opens, closes or feeds a logical connection. Returns the answer to
/// send at once (an answer about the message itself); opens and closes answer through `tabs`.
async fn read_message(
    state: &AppState,
    client: IpAddr,
    tabs: &mut Tabs,
    message: &str,
) -> Option<Outgoing> {
    let refused = |tab: &str, code, sentence: String| {
        EdgeCounters::bump(&state.counters.frames_refused);
        let frame = ServerFrame::error(code, sentence, None);
        Some(text(wire::mux_frame(tab, &frame.encode())))
    };
    match MuxIn::parse(message) {
        Err(err) => {
            EdgeCounters::bump(&state.counters.frames_received);
            refused("", ErrorCode::BadFrame, err.message())
        }
        Ok(MuxIn::Open { tab, token }) => {
            open(state, client, tabs, tab, token).await;
            None
        }
        Ok(MuxIn::Close { tab }) => {
            if let Some(at) = tabs.position(tab) {
                let tab = tabs.open.remove(at);
                state.hub.send(HubMsg::Disconnect { conn: tab.conn }).await;
            }
            None
        }
        Ok(MuxIn::Frame { tab, frame }) => {
            let Some(at) = tabs.position(tab) else {
                EdgeCounters::bump(&state.counters.frames_received);
                let sentence = format!(
                    "no logical connection {tab} is open on this socket; open it with {tab}+<token>"
                );
                return refused(tab, ErrorCode::BadFrame, sentence);
            };
            let open = &mut tabs.open[at];
            let reply = read_frame(state, open.conn, &mut open.token, frame).await?;
            Some(to_tab(&open.prefix, crate::hub::encode(&reply)))
        }
    }
}

/// Opens logical connection `tab` with `token`, or refuses it (an `error`, then its close).
async fn open(state: &AppState, client: IpAddr, tabs: &mut Tabs, tab: &str, token: &str) {
    EdgeCounters::bump(&state.counters.frames_received);
    if tabs.position(tab).is_some() {
        EdgeCounters::bump(&state.counters.frames_refused);
        let message = format!("logical connection {tab} is open already on this socket");
        tabs.say(tab, &ServerFrame::error(ErrorCode::BadFrame, message, None));
        return;
    }
    if tabs.open.len() >= MAX_TABS_PER_SOCKET {
        let message =
            format!("a multiplexed socket holds at most {MAX_TABS_PER_SOCKET} logical connections");
        tabs.refuse_busy(tab, message);
        return;
    }
    let identity = match state.auth.verify(token) {
        Ok(identity) => identity,
        Err(err) => {
            let message = err.to_string();
            tabs.refuse(tab, close_code::UNAUTHENTICATED, err.code(), message);
            return;
        }
    };
    let permit = match acquire_permit(state, client) {
        Ok(permit) => permit,
        Err(hit) => {
            tabs.refuse_busy(tab, hit.to_string());
            return;
        }
    };
    let user_permit = match acquire_user_permit(state, &identity.user) {
        Ok(permit) => permit,
        Err(message) => {
            tabs.refuse_busy(tab, message);
            return;
        }
    };
    let conn = state.hub.next_conn_id();
    let token = TokenHolder {
        user: identity.user.clone(),
        expires_at_ms: identity.expires_at_ms,
    };
    let Some((frames, close_rx)) = connect_to_hub(state, conn, Arc::new(identity)).await else {
        tabs.say(tab, &draining(state));
        tabs.closed(tab, close_code::SERVICE_RESTART);
        tabs.drained = true;
        return;
    };
    tabs.open.push(Tab {
        id: tab.to_owned(),
        prefix: Bytes::from(format!("{tab}:")),
        conn,
        frames,
        close: close_rx,
        token,
        _permit: (permit, user_permit),
    });
}
