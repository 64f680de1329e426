//! Polling sessions shared by the nodes on one Redis: each session's rooms and presence metas,
//! recorded after every `POST` the session makes, so that whichever node its next request
//! reaches can *adopt* the session (join its rooms there) instead of answering `not_joined`.
//!
//! The record is `P` + `session:{` + the session id + `}`, a string holding the JSON array
//! `[user, [[room, meta-text], ...]]`, with an expiry of the session timeout, renewed by every
//! request (`POST` or `GET`) of the session on any node. The session id is the key's hash tag,
//! so on a Redis Cluster the record lives on one shard like a room does.

use std::time::Duration;

use crate::driver::poll::SessionRecord;
use crate::store::redis::{RedisConn, RedisTarget};
use chorus_sdk::wire::{Json, RoomName};

/// Where the nodes keep their polling sessions' records.
#[derive(Clone)]
pub struct SessionDirectory {
    conn: RedisConn,
    prefix: String,
    ttl: Duration,
}

impl std::fmt::Debug for SessionDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDirectory")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SessionDirectory {
    /// Records under `prefix` on `target`, expiring `ttl` (the session timeout) after the
    /// last request.
    pub async fn open(
        target: &RedisTarget,
        prefix: &str,
        ttl: Duration,
    ) -> Result<SessionDirectory, redis::RedisError> {
        let conn = target.connect(Duration::from_secs(2), 1).await?;
        Ok(SessionDirectory {
            conn,
            prefix: prefix.to_owned(),
            ttl,
        })
    }

    fn key(&self, session: &str) -> String {
        format!("{}session:{{{session}}}", self.prefix)
    }

    fn ttl_ms(&self) -> u64 {
        (self.ttl.as_millis() as u64).max(1)
    }

    /// The session's record, its expiry renewed; `None` when there is none (or Redis failed:
    /// the request then goes on as if the session were new here).
    pub async fn load(&self, session: &str) -> Option<SessionRecord> {
        let key = self.key(session);
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.ttl_ms())
            .ignore();
        let (text,): (Option<String>,) = match pipe.query_async(&mut self.conn.clone()).await {
            Ok(reply) => reply,
            Err(err) => {
                tracing::warn!("reading polling session {session}'s record failed: {err}");
                return None;
            }
        };
        let (user, rooms): (String, Vec<(String, String)>) = serde_json::from_str(&text?).ok()?;
        let rooms = rooms
            .into_iter()
            .filter_map(|(room, meta)| {
                Some((RoomName::parse(&room).ok()?, Json::from_text(meta).ok()?))
            })
            .collect();
        Some(SessionRecord { user, rooms })
    }

    /// Records the session's rooms (best effort: a failure is logged).
    pub async fn save(&self, session: &str, record: &SessionRecord) {
        let rooms: Vec<(&str, &str)> = record
            .rooms
            .iter()
            .map(|(room, meta)| (room.as_str(), meta.as_text()))
            .collect();
        let text = serde_json::to_string(&(&record.user, rooms)).expect("strings serialize");
        let result: redis::RedisResult<()> = redis::cmd("SET")
            .arg(self.key(session))
            .arg(text)
            .arg("PX")
            .arg(self.ttl_ms())
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(err) = result {
            tracing::warn!("recording polling session {session} failed: {err}");
        }
    }
}
