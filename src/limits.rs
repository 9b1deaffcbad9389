//! Rate limits: a token bucket, a per-connection inbound limiter built on it, and a keyed
//! limiter for the REST auth endpoints (per client IP, per email). Also the client-IP rule
//! (`--trusted-proxies`).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;

/// Classic token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        Self { tokens: burst, last: Instant::now(), rate: rate_per_sec, burst }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled completely (its key can be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }
}

/// What to do with one inbound WebSocket frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Drop it and tell the client `rate_limited`.
    Reject,
    /// The client kept going: close with 4008.
    Disconnect,
}

/// Per-connection inbound limit: `rate`/s sustained with a `burst`; a client that has more
/// than `burst` frames dropped within [`STRIKE_WINDOW`] is disconnected.
#[derive(Debug)]
pub struct InboundLimiter {
    bucket: TokenBucket,
    strike_limit: u32,
    strikes: u32,
    window_start: Instant,
}

/// How long dropped frames count against a connection.
pub const STRIKE_WINDOW: Duration = Duration::from_secs(10);

impl InboundLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        Self {
            bucket: TokenBucket::new(f64::from(rate_per_sec), f64::from(burst)),
            strike_limit: burst,
            strikes: 0,
            window_start: Instant::now(),
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.bucket.try_take(now) {
            return Verdict::Accept;
        }
        if now.saturating_duration_since(self.window_start) > STRIKE_WINDOW {
            self.window_start = now;
            self.strikes = 0;
        }
        self.strikes += 1;
        if self.strikes > self.strike_limit { Verdict::Disconnect } else { Verdict::Reject }
    }
}

/// A token bucket per key (client IP, email), for low-volume endpoints and handshakes. Keys are
/// kept as 64-bit hashes (a 64 KiB key costs what any other does); full buckets are swept at
/// most once a second once the map is large, and past [`MAX_KEYS`] new keys are refused, so
/// memory and time under the lock stay bounded whatever a flood of distinct keys does.
pub struct KeyedLimiter {
    buckets: Mutex<Buckets>,
    rate: f64,
    burst: f64,
    hasher: RandomState,
}

struct Buckets {
    map: HashMap<u64, TokenBucket>,
    next_sweep: Instant,
}

/// Above this many keys, full buckets are swept (at most once a second).
const SWEEP_ABOVE: usize = 10_000;
/// Keys one limiter holds at most; a new key beyond it is refused until a sweep frees room.
pub const MAX_KEYS: usize = 100_000;

impl KeyedLimiter {
    pub fn per_minute(per_minute: u32) -> Self {
        Self::new(f64::from(per_minute) / 60.0, f64::from(per_minute))
    }

    /// `rate_per_sec` sustained per key, with bursts of `burst`.
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        let buckets = Buckets { map: HashMap::new(), next_sweep: Instant::now() };
        Self { buckets: Mutex::new(buckets), rate: rate_per_sec, burst, hasher: RandomState::new() }
    }

    /// Takes one token for `key`; false when the key is over its limit.
    pub fn check<K: std::hash::Hash + ?Sized>(&self, key: &K) -> bool {
        let hash = self.hasher.hash_one(key);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bucket) = buckets.map.get_mut(&hash) {
            return bucket.try_take(now);
        }
        if buckets.map.len() >= SWEEP_ABOVE && now >= buckets.next_sweep {
            buckets.map.retain(|_, b| !b.is_full(now));
            buckets.next_sweep = now + Duration::from_secs(1);
        }
        if buckets.map.len() >= MAX_KEYS {
            return false;
        }
        let mut bucket = TokenBucket::new(self.rate, self.burst);
        let allowed = bucket.try_take(now);
        buckets.map.insert(hash, bucket);
        allowed
    }
}

/// The client's IP: the peer address, unless the peer is a trusted proxy, in which case the
/// nearest `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(forwarded.into_iter().rev().find(|ip| !trusted_proxies.contains(ip)).unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3.0);
        assert!((0..3).all(|_| bucket.try_take(start)));
        assert!(!bucket.try_take(start));
        assert!(bucket.try_take(start + Duration::from_millis(110)));
    }

    #[test]
    fn inbound_limiter_rejects_then_disconnects() {
        let now = Instant::now();
        let mut limiter = InboundLimiter::new(1, 2);
        assert_eq!(limiter.check(now), Verdict::Accept);
        assert_eq!(limiter.check(now), Verdict::Accept);
        assert_eq!(limiter.check(now), Verdict::Reject);
        assert_eq!(limiter.check(now), Verdict::Reject);
        assert_eq!(limiter.check(now), Verdict::Disconnect);
    }

    #[test]
    fn keyed_limiter_stays_bounded_under_a_flood_of_keys() {
        let limiter = KeyedLimiter::new(1.0, 1.0);
        for i in 0..MAX_KEYS {
            assert!(limiter.check(&i.to_string()));
        }
        // Full: new keys are refused (nothing is full again within the second), old ones work.
        assert!(!limiter.check("one more"));
        let huge = "k".repeat(64 * 1024);
        assert!(!limiter.check(&huge));
        let buckets = limiter.buckets.lock().unwrap();
        assert_eq!(buckets.map.len(), MAX_KEYS);
    }

    #[test]
    fn keyed_limiter_is_per_key() {
        let limiter = KeyedLimiter::per_minute(2);
        assert!(limiter.check("a") && limiter.check("a"));
        assert!(!limiter.check("a"));
        assert!(limiter.check("b"));
    }

    #[test]
    fn client_ip_believes_only_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let req = actix_web::test::TestRequest::default()
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.9, 10.0.0.1"))
            .to_http_request();
        assert_eq!(client_ip(&req, &[proxy]), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(client_ip(&req, &[]), Some(proxy));
    }
}
