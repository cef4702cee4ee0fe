//! `tributary`: the command-line entry point. It parses arguments, wires the libraries
//! together, and turns errors into a one-line message and an exit code.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tributary_server::{Server, ServerConfig, TlsSource};
use tributary_store::{Durability, Store, StoreOptions};

/// Tributary: a change-feed document database that speaks the Cosmos DB NoSQL API.
#[derive(Parser)]
#[command(name = "tributary", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Cosmos DB NoSQL REST API on the embedded store.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRIBUTARY_ADDR", default_value = "127.0.0.1")]
    addr: IpAddr,
    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "TRIBUTARY_PORT", default_value_t = 8081)]
    port: u16,
    /// Account master key (base64). Defaults to the Cosmos DB emulator's well-known key.
    #[arg(long, env = "TRIBUTARY_KEY", default_value = tributary_wire::auth::EMULATOR_KEY, hide_default_value = true)]
    key: String,
    /// Directory of the store (and of the generated TLS certificate).
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long, env = "TRIBUTARY_HTTP")]
    http: bool,
    /// TLS certificate chain (PEM) to use instead of a generated self-signed one.
    #[arg(long, env = "TRIBUTARY_CERT", requires = "cert_key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, env = "TRIBUTARY_CERT_KEY", requires = "cert")]
    cert_key: Option<PathBuf>,
    /// When writes are acknowledged: after fsync (default), or once handed to the OS
    /// (relaxed: survives a crashed process, not a power loss; for tests).
    #[arg(long, env = "TRIBUTARY_DURABILITY", value_enum, default_value_t = DurabilityArg::Fsync)]
    durability: DurabilityArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Fsync,
    Relaxed,
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("tributary");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/tributary"),
        None => PathBuf::from("tributary-data"),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
    };
    if let Err(error) = result {
        eprintln!("tributary: {error:#}");
        std::process::exit(1);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let durability = match args.durability {
        DurabilityArg::Fsync => Durability::Fsync,
        DurabilityArg::Relaxed => Durability::Relaxed,
    };
    let store = Store::open(
        &data_dir,
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )
    .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    let store = Arc::new(store);
    let tls = match (args.http, args.cert, args.cert_key) {
        (true, _, _) => None,
        (false, Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
        (false, _, _) => Some(TlsSource::SelfSigned),
    };
    let config = ServerConfig {
        addr: args.addr,
        port: args.port,
        key: args.key.clone(),
        tls,
        data_dir: data_dir.clone(),
        ..ServerConfig::default()
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let server = Server::bind(config, Arc::clone(&store)).await?;
        let endpoint = server.endpoint().to_owned();
        println!(
            "Tributary {} serves the Cosmos DB NoSQL API",
            env!("CARGO_PKG_VERSION")
        );
        println!("endpoint: {endpoint}");
        println!("key: {}", args.key);
        println!(
            "connection string: AccountEndpoint={endpoint};AccountKey={};",
            args.key
        );
        println!("data dir: {}", data_dir.display());
        println!("ready in {} ms", started.elapsed().as_millis());
        server.run(shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    store.close();
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
