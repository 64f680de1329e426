//! Connection limits: total and per client address, and per user ([`UserLimiter`]), each held
//! by a permit for the connection's life;
//! the total cap in force, derived from the open-file limit; which address a connection belongs
//! to when it comes through trusted reverse proxies; and which addresses count as one client
//! ([`address_key`]: an IPv6 client owns a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

/// The client address a connection counts against: the TCP peer, unless the peer is a trusted
/// proxy; then the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries
/// to its left could be forged by the client). `forwarded_for` yields the header's values in
/// order (each may list several hops); it is not read unless the peer is trusted. An unparsable
/// entry stops the walk at the last good address.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for
        .rev()
        .flat_map(|value| value.rsplit(','))
        .map(str::trim)
    {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The key a per-address limit counts `ip` under: an IPv4 address itself (also when written as
/// an IPv4-mapped IPv6 address), and for IPv6 its /64 network. One IPv6 subscriber is routinely
/// given a /64 (SLAAC, privacy addresses) and can pick any of its 2^64 addresses per connection,
/// so counting exact IPv6 addresses would not limit anyone.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// The cap on WebSocket connections in force and where it comes from: every connection holds
/// an open file, so past the process's open-file limit the server could not accept at all (not
/// even `/healthz`). The cap keeps `reserved` files back for everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionCapacity {
    /// The soft open-file limit (`RLIMIT_NOFILE`) in force, where the platform has one.
    pub open_files: Option<u64>,
    /// Open files kept back from WebSocket connections (`--reserved-files`).
    pub reserved_files: u64,
    /// `--max-connections` as configured.
    pub configured: usize,
    /// The cap in force: `configured`, or the open-file limit less the reserve if lower.
    pub effective: usize,
}

impl ConnectionCapacity {
    /// The cap for `configured` connections under an open-file limit of `open_files`, keeping
    /// `reserved_files` back (at least one connection is always allowed).
    pub fn derive(
        configured: usize,
        open_files: Option<u64>,
        reserved_files: u64,
    ) -> ConnectionCapacity {
        let by_files = open_files.map_or(usize::MAX, |limit| {
            usize::try_from(limit.saturating_sub(reserved_files).max(1)).unwrap_or(usize::MAX)
        });
        ConnectionCapacity {
            open_files,
            reserved_files,
            configured,
            effective: configured.min(by_files),
        }
    }

    /// Whether the open-file limit, not `--max-connections`, sets the cap.
    pub fn limited_by_open_files(&self) -> bool {
        self.effective < self.configured
    }
}

/// Which limit refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitHit {
    /// The server holds its maximum.
    Total(usize),
    /// The client address holds its maximum.
    PerIp(usize),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Total(max) => write!(
                f,
                "the server holds its maximum of {max} connections; retry later"
            ),
            LimitHit::PerIp(max) => write!(f, "at most {max} connections per client address"),
        }
    }
}

/// Counts open WebSocket connections, in total and per address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    /// Woken when the last connection closes (shutdown waits for it).
    all_closed: tokio::sync::Notify,
}

/// Held while a connection is open; releases its slot when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    /// A limiter allowing `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            max_total,
            max_per_ip,
            open: Mutex::new((0, HashMap::new())),
            all_closed: tokio::sync::Notify::new(),
        })
    }

    /// Takes a slot for a connection from `ip` (counted under its [`address_key`]), or says
    /// which limit is reached.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, LimitHit> {
        let ip = address_key(ip);
        let mut open = self.open.lock().expect("limiter lock");
        if open.0 >= self.max_total {
            return Err(LimitHit::Total(self.max_total));
        }
        let from_ip = open.1.entry(ip).or_default();
        if *from_ip >= self.max_per_ip {
            return Err(LimitHit::PerIp(self.max_per_ip));
        }
        *from_ip += 1;
        open.0 += 1;
        Ok(ConnectionPermit {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// The most connections it allows in total.
    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.open.lock().expect("limiter lock").0
    }

    /// Resolves once no connection is open (each permit is held until its connection task
    /// has written its close frame).
    pub async fn all_closed(&self) {
        loop {
            let closed = self.all_closed.notified();
            tokio::pin!(closed);
            // Registered before looking, so a close between the look and the wait is not missed.
            closed.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            closed.await;
        }
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().expect("limiter lock");
        open.0 -= 1;
        if open.0 == 0 {
            self.limiter.all_closed.notify_waiters();
        }
        release(&mut open.1, &self.ip);
    }
}

