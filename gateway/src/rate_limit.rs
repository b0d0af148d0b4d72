//! Per-IP and per-user token buckets, as axum middleware.
//!
//! Why in memory, per gateway instance: the limiter's job in a flash sale is
//! fairness (one client or one account cannot take the whole gateway's
//! capacity), not an exact global quota. A bucket in process costs a hash
//! and an uncontended mutex; a shared limiter (a Redis `INCR`/Lua bucket per
//! request) would add one more Redis round trip to every request, the
//! reservation itself being only one, and would put a hot key per busy
//! client on the store the hot path depends on. With N gateways behind a
//! balancer a client gets up to N times the configured rate, which is the
//! price of that (see `docs/api.md`, "Rate limits").
//!
//! The per-IP check runs first, before any token is looked at. The per-user
//! check keys by the token's `sub` once the token verifies; the verified
//! claims ride in the request's extensions ([`VerifiedClaims`]) so that the
//! `AuthUser` extractor does not verify the token a second time.
//!
//! Memory is bounded: a bucket that has refilled to its burst is the same as
//! no bucket, so idle buckets are dropped on a periodic sweep (and whenever
//! a shard reaches its share of `max_keys`). If a shard is still full after
//! the sweep (more distinct active clients than `max_keys`), it is cleared:
//! the limiter fails open rather than refusing clients it has no room for.

use crate::{
    auth::{Claims, JwtKeys, extract::bearer_token},
    error::ApiError,
};
use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// A refill rate and a burst (the bucket's capacity).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    /// `None` (no limit) when `per_sec` is 0; a `burst` below 1 is 1.
    pub fn new(per_sec: f64, burst: u32) -> Option<Self> {
        (per_sec.is_finite() && per_sec > 0.0).then(|| Self {
            per_sec,
            burst: f64::from(burst.max(1)),
        })
    }

    /// Time for an empty bucket to fill up again.
    fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(self.burst / self.per_sec)
    }
}

/// How the gateway limits requests (built by the binary from its flags).
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitSettings {
    /// Per client IP (IPv6 by /64); `None`: not limited.
    pub per_ip: Option<Rate>,
    /// Per authenticated user (the token's `sub`); `None`: not limited.
    pub per_user: Option<Rate>,
    /// Proxies in front of the gateway that append to `X-Forwarded-For`;
    /// 0: the header is ignored and the socket's peer is the client.
    pub trusted_proxy_hops: usize,
    /// Loopback clients are not limited per IP (local runs, benchmarks).
    pub exempt_loopback: bool,
    /// Most buckets kept per scope.
    pub max_keys: usize,
}

impl Default for RateLimitSettings {
    /// No limits.
    fn default() -> Self {
        Self {
            per_ip: None,
            per_user: None,
            trusted_proxy_hops: 0,
            exempt_loopback: true,
            max_keys: 100_000,
        }
    }
}

/// One token bucket: `tokens` as of `updated`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rate: &Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            updated: now,
        }
    }

    fn tokens_at(&self, rate: &Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate.per_sec).min(rate.burst)
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        self.tokens = self.tokens_at(rate, now);
        self.updated = now.max(self.updated);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }

    /// A full bucket is indistinguishable from a new one: safe to drop.
    fn is_idle(&self, rate: &Rate, now: Instant) -> bool {
        self.tokens_at(rate, now) >= rate.burst
    }
}

const SHARDS: usize = 16;

struct Shard<K> {
    buckets: HashMap<K, Bucket>,
    swept: Instant,
}

/// Buckets by key, in shards so concurrent requests rarely share a lock.
struct KeyedBuckets<K> {
    rate: Rate,
    shards: Vec<Mutex<Shard<K>>>,
    hasher: RandomState,
    per_shard: usize,
    sweep_every: Duration,
}

impl<K: Hash + Eq> KeyedBuckets<K> {
    fn new(rate: Rate, max_keys: usize, now: Instant) -> Self {
        Self {
            rate,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        swept: now,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            sweep_every: rate.refill_time().max(Duration::from_secs(10)),
        }
    }

    fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let i = (self.hasher.hash_one(&key) as usize) % SHARDS;
        let mut shard = self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let due = now.saturating_duration_since(shard.swept) >= self.sweep_every;
        if due || shard.buckets.len() >= self.per_shard {
            let rate = self.rate;
            shard.buckets.retain(|_, b| !b.is_idle(&rate, now));
            shard.swept = now;
            if shard.buckets.len() >= self.per_shard {
                tracing::warn!(
                    buckets = shard.buckets.len(),
                    "rate limiter shard full of active clients; clearing it"
                );
                shard.buckets.clear();
            }
        }
        shard
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(&self.rate, now))
            .take(&self.rate, now)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.buckets.len()).unwrap_or_default())
            .sum()
    }
}

/// Claims verified by the limiter, for the `AuthUser` extractor to reuse.
#[derive(Clone, Debug)]
pub struct VerifiedClaims(pub Claims);

/// The limiter shared by every request of one gateway.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RateLimitSettings,
    jwt: Arc<JwtKeys>,
    per_ip: Option<KeyedBuckets<IpAddr>>,
    per_user: Option<KeyedBuckets<flashdeal_schemas::UserId>>,
}

/// Probes and scrapes are never limited.
const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, jwt: Arc<JwtKeys>) -> Self {
        let now = Instant::now();
        let per_ip = settings
            .per_ip
            .map(|r| KeyedBuckets::new(r, settings.max_keys, now));
        let per_user = settings
            .per_user
            .map(|r| KeyedBuckets::new(r, settings.max_keys, now));
        Self {
            inner: Arc::new(Inner {
                settings,
                jwt,
                per_ip,
                per_user,
            }),
        }
    }

    fn enabled(&self) -> bool {
        self.inner.per_ip.is_some() || self.inner.per_user.is_some()
    }
}

/// The client's address: the socket's peer, or with `hops` trusted proxies
/// the `hops`-th address from the right of `X-Forwarded-For` (each proxy
/// appends the peer it saw; what is left of the trusted part is the
/// client's to say and cannot be trusted). IPv6 clients count by /64.
pub fn client_ip(req: &Request, hops: usize) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Only the entry the nearest trusted proxy appended is read: whatever
    // stands to its left came from the client, so it is neither trusted nor
    // allowed to spoil the parse.
    let forwarded = (hops > 0)
        .then(|| {
            let entries: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            let i = entries.len().checked_sub(hops)?;
            entries[i].parse::<IpAddr>().ok()
        })
        .flatten();
    forwarded.or(peer).map(|ip| match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    })
}

