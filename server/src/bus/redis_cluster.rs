//! The Redis bus on a Redis Cluster: sharded pub/sub, so each room's messages stay on the
//! shard that holds the room.
//!
//! A followed room is one `SSUBSCRIBE` of its two channels (`P{R}:live` and `P{R}:sig`, one
//! slot through the `{R}` hash tag) over a RESP3 cluster connection, whose push channel
//! carries the messages (`smessage`) and the subscription confirmations. Signals are sent with
//! `SPUBLISH` (see `publish_signals` in [`super::redis`]).
//!
//! # Losing a shard
//!
//! The cluster connection reconnects to a node it lost and subscribes again the channels that
//! node serves (also after a failover moved the slot to a new master). Whatever was published
//! on them meanwhile was not heard, so the subscriber treats every confirmation of a room's
//! live channel after the first as a lost subscription come back, and sends
//! [`Inbound::Resynced`] with those rooms: the hub repairs them from the store (and resets
//! their members when the shard lost them). Rooms of the other shards are not disturbed.
//! A room the server unsubscribed (`sunsubscribe` push: its slot moved away) or whose
//! `SSUBSCRIBE` failed (its shard was down) is subscribed again every 2 s until it is
//! confirmed, then repaired likewise. A `PING` to every master every 2 s decides
//! [`crate::bus::Bus::ready`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chorus_sdk::wire::RoomName;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::Inbound;
use super::redis::{Channel, Command, Rooms};
use crate::store::redis::RedisTarget;

/// How often unconfirmed rooms are subscribed again and the nodes are checked with `PING`.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Longest a subscriber request may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the subscriber knows of a followed room's subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `SSUBSCRIBE` sent; no confirmation yet.
    Asked,
    /// Confirmed: messages are heard.
    Confirmed,
    /// Not subscribed (the request failed, or the server dropped it): anything published
    /// meanwhile was missed, so its next confirmation repairs it.
    Lost,
}

/// The cluster subscriber task's state.
pub(super) struct ClusterSubscriber {
    conn: ClusterConnection,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
    rooms: Rooms,
    states: HashMap<RoomName, State>,
    /// A node was lost: subscribe the lost rooms as soon as the pushes are handled.
    resubscribe_soon: bool,
    url: String,
}

