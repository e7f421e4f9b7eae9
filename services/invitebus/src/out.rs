//! Printing lines to stdout without panicking when the reader goes away (`| head`).

use std::io::Write;

/// Prints `s` and a newline; false when stdout is closed, so the caller can stop.
pub fn line(s: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").and_then(|_| out.flush()).is_ok()
}