fn refuse(scope: &'static str, wait: Duration) -> Response {
    metrics::counter!("flashdeal_rate_limited_total", "scope" => scope).increment(1);
    ApiError::RateLimited {
        scope,
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
    .into_response()
}

/// The middleware: 429 `rate-limited` with `Retry-After` when the client's
/// IP bucket, then the user's bucket, is empty.
pub async fn enforce(State(limiter): State<RateLimiter>, mut req: Request, next: Next) -> Response {
    if !limiter.enabled() || EXEMPT.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let inner = &limiter.inner;
    let now = Instant::now();
    if let Some(buckets) = &inner.per_ip
        && let Some(ip) = client_ip(&req, inner.settings.trusted_proxy_hops)
        // Loopback is exempt only when the peer is the client: behind a
        // proxy (hops > 0) a loopback address is the proxy, not a local tool.
        && !(inner.settings.exempt_loopback
            && inner.settings.trusted_proxy_hops == 0
            && ip.is_loopback())
        && let Err(wait) = buckets.take(ip, now)
    {
        return refuse("ip", wait);
    }
    if let Some(buckets) = &inner.per_user
        && let Ok(token) = bearer_token(req.headers())
        && let Ok(claims) = inner.jwt.verify(token)
    {
        if let Err(wait) = buckets.take(claims.sub, now) {
            return refuse("user", wait);
        }
        req.extensions_mut().insert(VerifiedClaims(claims));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn rate(per_sec: f64, burst: u32) -> Rate {
        Rate::new(per_sec, burst).unwrap()
    }

    #[test]
    fn zero_disables_and_burst_is_at_least_one() {
        assert_eq!(Rate::new(0.0, 10), None);
        assert_eq!(Rate::new(f64::NAN, 10), None);
        assert_eq!(rate(5.0, 0).burst, 1.0);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_the_rate() {
        let r = rate(2.0, 3);
        let t0 = Instant::now();
        let mut b = Bucket::full(&r, t0);
        for _ in 0..3 {
            assert_eq!(b.take(&r, t0), Ok(()));
        }
        // Empty: the next token is half a second away at 2/s.
        let wait = b.take(&r, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // A refused request takes nothing: still 0.5 s.
        assert_eq!(b.take(&r, t0).unwrap_err(), wait);
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.take(&r, t1), Ok(()));
        assert!(b.take(&r, t1).is_err());
        // A long pause refills to the burst, never beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(b.take(&r, t2), Ok(()));
        }
        assert!(b.take(&r, t2).is_err());
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing() {
        let r = rate(1.0, 1);
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = Bucket::full(&r, t0);
        assert!(b.take(&r, t0).is_ok());
        assert!(b.take(&r, t0 - Duration::from_secs(5)).is_err());
        assert!(b.take(&r, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn keys_have_their_own_buckets_and_idle_ones_are_dropped() {
        let r = rate(1.0, 2);
        let t0 = Instant::now();
        let keyed = KeyedBuckets::new(r, 1000, t0);
        assert!(keyed.take("a", t0).is_ok());
        assert!(keyed.take("a", t0).is_ok());
        assert!(keyed.take("a", t0).is_err());
        assert!(keyed.take("b", t0).is_ok());
        assert_eq!(keyed.len(), 2);
        // Past the sweep interval every bucket has refilled: all dropped
        // as the shards are touched, without changing any answer.
        let later = t0 + Duration::from_secs(11);
        for k in 0..64u32 {
            let key: &'static str = Box::leak(format!("k{k}").into_boxed_str());
            assert!(keyed.take(key, later).is_ok());
        }
        assert!(keyed.take("a", later).is_ok());
        assert!(keyed.len() <= 65);
        assert!(keyed.len() >= 64);
    }

    #[test]
    fn memory_is_bounded_by_max_keys() {
        let r = rate(1.0, 5);
        let t0 = Instant::now();
        let keyed = KeyedBuckets::new(r, 160, t0);
        for k in 0..10_000u32 {
            let _ = keyed.take(k, t0);
        }
        assert!(keyed.len() <= 160, "{}", keyed.len());
    }

    fn request(peer: &str, xff: &[&str]) -> Request {
        let mut req = Request::new(axum::body::Body::empty());
        req.extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        for v in xff {
            req.headers_mut()
                .append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        req
    }

    #[test]
    fn forwarded_for_is_read_only_behind_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let req = request("10.0.0.1:5000", &["203.0.113.9, 198.51.100.7"]);
        assert_eq!(client_ip(&req, 0), Some(ip("10.0.0.1")));
        assert_eq!(client_ip(&req, 1), Some(ip("198.51.100.7")));
        assert_eq!(client_ip(&req, 2), Some(ip("203.0.113.9")));
        // Fewer entries than trusted proxies: the request went around one.
        assert_eq!(client_ip(&req, 3), Some(ip("10.0.0.1")));
        let split = request("10.0.0.1:5000", &["203.0.113.9", "198.51.100.7"]);
        assert_eq!(client_ip(&split, 2), Some(ip("203.0.113.9")));
        let junk = request("10.0.0.1:5000", &["not-an-ip"]);
        assert_eq!(client_ip(&junk, 1), Some(ip("10.0.0.1")));
        // Junk the client put to the left of what the proxy appended does
        // not make the proxy's view unreadable (it used to fall back to the
        // peer, which for a loopback sidecar meant no limit at all).
        let spoofed = request("127.0.0.6:5000", &["x, 198.51.100.7"]);
        assert_eq!(client_ip(&spoofed, 1), Some(ip("198.51.100.7")));
    }

    #[test]
    fn ipv6_clients_count_by_slash_64() {
        let a = request("[2001:db8:1:2:aaaa::1]:443", &[]);
        let b = request("[2001:db8:1:2:bbbb::2]:443", &[]);
        assert_eq!(client_ip(&a, 0), client_ip(&b, 0));
        let mapped = request("[::ffff:192.0.2.1]:443", &[]);
        assert_eq!(client_ip(&mapped, 0), Some("192.0.2.1".parse().unwrap()));
    }
}
