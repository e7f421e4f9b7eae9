//! The gateway's bounds, as `serve` reads them: rate limits per user, per client address, on
//! misses (`not_found` answers) and on WebSocket frames. `off` lifts one.

use invitebus_gateway::limits::{LimitSettings, Rate};

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
}

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
