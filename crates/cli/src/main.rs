//! `tributary`: the command-line entry point. It parses arguments, wires the libraries
//! together, and turns errors into a one-line message and an exit code.

mod explorer_functions;
mod feed_commands;
mod functions_commands;
mod lease_commands;
mod repair_command;
mod source;
mod start_from;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use tributary_server::{AccountKeys, KeysError, Server, ServerConfig, TlsSource};
use tributary_store::{Durability, Store, StoreError, StoreOptions};
use tributary_wire::auth::KeyKind;

/// mimalloc instead of the system allocator: the request path allocates a lot of small,
/// short-lived buffers, where glibc's malloc showed up as ~14% of the server's CPU. Built
/// without transparent huge pages (`no_thp`): with them, every page mimalloc purged and used
/// again was a fresh 2 MiB page for the kernel to zero, ~5 µs of system time per stored item
/// (`docs/decisions/0005-write-path.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bytes in a mebibyte, the unit of `serve --min-free-disk`.
const MIB: u64 = 1024 * 1024;

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
    /// Measure the store or the server on this machine with a fixed workload.
    Bench(BenchArgs),
    /// Read a container's change feed (from the data directory or a server).
    Feed(feed_commands::FeedArgs),
    /// Inspect, reset, release, export or import a change feed processor's leases.
    Leases(lease_commands::LeasesArgs),
    /// How far behind a change feed processor is: pending changes per lease, the age of the
    /// oldest, and stuck leases.
    Estimate(lease_commands::EstimateArgs),
    /// Run change feed functions (Azure Functions Python apps unchanged, or any language
    /// through tributary.toml), or show their status.
    Functions(functions_commands::FunctionsArgs),
    /// List, replay or purge the items functions dead-lettered.
    Deadletter(functions_commands::DeadLetterArgs),
    /// Make account keys for `serve --keys-file`.
    Keys(KeysArgs),
    /// Check a data directory's journal and tables and, with `--apply`, cut the journal at a
    /// damaged batch, keeping the valid prefix and reporting what is dropped.
    Repair(repair_command::RepairArgs),
}

#[derive(clap::Args)]
struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh keys file: four keys of 64 random bytes each, in base64, under the names
    /// `az cosmosdb keys list` uses (primaryMasterKey, secondaryMasterKey,
    /// primaryReadonlyMasterKey, secondaryReadonlyMasterKey).
    Generate,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRIBUTARY_ADDR", default_value = "127.0.0.1")]
    addr: IpAddr,
    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "TRIBUTARY_PORT", default_value_t = 8081)]
    port: u16,
    /// Primary read-write key of the account (base64). Defaults to the Cosmos DB emulator's
    /// well-known key.
    #[arg(long, env = "TRIBUTARY_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Secondary read-write key (base64): clients can move to it while the primary changes.
    #[arg(long, env = "TRIBUTARY_SECONDARY_KEY", hide_env_values = true)]
    secondary_key: Option<String>,
    /// Primary read-only key (base64): requests signed with it may read, query and read the
    /// change feed; anything that writes is answered 403.
    #[arg(long, env = "TRIBUTARY_READONLY_KEY", hide_env_values = true)]
    readonly_key: Option<String>,
    /// Secondary read-only key (base64).
    #[arg(long, env = "TRIBUTARY_SECONDARY_READONLY_KEY", hide_env_values = true)]
    secondary_readonly_key: Option<String>,
    /// The account's keys from a JSON file instead of the key flags, as `az cosmosdb keys
    /// list` (or `tributary keys generate`) prints them: primaryMasterKey, secondaryMasterKey,
    /// primaryReadonlyMasterKey, secondaryReadonlyMasterKey, any of them absent but one
    /// read-write key. SIGHUP re-reads it, so keys rotate without a restart (a file that is
    /// refused leaves the keys as they were); replace it by renaming a new file over it.
    #[arg(long, env = "TRIBUTARY_KEYS_FILE")]
    keys_file: Option<PathBuf>,
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
    /// MiB the store leaves free on the disk holding the data directory: below it, writes
    /// are answered 507 (reads go on) until space is freed, with no restart. 0 turns the
    /// check off.
    #[arg(long, env = "TRIBUTARY_MIN_FREE_DISK", default_value_t = tributary_store::DEFAULT_MIN_FREE_DISK_BYTES / MIB)]
    min_free_disk: u64,
    /// Also run the change feed functions of this app directory in the server's process, on
    /// its store: outputs in this store commit with the lease checkpoint (exactly once).
    #[arg(long)]
    functions: Option<PathBuf>,
    /// Most connections open at once; one past the limit is answered 429 and closed.
    #[arg(long, env = "TRIBUTARY_MAX_CONNECTIONS", default_value_t = tributary_server::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// MiB of request bodies held in memory at once (at least 4, one largest body); a
    /// request past it is answered 429, which the SDKs retry.
    #[arg(long, env = "TRIBUTARY_MAX_REQUEST_MEMORY_MIB", default_value_t = tributary_server::DEFAULT_MAX_REQUEST_MEMORY / (1024 * 1024), value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4..=1024 * 1024))]
    max_request_memory_mib: usize,
    /// MiB of stored items a query that needs its whole input (ORDER BY, aggregates, GROUP
    /// BY, DISTINCT) may hold at once; past it the query is answered 400. An ORDER BY with a
    /// TOP or OFFSET/LIMIT of up to 10,000 rows holds only its candidate documents.
    #[arg(long, env = "TRIBUTARY_MAX_QUERY_INPUT_MIB", default_value_t = tributary_server::DEFAULT_MAX_QUERY_INPUT / (1024 * 1024), value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024 * 1024))]
    max_query_input_mib: usize,
    /// Seconds a connection may take to send a request's headers; a connection idle this
    /// long is closed too (HTTP/2 gets a GOAWAY), never cutting a request in progress.
    #[arg(long, env = "TRIBUTARY_HEADER_READ_TIMEOUT", default_value_t = tributary_server::DEFAULT_HEADER_READ_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout: u64,
    /// Seconds a request may take from its headers to its answer (body upload included);
    /// past it the answer is 408. Long-poll feed reads wait at most half of it.
    #[arg(long, env = "TRIBUTARY_REQUEST_TIMEOUT", default_value_t = tributary_server::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Fsync,
    Relaxed,
}

