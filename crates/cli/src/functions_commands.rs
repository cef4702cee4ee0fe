//! `tributary functions run|status` and `tributary deadletter list|replay|purge`: the
//! functions host over an app directory, against servers named by the app's connection
//! settings or, with `--data-dir`, the embedded store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tributary_functions::{FunctionApp, FunctionHost, HostOptions};
use tributary_store::{Store, StoreOptions};

/// `tributary functions ...`.
#[derive(clap::Args)]
pub struct FunctionsArgs {
    #[command(subcommand)]
    command: FunctionsCommand,
}

#[derive(clap::Subcommand)]
enum FunctionsCommand {
    /// Run an app's change feed functions until interrupted.
    Run(RunArgs),
    /// Each function's leases (owner, lag, stuck), dead letters, and the invocation counters
    /// of a running host.
    Status(StatusArgs),
}

/// Where the app is and which store it runs on.
#[derive(clap::Args)]
pub struct AppArgs {
    /// The app directory (`function_app.py` and/or `tributary.toml`, `local.settings.json`).
    #[arg(default_value = ".")]
    app_dir: PathBuf,
    /// Run on the embedded store in this directory: connection strings that point at
    /// localhost on --store-port name it, and outputs commit with the checkpoint.
    /// Not while a server runs on it (use `tributary serve --functions` then).
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// With --data-dir: the port of the connection strings that name the embedded store
    /// (`localhost:PORT`; other endpoints are reached over HTTP).
    #[arg(long, default_value_t = 8081, requires = "data_dir")]
    store_port: u16,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// This host's name among the hosts sharing the leases (default: hostname-pid).
    #[arg(long)]
    instance: Option<String>,
}

#[derive(clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    app: AppArgs,
    /// A running host's metrics endpoint (its --metrics-addr), for invocation counters.
    #[arg(long)]
    metrics_url: Option<String>,
}

/// `tributary deadletter ...`.
#[derive(clap::Args)]
pub struct DeadLetterArgs {
    #[command(subcommand)]
    command: DeadLetterCommand,
}

#[derive(clap::Subcommand)]
enum DeadLetterCommand {
    /// Print dead-lettered items as JSON lines (oldest first).
    List(DeadLetterSelection),
    /// Run the function again on dead-lettered items; each success writes its outputs and
    /// removes the dead letter.
    Replay(DeadLetterSelection),
    /// Delete dead letters.
    Purge(DeadLetterSelection),
}

#[derive(clap::Args)]
struct DeadLetterSelection {
    #[command(flatten)]
    app: AppArgs,
    /// Only this function's dead letters.
    #[arg(long)]
    function: Option<String>,
    /// Only the dead letter with this id.
    #[arg(long)]
    id: Option<String>,
}

impl AppArgs {
    /// Loads the app and opens the embedded store if one was given.
    async fn load(&self) -> anyhow::Result<(FunctionApp, HostOptions)> {
        let embedded = match &self.data_dir {
            Some(dir) => Some(Arc::new(open_store(dir)?)),
            None => None,
        };
        let app = FunctionApp::load(&self.app_dir).await?;
        Ok((
            app,
            HostOptions {
                embedded_port: embedded.as_ref().map(|_| self.store_port),
                embedded,
                ..HostOptions::default()
            },
        ))
    }
}

fn open_store(dir: &std::path::Path) -> anyhow::Result<Store> {
    if !dir.is_dir() {
        return Err(anyhow!(
            "there is no store in {} (the directory does not exist)",
            dir.display()
        ));
    }
    Store::open(dir, StoreOptions::default()).map_err(|error| match error {
        tributary_store::StoreError::Locked { holder, .. } => anyhow!(
            "the store in {} is in use by {}; run the app inside it with `tributary serve --functions APP_DIR`, or without --data-dir through its connection string",
            dir.display(),
            holder.as_deref().unwrap_or("another process")
        ),
        other => anyhow!("cannot open the store in {}: {other}", dir.display()),
    })
}

/// Runs `tributary functions ...`.
pub async fn run(args: FunctionsArgs) -> anyhow::Result<()> {
    match args.command {
        FunctionsCommand::Run(args) => run_app(args).await,
        FunctionsCommand::Status(args) => status(args).await,
    }
}

async fn run_app(args: RunArgs) -> anyhow::Result<()> {
    let (app, mut options) = args.app.load().await?;
    if let Some(instance) = args.instance {
        options.instance_name = instance;
    }
    let embedded = options.embedded.clone();
    // The recorder is installed before the host starts, so that the first batch is counted.
    let _metrics_task = match args.metrics_addr {
        Some(addr) => {
            let (bound, task) = tributary_functions::metrics::serve_prometheus(addr)
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            println!("metrics: http://{bound}/metrics");
            Some(task)
        }
        None => None,
    };
    let host = start_host(app, options).await?;
    crate::shutdown_signal().await;
    host.stop().await;
    if let Some(store) = embedded {
        store.close();
    }
    Ok(())
}

