//! The TCP side of a WebSocket connection, which its actor cannot always look after
//! (`docs/protocol.md` §4).
//!
//! A client that stops reading fills the socket's send buffer; actix-http then stops polling the
//! response body, and with it the session actor: its timers stop, and a close asked of it waits
//! behind the full buffer forever. So three things live outside the actor:
//!
//! - **socket options at accept** ([`on_connect`]): `TCP_USER_TIMEOUT` = `--write-timeout-ms`,
//!   so the kernel aborts a connection whose unacknowledged data (zero-window probes included)
//!   has made no progress for that long, whatever the actor is doing;
//! - **a [`SocketHandle`]** that the session and the hubs hold: [`SocketHandle::reset_after`]
//!   resets the connection, from the worker thread that owns it, if it is still there after a
//!   grace — every close arms it, so neither a frozen session nor a peer that never lets go
//!   keeps a socket;
//! - **[`ConnectionCaps`]**: connections per client IP and per user, counted by guards that the
//!   session owns, so they are released when the session is dropped — when the socket is really
//!   gone — not when a hub forgets the connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use actix_rt::ArbiterHandle;
use actix_web::dev::Extensions;

use crate::ids::{CompanyId, UserId};

/// What `on_connect` learns about an accepted TCP connection, kept in its connection data.
#[derive(Clone)]
pub struct AcceptedSocket {
    fd: RawFd,
    /// The worker that owns the connection: only code running there may touch the fd.
    arbiter: ArbiterHandle,
}

/// Sets the socket options of an accepted connection and remembers how to reach it. Called by
/// `HttpServer::on_connect` on the worker thread that will own the connection.
pub fn on_connect(connection: &dyn std::any::Any, data: &mut Extensions, write_timeout: Duration) {
    let Some(stream) = connection.downcast_ref::<actix_rt::net::TcpStream>() else { return };
    #[cfg(target_os = "linux")]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(write_timeout)) {
        log::warn!("cannot set TCP_USER_TIMEOUT: {e}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = write_timeout;
    data.insert(AcceptedSocket { fd: stream.as_raw_fd(), arbiter: actix_rt::Arbiter::current() });
}

/// Proof that a connection's socket is open, owned by its session: dropped with the session,
/// which actix-http drops together with the socket.
pub struct SocketLife {
    _alive: Arc<()>,
}

/// How code outside a session reaches its socket. Cloning is cheap; a handle whose session is
/// gone does nothing.
#[derive(Clone)]
pub struct SocketHandle {
    inner: Option<Arc<SocketRef>>,
}

struct SocketRef {
    socket: AcceptedSocket,
    alive: Weak<()>,
    grace: Duration,
}

impl SocketHandle {
    /// A handle for `socket` (none for a connection that is not plain TCP), and the life token
    /// its session must own.
    pub fn new(socket: Option<&AcceptedSocket>, grace: Duration) -> (Self, SocketLife) {
        let life = Arc::new(());
        let inner = socket.map(|socket| {
            Arc::new(SocketRef { socket: socket.clone(), alive: Arc::downgrade(&life), grace })
        });
        (Self { inner }, SocketLife { _alive: life })
    }

    /// Resets the connection once the grace (`--write-timeout-ms`) has passed, unless it is
    /// gone by then: a close frame has that long to get through.
    pub fn reset_after_grace(&self) {
        if let Some(inner) = &self.inner {
            self.reset_after(inner.grace);
        }
    }

    /// Resets the connection after `delay` unless it is gone by then.
    pub fn reset_after(&self, delay: Duration) {
        let Some(inner) = self.inner.clone() else { return };
        let arbiter = inner.socket.arbiter.clone();
        arbiter.spawn(async move {
            actix_rt::time::sleep(delay).await;
            if inner.alive.upgrade().is_some() {
                log::info!("resetting a connection still open {delay:?} after it was closed");
                reset(inner.socket.fd);
            }
        });
    }
}

/// Resets the socket `fd`: linger 0 and shut both ways, so the peer gets a reset, the worker's
/// next read or write fails, and actix-http drops the connection with everything it holds.
///
/// Only called on the worker thread that owns the connection, while the connection's
/// [`SocketLife`] is alive. actix-http closes the socket and drops the session (and so the
/// life token) together, when it drops the connection on this same thread; so while the token
/// is alive here, `fd` is still this connection's open socket, never a reused number.
#[allow(unsafe_code)]
fn reset(fd: RawFd) {
    // SAFETY: see above — `fd` is open and owned by a connection that outlives this call.
    let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&socket);
    let result = socket
        .set_linger(Some(Duration::ZERO))
        .and_then(|()| socket.shutdown(std::net::Shutdown::Both));
    if let Err(e) = result {
        log::debug!("socket reset: {e}");
    }
}

