//! Runs a real `nats-server` with JetStream on loopback, for `invitebus serve` (when no server
//! answers) and for tests (each test its own server, port and JetStream directory).
//!
//! The server is killed when the [`NatsServer`] is dropped; [`NatsServer::restart`] brings it
//! back on the same port with the same store, to test outages.
#![forbid(unsafe_code)]

mod cluster;

pub use cluster::Cluster;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NatsRunError {
    #[error("nats-server is not on PATH; install it (Debian/Ubuntu: `apt-get install nats-server`) or set NATS_URL to a running server")]
    NotInstalled,
    #[error("could not start nats-server: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("nats-server did not start listening: {0}")]
    NoListen(String),
}

/// A running nats-server child process.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store_dir: PathBuf,
    /// Extra command-line arguments (cluster settings), kept for restarts.
    args: Vec<String>,
    /// Dies with its parent (see [`NatsServer::start_tied`]).
    tied: bool,
    _temp: Option<tempfile::TempDir>,
}

/// The nats-server binary on PATH, if any.
pub fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

impl NatsServer {
    /// A server on a free port with a fresh JetStream directory that is removed on drop.
    pub fn start_temp() -> Result<NatsServer, NatsRunError> {
        let temp = tempfile::tempdir()?;
        let mut server = NatsServer::start(temp.path(), None)?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// A server storing JetStream data under `store_dir`, on `port` (None = any free port).
    pub fn start(store_dir: &Path, port: Option<u16>) -> Result<NatsServer, NatsRunError> {
        NatsServer::start_with(store_dir, port, Vec::new())
    }

    /// [`NatsServer::start`] with extra nats-server arguments (e.g. cluster settings).
    pub fn start_with(store_dir: &Path, port: Option<u16>, args: Vec<String>) -> Result<NatsServer, NatsRunError> {
        let (child, port) = spawn(store_dir, port, &args, false)?;
        Ok(NatsServer {
            child: Some(child),
            port,
            store_dir: store_dir.to_path_buf(),
            args,
            tied: false,
            _temp: None,
        })
    }

    /// [`NatsServer::start`] for a server that must not outlive this process, even one killed
    /// with SIGKILL (which runs no destructor): the child gets SIGTERM when its parent dies
    /// (`PR_SET_PDEATHSIG`, set by util-linux's `setpriv` when it is installed). Linux sends it
    /// when the spawning *thread* ends, so call this from a thread that lives as long as the
    /// process (the main thread, or a runtime worker, never a blocking-pool thread).
    pub fn start_tied(store_dir: &Path, port: Option<u16>) -> Result<NatsServer, NatsRunError> {
        NatsServer::start_tied_with(store_dir, port, Vec::new())
    }

    /// [`NatsServer::start_tied`] with extra nats-server arguments (e.g. `-c <config>`).
    pub fn start_tied_with(store_dir: &Path, port: Option<u16>, args: Vec<String>) -> Result<NatsServer, NatsRunError> {
        let (child, port) = spawn(store_dir, port, &args, true)?;
        Ok(NatsServer {
            child: Some(child),
            port,
            store_dir: store_dir.to_path_buf(),
            args,
            tied: true,
            _temp: None,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would); the store stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) -> Result<(), NatsRunError> {
        self.stop();
        let mut last = None;
        // The port can take a moment to be free again.
        for _ in 0..50 {
            match spawn(&self.store_dir, Some(self.port), &self.args, self.tied) {
                Ok((child, _)) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last.unwrap_or(NatsRunError::NoListen("gave up".into())))
    }

    /// The server's process id while it runs (to signal it, e.g. SIGSTOP in a fault test).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the child process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `setpriv` (util-linux), which can set the parent-death signal before it runs a program.
fn setpriv() -> Option<PathBuf> {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn spawn(store_dir: &Path, port: Option<u16>, args: &[String], tied: bool) -> Result<(Child, u16), NatsRunError> {
    let bin = find_binary().ok_or(NatsRunError::NotInstalled)?;
    std::fs::create_dir_all(store_dir)?;
    let port_arg = port.map(|p| p.to_string()).unwrap_or_else(|| "-1".into());
    let mut command = match (tied, setpriv()) {
        (true, Some(setpriv)) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "TERM", "--"]).arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    let mut child = command
        .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
        .arg(store_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Reads the log until the server says where it listens, then keeps draining it; refused
    // permissions are passed on, as nothing else would show who was refused what.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Violation") {
                tracing::warn!(line = line.as_str(), "nats-server refused a client");
            }
            if let Some(tx) = &tx {
                if let Some(port) = listening_port(&line) {
                    let _ = tx.send(Ok(port));
                } else if line.contains("[FTL]") || line.contains("[ERR]") {
                    let _ = tx.send(Err(line.clone()));
                } else {
                    continue;
                }
            }
            tx = None;
        }
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(port)) => Ok((child, port)),
        Ok(Err(line)) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(NatsRunError::NoListen(line))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(NatsRunError::NoListen(
                "no 'Listening for client connections' line within 10 s".into(),
            ))
        }
    }
}

/// The port in nats-server's "Listening for client connections on 127.0.0.1:4222" line.
fn listening_port(line: &str) -> Option<u16> {
    let rest = line.split("Listening for client connections on ").nth(1)?;
    rest.trim().rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_port_from_the_log_line() {
        let line = "[1] 2026/11/21 23:00:00.000000 [INF] Listening for client connections on 127.0.0.1:41234";
        assert_eq!(listening_port(line), Some(41234));
        assert_eq!(listening_port("[INF] Starting nats-server"), None);
    }

    #[test]
    fn starts_restarts_and_stops_a_real_server() {
        let mut server = NatsServer::start_temp().expect("nats-server starts");
        let port = server.port();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.stop();
        assert!(!server.is_running());
        server.restart().expect("restarts");
        assert_eq!(server.port(), port);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    }
}
