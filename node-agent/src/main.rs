use std::process::ExitCode;

use portico_agent::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = portico_runtime::parse_args("0.0.0.0:9473");
    portico_agent::run(args).await
}
