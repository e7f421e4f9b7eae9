//! Rate limits at the edge: token buckets (governor's GCRA) per user and per client address,
//! a smaller bucket of misses (`not_found` answers: code and id guesses) whose exhaustion blocks
//! the guesser for a while, and frames per second per WebSocket. Refusals are `rate_limited`
//! errors, so every route answers them in its own seed's shape; [`retry_after`] adds the header.

use governor::clock::{Clock, DefaultClock, QuantaInstant};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota};
use invitebus_events::{ErrorCode, ProtocolError};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A bucket: `per_second` cells come back each second (fractions allowed), at most `burst` held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_second: f64, burst: u32) -> Rate {
        Rate { per_second, burst }
    }

    fn quota(self) -> Option<Quota> {
        let period = Duration::try_from_secs_f64(1.0 / self.per_second).ok()?;
        Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(self.burst)?))
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `PER_SECOND:BURST`, e.g. `20:100` or `0.5:10`.
    fn from_str(s: &str) -> Result<Rate, String> {
        let (rate, burst) = s.split_once(':').ok_or("PER_SECOND:BURST, e.g. 20:100")?;
        let rate = Rate {
            per_second: rate.trim().parse().map_err(|_| format!("{rate:?} is not a number"))?,
            burst: burst
                .trim()
                .parse()
                .map_err(|_| format!("{burst:?} is not a whole number"))?,
        };
        match rate.quota() {
            Some(_) => Ok(rate),
            None => Err("the rate and the burst must be above 0".into()),
        }
    }
}

/// The gateway's limits; None turns one off.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Requests (and WebSocket frames) of one signed-in user.
    pub per_user: Option<Rate>,
    /// Requests from one client address (an IPv6 /64 counts as one), whoever signs them: well
    /// above `per_user`, so users behind one NAT are not blocked by one guesser among them.
    pub per_address: Option<Rate>,
    /// `not_found` answers one user may get; once spent, that user is refused everything until
    /// the bucket refills a cell.
    pub misses_per_user: Option<Rate>,
    /// The same per client address.
    pub misses_per_address: Option<Rate>,
    /// Frames one WebSocket may send.
    pub frames_per_socket: Option<Rate>,
}

impl Default for LimitSettings {
    /// A person clicking never reaches these; a script guessing codes is stopped after 20
    /// misses, then gets one guess a second (a 10-character code's 36^10 would take 10^8 years).
    fn default() -> LimitSettings {
        LimitSettings {
            per_user: Some(Rate::new(20.0, 100)),
            per_address: Some(Rate::new(200.0, 1000)),
            misses_per_user: Some(Rate::new(1.0, 20)),
            misses_per_address: Some(Rate::new(10.0, 200)),
            frames_per_socket: Some(Rate::new(20.0, 50)),
        }
    }
}

impl LimitSettings {
    /// No limit at all (benchmarks, and tests of something else).
    pub fn off() -> LimitSettings {
        LimitSettings {
            per_user: None,
            per_address: None,
            misses_per_user: None,
            misses_per_address: None,
            frames_per_socket: None,
        }
    }
}

/// One kind of key's request bucket, miss bucket and blocks.
struct Scope<K: Hash + Eq + Clone> {
    name: &'static str,
    requests: Option<DefaultKeyedRateLimiter<K>>,
    misses: Option<DefaultKeyedRateLimiter<K>>,
    blocked: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Scope<K> {
    fn new(name: &'static str, requests: Option<Rate>, misses: Option<Rate>) -> Scope<K> {
        Scope {
            name,
            requests: requests.and_then(Rate::quota).map(governor::RateLimiter::keyed),
            misses: misses.and_then(Rate::quota).map(governor::RateLimiter::keyed),
            blocked: Mutex::default(),
        }
    }

    /// One request of `key`: refused while blocked, or when its bucket is empty.
    fn check(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        // Its own statement: a guard in an `if let` scrutinee would live through the body, and
        // the `remove` below would wait on it for ever.
        let blocked = self.blocks().get(key).copied();
        if let Some(until) = blocked {
            if until > now {
                return Err(until - now);
            }
            self.blocks().remove(key);
        }
        match &self.requests {
            Some(limiter) => limiter.check_key(key).map_err(wait),
            None => Ok(()),
        }
    }

    /// `key` got a miss: once its miss bucket is empty it is blocked until a cell comes back.
    fn miss(&self, key: &K) {
        let Some(limiter) = &self.misses else { return };
        if let Err(not_until) = limiter.check_key(key) {
            let until = Instant::now() + wait(not_until);
            self.blocks().insert(key.clone(), until);
            ::metrics::counter!("invitebus_gateway_blocked_total", "scope" => self.name).increment(1);
            tracing::info!(
                scope = self.name,
                "a client spent its misses (not_found answers); blocked for a while"
            );
        }
    }

    /// Forgets keys whose buckets are full again and blocks that ended (memory stays bounded by
    /// the clients of the last few seconds).
    fn tidy(&self) {
        for limiter in self.requests.iter().chain(&self.misses) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        self.blocks().retain(|_, until| *until > now);
    }

    fn blocks(&self) -> std::sync::MutexGuard<'_, HashMap<K, Instant>> {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn wait(not_until: NotUntil<QuantaInstant>) -> Duration {
    not_until.wait_time_from(DefaultClock::default().now())
}

/// How many checks between two tidy-ups of the buckets.
const TIDY_EVERY: u64 = 10_000;

/// The gateway's buckets, shared by every route.
pub struct Limits {
    users: Scope<String>,
    addresses: Scope<IpAddr>,
    frames: Option<Quota>,
    checks: AtomicU64,
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Limits {
        Limits {
            users: Scope::new("user", settings.per_user, settings.misses_per_user),
            addresses: Scope::new("address", settings.per_address, settings.misses_per_address),
            frames: settings.frames_per_socket.and_then(Rate::quota),
            checks: AtomicU64::new(0),
        }
    }

