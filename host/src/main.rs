//! `townes`: the TownesDev Bot Platform host.

mod cli;

fn main() -> std::process::ExitCode {
    // `.env` is read before the flags (clap falls back to the environment),
    // and before the runtime starts its threads: changing the environment
    // while other threads may read it is undefined behaviour.
    if let Err(error) = cli::load_dotenv() {
        eprintln!("error: {error:#}");
        return std::process::ExitCode::FAILURE;
    }
    let args = cli::parse();
    cli::init_tracing(args.verbose, args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