/// Which IP a connection counts against: the address, or its /64 for IPv6 (one customer's
/// network hands out a whole /64).
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// Open connections per client IP and per user, with their caps.
pub struct ConnectionCaps {
    per_ip: usize,
    per_user: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    ips: HashMap<IpAddr, usize>,
    users: HashMap<(CompanyId, UserId), usize>,
    /// In a cluster: each user's connections on the other nodes (told by the PresenceHub).
    elsewhere: HashMap<(CompanyId, UserId), usize>,
}

#[derive(Clone)]
enum CapKey {
    Ip(IpAddr),
    User(CompanyId, UserId),
}

/// One counted connection; dropping it releases the count.
pub struct CapGuard {
    caps: Arc<ConnectionCaps>,
    key: CapKey,
}

impl ConnectionCaps {
    pub fn new(per_ip: usize, per_user: usize) -> Arc<Self> {
        Arc::new(Self { per_ip, per_user, counts: Mutex::new(Counts::default()) })
    }

    /// Counts one more connection from `ip` (its /64 for IPv6); `None` over the cap.
    pub fn admit_ip(self: &Arc<Self>, ip: IpAddr) -> Option<CapGuard> {
        self.admit(CapKey::Ip(ip_key(ip)))
    }

    /// Counts one more connection of a user; `None` over the cap.
    pub fn admit_user(self: &Arc<Self>, company: CompanyId, user: UserId) -> Option<CapGuard> {
        self.admit(CapKey::User(company, user))
    }

    /// A user has `count` connections on the other nodes of the cluster: they count against
    /// the per-user cap here too.
    pub fn set_elsewhere(&self, company: &CompanyId, user: &UserId, count: usize) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (company.clone(), user.clone());
        if count == 0 {
            counts.elsewhere.remove(&key);
        } else {
            counts.elsewhere.insert(key, count);
        }
    }

    fn admit(self: &Arc<Self>, key: CapKey) -> Option<CapGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Counts { ips, users, elsewhere } = &mut *counts;
        let (count, cap) = match &key {
            CapKey::Ip(ip) => (ips.entry(*ip).or_default(), self.per_ip),
            CapKey::User(company, user) => {
                let key = (company.clone(), user.clone());
                let cap = self.per_user.saturating_sub(elsewhere.get(&key).copied().unwrap_or(0));
                (users.entry(key).or_default(), cap)
            }
        };
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(CapGuard { caps: Arc::clone(self), key })
    }
}

impl Drop for CapGuard {
    fn drop(&mut self) {
        let mut counts = self.caps.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let counts = &mut *counts;
        match &self.key {
            CapKey::Ip(ip) => release(&mut counts.ips, ip),
            CapKey::User(company, user) => {
                release(&mut counts.users, &(company.clone(), user.clone()))
            }
        }
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = map.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(v4), v4);
    }

    #[test]
    fn caps_count_until_the_guard_is_dropped() {
        let caps = ConnectionCaps::new(2, 1);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = caps.admit_ip(ip).unwrap();
        let _second = caps.admit_ip(ip).unwrap();
        assert!(caps.admit_ip(ip).is_none());
        drop(first);
        assert!(caps.admit_ip(ip).is_some());
        let (company, user) = (CompanyId::parse("acme").unwrap(), UserId::parse("ann").unwrap());
        let guard = caps.admit_user(company.clone(), user.clone()).unwrap();
        assert!(caps.admit_user(company.clone(), user.clone()).is_none());
        drop(guard);
        assert!(caps.admit_user(company, user).is_some());
    }
}
