use std::process::ExitCode;

use portico_controller::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = portico_runtime::parse_args("0.0.0.0:9472");
    portico_controller::run(args).await
}
