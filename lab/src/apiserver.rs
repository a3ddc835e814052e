//! The lab's Kubernetes API server: in-memory state behind the real REST API, served over
//! HTTPS with a bearer token, so unmodified kube-rs clients and kubectl use it as a cluster.
//!
//! ```text
//!   kubectl / kube-rs ──HTTPS──▶ routes ──▶ cluster (one lock) ──▶ store ──▶ watch fan-out
//!                                  │            ├─ decode + typed: built-in kinds through their
//!                                  │            │   k8s-openapi types (types, unknown fields)
//!                                  │            ├─ pipeline: metadata, status split, generation
//!                                  │            ├─ services, pods, names: defaults, validation
//!                                  │            ├─ crd + schema: custom kinds, prune/default/CEL
//!                                  │            ├─ conversion: events.k8s.io ⇄ core Events
//!                                  │            └─ patch / apply: every PATCH flavour
//!                                  ├─ options: write, list and watch parameters
//!                                  └─ discovery, openapi, table (kubectl's needs)
//! ```
//! `LabApiServer::start` runs it inside the caller's runtime (tests, `portico-lab up`);
//! `portico-lab apiserver` runs it in the foreground.
//!
//! Of kube-controller-manager, two parts run beside it (`cluster/deferred.rs`): the namespace
//! controller (a deleted namespace is Terminating until its contents are gone) and the garbage
//! collector's foreground deletion (the owner waits for its dependents). Not modelled: the
//! background garbage collection of dependents whose owner is gone, the EndpointSlice
//! controller, kubelets. Other gaps: OpenAPI v3 only (no `/openapi/v2`; kubectl uses v3), IPv4
//! Services only, no admission webhooks, no RBAC (one admin token).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ipnet::Ipv4Net;

mod apply;
mod cluster;
mod conversion;
mod crd;
mod discovery;
mod meta;
mod names;
mod openapi;
mod options;
mod patch;
mod pods;
mod protobuf;
mod resources;
mod respond;
mod routes;
mod schema;
mod selector;
mod services;
mod status;
mod store;
mod table;
mod tls;
mod typed;
mod validation;
mod watch;

pub use status::ApiError;
pub use tls::TlsError;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// Addresses to listen on; port 0 picks a free port. The first is the kubeconfig's server.
    pub listen: Vec<SocketAddr>,
    /// Where to write the kubeconfig; None writes it into a directory the handle owns.
    pub kubeconfig: Option<PathBuf>,
    pub service_cidr: Ipv4Net,
    pub node_port_range: RangeInclusive<u16>,
    /// How many changes a watch can resume across before it gets 410 Gone.
    pub watch_history: usize,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            kubeconfig: None,
            service_cidr: "10.96.0.0/16".parse().expect("valid CIDR"),
            node_port_range: 30000..=32767,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("no --listen address given")]
    NoListenAddress,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot write kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build a client for the lab API server: {0}")]
    Client(String),
}

impl ApiServerError {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ApiServerError::NoListenAddress => "no_listen_address",
            ApiServerError::Bind { .. } => "bind",
            ApiServerError::Tls(_) => "tls",
            ApiServerError::Kubeconfig { .. } => "kubeconfig",
            ApiServerError::Client(_) => "client",
        }
    }
}

/// A running server; dropping it stops it.
pub struct LabApiServer {
    urls: Vec<String>,
    kubeconfig_path: PathBuf,
    ca_pem: String,
    token: String,
    handles: Vec<axum_server::Handle<SocketAddr>>,
    _dir: Option<tempfile::TempDir>,
}

/// The URL clients use for a listen address; a wildcard address is reached on loopback.
fn url_of(addr: &SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("https://127.0.0.1:{}", addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("https://[::1]:{}", addr.port()),
        IpAddr::V6(ip) => format!("https://[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("https://{ip}:{}", addr.port()),
    }
}

/// A kubeconfig with one context, `portico-lab`, for `server`.
pub fn render_kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: portico-lab\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         users:\n- name: portico-lab-admin\n  user:\n    token: {token}\n\
         contexts:\n- name: portico-lab\n  context:\n    cluster: portico-lab\n    user: portico-lab-admin\n    namespace: default\n\
         current-context: portico-lab\npreferences: {{}}\n"
    )
}

