//! The Redis bus: one subscriber connection per node for every room it follows, and one
//! connection that publishes its signals.
//!
//! For prefix `P` and room `R` a followed room is two subscriptions: `P{R}:live`, where the
//! append script publishes every stored event (`crate::store::redis::decode_live` reads it), and
//! `P{R}:sig`, where nodes publish signals as `node\nbytes` (node ids contain no `\n`; the bytes
//! are opaque and come last). A node drops its own signals.
//!
//! # Losing the subscriber connection
//!
//! Pub/sub delivers at most once: whatever is published while the connection is down (Redis
//! restarted, the network cut, Redis dropped a subscriber whose output buffer overflowed) is
//! not heard. The task notices a lost connection when the message stream ends or a `PING`
//! (every 2 s) goes unanswered for 2 s; it reconnects with a
//! backoff from 100 ms doubling to 5 s, subscribes every followed room again and then sends
//! [`Inbound::Resynced`] with all of them, so the hub repairs each from the store. While it is
//! down, [`Bus::ready`] fails (and `/readyz` with it).
//!
//! On a Redis Cluster (`--redis-cluster`) the subscriber is [`super::redis_cluster`]'s (sharded
//! pub/sub); the signal publisher here sends `SPUBLISH`, one pipeline per slot.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chorus_sdk::wire::RoomName;
use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::{mpsc, oneshot};

use super::{Bus, BusError, BusFigures, Inbound, InboundSender, Subscribed};
use crate::store::redis::target::key_slot;
use crate::store::redis::{KeyLayout, RedisConn, RedisTarget, decode_live};

/// How often the subscriber connection is checked with a `PING`.
const PING_EVERY: Duration = Duration::from_secs(2);
/// Longest a subscriber request or a connection attempt may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first reconnection delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Channels per `SUBSCRIBE` when resubscribing every followed room.
const SUBSCRIBE_BATCH: usize = 512;

/// The Redis [`Bus`].
#[derive(Clone, Debug)]
pub struct RedisBus {
    commands: mpsc::UnboundedSender<Command>,
    signals: mpsc::UnboundedSender<(RoomName, Bytes)>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(super) enum Command {
    Follow(RoomName, oneshot::Sender<()>),
    Unfollow(RoomName),
}

#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) up: AtomicBool,
    pub(super) down_reason: Mutex<String>,
    followed: AtomicU64,
    pub(super) reconnects: AtomicU64,
    events_heard: AtomicU64,
    lag_ms_sum: AtomicU64,
    lag_ms_max: AtomicU64,
    signals_sent: AtomicU64,
    signals_heard: AtomicU64,
}

impl RedisBus {
    /// Connects the subscriber and the signal publisher to one server at `url`; see
    /// [`RedisBus::open_on`].
    pub async fn open(
        url: &str,
        keys: KeyLayout,
        node: String,
        inbound: InboundSender,
    ) -> Result<RedisBus, BusError> {
        let target =
            RedisTarget::parse(url, false).map_err(|err| BusError::Down(err.to_string()))?;
        RedisBus::open_on(&target, keys, node, inbound).await
    }