/// Starts an app's host, printing which functions run and which are skipped and why.
///
/// # Errors
/// A function's configuration is invalid (nothing is started then).
pub async fn start_host(app: FunctionApp, options: HostOptions) -> anyhow::Result<FunctionHost> {
    for skipped in app.skipped() {
        println!("skipping function {}: {}", skipped.name, skipped.reason);
    }
    let names: Vec<String> = app
        .function_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let host = FunctionHost::start(app, options).await?;
    for name in &names {
        println!("running function {name}");
    }
    if names.is_empty() {
        println!("no Cosmos DB trigger functions to run");
    }
    Ok(host)
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let (app, options) = args.app.load().await?;
    let counters = match &args.metrics_url {
        Some(url) => Some(
            scrape_counters(url)
                .await
                .with_context(|| format!("cannot read the host's metrics at {url}"))?,
        ),
        None => None,
    };
    let inspections = tributary_functions::inspect(&app, &options).await;
    app.shutdown().await;
    let inspections = inspections?;
    println!(
        "{:<32} {:<12} {:<24} {:>9} {:>8} {:>7} {:>7}  stuck",
        "function/lease", "owner", "source", "pending", "age_s", "calls", "failed"
    );
    for inspection in inspections {
        let dead_letters = inspection
            .dead_letters
            .list(Some(&inspection.name))
            .await
            .map(|list| list.len().to_string())
            .unwrap_or_else(|_| "-".into());
        let (calls, failed) = counters
            .as_ref()
            .map(|counters| counters.for_function(&inspection.name))
            .map_or(("-".into(), "-".into()), |(calls, failed)| {
                (calls.to_string(), failed.to_string())
            });
        println!(
            "{:<32} {:<12} {:<24} {:>9} {:>8} {:>7} {:>7}  dead letters: {dead_letters}",
            inspection.name, "", inspection.source, "", "", calls, failed
        );
        let leases =
            inspection.estimator.estimate().await.with_context(|| {
                format!("cannot estimate the lag of function {}", inspection.name)
            })?;
        for lease in leases {
            println!(
                "  {:<30} {:<12} {:<24} {:>9} {:>8} {:>7} {:>7}  {}",
                lease.lease_token,
                lease.owner.as_deref().unwrap_or("-"),
                "",
                format!("{}{}", lease.pending, if lease.exact { "" } else { "~" }),
                lease
                    .oldest_pending_age_s
                    .map_or("-".into(), |age| age.to_string()),
                "",
                "",
                if lease.is_stuck() {
                    format!(
                        "STUCK after {} failures: {}",
                        lease.consecutive_failures,
                        lease.last_error.as_deref().unwrap_or("")
                    )
                } else {
                    "-".into()
                }
            );
        }
    }
    if let Some(store) = options.embedded {
        store.close();
    }
    Ok(())
}

/// Invocation counters read from a host's Prometheus text.
struct Counters {
    text: String,
}

impl Counters {
    /// (invocations, failed invocations) of `function`.
    fn for_function(&self, function: &str) -> (u64, u64) {
        let label = format!("function=\"{function}\"");
        let mut calls = 0;
        let mut failed = 0;
        for line in self.text.lines() {
            let Some(rest) = line.strip_prefix(tributary_functions::metrics::INVOCATIONS) else {
                continue;
            };
            if !rest.contains(&label) {
                continue;
            }
            let value = rest
                .rsplit(' ')
                .next()
                .and_then(|value| value.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
            calls += value;
            if !rest.contains("outcome=\"ok\"") {
                failed += value;
            }
        }
        (calls, failed)
    }
}

/// Reads a host's metrics page (`http://host:port/metrics`) with one HTTP/1.0 GET.
async fn scrape_counters(url: &str) -> anyhow::Result<Counters> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("the metrics URL must start with http://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, "metrics"));
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // A metrics page is small; more than this is not one.
    stream
        .take(16 * 1024 * 1024)
        .read_to_end(&mut response)
        .await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("not an HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(anyhow!(
            "{}",
            head.lines().next().unwrap_or("no status line")
        ));
    }
    Ok(Counters {
        text: body.to_owned(),
    })
}

/// Runs `tributary deadletter ...`.
pub async fn run_dead_letters(args: DeadLetterArgs) -> anyhow::Result<()> {
    let (selection, action) = match args.command {
        DeadLetterCommand::List(selection) => (selection, Action::List),
        DeadLetterCommand::Replay(selection) => (selection, Action::Replay),
        DeadLetterCommand::Purge(selection) => (selection, Action::Purge),
    };
    let (app, options) = selection.app.load().await?;
    let result = dead_letters(&app, &options, &selection, action).await;
    app.shutdown().await;
    if let Some(store) = options.embedded {
        store.close();
    }
    result
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    List,
    Replay,
    Purge,
}

async fn dead_letters(
    app: &FunctionApp,
    options: &HostOptions,
    selection: &DeadLetterSelection,
    action: Action,
) -> anyhow::Result<()> {
    if let Some(function) = &selection.function
        && !app.function_names().contains(&function.as_str())
    {
        return Err(anyhow!(
            "the app has no Cosmos DB trigger function '{function}' (it has: {})",
            app.function_names().join(", ")
        ));
    }
    if action == Action::Replay {
        let report = tributary_functions::replay_dead_letters(
            app,
            options,
            selection.function.as_deref(),
            selection.id.as_deref(),
        )
        .await?;
        println!("replayed {} dead letters", report.n_replayed);
        for (id, error) in &report.failures {
            println!("dead letter {id} failed again (kept): {error}");
        }
        if !report.failures.is_empty() {
            return Err(anyhow!(
                "{} dead letters failed again",
                report.failures.len()
            ));
        }
        return Ok(());
    }
    let mut n_purged = 0;
    for inspection in tributary_functions::inspect(app, options).await? {
        if selection
            .function
            .as_ref()
            .is_some_and(|function| *function != inspection.name)
        {
            continue;
        }
        for dead_letter in inspection.dead_letters.list(Some(&inspection.name)).await? {
            let id = dead_letter
                .get("id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if selection.id.as_ref().is_some_and(|wanted| *wanted != id) {
                continue;
            }
            match action {
                Action::List => println!("{dead_letter}"),
                Action::Purge => {
                    if inspection.dead_letters.delete(&id).await? {
                        n_purged += 1;
                    }
                }
                Action::Replay => {}
            }
        }
    }
    if action == Action::Purge {
        println!("purged {n_purged} dead letters");
    }
    Ok(())
}
