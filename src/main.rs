//! `m2c`: opens the annotation window, or runs a headless subcommand (`m2c --help`).

use std::process::ExitCode;

use clap::Parser as _;
use m2c::cli::{self, Cli};

fn main() -> ExitCode {
    init_tracing();
    let args = Cli::parse();
    let result = match &args.command {
        Some(command) => cli::run(&args, command),
        None => {
            if args.threads.is_some() {
                tracing::warn!(
                    "--threads (M2C_THREADS) applies to the subcommands; the window's CPU \
                     threads are set in Settings"
                );
            }
            m2c::app::run(m2c::app::LaunchOptions {
                paths: args.paths.clone(),
                weights: args.weights.clone(),
                device: args.device,
            })
            .map(|()| 0)
            .map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // wgpu_hal reports every graphics API it probes and cannot open (EGL without a GPU,
        // a Vulkan loader without drivers) as an error; those are expected during adapter
        // discovery and `m2c doctor` explains the outcome, so they stay quiet unless asked for
        // with RUST_LOG.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("warn,m2c=info,wgpu_hal=off,wgpu_core=error")
        });
    // Spans (one per engine job and per model stage, at debug level) log their time when they
    // close: `RUST_LOG=m2c=debug m2c …` shows where a job's time went.
    tracing_subscriber::fmt()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