    /// A request from `address`, before its token is even read.
    pub fn check_address(&self, address: Option<IpAddr>) -> Result<(), Refusal> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % TIDY_EVERY == TIDY_EVERY - 1 {
            self.users.tidy();
            self.addresses.tidy();
        }
        match address {
            Some(a) => self
                .addresses
                .check(&one_client(a))
                .map_err(|w| refused(self.addresses.name, w)),
            None => Ok(()),
        }
    }

    /// A request (or a WebSocket frame) of signed-in `user`.
    pub fn check_user(&self, user: &str) -> Result<(), Refusal> {
        self.users
            .check(&user.to_string())
            .map_err(|w| refused(self.users.name, w))
    }

    /// A `not_found` answer to `user` from `address`.
    pub fn miss(&self, user: &str, address: Option<IpAddr>) {
        self.users.miss(&user.to_string());
        if let Some(a) = address {
            self.addresses.miss(&one_client(a));
        }
    }

    /// The frame bucket of a new WebSocket.
    pub fn socket(&self) -> Frames {
        Frames(self.frames.map(governor::RateLimiter::direct))
    }
}

/// One WebSocket's frames.
pub struct Frames(Option<DefaultDirectRateLimiter>);

impl Frames {
    pub fn check(&self) -> Result<(), Refusal> {
        match &self.0 {
            Some(limiter) => limiter.check().map_err(|n| refused("frames", wait(n))),
            None => Ok(()),
        }
    }
}

/// An IPv6 client is its /64 (one host gets a whole /64 and picks any address in it).
pub(crate) fn one_client(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Seconds a refused client should wait, as `Retry-After` says it (at least 1).
pub fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// A request refused: `rate_limited`, and the seconds to wait (for `Retry-After`).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub error: ProtocolError,
    pub retry_after: u64,
}

fn refused(scope: &'static str, wait: Duration) -> Refusal {
    ::metrics::counter!("invitebus_gateway_rate_limited_total", "scope" => scope).increment(1);
    let seconds = retry_seconds(wait).max(1);
    Refusal {
        error: ProtocolError::new(
            ErrorCode::RateLimited,
            format!("too many requests ({scope}); retry in {seconds} s"),
        ),
        retry_after: seconds,
    }
}

/// Where a route's refusal leaves how long to wait, for [`retry_after`] to put in the header.
#[derive(Clone, Default)]
pub struct RetrySlot(Arc<AtomicU64>);

impl RetrySlot {
    pub fn set(&self, seconds: u64) {
        self.0.store(seconds, Ordering::Relaxed);
    }
}

/// Middleware: every response to a rate-limited request carries `Retry-After`, whatever its
/// seed's shape.
pub async fn retry_after(mut req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let slot = RetrySlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut response = next.run(req).await;
    let seconds = slot.0.load(Ordering::Relaxed);
    if seconds > 0 {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        assert_eq!("20:100".parse::<Rate>(), Ok(Rate::new(20.0, 100)));
        assert_eq!("0.5:3".parse::<Rate>(), Ok(Rate::new(0.5, 3)));
        for bad in ["20", "0:10", "5:0", "x:1", "-1:4", "inf:3"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_the_others_still_pass() {
        let limits = Limits::new(&LimitSettings {
            per_user: Some(Rate::new(1.0, 3)),
            ..LimitSettings::off()
        });
        for _ in 0..3 {
            limits.check_user("fang").unwrap();
        }
        let e = limits.check_user("fang").unwrap_err();
        assert_eq!(e.error.code, ErrorCode::RateLimited);
        assert_eq!(e.retry_after, 1);
        limits.check_user("xuan").unwrap();
    }

    #[test]
    fn spent_misses_block_every_request_of_the_guesser_only() {
        let limits = Limits::new(&LimitSettings {
            misses_per_user: Some(Rate::new(0.1, 2)),
            ..LimitSettings::off()
        });
        limits.miss("fang", None);
        limits.miss("fang", None);
        limits.check_user("fang").unwrap();
        limits.miss("fang", None);
        let e = limits.check_user("fang").unwrap_err();
        assert!((1..=10).contains(&e.retry_after), "{e:?}");
        limits.check_user("xuan").unwrap();
    }

    #[test]
    fn a_block_that_ended_lets_the_user_in_again() {
        let limits = std::sync::Arc::new(Limits::new(&LimitSettings {
            misses_per_user: Some(Rate::new(20.0, 1)),
            ..LimitSettings::off()
        }));
        limits.miss("fang", None);
        limits.miss("fang", None);
        assert!(limits.check_user("fang").is_err());
        std::thread::sleep(Duration::from_millis(120));
        // On a thread of its own: a lock taken twice would hang, and the test must fail instead.
        let (tx, rx) = std::sync::mpsc::channel();
        let l = limits.clone();
        std::thread::spawn(move || tx.send(l.check_user("fang").is_ok()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
    }

    #[test]
    fn an_ipv6_host_is_its_64_and_a_mapped_v4_is_the_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(one_client(a), one_client(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(one_client(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