    /// Connects the subscriber and the signal publisher to `target` (one server, or a cluster:
    /// see [`super::redis_cluster`]) and starts their tasks (on the current tokio runtime).
    /// `node` is this node's id, stamped on its signals. Fails when Redis cannot be reached,
    /// naming the URLs (passwords masked).
    pub async fn open_on(
        target: &RedisTarget,
        keys: KeyLayout,
        node: String,
        inbound: InboundSender,
    ) -> Result<RedisBus, BusError> {
        let shown = target.shown();
        let fail = |err: redis::RedisError| {
            BusError::Down(format!("Redis at {shown}: {}", target.explain(&err)))
        };
        let publisher = target.connect(RESPONSE_TIMEOUT, 2).await.map_err(fail)?;
        let shared = Arc::new(Shared::default());
        shared.up.store(true, Ordering::Release);
        let (commands, command_queue) = mpsc::unbounded_channel();
        let (signals, signal_queue) = mpsc::unbounded_channel();
        let rooms = Rooms {
            keys: keys.clone(),
            node: node.clone(),
            inbound,
            shared: Arc::clone(&shared),
            followed: HashSet::new(),
            channels: HashMap::new(),
        };
        let publish = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(fail)?;
                let pubsub = connect(&client).await.map_err(fail)?;
                let subscriber = Subscriber {
                    client,
                    rooms,
                    url: shown.clone(),
                };
                tokio::spawn(subscriber.run(pubsub, command_queue));
                "PUBLISH"
            }
            RedisTarget::Cluster(urls) => {
                let subscriber = super::redis_cluster::ClusterSubscriber::connect(
                    target,
                    urls,
                    rooms,
                    shown.clone(),
                )
                .await
                .map_err(fail)?;
                tokio::spawn(subscriber.run(command_queue));
                "SPUBLISH"
            }
        };
        tokio::spawn(publish_signals(
            publisher,
            publish,
            keys,
            node,
            Arc::clone(&shared),
            signal_queue,
        ));
        Ok(RedisBus {
            commands,
            signals,
            shared,
        })
    }
}

impl Bus for RedisBus {
    fn follow(&self, room: &RoomName) -> Subscribed {
        let (done, wait) = oneshot::channel();
        let _ = self.commands.send(Command::Follow(room.clone(), done));
        Subscribed::when(wait)
    }

    fn unfollow(&self, room: &RoomName) {
        let _ = self.commands.send(Command::Unfollow(room.clone()));
    }

    fn signal(&self, room: &RoomName, bytes: Bytes) {
        let _ = self.signals.send((room.clone(), bytes));
    }

    fn ready(&self) -> Result<(), BusError> {
        if self.shared.up.load(Ordering::Acquire) {
            Ok(())
        } else {
            let reason = self
                .shared
                .down_reason
                .lock()
                .expect("not poisoned")
                .clone();
            Err(BusError::Down(reason))
        }
    }

    fn figures(&self) -> Option<BusFigures> {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let shared = &self.shared;
        Some(BusFigures {
            followed_rooms: get(&shared.followed),
            reconnects: get(&shared.reconnects),
            events_heard: get(&shared.events_heard),
            lag_ms_sum: get(&shared.lag_ms_sum),
            lag_ms_max: get(&shared.lag_ms_max),
            signals_sent: get(&shared.signals_sent),
            signals_heard: get(&shared.signals_heard),
        })
    }
}

async fn connect(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, client.get_async_pubsub()).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting timed out",
        ))),
    }
}

/// Which of a room's channels a message came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Channel {
    Live,
    Signal,
}

/// The rooms a node follows, their channels, and what is heard on them: shared by the
/// subscriber of one server and that of a cluster.
pub(super) struct Rooms {
    pub(super) keys: KeyLayout,
    pub(super) node: String,
    pub(super) inbound: InboundSender,
    pub(super) shared: Arc<Shared>,
    pub(super) followed: HashSet<RoomName>,
    /// Channel name -> (room, which channel), for the rooms followed.
    pub(super) channels: HashMap<String, (RoomName, Channel)>,
}

/// The subscriber task's state (one server).
struct Subscriber {
    client: redis::Client,
    rooms: Rooms,
    url: String,
}

/// Why the connected loop ended.
enum Ended {
    /// The bus was dropped (the server stops).
    Stopped,
    /// The connection was lost, for this reason.
    Lost(String),
}

impl Rooms {
    pub(super) fn room_channels(&self, room: &RoomName) -> [String; 2] {
        [self.keys.live_channel(room), self.keys.signal_channel(room)]
    }

    pub(super) fn add(&mut self, room: RoomName) -> bool {
        if !self.followed.insert(room.clone()) {
            return false;
        }
        let [live, signal] = self.room_channels(&room);
        self.channels.insert(live, (room.clone(), Channel::Live));
        self.channels.insert(signal, (room, Channel::Signal));
        self.shared
            .followed
            .store(self.followed.len() as u64, Ordering::Relaxed);
        true
    }

