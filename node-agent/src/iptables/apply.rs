//! The thin I/O layer: runs iptables-restore, iptables-save and iptables (or their ip6tables,
//! `-nft` and `-legacy` variants), optionally inside a network namespace for tests.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::names;
use super::render::BUILTIN_JUMPS;
use super::ruleset::{ChainNames, ExtraLines, Table};
use crate::dataplane::IpFamily;

/// Which kernel interface the iptables tools drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// iptables-nft: rules are nf_tables rules in tables named like the iptables ones.
    Nft,
    /// iptables-legacy: the x_tables blob interface.
    Legacy,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Legacy => "legacy",
        }
    }
}

/// Why an iptables command failed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error("iptables_spawn: could not run {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("iptables_failed: {binary} {args} exited with {status}: {stderr}")]
    Failed {
        binary: String,
        args: String,
        status: String,
        stderr: String,
    },
    #[error("iptables_backend: cannot tell the backend from {version:?}")]
    UnknownBackend { version: String },
}

impl IptablesError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            IptablesError::Spawn { .. } => "iptables_spawn",
            IptablesError::Failed { .. } => "iptables_failed",
            IptablesError::UnknownBackend { .. } => "iptables_backend",
        }
    }
}

/// Tells the backend from `iptables -V` ("iptables v1.8.9 (nf_tables)" or "(legacy)").
pub fn parse_backend(version: &str) -> Option<Backend> {
    if version.contains("nf_tables") {
        Some(Backend::Nft)
    } else if version.contains("legacy") {
        Some(Backend::Legacy)
    } else {
        None
    }
}

/// Runs `iptables -V` and reports the backend the plain `iptables` tools use.
pub async fn detect_backend(netns: Option<&str>) -> Result<Backend, IptablesError> {
    let tools = Iptables {
        family: IpFamily::V4,
        backend: None,
        netns: netns.map(String::from),
    };
    let version = tools.run("iptables", &["-V"], None).await?;
    parse_backend(&version).ok_or_else(|| IptablesError::UnknownBackend {
        version: version.trim().to_string(),
    })
}

/// The iptables tools of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iptables {
    pub family: IpFamily,
    /// `None` runs the plain tools (`iptables-restore`), which use the system's default.
    pub backend: Option<Backend>,
    /// Runs every command through `ip netns exec <netns>`.
    pub netns: Option<String>,
}

impl Iptables {
    pub fn new(family: IpFamily) -> Self {
        Iptables {
            family,
            backend: None,
            netns: None,
        }
    }

    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    pub fn in_netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// The binary name, e.g. `ip6tables-nft-restore` for `suffix` "-restore".
    pub fn binary(&self, suffix: &str) -> String {
        let base = match self.family {
            IpFamily::V4 => "iptables",
            IpFamily::V6 => "ip6tables",
        };
        let backend = self
            .backend
            .map(|b| format!("-{}", b.as_str()))
            .unwrap_or_default();
        format!("{base}{backend}{suffix}")
    }