impl DurabilityArg {
    fn durability(self) -> Durability {
        match self {
            DurabilityArg::Fsync => Durability::Fsync,
            DurabilityArg::Relaxed => Durability::Relaxed,
        }
    }
}

#[derive(clap::Args)]
struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Subcommand)]
enum BenchTarget {
    /// The embedded store alone: batched and concurrent ingest, feed catch-up, and
    /// commit-to-reader latency, on a fresh temporary store.
    Store(StoreBenchArgs),
    /// The REST API over loopback HTTP/1.1: upserts, point reads and a change feed
    /// catch-up against an in-process server on a fresh temporary store.
    Server(ServerBenchArgs),
    /// SQL queries over the REST API against a container filled through the store: an
    /// equality filter (100 matches), a range with ORDER BY and TOP 100, one partition key, a
    /// GROUP BY aggregate, a full scan, and paging through 100,000 results; latency of each
    /// whole query (every page) and peak memory.
    Query(QueryBenchArgs),
    /// Many keep-alive connections sending a fixed mix for minutes (point reads 50 %, upserts
    /// 25 %, single-partition queries 10 %, cross-partition queries 5 %, change feed pages
    /// 10 %): latency per kind, 429s apart from errors, memory and open files. Exits non-zero
    /// if any request failed with anything but a 429.
    Soak(SoakBenchArgs),
    /// The change feed processor: catch-up rate and write-to-handler latency on the
    /// embedded store and over loopback HTTP, then two host processes through a SIGKILL and
    /// a SIGTERM.
    Processor(ProcessorBenchArgs),
    /// One processor host of `bench processor`'s failover phase (run by it, not by hand).
    #[command(hide = true)]
    ProcessorHost(ProcessorHostArgs),
    /// The functions host: catch-up rate and write-to-invocation latency through a Rust
    /// handler, a JSON-lines worker process (python3) and the Python worker (a Python with
    /// azure-functions, from TRIBUTARY_PYTHON; skipped without one).
    Functions(FunctionsBenchArgs),
}

#[derive(clap::Args)]
struct FunctionsBenchArgs {
    /// Documents written before the hosts start, to catch up on (default 100000; 5000 with
    /// --quick).
    #[arg(long)]
    items: Option<u64>,
    /// Documents written one at a time while each host runs (default 2000; 200 with
    /// --quick).
    #[arg(long)]
    live_writes: Option<u64>,
    /// Live writes per second.
    #[arg(long, default_value_t = 500)]
    live_rate: u64,
    /// maxItemsPerInvocation of every function (default: unset, the processor's page size).
    #[arg(long)]
    max_items: Option<usize>,
    /// Small sizes, for a smoke test.
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    common: BenchCommonArgs,
}