    pub(super) fn remove(&mut self, room: &RoomName) -> bool {
        if !self.followed.remove(room) {
            return false;
        }
        for channel in self.room_channels(room) {
            self.channels.remove(&channel);
        }
        self.shared
            .followed
            .store(self.followed.len() as u64, Ordering::Relaxed);
        true
    }

    /// Hands what was heard on `channel_name` to the hub (or drops it: a room unfollowed a
    /// moment ago, a node's own signal, a message that does not decode).
    pub(super) fn hear(&self, channel_name: &str, payload: &[u8]) {
        let Some((room, channel)) = self.channels.get(channel_name) else {
            return; // A room unfollowed a moment ago.
        };
        match channel {
            Channel::Live => match decode_live(payload) {
                Ok(stored) => {
                    let lag = crate::clock::unix_ms_now().saturating_sub(stored.event.at);
                    let shared = &self.shared;
                    shared.events_heard.fetch_add(1, Ordering::Relaxed);
                    shared.lag_ms_sum.fetch_add(lag, Ordering::Relaxed);
                    shared.lag_ms_max.fetch_max(lag, Ordering::Relaxed);
                    let _ = self.inbound.send(Inbound::Stored(stored));
                }
                Err(err) => tracing::warn!(%room, "ignoring a live message: {err}"),
            },
            Channel::Signal => {
                let Some(split) = payload.iter().position(|&b| b == b'\n') else {
                    return tracing::warn!(%room, "ignoring a signal without a node id");
                };
                let Ok(from_node) = std::str::from_utf8(&payload[..split]) else {
                    return tracing::warn!(%room, "ignoring a signal with a bad node id");
                };
                if from_node == self.node {
                    return;
                }
                self.shared.signals_heard.fetch_add(1, Ordering::Relaxed);
                let _ = self.inbound.send(Inbound::Signal {
                    room: room.clone(),
                    from_node: from_node.to_owned(),
                    bytes: Bytes::copy_from_slice(&payload[split + 1..]),
                });
            }
        }
    }
}

impl Subscriber {
    async fn run(
        mut self,
        first: redis::aio::PubSub,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut pubsub = Some(first);
        let mut backoff = FIRST_BACKOFF;
        let mut connected_before = false;
        loop {
            let connection = match pubsub.take() {
                Some(connection) => Ok(connection),
                None => connect(&self.client).await,
            };
            let reason = match connection {
                Ok(connection) => {
                    let (mut sink, stream) = connection.split();
                    match self.resubscribe(&mut sink).await {
                        Ok(()) => {
                            backoff = FIRST_BACKOFF;
                            self.rooms.shared.up.store(true, Ordering::Release);
                            if connected_before {
                                self.rooms.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                                tracing::info!(url = %self.url, rooms = self.rooms.followed.len(), "the bus's subscriber connection is back; repairing followed rooms");
                                let mut rooms: Vec<RoomName> =
                                    self.rooms.followed.iter().cloned().collect();
                                rooms.sort_unstable();
                                if !rooms.is_empty() {
                                    let _ = self.rooms.inbound.send(Inbound::Resynced(rooms));
                                }
                            }
                            connected_before = true;
                            match self.serve(sink, stream, &mut commands).await {
                                Ended::Stopped => return,
                                Ended::Lost(reason) => reason,
                            }
                        }
                        Err(err) => err.to_string(),
                    }
                }
                Err(err) => err.to_string(),
            };
            if self.rooms.shared.up.swap(false, Ordering::AcqRel) {
                tracing::warn!(url = %self.url, "the bus's subscriber connection is lost: {reason}; reconnecting");
            }
            *self.rooms.shared.down_reason.lock().expect("not poisoned") =
                format!("Redis at {}: {reason}", self.url);
            // Wait out the backoff, still taking follows and unfollows (answered at once: the
            // rooms are subscribed, and repaired, when the connection is back).
            let sleep = tokio::time::sleep(backoff);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    command = commands.recv() => match command {
                        None => return,
                        Some(command) => self.note(command),
                    },
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Records a follow or unfollow while disconnected.
    fn note(&mut self, command: Command) {
        match command {
            Command::Follow(room, done) => {
                self.rooms.add(room);
                let _ = done.send(());
            }
            Command::Unfollow(room) => {
                self.rooms.remove(&room);
            }
        }
    }

    async fn resubscribe(&self, sink: &mut PubSubSink) -> redis::RedisResult<()> {
        let channels: Vec<&String> = self.rooms.channels.keys().collect();
        for batch in channels.chunks(SUBSCRIBE_BATCH) {
            within(sink.subscribe(batch)).await?;
        }
        Ok(())
    }

    async fn serve(
        &mut self,
        mut sink: PubSubSink,
        mut stream: redis::aio::PubSubStream,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Ended {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return Ended::Stopped,
                    Some(Command::Follow(room, done)) => {
                        if self.rooms.add(room.clone()) {
                            let channels = self.rooms.room_channels(&room);
                            if let Err(err) = within(sink.subscribe(&channels)).await {
                                // Followed all the same: the resubscription covers it.
                                let _ = done.send(());
                                return Ended::Lost(err.to_string());
                            }
                        }
                        let _ = done.send(());
                    }
                    Some(Command::Unfollow(room)) => {
                        if self.rooms.remove(&room) {
                            let channels = self.rooms.room_channels(&room);
                            if let Err(err) = within(sink.unsubscribe(&channels)).await {
                                return Ended::Lost(err.to_string());
                            }
                        }
                    }
                },
                message = stream.next() => match message {
                    None => return Ended::Lost("the connection closed".into()),
                    Some(message) => self.rooms.hear(message.get_channel_name(), message.get_payload_bytes()),
                },
                _ = ping.tick() => {
                    if let Err(err) = within(sink.ping::<redis::Value>()).await {
                        return Ended::Lost(format!("PING failed: {err}"));
                    }
                }
            }
        }
    }
}

