use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    onair::runtime::memory::configure_allocator();
    onair::runtime::telemetry::init();
    onair::cli::Cli::parse().run().await
}
