use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    onair::telemetry::init();
    onair::cli::Cli::parse().run().await
}