/// A subscriber request, failed when it takes longer than [`RESPONSE_TIMEOUT`].
async fn within<T>(
    request: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, request).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer in time",
        ))),
    }
}

/// Publishes the node's signals, in order, every one queued when it wakes in one pipeline.
/// Signals are best effort: a batch that fails is dropped (and logged).
async fn publish_signals(
    conn: RedisConn,
    publish: &'static str,
    keys: KeyLayout,
    node: String,
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<(RoomName, Bytes)>,
) {
    let cluster = matches!(conn, RedisConn::Cluster(_));
    while let Some(first) = queue.recv().await {
        // On a cluster a pipeline holds one slot's commands (see `store::redis::writer`): one
        // per slot, sent together. A room is one slot, so its signals keep their order.
        let mut pipes: HashMap<u16, (redis::Pipeline, u64)> = HashMap::new();
        let mut count = 0u64;
        let mut next = Some(first);
        while let Some((room, bytes)) = next.take() {
            let mut message = Vec::with_capacity(node.len() + 1 + bytes.len());
            message.extend_from_slice(node.as_bytes());
            message.push(b'\n');
            message.extend_from_slice(&bytes);
            let channel = keys.signal_channel(&room);
            let slot = if cluster {
                key_slot(channel.as_bytes())
            } else {
                0
            };
            let (pipe, in_pipe) = pipes.entry(slot).or_insert_with(|| (redis::pipe(), 0));
            pipe.cmd(publish).arg(channel).arg(message).ignore();
            *in_pipe += 1;
            count += 1;
            if count < 1024 {
                next = queue.try_recv().ok();
            }
        }
        let sent = pipes.into_values().map(|(pipe, in_pipe)| {
            let mut conn = conn.clone();
            async move { (pipe.query_async::<()>(&mut conn).await, in_pipe) }
        });
        for (result, in_pipe) in futures_util::future::join_all(sent).await {
            match result {
                Ok(()) => {
                    shared.signals_sent.fetch_add(in_pipe, Ordering::Relaxed);
                }
                Err(err) => tracing::warn!("{in_pipe} signals were not sent: {err}"),
            }
        }
    }
}
