//! The gateway's bounds, as `serve` reads them: rate limits per user, per client address, on
//! misses (`not_found` answers) and on WebSocket frames (`off` lifts one); connection caps and
//! the deadlines of headers, bodies, writes and idle sessions.

use invitebus_gateway::limits::{LimitSettings, Rate};
use invitebus_gateway::Bounds;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct EdgeArgs {
    /// Requests (and WebSocket frames) per second of one signed-in user, `PER_SECOND:BURST`.
    #[arg(long, env = "INVITEBUS_RATE_USER", default_value = "20:100", value_parser = rate)]
    pub rate_user: Limit,
    /// Requests per second from one client address (an IPv6 /64), whoever signs them.
    #[arg(long, env = "INVITEBUS_RATE_ADDRESS", default_value = "200:1000", value_parser = rate)]
    pub rate_address: Limit,
    /// `not_found` answers one user may get; once spent, everything they send is refused until
    /// a miss comes back.
    #[arg(long, env = "INVITEBUS_RATE_MISSES_USER", default_value = "1:20", value_parser = rate)]
    pub rate_misses_user: Limit,
    /// The same per client address.
    #[arg(long, env = "INVITEBUS_RATE_MISSES_ADDRESS", default_value = "10:200", value_parser = rate)]
    pub rate_misses_address: Limit,
    /// Frames per second of one WebSocket (seed 002's signaling).
    #[arg(long, env = "INVITEBUS_RATE_WS_FRAMES", default_value = "20:50", value_parser = rate)]
    pub rate_ws_frames: Limit,
    /// Open HTTP connections in all (lowered to what the file-descriptor limit leaves room for).
    #[arg(long, env = "INVITEBUS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open HTTP connections from one client address (an IPv6 /64).
    #[arg(long, env = "INVITEBUS_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 512)]
    pub max_connections_per_address: usize,
    /// Seconds from a connection's start, or its last response, to a request's last header.
    #[arg(long, env = "INVITEBUS_HEADER_TIMEOUT", default_value_t = 10.0, value_parser = seconds)]
    pub header_timeout: f64,
    /// Seconds from a request's headers to the end of its body.
    #[arg(long, env = "INVITEBUS_BODY_TIMEOUT", default_value_t = 30.0, value_parser = seconds)]
    pub body_timeout: f64,
    /// Seconds a WebSocket or event stream may go without traffic (a client's ping counts).
    #[arg(long, env = "INVITEBUS_SESSION_IDLE", default_value_t = 120.0, value_parser = seconds)]
    pub session_idle: f64,
    /// Seconds a write may wait for a client that does not read before its connection ends.
    #[arg(long, env = "INVITEBUS_WRITE_STALL", default_value_t = 30.0, value_parser = seconds)]
    pub write_stall: f64,
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds above 0")),
    }
}

/// File descriptors the process keeps for what is not a client connection (NATS, SQLite, logs).
const RESERVED_FDS: u64 = 512;

/// A rate, or none (`off`).
#[derive(Clone, Copy, Debug)]
pub struct Limit(Option<Rate>);

fn rate(s: &str) -> Result<Limit, String> {
    match s {
        "off" => Ok(Limit(None)),
        s => s.parse().map(|r| Limit(Some(r))),
    }
}

impl EdgeArgs {
    pub fn limits(&self) -> LimitSettings {
        LimitSettings {
            per_user: self.rate_user.0,
            per_address: self.rate_address.0,
            misses_per_user: self.rate_misses_user.0,
            misses_per_address: self.rate_misses_address.0,
            frames_per_socket: self.rate_ws_frames.0,
        }
    }
}

impl EdgeArgs {
    /// The connection bounds, the cap lowered to fit the file-descriptor limit (raised first to
    /// its hard limit): past it `accept` fails and the health check with it.
    pub fn bounds(&self) -> Bounds {
        let fds = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
        let room = usize::try_from(fds.saturating_sub(RESERVED_FDS).max(64)).unwrap_or(usize::MAX);
        if self.max_connections > room {
            tracing::warn!(
                asked = self.max_connections,
                allowed = room,
                fd_limit = fds,
                "the connection cap is lowered to fit the file-descriptor limit"
            );
        }
        Bounds {
            max_connections: self.max_connections.min(room).max(1),
            max_per_address: self.max_connections_per_address.max(1),
            header_timeout: Duration::from_secs_f64(self.header_timeout),
            body_timeout: Duration::from_secs_f64(self.body_timeout),
            session_idle: Duration::from_secs_f64(self.session_idle),
            write_stall: Duration::from_secs_f64(self.write_stall),
        }
    }
}