    async fn run(
        &self,
        binary: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, IptablesError> {
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, binary]);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawn_error = |source| IptablesError::Spawn {
            binary: binary.to_string(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let mut input = child.stdin.take();
        let write = async {
            if let (Some(pipe), Some(text)) = (input.as_mut(), stdin) {
                // A failed write shows up as the tool's own error on its stderr.
                let _ = pipe.write_all(text.as_bytes()).await;
            }
            drop(input);
        };
        let (_, output) = tokio::join!(write, child.wait_with_output());
        let output = output.map_err(spawn_error)?;
        if !output.status.success() {
            return Err(IptablesError::Failed {
                binary: binary.to_string(),
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Feeds `text` to `iptables-restore --noflush`: only the chains it declares are flushed.
    pub async fn restore(&self, text: &str) -> Result<(), IptablesError> {
        if text.is_empty() {
            return Ok(());
        }
        self.run(&self.binary("-restore"), &["--noflush"], Some(text))
            .await
            .map(drop)
    }

    /// Like `restore`, for input that declares every Portico chain (a full sync): iptables-nft
    /// 1.8.x keeps the chains a batch names in a sorted linked list, inserting each name of
    /// each line (the chain and its jump target) by a walk from the head, which at 10,000
    /// Services is 25 s of `strcmp` (36 s wall; 2.8 s without it). A command naming no
    /// chain makes it fetch the whole table instead and stop keeping the list: `-S` lists the
    /// table (harmlessly: its output is dropped) and is that command. iptables-legacy has no
    /// such list, so it gets the input unchanged.
    pub async fn restore_all_chains(&self, text: &str) -> Result<(), IptablesError> {
        if self.backend == Some(Backend::Legacy) {
            return self.restore(text).await;
        }
        self.restore(&with_whole_table_cache(text)).await
    }

    /// `iptables-save -t <table>`.
    pub async fn save(&self, table: Table) -> Result<String, IptablesError> {
        self.run(&self.binary("-save"), &["-t", table.as_str()], None)
            .await
    }

    /// One `iptables-save` of every table: the PORTICO- chains that exist (e.g. left by an
    /// earlier run) and `-I` lines for the jumps from built-in chains that are missing.
    pub async fn inspect(&self) -> Result<(ChainNames, ExtraLines), IptablesError> {
        let dump = self.run(&self.binary("-save"), &[], None).await?;
        Ok(inspect_dump(&dump))
    }

    /// Whether the kernel loads the hairpin rule's xt_bpf match (`CONFIG_NETFILTER_XT_MATCH_BPF`),
    /// tried in a scratch chain of the raw table, which Portico otherwise leaves alone and which
    /// is small, so the try costs little even on iptables-legacy's whole-table writes.
    pub async fn supports_hairpin_match(&self) -> bool {
        const PROBE: &str = "PORTICO-PROBE-BPF";
        let added = self
            .restore(&format!(
                "*raw\n:{PROBE} - [0:0]\n-A {PROBE} {} -j RETURN\nCOMMIT\n",
                super::render::hairpin_match(self.family)
            ))
            .await;
        // Declaring the chain again flushes it, so it can be deleted in the same restore.
        if let Err(error) = self
            .restore(&format!("*raw\n:{PROBE} - [0:0]\n-X {PROBE}\nCOMMIT\n"))
            .await
        {
            tracing::debug!(%error, "could not delete the xt_bpf probe chain");
        }
        match added {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "the xt_bpf probe failed");
                false
            }
        }
    }

    /// `-I` lines for the missing jumps, from listings of the built-in chains alone (with
    /// iptables-nft, cheaper than a whole dump once the tables are large).
    pub async fn missing_jumps(&self) -> Result<ExtraLines, IptablesError> {
        if self.backend == Some(Backend::Legacy) {
            // iptables-legacy fetches a table's whole blob for every listing: one dump of all
            // tables costs less than six listings.
            return Ok(self.inspect().await?.1);
        }
        let mut listing = String::new();
        let mut listed: Vec<(Table, &str)> = Vec::new();
        for jump in BUILTIN_JUMPS {
            if !listed.contains(&(jump.table, jump.chain)) {
                listed.push((jump.table, jump.chain));
                let args = ["-w", "-t", jump.table.as_str(), "-S", jump.chain];
                listing.push_str(&format!("*{}\n", jump.table.as_str()));
                listing.push_str(&self.run(&self.binary(""), &args, None).await?);
                listing.push_str("COMMIT\n");
            }
        }
        Ok(inspect_dump(&listing).1)
    }

    /// `iptables -S <chain>` of one table, or `None` when the chain does not exist (any failure
    /// of the tool itself; a spawn failure is an error).
    pub async fn list_chain(
        &self,
        table: Table,
        chain: &str,
    ) -> Result<Option<String>, IptablesError> {
        let args = ["-w", "-t", table.as_str(), "-S", chain];
        match self.run(&self.binary(""), &args, None).await {
            Ok(listing) => Ok(Some(listing)),
            Err(IptablesError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `iptables -S` of several chains of one table in one process: `-S <chain>` lines fed to
    /// `iptables-restore`, which prints each listing and changes nothing. `None` when the run
    /// fails, which a chain that does not exist makes it do.
    pub async fn list_chains(
        &self,
        table: Table,
        chains: &[&str],
    ) -> Result<Option<String>, IptablesError> {
        let mut text = format!("*{}\n", table.as_str());
        for chain in chains {
            text.push_str(&format!("-S {chain}\n"));
        }
        text.push_str("COMMIT\n");
        match self
            .run(&self.binary("-restore"), &["--noflush"], Some(&text))
            .await
        {
            Ok(listing) => Ok(Some(listing)),
            Err(IptablesError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes every PORTICO- chain and every rule elsewhere that jumps to one, in one restore
    /// per table; other rules are left alone.
    pub async fn cleanup(&self) -> Result<(), IptablesError> {
        for table in Table::ALL {
            let dump = self.save(table).await?;
            let text = cleanup_restore(table, &dump);
            self.restore(&text).await?;
        }
        Ok(())
    }
}

/// `text` with a `-S` after each table header (see `Iptables::restore_all_chains`).
pub fn with_whole_table_cache(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with('*') {
            if !line.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("-S\n");
        }
    }
    out
}

/// Splits an iptables-save dump into its tables' lines.
fn table_sections(dump: &str) -> Vec<(Table, Vec<&str>)> {
    let mut sections: Vec<(Table, Vec<&str>)> = Vec::new();
    for line in dump.lines() {
        if let Some(name) = line.strip_prefix('*') {
            if let Some(table) = Table::ALL
                .into_iter()
                .find(|table| table.as_str() == name.trim())
            {
                sections.push((table, Vec::new()));
            }
        } else if let Some((_, lines)) = sections.last_mut() {
            lines.push(line);
        }
    }
    sections
}

/// The PORTICO- chains of a dump, `-I` lines for the missing jumps from built-in chains
/// (inserted at the top in reverse, so they end up in `BUILTIN_JUMPS` order), and `-D` lines
/// for jumps to PORTICO- chains that are not wanted as they stand (those of an older version,
/// e.g. without comments), so an upgrade leaves one jump of each, not two.
pub fn inspect_dump(dump: &str) -> (ChainNames, ExtraLines) {
    let mut chains = ChainNames::default();
    let mut present: Vec<(Table, &str)> = Vec::new();
    for (table, lines) in table_sections(dump) {
        for line in lines {
            if let Some(name) = line
                .strip_prefix(':')
                .and_then(|rest| rest.split_whitespace().next())
            {
                // The ledger describes the chains; it is not one of them.
                if name.starts_with(names::PREFIX) && name != super::ledger::CHAIN {
                    chains.of_mut(table).insert(name.to_string());
                }
            } else if line.starts_with("-A ") {
                present.push((table, line.trim()));
            }
        }
    }
    let mut extra = ExtraLines::default();
    let wanted: Vec<(Table, String)> = BUILTIN_JUMPS
        .iter()
        .map(|jump| (jump.table, format!("-A {} {}", jump.chain, jump.spec())))
        .collect();
    for (table, line) in &present {
        let builtin = !line[3..].starts_with(names::PREFIX);
        let to_portico = line.contains(&format!(" -j {}", names::PREFIX));
        if builtin && to_portico && !wanted.contains(&(*table, line.to_string())) {
            let delete = format!("-D {}", &line[3..]);
            match table {
                Table::Nat => extra.nat.push(delete),
                Table::Filter => extra.filter.push(delete),
            }
        }
    }
    for jump in BUILTIN_JUMPS.iter().rev() {
        let wanted = format!("-A {} {}", jump.chain, jump.spec());
        if !present
            .iter()
            .any(|(table, line)| *table == jump.table && *line == wanted)
        {
            let line = format!("-I {} {}", jump.chain, jump.spec());
            match jump.table {
                Table::Nat => extra.nat.push(line),
                Table::Filter => extra.filter.push(line),
            }
        }
    }
    (chains, extra)
}

fn portico_chains(dump: &str) -> impl Iterator<Item = String> + '_ {
    dump.lines()
        .filter_map(|line| line.strip_prefix(':'))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(names::PREFIX))
        .map(String::from)
}

/// The restore input that deletes Portico's chains from one table given its iptables-save dump;
/// empty when there is nothing of Portico's.
pub fn cleanup_restore(table: Table, dump: &str) -> String {
    let chains: Vec<String> = portico_chains(dump).collect();
    let jump = format!(" -j {}", names::PREFIX);
    let foreign_jumps: Vec<&str> = dump
        .lines()
        .filter(|line| {
            line.starts_with("-A ") && !line.starts_with(&format!("-A {}", names::PREFIX))
        })
        .filter(|line| line.contains(&jump) || line.contains(&format!(" -g {}", names::PREFIX)))
        .collect();
    if chains.is_empty() && foreign_jumps.is_empty() {
        return String::new();
    }
    let mut text = format!("*{}\n", table.as_str());
    for chain in &chains {
        text.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for line in foreign_jumps {
        text.push_str(&format!("-D {}\n", &line[3..]));
    }
    for chain in &chains {
        text.push_str(&format!("-X {chain}\n"));
    }
    text.push_str("COMMIT\n");
    text
}

#[cfg(test)]
mod tests;
