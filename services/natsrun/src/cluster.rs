//! A JetStream cluster of nats-servers on loopback, for the fault suite: nodes can be killed and
//! started again (same ports, same stores) while clients keep going.

use crate::{NatsRunError, NatsServer};
use std::path::PathBuf;

/// Running cluster nodes; all stopped on drop.
pub struct Cluster {
    pub nodes: Vec<NatsServer>,
    _temp: tempfile::TempDir,
}

fn free_port() -> Result<u16, NatsRunError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cluster {
    /// `size` nodes named `n1`…, in cluster `invitebus`, each with its own store in a temp dir.
    pub fn start_temp(size: usize) -> Result<Cluster, NatsRunError> {
        let temp = tempfile::tempdir()?;
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect::<Result<_, _>>()?;
        let route_urls: Vec<String> = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let store: PathBuf = temp.path().join(format!("n{}", i + 1));
            let args = vec![
                "--server_name".to_string(),
                format!("n{}", i + 1),
                "--cluster_name".to_string(),
                "invitebus".to_string(),
                "--cluster".to_string(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".to_string(),
                route_urls.join(","),
            ];
            nodes.push(NatsServer::start_with(&store, Some(free_port()?), args)?);
        }
        Ok(Cluster { nodes, _temp: temp })
    }

    /// Every node's client URL, comma-separated (what NATS_URL takes).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }
}
