//! The GCP lab cloud's reads of the Compute API (the fake Compute server) and its health
//! report, over plain HTTP/1.1 on the lab network (one short `Connection: close` exchange each;
//! the fake answers with `Content-Length`).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::GcpCloudError;
use super::model::{Snapshot, snapshot};
use crate::netns::probe::parse_http_reply;

const TIMEOUT: Duration = Duration::from_secs(5);

pub struct ComputeClient {
    addr: SocketAddr,
    project: String,
    region: String,
}

impl ComputeClient {
    /// `url` is `http://host:port` (the `--compute-url` flag).
    pub fn new(url: &str, project: &str, region: &str) -> Result<ComputeClient, GcpCloudError> {
        let addr = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .and_then(|host_port| host_port.parse().ok())
            .ok_or_else(|| GcpCloudError::Flag {
                flag: "--compute-url",
                message: format!("{url:?} is not http://IP:PORT"),
            })?;
        Ok(ComputeClient {
            addr,
            project: project.to_owned(),
            region: region.to_owned(),
        })
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GcpCloudError> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let io = async {
            let mut stream = TcpStream::connect(self.addr).await?;
            stream.write_all(request.as_bytes()).await?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await?;
            Ok::<_, std::io::Error>(raw)
        };
        let raw = tokio::time::timeout(TIMEOUT, io)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 5 s"))
            .and_then(|r| r)
            .map_err(|source| GcpCloudError::Http {
                what: format!("{method} {path}"),
                source,
            })?;
        let reply = parse_http_reply(&String::from_utf8_lossy(&raw)).ok_or_else(|| {
            GcpCloudError::Answer {
                what: format!("{method} {path}"),
                message: "not an HTTP response".into(),
            }
        })?;
        if reply.status != 200 {
            return Err(GcpCloudError::Answer {
                what: format!("{method} {path}"),
                message: format!("HTTP {}: {}", reply.status, reply.body),
            });
        }
        serde_json::from_str(&reply.body).map_err(|e| GcpCloudError::Answer {
            what: format!("{method} {path}"),
            message: format!("not JSON: {e}"),
        })
    }

    async fn items(&self, scope: &str, collection: &str) -> Result<Vec<Value>, GcpCloudError> {
        let path = format!("/compute/v1/projects/{}/{scope}/{collection}", self.project);
        let list = self.exchange("GET", &path, None).await?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// Forwarding rules, target pools and HTTP health checks, read in that order.
    pub async fn snapshot(&self) -> Result<Snapshot, GcpCloudError> {
        let region = format!("regions/{}", self.region);
        let rules = self.items(&region, "forwardingRules").await?;
        let pools = self.items(&region, "targetPools").await?;
        let checks = self.items("global", "httpHealthChecks").await?;
        Ok(snapshot(&rules, &pools, &checks))
    }

    /// `targetPools.getHealth` for one instance URL: the first `healthState`, or why none.
    pub async fn pool_health(&self, pool: &str, instance: &str) -> Result<String, GcpCloudError> {
        let path = format!(
            "/compute/v1/projects/{}/regions/{}/targetPools/{pool}/getHealth",
            self.project, self.region
        );
        let answer = self
            .exchange(
                "POST",
                &path,
                Some(&serde_json::json!({ "instance": instance })),
            )
            .await?;
        Ok(answer["healthStatus"][0]["healthState"]
            .as_str()
            .unwrap_or("(no forwarding rule)")
            .to_owned())
    }

    /// Every forwarding rule's pool members as `getHealth` answers: (rule IP, instance name,
    /// `HEALTHY`/`UNHEALTHY`).
    pub async fn members(
        &self,
    ) -> Result<Vec<(std::net::Ipv4Addr, String, String)>, GcpCloudError> {
        let snapshot = self.snapshot().await?;
        let mut members = Vec::new();
        for rule in &snapshot.rules {
            let Some(pool) = snapshot.pools.get(&rule.pool) else {
                continue;
            };
            for instance in &pool.instances {
                let state = self.pool_health(&pool.name, instance).await?;
                members.push((rule.ip, super::model::url_name(instance).to_owned(), state));
            }
        }
        Ok(members)
    }

    /// Tells the fake what the lab cloud measured (instance URL → HEALTHY/UNHEALTHY), so
    /// `targetPools.getHealth` answers the same.
    pub async fn report_health(&self, pool: &str, members: &Value) -> Result<(), GcpCloudError> {
        self.exchange("PUT", &format!("/lab/health/{pool}"), Some(members))
            .await
            .map(drop)
    }
}
