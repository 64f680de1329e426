//! Connection limits: total and per client address, held by a permit for the connection's life.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
        })
    }

    /// Takes a slot for a connection from `ip`, or says which limit is reached.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, LimitHit> {
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

    /// Open connections.
    pub fn open(&self) -> usize {
        self.open.lock().expect("limiter lock").0
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().expect("limiter lock");
        open.0 -= 1;
        if let Some(count) = open.1.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
