use std::process::ExitCode;

use portico_agent::Args;

fn main() -> ExitCode {
    // Before the runtime starts its worker threads: a thread's first allocation picks its arena.
    portico_agent::memory::tune_allocator();
    let args: Args = portico_runtime::parse_args("0.0.0.0:9473");
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(portico_agent::run(args)),
        Err(e) => {
            eprintln!("portico-agent: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
