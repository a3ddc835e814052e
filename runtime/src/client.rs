//! Where the Kubernetes client comes from: `--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`, or
//! the Pod's service account, in that order, as kubectl and kube-rs look for them.

use std::path::PathBuf;

use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Args, Clone, Debug, Default)]
pub struct ClientArgs {
    /// Path to a kubeconfig file. Without it: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster service account.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use instead of its current-context.
    #[arg(long, env = "PORTICO_KUBE_CONTEXT")]
    pub context: Option<String>,
}

/// Why no client could be built. Each message is one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no Kubernetes configuration found: pass --kubeconfig or set KUBECONFIG, create \
         ~/.kube/config, or run inside a cluster ({source})"
    )]
    NotFound {
        source: kube::config::InferConfigError,
    },
    #[error("cannot read kubeconfig {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("kubeconfig {path} is unusable: {source}")]
    Unusable {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("cannot build a Kubernetes client: {source}")]
    Client { source: kube::Error },
}

impl ClientError {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ClientError::NotFound { .. } => "not_found",
            ClientError::Unreadable { .. } => "unreadable",
            ClientError::Unusable { .. } => "unusable",
            ClientError::Client { .. } => "client",
        }
    }
}

impl ClientArgs {
    /// Builds the client configuration; nothing is sent to the API server yet.
    pub async fn config(&self) -> Result<kube::Config, ClientError> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        match &self.kubeconfig {
            // An empty KUBECONFIG means "unset", as in kubectl.
            Some(path) if !path.as_os_str().is_empty() => {
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|source| ClientError::Unreadable {
                        path: path.clone(),
                        source,
                    })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|source| ClientError::Unusable {
                        path: path.clone(),
                        source,
                    })
            }
            _ if self.context.is_some() => {
                let kubeconfig = Kubeconfig::read().map_err(|source| ClientError::Unreadable {
                    path: PathBuf::from("~/.kube/config"),
                    source,
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|source| ClientError::Unusable {
                        path: PathBuf::from("~/.kube/config"),
                        source,
                    })
            }
            _ => kube::Config::infer()
                .await
                .map_err(|source| ClientError::NotFound { source }),
        }
    }

    pub async fn client(&self) -> Result<kube::Client, ClientError> {
        let config = self.config().await?;
        kube::Client::try_from(config).map_err(|source| ClientError::Client { source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_kubeconfig_file_is_named_in_the_error() {
        let args = ClientArgs {
            kubeconfig: Some(PathBuf::from("/nonexistent/portico/kubeconfig")),
            context: None,
        };
        let message = args.config().await.unwrap_err().to_string();
        assert!(
            message.contains("/nonexistent/portico/kubeconfig"),
            "{message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }

    #[tokio::test]
    async fn an_unknown_context_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n\
             users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u}\n\
             current-context: ctx\n",
        )
        .unwrap();
        let good = ClientArgs {
            kubeconfig: Some(path.clone()),
            context: None,
        };
        assert_eq!(
            good.config().await.unwrap().cluster_url.to_string(),
            "https://127.0.0.1:6443/"
        );
        let bad = ClientArgs {
            kubeconfig: Some(path),
            context: Some("elsewhere".into()),
        };
        let message = bad.config().await.unwrap_err().to_string();
        assert!(message.contains("elsewhere"), "{message}");
    }
}