#[derive(clap::Args)]
struct ProcessorBenchArgs {
    /// Documents written before the processor starts, to catch up on (default 200000;
    /// 2000 with --quick).
    #[arg(long)]
    items: Option<u64>,
    /// Documents written at a steady rate while the processor runs (default 20000; 400
    /// with --quick).
    #[arg(long)]
    live_writes: Option<u64>,
    /// Live writes per second.
    #[arg(long, default_value_t = 2000)]
    live_rate: u64,
    /// Most changes per handler call.
    #[arg(long, default_value_t = 1000)]
    max_items: usize,
    /// Lease acquire interval of the failover hosts, ms.
    #[arg(long, default_value_t = 1000)]
    acquire_ms: u64,
    /// Lease renew interval of the failover hosts, ms.
    #[arg(long, default_value_t = 1000)]
    renew_ms: u64,
    /// Lease expiration interval of the failover hosts, ms.
    #[arg(long, default_value_t = 3000)]
    expiration_ms: u64,
    /// Small sizes, for a smoke test.
    #[arg(long)]
    quick: bool,
    /// Skip the phase with two host processes.
    #[arg(long)]
    no_failover: bool,
    #[command(flatten)]
    common: BenchCommonArgs,
}

#[derive(clap::Args)]
struct ProcessorHostArgs {
    /// The host's settings, as JSON.
    #[arg(long)]
    config: String,
}

#[derive(clap::Args)]
struct StoreBenchArgs {
    /// Items written in atomic commits (ingest-batch).
    #[arg(long, default_value_t = 100_000)]
    items: u64,
    /// Operations per atomic commit (at most 100).
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Commits kept in flight during ingest-batch.
    #[arg(long, default_value_t = 4)]
    batches_in_flight: usize,
    /// Items written one at a time by concurrent writers (default: half of --items).
    #[arg(long)]
    concurrent_items: Option<u64>,
    /// Concurrent single-item writers.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Page size of the feed catch-up and of the waiting reader.
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Paced single writes timed from commit to a waiting feed reader.
    #[arg(long, default_value_t = 2000)]
    latency_writes: u64,
    /// Milliseconds between two paced writes.
    #[arg(long, default_value_t = 2)]
    latency_interval_ms: u64,
    /// The container's indexing: `all` (Cosmos DB's default policy, every path in the range
    /// index, kept in each write's commit) or `none` (`indexingMode: none`).
    #[arg(long, value_enum, default_value_t = BenchIndexing::All)]
    indexing: BenchIndexing,
    #[command(flatten)]
    common: BenchCommonArgs,
}

/// `--indexing` of `bench store`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchIndexing {
    All,
    None,
}

#[derive(clap::Args)]
struct ServerBenchArgs {
    /// Documents upserted.
    #[arg(long, default_value_t = 50_000)]
    items: u64,
    /// Point reads of random upserted documents (default: as many as --items).
    #[arg(long)]
    reads: Option<u64>,
    /// Concurrent keep-alive HTTP/1.1 connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// x-ms-max-item-count of the change feed catch-up.
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    #[command(flatten)]
    common: BenchCommonArgs,
}

#[derive(clap::Args)]
struct QueryBenchArgs {
    /// Documents in the container.
    #[arg(long, default_value_t = 100_000)]
    items: u64,
    /// Runs of each query (with different parameters).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    #[command(flatten)]
    common: BenchCommonArgs,
}

