//! Logging flags and the tracing subscriber they select.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "PORTICO_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Which logs to keep, as a tracing filter: a level (`info`, `debug`) or per-module
    /// directives such as `info,portico_agent=debug`.
    #[arg(long, env = "PORTICO_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, thiserror::Error)]
#[error("--log-level {value:?} is not a valid filter: {source}")]
pub struct LogFilterError {
    value: String,
    source: tracing_subscriber::filter::ParseError,
}

impl LogArgs {
    /// Installs the global subscriber; logs go to standard error so standard output stays data.
    pub fn init(&self) -> Result<(), LogFilterError> {
        let filter = EnvFilter::try_new(&self.log_level).map_err(|source| LogFilterError {
            value: self.log_level.clone(),
            source,
        })?;
        // Colours only on a terminal: logs written to a file (the lab's state dir, a pod's log)
        // stay plain text that grep and people can read.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        // A second init (tests that run `run()` twice in one process) keeps the first one.
        let _ = match self.log_format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
        Ok(())
    }
}
