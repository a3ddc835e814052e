//! Leader election flags and the controller's side of it: with `--leader-elect`, only the replica
//! holding the Lease acts; the others wait to take over (lease election itself lives in
//! `portico_runtime::leader`, with client-go's semantics).

use std::time::Duration;

use clap::{ArgAction, Args};
use portico_runtime::leader::{LeaderElectionConfig, LeaderElector, LeaderHandle};
use tokio::sync::watch;

#[derive(Args, Clone, Debug)]
pub struct LeaderArgs {
    /// Elect a leader among the replicas through a coordination.k8s.io Lease; only the leader
    /// acts. Accepts --leader-elect, --leader-elect=true or --leader-elect=false.
    #[arg(
        long,
        env = "PORTICO_LEADER_ELECT",
        action = ArgAction::Set,
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true"
    )]
    pub leader_elect: bool,

    /// How long a Lease holds without renewal before another replica may take it.
    #[arg(long, env = "PORTICO_LEADER_ELECT_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub leader_elect_lease_duration: Duration,

    /// How long the leader keeps trying to renew before it stops acting; shorter than the
    /// lease duration.
    #[arg(long, env = "PORTICO_LEADER_ELECT_RENEW_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub leader_elect_renew_deadline: Duration,

    /// How often replicas try to acquire the Lease and the leader renews it.
    #[arg(long, env = "PORTICO_LEADER_ELECT_RETRY_PERIOD", default_value = "2s", value_parser = humantime::parse_duration)]
    pub leader_elect_retry_period: Duration,

    /// Namespace of the Lease (the controller's own namespace in a cluster).
    #[arg(long, env = "POD_NAMESPACE", default_value = "portico-system")]
    pub leader_elect_namespace: String,

    /// Name of the Lease.
    #[arg(
        long,
        env = "PORTICO_LEADER_ELECT_LEASE_NAME",
        default_value = "portico-controller"
    )]
    pub leader_elect_lease_name: String,

    /// This replica's identity in the Lease (the Pod's name in a cluster; the host name and
    /// process id otherwise).
    #[arg(long, env = "POD_NAME")]
    pub leader_elect_identity: Option<String>,
}

impl LeaderArgs {
    /// The timing, checked as client-go checks it: lease duration > renew deadline > retry
    /// period, so a leader that cannot renew stops before another may start.
    pub fn config(&self) -> Result<LeaderElectionConfig, String> {
        if self.leader_elect_renew_deadline >= self.leader_elect_lease_duration {
            return Err(format!(
                "--leader-elect-renew-deadline ({}) must be shorter than --leader-elect-lease-duration ({})",
                humantime::format_duration(self.leader_elect_renew_deadline),
                humantime::format_duration(self.leader_elect_lease_duration)
            ));
        }
        if self.leader_elect_retry_period.is_zero()
            || self.leader_elect_retry_period >= self.leader_elect_renew_deadline
        {
            return Err(format!(
                "--leader-elect-retry-period ({}) must be above zero and shorter than --leader-elect-renew-deadline ({})",
                humantime::format_duration(self.leader_elect_retry_period),
                humantime::format_duration(self.leader_elect_renew_deadline)
            ));
        }
        Ok(LeaderElectionConfig {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
        })
    }

    pub fn identity(&self) -> String {
        self.leader_elect_identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "portico-controller".to_owned());
            format!("{host}_{}", std::process::id())
        })
    }

    /// Starts campaigning (or, without `--leader-elect`, leads at once).
    pub fn campaign(&self, client: kube::Client, config: LeaderElectionConfig) -> Campaign {
        if !self.leader_elect {
            let (always_leading, leading) = watch::channel(true);
            return Campaign {
                leading,
                handle: None,
                _always_leading: Some(always_leading),
            };
        }
        let handle = LeaderElector::new(
            client,
            &self.leader_elect_namespace,
            &self.leader_elect_lease_name,
            &self.identity(),
            config,
        )
        .spawn();
        Campaign {
            leading: handle.leading(),
            handle: Some(handle),
            _always_leading: None,
        }
    }
}

/// A running campaign: `leading` says whether this replica leads now.
pub struct Campaign {
    pub leading: watch::Receiver<bool>,
    handle: Option<LeaderHandle>,
    /// Without leader election nothing ever changes; the sender lives as long as the campaign
    /// so that `leading.changed()` waits instead of reporting a closed channel.
    _always_leading: Option<watch::Sender<bool>>,
}

impl Campaign {
    /// Stops campaigning and gives the Lease up if held, so a standby takes over at once
    /// instead of after the lease duration.
    pub async fn stop(self) {
        if let Some(handle) = self.handle {
            handle.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        leader: LeaderArgs,
    }

    fn parse(args: &[&str]) -> LeaderArgs {
        Flags::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .unwrap()
            .leader
    }

    #[test]
    fn leader_elect_takes_the_forms_kubernetes_components_take() {
        assert!(!parse(&[]).leader_elect);
        assert!(parse(&["--leader-elect"]).leader_elect);
        assert!(parse(&["--leader-elect=true"]).leader_elect);
        assert!(!parse(&["--leader-elect=false"]).leader_elect);
    }

    #[test]
    fn timing_is_checked_naming_the_flags() {
        assert!(parse(&[]).config().is_ok());
        let error = parse(&["--leader-elect-renew-deadline=20s"])
            .config()
            .unwrap_err();
        assert!(
            error.contains("--leader-elect-renew-deadline (20s)"),
            "{error}"
        );
        let error = parse(&["--leader-elect-retry-period=10s"])
            .config()
            .unwrap_err();
        assert!(error.contains("--leader-elect-retry-period"), "{error}");
        assert_eq!(
            parse(&["--leader-elect-lease-duration=1m30s"]).leader_elect_lease_duration,
            Duration::from_secs(90)
        );
    }
}
