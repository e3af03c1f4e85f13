//! The `ocidist` command.

use clap::Parser;
use ocidist::cli::Cli;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
    if cli.parsed {
        println!("{cli:#?}");
        return;
    }
    // -v shows every registry call (oci-debug's events), -vv everything.
    let level = match cli.verbose {
        // Failures are reported once, as the one-line reason; library
        // warnings (retries) show from -v on.
        0 => "error",
        1 => "warn,oci_debug=debug",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ocidist: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = ocidist::commands::run(cli) => r,
            _ = tokio::signal::ctrl_c() => Err(oci_core::Error::new(oci_core::ErrorCode::Unknown, "interrupted")),
        }
    });
    if let Err(e) = result {
        eprintln!("ocidist: {}", one_line(&e.to_string()));
        std::process::exit(1);
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