/// Counts open WebSocket connections (logical ones too) per user on this node. A user's
/// presence entry lists every connection of theirs, and each change of theirs carries the whole
/// entry to every member of the room: without a cap, one token could make that entry as wide
/// as the per-address limit allows.
#[derive(Debug)]
pub struct UserLimiter {
    max_per_user: usize,
    open: Mutex<HashMap<Box<str>, usize>>,
}

/// Held while a connection is open; releases its user's slot when dropped.
#[derive(Debug)]
pub struct UserPermit {
    limiter: Arc<UserLimiter>,
    user: Box<str>,
}

impl UserLimiter {
    /// A limiter allowing `max_per_user` connections to each user.
    pub fn new(max_per_user: usize) -> Arc<UserLimiter> {
        Arc::new(UserLimiter {
            max_per_user,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for a connection of `user`, or says the user holds its maximum (the
    /// refusal's sentence).
    pub fn acquire(self: &Arc<Self>, user: &str) -> Result<UserPermit, String> {
        let mut open = self.open.lock().expect("limiter lock");
        if open.get(user).copied().unwrap_or(0) >= self.max_per_user {
            let max = self.max_per_user;
            return Err(format!(
                "a user may hold at most {max} connections to this server; close one (another tab) and retry"
            ));
        }
        *open.entry(user.into()).or_default() += 1;
        Ok(UserPermit {
            limiter: Arc::clone(self),
            user: user.into(),
        })
    }
}

impl Drop for UserPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().expect("limiter lock");
        release(&mut open, &self.user);
    }
}

/// Gives back one of `key`'s slots, forgetting a key with none left.
fn release<K: std::hash::Hash + Eq>(open: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = open.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            open.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ip_trusts_forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let check = |peer: &str, header: Option<&str>, expect: &str| {
            let got = client_ip(peer.parse().unwrap(), header.into_iter(), &trusted);
            assert_eq!(got.to_string(), expect, "peer {peer}, header {header:?}");
        };
        // Not through a trusted proxy: the header is the client's word, ignored.
        check("203.0.113.9", Some("198.51.100.1"), "203.0.113.9");
        // Through the proxy: the address it saw.
        check("127.0.0.1", Some("198.51.100.1"), "198.51.100.1");
        // A chain of trusted proxies is skipped; a forged left-most entry is not believed.
        check(
            "127.0.0.1",
            Some("6.6.6.6, 198.51.100.1, 10.1.2.3"),
            "198.51.100.1",
        );
        check("127.0.0.1", Some("2001:db8::1"), "2001:db8::1");
        // No header, or garbage: the last address known to be real.
        check("127.0.0.1", None, "127.0.0.1");
        check("127.0.0.1", Some(""), "127.0.0.1");
        check("127.0.0.1", Some("not-an-ip"), "127.0.0.1");
        check(
            "127.0.0.1",
            Some("198.51.100.1, 10.0.0.7, junk"),
            "127.0.0.1",
        );
        check("127.0.0.1", Some("10.0.0.7"), "10.0.0.7");
        // Several header lines are one list, in order.
        let lines = ["198.51.100.1", "10.0.0.7"];
        let got = client_ip("127.0.0.1".parse().unwrap(), lines.into_iter(), &trusted);
        assert_eq!(got.to_string(), "198.51.100.1");
    }

    #[test]
    fn the_open_file_limit_less_the_reserve_caps_connections() {
        fn check(configured: usize, open_files: Option<u64>, reserved: u64, expect: usize) {
            let capacity = ConnectionCapacity::derive(configured, open_files, reserved);
            assert_eq!(
                capacity.effective, expect,
                "{configured} under {open_files:?} less {reserved}"
            );
            assert_eq!(capacity.limited_by_open_files(), expect < configured);
        }
        check(100_000, Some(1024), 128, 896);
        check(100_000, Some(1_048_576), 128, 100_000);
        check(500, Some(1024), 128, 500);
        check(100_000, None, 128, 100_000);
        check(100_000, Some(u64::MAX), 128, 100_000);
        // A reserve as large as the limit still lets one connection in.
        check(100_000, Some(100), 128, 1);
    }

    #[test]
    fn permits_count_per_address_and_in_total_and_free_on_drop() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limiter.acquire(a).unwrap();
        let _a2 = limiter.acquire(a).unwrap();
        assert_eq!(limiter.acquire(a).unwrap_err(), LimitHit::PerIp(2));
        let _b1 = limiter.acquire(b).unwrap();
        assert_eq!(limiter.acquire(b).unwrap_err(), LimitHit::Total(3));
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(
            limiter.acquire(b).is_ok(),
            "a freed slot can be taken again"
        );
    }

