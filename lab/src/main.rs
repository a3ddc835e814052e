//! `portico-lab`: see `portico_lab::cli`.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    portico_lab::cli::run(portico_lab::cli::Args::parse()).await
}
