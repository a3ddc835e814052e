use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    portico_lab::cli::run(portico_lab::cli::Args::parse()).await
}