    #[test]
    fn address_keys_group_ipv6_by_64_and_keep_ipv4_exact() {
        let check = |ip: &str, expect: &str| {
            assert_eq!(address_key(ip.parse().unwrap()).to_string(), expect, "{ip}");
        };
        check("203.0.113.9", "203.0.113.9");
        check("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::");
        check("2001:db8:1:2::1", "2001:db8:1:2::");
        check("2001:db8:1:3::1", "2001:db8:1:3::");
        check("::ffff:203.0.113.9", "203.0.113.9");
        check("::1", "::");
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_per_address_limit() {
        let limiter = ConnectionLimiter::new(100, 2);
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let _first = limiter.acquire(ip("2001:db8:0:1::1")).unwrap();
        let _second = limiter.acquire(ip("2001:db8:0:1:ffff::2")).unwrap();
        assert_eq!(
            limiter
                .acquire(ip("2001:db8:0:1:1234:5678:9abc:def0"))
                .unwrap_err(),
            LimitHit::PerIp(2),
            "a third address of the same /64 is the same client"
        );
        assert!(
            limiter.acquire(ip("2001:db8:0:2::1")).is_ok(),
            "the next /64 is another client"
        );
        let _v4 = limiter.acquire(ip("198.51.100.1")).unwrap();
        let _v4b = limiter.acquire(ip("::ffff:198.51.100.1")).unwrap();
        assert_eq!(
            limiter.acquire(ip("198.51.100.1")).unwrap_err(),
            LimitHit::PerIp(2),
            "an IPv4-mapped address is its IPv4 address"
        );
        assert!(limiter.acquire(ip("198.51.100.2")).is_ok());
    }

    #[test]
    fn a_user_holds_at_most_its_connections_and_gets_them_back_as_they_close() {
        let limiter = UserLimiter::new(2);
        let first = limiter.acquire("ana").unwrap();
        let _second = limiter.acquire("ana").unwrap();
        let refused = limiter.acquire("ana").unwrap_err();
        assert!(refused.contains("at most 2 connections"), "{refused}");
        assert!(
            limiter.acquire("ben").is_ok(),
            "another user has slots of their own"
        );
        drop(first);
        let _third = limiter
            .acquire("ana")
            .expect("a closed connection frees its slot");
        assert!(limiter.acquire("ana").is_err());
    }

    #[test]
    fn a_user_with_no_connection_left_is_forgotten() {
        let limiter = UserLimiter::new(5);
        let permits: Vec<_> = (0..3).map(|_| limiter.acquire("ana").unwrap()).collect();
        drop(permits);
        assert!(limiter.open.lock().unwrap().is_empty());
    }
}
