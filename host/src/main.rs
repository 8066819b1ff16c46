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
    // Before the async runtime, as Sentry asks: its panic hook and transport
    // thread must exist before any task can fail.
    let dsn = std::env::var(townes::error_reporting::SENTRY_DSN).ok();
    let reporting = match townes::error_reporting::init(dsn.as_deref()) {
        Ok(guard) => guard,
        // `check-config` lists it with the other problems.
        Err(_) if cli::checks_config(&args) => None,
        Err(error) => {
            eprintln!("error: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    cli::init_tracing(args.verbose, args.log_format, reporting.is_some());
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
            if reporting.is_some() {
                // Sent before the guard flushes on return.
                sentry::capture_message(&format!("{error:#}"), sentry::Level::Error);
            }
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
