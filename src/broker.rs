//! The embedded Kafka-compatible broker (nisshi, SQLite storage) for local
//! runs and tests. It is started in-process with `tokio::spawn(serve)`, not
//! its `main`, which would install signal handlers. Production builds
//! (`--no-default-features`) leave this module out and use `KAFKA_BROKERS`.
//! Its known gaps (no transactions, no partition increase) are in docs/broker.md.

use anyhow::Context;
use nisshi_broker::{
    NODE_ID,
    broker::Broker,
    coordinator::group::administrator::{Controller, GroupCoordinatorConfig},
};
use nisshi_storage::ArcDynStorage;
use std::{net::SocketAddr, path::Path, time::Duration};
use tokio::{task::JoinHandle, time::Instant};
use url::Url;
use uuid::Uuid;

/// A running embedded broker; aborted when dropped.
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
    handle: JoinHandle<()>,
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl EmbeddedBroker {
    /// Starts a broker on 127.0.0.1:`port` storing its log in
    /// `<data_dir>/broker.db`, and waits until it accepts connections.
    pub async fn start(port: u16, data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let dir = std::fs::canonicalize(data_dir)?;
        // nisshi resolves the path after `sqlite://` against the working
        // directory, so an absolute path needs the extra slash.
        let storage = Url::parse(&format!("sqlite:///{}", dir.join("broker.db").display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = Url::parse(&format!("tcp://{addr}"))?;
        let mut broker = Broker::<Controller<ArcDynStorage>, ArcDynStorage>::builder()
            .node_id(NODE_ID)
            .cluster_id("flashdeal-local")
            .incarnation_id(Uuid::now_v7())
            .advertised_listener(listener.clone())
            .storage(storage)
            .listener(listener)
            .silent(true)
            .group_coordinator(GroupCoordinatorConfig {
                initial_rebalance_delay: Duration::ZERO,
                ..GroupCoordinatorConfig::default()
            })
            .build()
            .await
            .map_err(|e| anyhow::anyhow!("building the embedded broker: {e:?}"))?;
        let handle = tokio::spawn(async move {
            if let Err(e) = broker.serve(Instant::now()).await {
                tracing::error!(error = ?e, "embedded broker stopped");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if handle.is_finished() {
                anyhow::bail!(
                    "the embedded broker exited at start (is port {port} in use? set FLASHDEAL_BROKER_PORT)"
                );
            }
            match tokio::net::TcpStream::connect(addr).await {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => anyhow::bail!("the embedded broker did not listen on {addr}: {e}"),
            }
        }
        tracing::info!(%addr, storage = %dir.display(), "embedded broker listening");
        Ok(Self { addr, handle })
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }
}