impl LabApiServer {
    /// Binds every address, issues the certificate, writes the kubeconfig, and serves in the
    /// background of the current Tokio runtime.
    pub async fn start(config: ApiServerConfig) -> Result<LabApiServer, ApiServerError> {
        if config.listen.is_empty() {
            return Err(ApiServerError::NoListenAddress);
        }
        let mut listeners = Vec::new();
        for addr in &config.listen {
            let listener =
                std::net::TcpListener::bind(addr).map_err(|source| ApiServerError::Bind {
                    addr: *addr,
                    source,
                })?;
            listener
                .set_nonblocking(true)
                .map_err(|source| ApiServerError::Bind {
                    addr: *addr,
                    source,
                })?;
            listeners.push(listener);
        }
        let bound: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let certificate = tls::issue(&bound.iter().map(SocketAddr::ip).collect::<Vec<_>>())?;
        let token = meta::random_token();
        let server = Arc::new(routes::Server {
            cluster: cluster::Cluster::new(
                config.service_cidr,
                config.node_port_range.clone(),
                config.watch_history,
            ),
            token: token.clone(),
            bookmark_interval: config.bookmark_interval,
        });
        // kube-controller-manager's part: namespaces and foreground deletions finish after the
        // DELETE was answered. The task ends with the server (it holds only a weak reference).
        let deletions = Arc::downgrade(&server);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(cluster::DEFERRED_DELETION_TICK);
            loop {
                tick.tick().await;
                let Some(server) = deletions.upgrade() else {
                    return;
                };
                server.cluster.finish_deletions();
            }
        });
        let tls_config =
            axum_server::tls_rustls::RustlsConfig::from_config(certificate.config.clone());
        let mut handles = Vec::new();
        for (listener, addr) in listeners.into_iter().zip(&bound) {
            let handle = axum_server::Handle::new();
            let app = routes::router(server.clone());
            let serving = axum_server::from_tcp_rustls(listener, tls_config.clone())
                .map_err(|source| ApiServerError::Bind {
                    addr: *addr,
                    source,
                })?
                .handle(handle.clone());
            let addr = *addr;
            tokio::spawn(async move {
                if let Err(e) = serving.serve(app.into_make_service()).await {
                    tracing::error!(%addr, error = %e, "lab API server stopped");
                }
            });
            handles.push(handle);
        }
        let urls: Vec<String> = bound.iter().map(url_of).collect();
        let (dir, kubeconfig_path) = match &config.kubeconfig {
            Some(path) => (None, path.clone()),
            None => {
                let dir = tempfile::tempdir().map_err(|source| ApiServerError::Kubeconfig {
                    path: PathBuf::from("<tempdir>"),
                    source,
                })?;
                let path = dir.path().join("kubeconfig");
                (Some(dir), path)
            }
        };
        let kubeconfig = render_kubeconfig(&urls[0], &certificate.ca_pem, &token);
        write_private(&kubeconfig_path, &kubeconfig).map_err(|source| {
            ApiServerError::Kubeconfig {
                path: kubeconfig_path.clone(),
                source,
            }
        })?;
        tracing::info!(urls = ?urls, kubeconfig = %kubeconfig_path.display(), "lab API server listening");
        Ok(LabApiServer {
            urls,
            kubeconfig_path,
            ca_pem: certificate.ca_pem,
            token,
            handles,
            _dir: dir,
        })
    }

    /// The URL of the first listen address.
    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The same kubeconfig for another of the listen URLs (node namespaces reach the server on
    /// the bridge address, not on loopback).
    pub fn kubeconfig_for(&self, url: &str) -> String {
        render_kubeconfig(url, &self.ca_pem, &self.token)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kube-rs configuration for this server, read from the kubeconfig as any client would.
    pub async fn kube_config(&self) -> Result<kube::Config, ApiServerError> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig_path)
            .map_err(|e| ApiServerError::Client(e.to_string()))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| ApiServerError::Client(e.to_string()))
    }

    pub async fn client(&self) -> Result<kube::Client, ApiServerError> {
        kube::Client::try_from(self.kube_config().await?)
            .map_err(|e| ApiServerError::Client(e.to_string()))
    }

    /// Stops accepting, lets requests in flight finish for up to a second, and closes watches.
    pub async fn shutdown(self) {
        for handle in &self.handles {
            handle.graceful_shutdown(Some(Duration::from_secs(1)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for LabApiServer {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.shutdown();
        }
    }
}

/// The kubeconfig holds a credential: readable by its owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_reached_on_loopback() {
        assert_eq!(
            url_of(&"0.0.0.0:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            url_of(&"198.18.0.1:6443".parse().unwrap()),
            "https://198.18.0.1:6443"
        );
        assert_eq!(url_of(&"[::]:6443".parse().unwrap()), "https://[::1]:6443");
    }

    #[test]
    fn kubeconfig_carries_the_ca_and_the_token() {
        let text = render_kubeconfig("https://127.0.0.1:6443", "PEM", "secret");
        let parsed: kube::config::Kubeconfig = serde_yaml_ng::from_str(&text).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert!(cluster.certificate_authority_data.is_some());
        assert_eq!(parsed.current_context.as_deref(), Some("portico-lab"));
    }
}