impl ClusterSubscriber {
    /// Connects to the cluster at `urls` with RESP3 and a push channel.
    pub(super) async fn connect(
        target: &RedisTarget,
        urls: &[String],
        rooms: Rooms,
        url: String,
    ) -> redis::RedisResult<ClusterSubscriber> {
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let client = target
            .cluster_builder(urls)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .response_timeout(RESPONSE_TIMEOUT)
            .push_sender(push_tx)
            .build()?;
        let conn = client.get_async_connection().await?;
        Ok(ClusterSubscriber {
            conn,
            pushes,
            rooms,
            states: HashMap::new(),
            resubscribe_soon: false,
            url,
        })
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Follow(room, done)) => {
                        if self.rooms.add(room.clone()) {
                            self.states.insert(room.clone(), State::Asked);
                            self.subscribe(&room).await;
                        }
                        // In place, or the bus is down for this room and repairs it later.
                        let _ = done.send(());
                    }
                    Some(Command::Unfollow(room)) => {
                        if self.rooms.remove(&room) {
                            self.states.remove(&room);
                            let channels = self.rooms.room_channels(&room);
                            if let Err(err) = within(self.conn.sunsubscribe(&channels)).await {
                                tracing::warn!(%room, url = %self.url, "SUNSUBSCRIBE failed: {err}");
                            }
                        }
                    }
                },
                push = self.pushes.recv() => {
                    let Some(push) = push else { return };
                    let mut repaired = Vec::new();
                    self.take(push, &mut repaired);
                    // Everything already queued, so that one lost node's rooms are repaired
                    // in one message.
                    while let Ok(push) = self.pushes.try_recv() {
                        self.take(push, &mut repaired);
                    }
                    if std::mem::take(&mut self.resubscribe_soon) {
                        self.subscribe_lost().await;
                    }
                    if !repaired.is_empty() {
                        repaired.sort_unstable();
                        repaired.dedup();
                        self.rooms.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(url = %self.url, rooms = repaired.len(), "the bus's subscriptions on a cluster node are back; repairing their rooms");
                        let _ = self.rooms.inbound.send(Inbound::Resynced(repaired));
                    }
                }
                _ = check.tick() => self.check().await,
            }
        }
    }

    /// Sends the room's `SSUBSCRIBE`; a failure marks it lost (retried by [`Self::check`]).
    async fn subscribe(&mut self, room: &RoomName) {
        let channels = self.rooms.room_channels(room);
        if let Err(err) = within(self.conn.ssubscribe(&channels)).await {
            tracing::warn!(%room, url = %self.url, "SSUBSCRIBE failed: {err}; retrying");
            self.states.insert(room.clone(), State::Lost);
        }
    }

    /// Subscribes the lost rooms again, all at once (a room of a shard that is still down
    /// stays lost, and is tried again at the next check).
    async fn subscribe_lost(&mut self) {
        let lost: Vec<RoomName> = self
            .states
            .iter()
            .filter(|(_, state)| **state == State::Lost)
            .map(|(room, _)| room.clone())
            .collect();
        let sent = lost.into_iter().map(|room| {
            let mut conn = self.conn.clone();
            let channels = self.rooms.room_channels(&room);
            async move { (within(conn.ssubscribe(&channels)).await, room) }
        });
        for (result, room) in futures_util::future::join_all(sent).await {
            match result {
                // Confirmed by its push (which may already have been handled).
                Ok(()) => {}
                Err(err) => {
                    tracing::debug!(%room, url = %self.url, "SSUBSCRIBE failed: {err}; retrying");
                }
            }
        }
    }

    /// Subscribes the lost rooms again and checks every master answers.
    async fn check(&mut self) {
        self.subscribe_lost().await;
        let shared = &self.rooms.shared;
        match within(redis::cmd("PING").query_async::<Value>(&mut self.conn)).await {
            Ok(_) => {
                shared.up.store(true, Ordering::Release);
            }
            Err(err) => {
                if shared.up.swap(false, Ordering::AcqRel) {
                    tracing::warn!(url = %self.url, "a cluster node of the bus is unreachable: {err}");
                }
                *shared.down_reason.lock().expect("not poisoned") =
                    format!("Redis at {}: {err}", self.url);
            }
        }
    }

    /// Handles one push; the rooms whose subscription came back are added to `repaired`.
    fn take(&mut self, push: PushInfo, repaired: &mut Vec<RoomName>) {
        let channel = push.data.first().and_then(text);
        match push.kind {
            PushKind::SMessage => {
                let (Some(channel), Some(payload)) = (channel, push.data.get(1).and_then(bytes))
                else {
                    return;
                };
                self.rooms.hear(channel, payload);
            }
            PushKind::SSubscribe => {
                let Some(room) = channel.and_then(|channel| self.live_room(channel)) else {
                    return;
                };
                let state = self.states.insert(room.clone(), State::Confirmed);
                if matches!(state, Some(State::Confirmed | State::Lost)) {
                    repaired.push(room);
                }
            }
            PushKind::SUnsubscribe => {
                // Ours were forgotten before they were sent; a followed room's channel was
                // dropped by the server (its slot moved away).
                if let Some(room) = channel.and_then(|channel| self.live_room(channel)) {
                    tracing::warn!(%room, url = %self.url, "the cluster dropped a room's subscription; subscribing again");
                    self.states.insert(room, State::Lost);
                }
            }
            PushKind::Disconnection => {
                // The push does not say which node, so every followed room is subscribed again
                // (a no-op on a node that kept it) and repaired once confirmed.
                tracing::warn!(url = %self.url, "the bus lost a cluster node; subscribing every room again");
                for state in self.states.values_mut() {
                    *state = State::Lost;
                }
                self.resubscribe_soon = true;
            }
            _ => {}
        }
    }

    /// The followed room whose live channel is `channel`.
    fn live_room(&self, channel: &str) -> Option<RoomName> {
        match self.rooms.channels.get(channel) {
            Some((room, Channel::Live)) => Some(room.clone()),
            _ => None,
        }
    }
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    std::str::from_utf8(bytes(value)?).ok()
}

/// A request, failed when it takes longer than [`RESPONSE_TIMEOUT`].
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