#[derive(clap::Args)]
struct SoakBenchArgs {
    /// Concurrent keep-alive HTTP/1.1 connections (with the server in this process, each
    /// takes two open files: the soft limit is raised to the hard one if needed).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Seconds the connections send requests (a long run is 300).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Documents of 1 KB loaded before the soak, over 1,000 partition keys.
    #[arg(long, default_value_t = 10_000)]
    items: u64,
    /// Feed ranges of the soak's container.
    #[arg(long, default_value_t = 4)]
    ranges: u32,
    /// A running server to soak, http://host:port (plain HTTP), instead of one in this
    /// process; the process's memory and open files are then not reported. The soak creates
    /// a database of its own there and deletes it at the end.
    #[arg(long, requires = "key")]
    endpoint: Option<String>,
    /// The read-write key of --endpoint's account (base64).
    #[arg(
        long,
        env = "TRIBUTARY_KEY",
        hide_env_values = true,
        requires = "endpoint"
    )]
    key: Option<String>,
    /// When commits are acknowledged (the in-process server only).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Fsync, conflicts_with = "endpoint")]
    durability: DurabilityArg,
    /// Directory in which the temporary store is made (the in-process server only; default:
    /// the system's temp directory).
    #[arg(long, conflicts_with = "endpoint")]
    dir: Option<PathBuf>,
    /// Print the report as one JSON object on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct BenchCommonArgs {
    /// Feed ranges of the benchmark container.
    #[arg(long, default_value_t = 4)]
    ranges: u32,
    /// When commits are acknowledged.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Fsync)]
    durability: DurabilityArg,
    /// Directory in which the temporary store is made (default: the system's temp
    /// directory; it should be on the disk you mean to measure, not tmpfs).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the report as one JSON object on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    // The server and benchmarks report progress; the data commands only warnings, so their
    // stderr stays quiet beside the data on stdout.
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Bench(_) | Command::Functions(_) | Command::Repair(_) => {
            "info,fjall=warn,lsm_tree=warn"
        }
        Command::Feed(_)
        | Command::Leases(_)
        | Command::Estimate(_)
        | Command::Deadletter(_)
        | Command::Keys(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench(args),
        Command::Feed(args) => runtime().and_then(|r| r.block_on(feed_commands::run(args))),
        Command::Leases(args) => {
            runtime().and_then(|r| r.block_on(lease_commands::run_leases(args)))
        }
        Command::Estimate(args) => {
            runtime().and_then(|r| r.block_on(lease_commands::run_estimate(args)))
        }
        Command::Functions(args) => {
            runtime().and_then(|r| r.block_on(functions_commands::run(args)))
        }
        Command::Deadletter(args) => {
            runtime().and_then(|r| r.block_on(functions_commands::run_dead_letters(args)))
        }
        Command::Keys(args) => keys(args),
        Command::Repair(args) => repair_command::run(args),
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

/// `tributary keys ...`.
fn keys(args: KeysArgs) -> anyhow::Result<()> {
    match args.command {
        KeysCommand::Generate => {
            let keys = AccountKeys::generate()?;
            println!("{}", serde_json::to_string_pretty(&keys)?);
        }
    }
    Ok(())
}

/// The account's keys from `serve`'s flags or keys file, checked.
fn serve_keys(args: &ServeArgs) -> anyhow::Result<AccountKeys> {
    let flags = [
        (&args.key, "--key (TRIBUTARY_KEY)"),
        (
            &args.secondary_key,
            "--secondary-key (TRIBUTARY_SECONDARY_KEY)",
        ),
        (
            &args.readonly_key,
            "--readonly-key (TRIBUTARY_READONLY_KEY)",
        ),
        (
            &args.secondary_readonly_key,
            "--secondary-readonly-key (TRIBUTARY_SECONDARY_READONLY_KEY)",
        ),
    ];
    if let Some(path) = &args.keys_file {
        let given: Vec<&str> = flags
            .iter()
            .filter(|(value, _)| value.is_some())
            .map(|(_, flag)| *flag)
            .collect();
        if !given.is_empty() {
            return Err(anyhow!(
                "--keys-file holds all the keys, so it cannot be combined with {}; drop one or the other",
                given.join(", ")
            ));
        }
        return Ok(AccountKeys::read_file(path)?);
    }
    let keys = AccountKeys {
        primary_master_key: Some(
            args.key
                .clone()
                .unwrap_or_else(|| tributary_wire::auth::EMULATOR_KEY.to_owned()),
        ),
        secondary_master_key: args.secondary_key.clone(),
        primary_readonly_master_key: args.readonly_key.clone(),
        secondary_readonly_master_key: args.secondary_readonly_key.clone(),
    };
    match keys.key_set() {
        Ok(_) => Ok(keys),
        Err(KeysError::InvalidKey { kind, reason }) => {
            let flag = match kind {
                KeyKind::Primary => "--key",
                KeyKind::Secondary => "--secondary-key",
                KeyKind::PrimaryReadOnly => "--readonly-key",
                KeyKind::SecondaryReadOnly => "--secondary-readonly-key",
            };
            Err(anyhow!("{flag} is not a valid key: {reason}"))
        }
        Err(other) => Err(other.into()),
    }
}

/// On SIGHUP, re-reads the keys file into the running server's keys (Unix only); each
/// reload logs one line, whether the keys changed or the file was refused.
#[cfg(unix)]
fn reload_keys_on_hangup(
    key_ring: tributary_server::KeyRing,
    keys_file: PathBuf,
) -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP, which reloads the keys file")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // The outcome is logged by reload_file; the server goes on either way.
            let _ = key_ring.reload_file(&keys_file);
        }
    });
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let keys = serve_keys(&args)?;
    let data_dir = args.data_dir.unwrap_or_else(source::default_data_dir);
    let durability = args.durability.durability();
    let store = Store::open(
        &data_dir,
        StoreOptions {
            durability,
            min_free_disk_bytes: args.min_free_disk.saturating_mul(MIB),
            ..StoreOptions::default()
        },
    )
    .map_err(|error| match error {
        // The message names the directory; one line, no "cannot open" prefix repeating it.
        StoreError::Locked {
            holder: Some(_), ..
        } => anyhow!("{error}"),
        StoreError::Locked { holder: None, .. } => {
            anyhow!("{error}; is another `tributary serve` running on it?")
        }
        other => anyhow!("cannot open the store in {}: {other}", data_dir.display()),
    })?;
    let store = Arc::new(store);
    let tls = match (args.http, args.cert, args.cert_key) {
        (true, _, _) => None,
        (false, Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
        (false, _, _) => Some(TlsSource::SelfSigned),
    };
    let config = ServerConfig {
        addr: args.addr,
        port: args.port,
        keys: keys.clone(),
        tls,
        data_dir: data_dir.clone(),
        max_connections: args.max_connections,
        max_request_memory: args.max_request_memory_mib * 1024 * 1024,
        max_query_input: args.max_query_input_mib * 1024 * 1024,
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        request_timeout: Duration::from_secs(args.request_timeout),
        ..ServerConfig::default()
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let server = Server::bind(config, Arc::clone(&store)).await?;
        // Listening before the banner: whoever waits for it may send SIGHUP at once.
        #[cfg(unix)]
        if let Some(keys_file) = &args.keys_file {
            reload_keys_on_hangup(server.key_ring(), keys_file.clone())?;
        }
        let endpoint = server.endpoint().to_owned();
        let key = keys
            .read_write_key()
            .expect("checked keys have a read-write key");
        println!(
            "Tributary {} serves the Cosmos DB NoSQL API",
            env!("CARGO_PKG_VERSION")
        );
        println!("endpoint: {endpoint}");
        println!("key: {key}");
        println!("connection string: AccountEndpoint={endpoint};AccountKey={key};");
        if let Some(read_only_key) = keys.read_only_key() {
            println!("read-only key: {read_only_key}");
        }
        if let Some(keys_file) = &args.keys_file {
            let reload = if cfg!(unix) {
                " (SIGHUP re-reads it)"
            } else {
                ""
            };
            println!("keys file: {}{reload}", keys_file.display());
        }
        println!("data dir: {}", data_dir.display());
        let host = match &args.functions {
            Some(app_dir) => {
                let app = tributary_functions::FunctionApp::load(app_dir).await?;
                let options = tributary_functions::HostOptions {
                    embedded: Some(Arc::clone(&store)),
                    embedded_port: Some(server.local_addr()?.port()),
                    ..tributary_functions::HostOptions::default()
                };
                let host = functions_commands::start_host(app, options).await?;
                server.attach_functions_host(explorer_functions::ExplorerFunctions::shared(
                    host.handle(),
                ));
                Some(host)
            }
            None => None,
        };
        println!("ready in {} ms", started.elapsed().as_millis());
        server.run(shutdown_signal()).await?;
        if let Some(host) = host {
            host.stop().await;
        }
        anyhow::Ok(())
    })?;
    store.close();
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let output = match args.target {
        BenchTarget::Store(args) => {
            let options = tributary_bench::StoreBenchOptions {
                n_items: args.items,
                batch_size: args.batch_size,
                n_batches_in_flight: args.batches_in_flight,
                n_concurrent_items: args.concurrent_items.unwrap_or((args.items / 2).max(1)),
                n_writers: args.writers,
                feed_page_items: args.page_size,
                n_latency_writes: args.latency_writes,
                latency_interval_ms: args.latency_interval_ms,
                indexed: matches!(args.indexing, BenchIndexing::All),
                n_feed_ranges: args.common.ranges,
                durability: args.common.durability.durability(),
                parent_dir: args.common.dir,
                show_progress: true,
            };
            let report = runtime
                .block_on(tributary_bench::run_store_bench(&options))
                .context("the store benchmark failed")?;
            if args.common.json {
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            } else {
                report.render_text()
            }
        }
        BenchTarget::Server(args) => {
            let options = tributary_bench::ServerBenchOptions {
                n_items: args.items,
                n_reads: args.reads.unwrap_or(args.items),
                n_connections: args.connections,
                feed_page_items: args.page_size,
                n_feed_ranges: args.common.ranges,
                durability: args.common.durability.durability(),
                parent_dir: args.common.dir,
                show_progress: true,
            };
            let report = runtime
                .block_on(tributary_bench::run_server_bench(&options))
                .context("the server benchmark failed")?;
            if args.common.json {
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            } else {
                report.render_text()
            }
        }
        BenchTarget::Query(args) => {
            let options = tributary_bench::QueryBenchOptions {
                n_items: args.items,
                n_runs: args.runs,
                n_feed_ranges: args.common.ranges,
                durability: args.common.durability.durability(),
                parent_dir: args.common.dir,
                show_progress: true,
            };
            let report = runtime
                .block_on(tributary_bench::run_query_bench(&options))
                .context("the query benchmark failed")?;
            if args.common.json {
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            } else {
                report.render_text()
            }
        }
        BenchTarget::Soak(args) => {
            let options = tributary_bench::SoakOptions {
                n_connections: args.connections,
                duration_s: args.duration,
                n_items: args.items,
                n_feed_ranges: args.ranges,
                durability: args.durability.durability(),
                parent_dir: args.dir,
                endpoint: args
                    .endpoint
                    .zip(args.key)
                    .map(|(url, key)| tributary_bench::SoakEndpoint { url, key }),
                show_progress: true,
            };
            let report = runtime
                .block_on(tributary_bench::run_soak_bench(&options))
                .context("the soak failed")?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            return match report.error_summary() {
                Some(summary) => Err(anyhow!(summary)),
                None => Ok(()),
            };
        }
        BenchTarget::Processor(args) => {
            let host_command = if args.no_failover {
                None
            } else {
                let program = std::env::current_exe()
                    .context("cannot find this program to run processor hosts")?;
                Some(vec![
                    program.into_os_string(),
                    "bench".into(),
                    "processor-host".into(),
                ])
            };
            let (items, live_writes) = if args.quick {
                (2_000, 400)
            } else {
                (200_000, 20_000)
            };
            let options = tributary_bench::ProcessorBenchOptions {
                n_items: args.items.unwrap_or(items),
                n_live_writes: args.live_writes.unwrap_or(live_writes),
                live_writes_per_s: args.live_rate,
                max_items: args.max_items,
                n_feed_ranges: args.common.ranges,
                acquire_interval_ms: args.acquire_ms,
                renew_interval_ms: args.renew_ms,
                expiration_interval_ms: args.expiration_ms,
                durability: args.common.durability.durability(),
                parent_dir: args.common.dir,
                host_command,
                show_progress: true,
            };
            let report = runtime
                .block_on(tributary_bench::run_processor_bench(&options))
                .context("the processor benchmark failed")?;
            if args.common.json {
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            } else {
                report.render_text()
            }
        }
        BenchTarget::Functions(args) => {
            let (items, live_writes) = if args.quick {
                (5_000, 200)
            } else {
                (100_000, 2_000)
            };
            let options = tributary_bench::FunctionsBenchOptions {
                n_items: args.items.unwrap_or(items),
                n_live_writes: args.live_writes.unwrap_or(live_writes),
                live_writes_per_s: args.live_rate,
                max_items: args.max_items,
                n_feed_ranges: args.common.ranges,
                durability: args.common.durability.durability(),
                parent_dir: args.common.dir,
                show_progress: true,
            };
            let report = runtime
                .block_on(tributary_bench::run_functions_bench(&options))
                .context("the functions benchmark failed")?;
            if args.common.json {
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            } else {
                report.render_text()
            }
        }
        BenchTarget::ProcessorHost(args) => {
            let options: tributary_bench::ProcessorHostOptions =
                serde_json::from_str(&args.config).context("--config is not a host config")?;
            runtime
                .block_on(tributary_bench::run_processor_host(&options))
                .context("the processor host failed")?;
            String::new()
        }
    };
    print!("{output}");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
