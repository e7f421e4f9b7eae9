//! Logs through `tracing`: human-readable by default, JSON when `INVITEBUS_LOG=json`.
//! The level comes from `RUST_LOG`; the default is `info` for `serve` and `warn` for client commands.
//! A panic anywhere (a task, the writer's thread) is logged through it too, at error level with
//! where it happened, and counted (`invitebus_panics_total`): a panicking task otherwise ends
//! with a line on stderr that JSON log collectors do not parse.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},async_nats=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("INVITEBUS_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        tracing::error!(%thread, panic = %info, "panicked");
        metrics::counter!("invitebus_panics_total").increment(1);
        default(info);
    }));
}
