//! The host: loads an app (a Python `function_app.py`, a `tributary.toml`, or functions
//! registered in Rust), checks every function's configuration before any of them starts,
//! and runs one change feed processor per function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tributary_processor::{
    ChangeFeedEstimator, ChangeFeedProcessor, ChangeFeedProcessorBuilder, LeaseEstimate, StartFrom,
};
use tributary_query::Query;
use tributary_store::Store;

use crate::account::Account;
use crate::dead_letter::DeadLetterBox;
use crate::definition::{FunctionDefinition, ReadFunction, SkippedFunction, read_function};
use crate::error::{ConfigError, HostError};
use crate::handler::Handler;
use crate::http_handler::HttpHandler;
use crate::manifest::{HandlerRef, Manifest};
use crate::metrics::{FunctionStats, record_lag};
use crate::process::{WorkerCommand, WorkerPool};
use crate::python::start_python_workers;
use crate::runner::{FunctionRunner, ResolvedInput, ResolvedOutput};
use crate::settings::Settings;

/// The Python app's entry file.
pub const PYTHON_APP_FILE: &str = "function_app.py";
/// The setting with the number of worker processes (Azure's name; default 1).
pub const WORKER_PROCESS_COUNT_SETTING: &str = "FUNCTIONS_WORKER_PROCESS_COUNT";
/// Most worker processes (Azure's limit).
pub const MAX_WORKER_PROCESSES: usize = 10;
/// How often lag is estimated for the metrics.
pub const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// An app: functions with their handlers, and the settings their bindings name.
pub struct FunctionApp {
    settings: Settings,
    functions: Vec<(FunctionDefinition, Arc<dyn Handler>)>,
    skipped: Vec<SkippedFunction>,
    handlers: Vec<Arc<dyn Handler>>,
}

impl FunctionApp {
    /// An empty app whose bindings read `settings` (for functions registered in Rust).
    pub fn new(settings: Settings) -> Self {
        FunctionApp {
            settings,
            functions: Vec::new(),
            skipped: Vec::new(),
            handlers: Vec::new(),
        }
    }

    /// Adds a function and its handler.
    pub fn function(mut self, definition: FunctionDefinition, handler: Arc<dyn Handler>) -> Self {
        self.handlers.push(Arc::clone(&handler));
        self.functions.push((definition, handler));
        self
    }

    /// Loads the app in `app_dir`: `function_app.py` through the Python worker, and
    /// `tributary.toml` (functions of its own, or settings for the Python functions);
    /// `local.settings.json` gives the settings.
    ///
    /// # Errors
    /// Neither file exists; the worker could not start (its one-line reason); a function's
    /// configuration is invalid.
    pub async fn load(app_dir: &Path) -> Result<FunctionApp, ConfigError> {
        let app_dir = app_dir.canonicalize().map_err(|error| {
            ConfigError::App(format!(
                "cannot open app directory {}: {error}",
                app_dir.display()
            ))
        })?;
        let settings = Settings::load(&app_dir)?;
        let manifest = Manifest::load(&app_dir)?.unwrap_or_default();
        let mut app = FunctionApp::new(settings);
        let n_processes = app.worker_process_count()?;
        let has_python = app_dir.join(PYTHON_APP_FILE).is_file();
        if !has_python && manifest.functions.is_empty() {
            return Err(ConfigError::App(format!(
                "{} has neither {PYTHON_APP_FILE} nor a {} with functions",
                app_dir.display(),
                crate::manifest::MANIFEST_FILE
            )));
        }
        let mut python_functions = Vec::new();
        if has_python {
            let (pool, described) =
                start_python_workers(&app_dir, app.settings.worker_environment(), n_processes)
                    .await
                    .map_err(|error| ConfigError::Worker(error.to_string()))?;
            let pool: Arc<dyn Handler> = Arc::new(pool);
            app.handlers.push(Arc::clone(&pool));
            for function in described {
                match read_function(&function.name, &function.bindings, function.retry.as_ref())? {
                    ReadFunction::Run(definition) => {
                        python_functions.push((*definition, Arc::clone(&pool)))
                    }
                    ReadFunction::Skip(skipped) => app.skipped.push(skipped),
                }
            }
        }
        let worker = match &manifest.worker {
            Some(worker) if !worker.command.is_empty() => {
                let mut words = worker.command.iter();
                let program = words.next().map(PathBuf::from).unwrap_or_default();
                let command = WorkerCommand {
                    program: program.into_os_string(),
                    args: words.map(Into::into).collect(),
                    working_dir: app_dir.clone(),
                    env: app.settings.worker_environment(),
                };
                let (pool, _) = start_pool(command, n_processes, "worker").await?;
                let pool: Arc<dyn Handler> = Arc::new(pool);
                app.handlers.push(Arc::clone(&pool));
                Some(pool)
            }
            Some(_) => return Err(ConfigError::App("[worker] command is empty".into())),
            None => None,
        };
        for section in &manifest.functions {
            if section.trigger.is_none() {
                let Some((definition, _)) = python_functions
                    .iter_mut()
                    .find(|(definition, _)| definition.name == section.name)
                else {
                    return Err(ConfigError::Function {
                        function: section.name.clone(),
                        message: format!(
                            "{} gives settings for it, but {PYTHON_APP_FILE} has no such Cosmos DB trigger function",
                            crate::manifest::MANIFEST_FILE
                        ),
                    });
                };
                section.apply_settings(definition)?;
                continue;
            }
            let (definition, handler) = section.definition()?;
            let handler: Arc<dyn Handler> = match handler {
                HandlerRef::Worker => worker.clone().ok_or_else(|| ConfigError::Function {
                    function: section.name.clone(),
                    message: "its handler is \"worker\" but tributary.toml has no [worker] command"
                        .into(),
                })?,
                HandlerRef::Http(url) => {
                    let http: Arc<dyn Handler> =
                        Arc::new(HttpHandler::new(&url).map_err(|error| {
                            ConfigError::Function {
                                function: section.name.clone(),
                                message: error.to_string(),
                            }
                        })?);
                    app.handlers.push(Arc::clone(&http));
                    http
                }
            };
            app.functions.push((definition, handler));
        }
        app.functions.splice(0..0, python_functions);
        Ok(app)
    }

    fn worker_process_count(&self) -> Result<usize, ConfigError> {
        match self.settings.get(WORKER_PROCESS_COUNT_SETTING) {
            None => Ok(1),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_WORKER_PROCESSES).contains(&n) => Ok(n),
                _ => Err(ConfigError::App(format!(
                    "setting {WORKER_PROCESS_COUNT_SETTING} must be 1..={MAX_WORKER_PROCESSES}, not '{text}'"
                ))),
            },
        }
    }

    /// The functions this app runs, by name.
    pub fn function_names(&self) -> Vec<&str> {
        self.functions
            .iter()
            .map(|(definition, _)| definition.name.as_str())
            .collect()
    }

    /// The functions it does not run, and why.
    pub fn skipped(&self) -> &[SkippedFunction] {
        &self.skipped
    }

    /// The definitions of the functions it runs.
    pub fn definitions(&self) -> impl Iterator<Item = &FunctionDefinition> {
        self.functions.iter().map(|(definition, _)| definition)
    }

    /// The app's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Stops the app's worker processes without running it.
    pub async fn shutdown(self) {
        for handler in &self.handlers {
            handler.shutdown().await;
        }
    }
}

async fn start_pool(
    command: WorkerCommand,
    n_processes: usize,
    label: &str,
) -> Result<(WorkerPool, Vec<crate::process::DescribedFunction>), ConfigError> {
    WorkerPool::start(command, n_processes, label)
        .await
        .map_err(|error| ConfigError::Worker(error.to_string()))
}

/// How the host runs.
#[derive(Clone)]
pub struct HostOptions {
    /// The embedded store connection strings to this machine resolve to (see
    /// [`crate::account`]); `None`: every account is reached over HTTP.
    pub embedded: Option<Arc<Store>>,
    /// The port on this machine whose connection strings name `embedded` (`tributary serve
    /// --functions` gives its own); `None`: every port of `localhost`.
    pub embedded_port: Option<u16>,
    /// This host's name among the hosts sharing the leases.
    pub instance_name: String,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            embedded: None,
            embedded_port: None,
            instance_name: default_instance_name(),
        }
    }
}

/// `hostname-pid`.
pub fn default_instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

/// A running function, as its handle sees it.
struct WatchedFunction {
    runner: Arc<FunctionRunner>,
    estimator: Arc<ChangeFeedEstimator>,
}

/// A function's state, for `tributary functions status`.
#[derive(Debug)]
pub struct FunctionStatus {
    /// The function.
    pub name: String,
    /// Its processor (lease prefix) name.
    pub processor: String,
    /// The monitored container, `database/container`.
    pub source: String,
    /// Whether outputs commit with the checkpoint.
    pub exactly_once: bool,
    /// The lease container, `database/container`.
    pub lease_container: String,
    /// The dead-letter container, `database/container`.
    pub dead_letter_container: String,
    /// Its leases with their lag (empty if the estimate failed).
    pub leases: Vec<LeaseEstimate>,
    /// Its counters in this process.
    pub stats: Arc<FunctionStats>,
}

/// A running app.
pub struct FunctionHost {
    processors: Vec<ChangeFeedProcessor>,
    handle: HostHandle,
    handlers: Vec<Arc<dyn Handler>>,
    lag_task: tokio::task::JoinHandle<()>,
}

/// A view of a running app that can be shared (the server's Explorer holds one): each
/// function's status, its dead letters, and replaying one of them.
#[derive(Clone)]
pub struct HostHandle {
    functions: Arc<[WatchedFunction]>,
    skipped: Arc<[SkippedFunction]>,
}

impl FunctionHost {
    /// Checks every function's configuration (settings, connection strings, containers,
    /// lease containers, filters) and then starts them all; nothing starts if one is wrong.
    ///
    /// # Errors
    /// The first configuration problem, naming the function and the setting.
    pub async fn start(
        app: FunctionApp,
        options: HostOptions,
    ) -> Result<FunctionHost, ConfigError> {
        let mut prepared = Vec::new();
        for (definition, handler) in &app.functions {
            match prepare(definition, handler, &app.settings, &options, Mode::Run).await {
                Ok(runner) => prepared.push(runner),
                Err(error) => {
                    app.shutdown().await;
                    return Err(error);
                }
            }
        }
        let mut functions = Vec::new();
        let mut processors = Vec::new();
        for (runner, feed, leases) in prepared {
            let definition = Arc::clone(&runner.definition);
            let trigger = &definition.trigger;
            let start_from = start_from(&definition);
            let unavailable = |message: String| ConfigError::Unavailable {
                function: definition.name.clone(),
                message,
            };
            let estimator = ChangeFeedEstimator::new(
                &runner.processor_name,
                Arc::clone(&feed),
                Arc::clone(&leases),
                start_from,
            )
            .await
            .map_err(|error| unavailable(error.to_string()))?;
            let handler_runner = Arc::clone(&runner);
            let mut builder = ChangeFeedProcessorBuilder::new(&runner.processor_name, feed, leases)
                .instance_name(options.instance_name.clone())
                .start_from(start_from)
                .poll_interval(trigger.feed_poll_delay)
                .lease_acquire_interval(trigger.lease_acquire_interval)
                .lease_expiration_interval(trigger.lease_expiration_interval)
                .lease_renew_interval(trigger.lease_renew_interval)
                .manual_checkpoint_handler(move |context, changes, checkpointer| {
                    Arc::clone(&handler_runner).process(context, changes, checkpointer)
                });
            if let Some(max_items) = trigger.max_items_per_invocation {
                builder = builder.max_items(max_items);
            }
            if let Some(filter) = &definition.filter {
                builder = builder.feed_filter(filter.clone());
            }
            let mut processor = builder
                .build()
                .map_err(|error| unavailable(error.to_string()))?;
            processor
                .start()
                .await
                .map_err(|error| unavailable(error.to_string()))?;
            tracing::info!(
                function = %definition.name,
                source = %format!("{}/{}", trigger.database_name, trigger.container_name),
                leases = %format!("{}/{}", trigger.lease_database(), trigger.lease_container_name),
                exactly_once = runner.transactional,
                "function started"
            );
            processors.push(processor);
            functions.push(WatchedFunction {
                runner,
                estimator: Arc::new(estimator),
            });
        }
        let estimators: Vec<(String, Arc<ChangeFeedEstimator>)> = functions
            .iter()
            .map(|function| {
                (
                    function.runner.definition.name.clone(),
                    Arc::clone(&function.estimator),
                )
            })
            .collect();
        let lag_task = tokio::spawn(async move {
            loop {
                for (function, estimator) in &estimators {
                    if let Ok(leases) = estimator.estimate().await {
                        for lease in leases {
                            record_lag(function, &lease.lease_token, lease.pending);
                        }
                    }
                }
                tokio::time::sleep(LAG_INTERVAL).await;
            }
        });
        Ok(FunctionHost {
            processors,
            handle: HostHandle {
                functions: functions.into(),
                skipped: app.skipped.into(),
            },
            handlers: app.handlers,
            lag_task,
        })
    }

    /// The functions not run, and why.
    pub fn skipped(&self) -> &[SkippedFunction] {
        self.handle.skipped()
    }

    /// Each function's leases, lag and counters.
    pub async fn status(&self) -> Vec<FunctionStatus> {
        self.handle.status().await
    }

    /// A handle on the running app, valid until [`FunctionHost::stop`] (after it, replays
    /// still work; statuses show the processors stopped).
    pub fn handle(&self) -> HostHandle {
        self.handle.clone()
    }

    /// Stops every processor (checkpointing and releasing its leases) and the workers.
    pub async fn stop(mut self) {
        self.lag_task.abort();
        for processor in &mut self.processors {
            processor.stop().await;
        }
        for handler in &self.handlers {
            handler.shutdown().await;
        }
    }
}

impl HostHandle {
    /// The functions not run, and why.
    pub fn skipped(&self) -> &[SkippedFunction] {
        &self.skipped
    }

    /// Each function's leases, lag and counters.
    pub async fn status(&self) -> Vec<FunctionStatus> {
        let mut statuses = Vec::new();
        for function in self.functions.iter() {
            let runner = &function.runner;
            let trigger = &runner.definition.trigger;
            statuses.push(FunctionStatus {
                name: runner.definition.name.clone(),
                processor: runner.processor_name.clone(),
                source: format!("{}/{}", trigger.database_name, trigger.container_name),
                lease_container: format!(
                    "{}/{}",
                    trigger.lease_database(),
                    trigger.lease_container_name
                ),
                dead_letter_container: format!(
                    "{}/{}",
                    runner.dead_letters.database, runner.dead_letters.container
                ),
                exactly_once: runner.transactional,
                leases: function.estimator.estimate().await.unwrap_or_default(),
                stats: Arc::clone(&runner.stats),
            });
        }
        statuses
    }

    /// The dead letters of `function`, oldest first.
    ///
    /// # Errors
    /// [`HostError::UnknownFunction`]; [`HostError::Account`] if its dead-letter container
    /// cannot be read.
    pub async fn dead_letters(&self, function: &str) -> Result<Vec<Value>, HostError> {
        let runner = self.runner(function)?;
        runner
            .dead_letters
            .list(Some(function))
            .await
            .map_err(|source| HostError::Account {
                function: function.to_owned(),
                source,
            })
    }

    /// Runs `function` again on its dead letter `id`: on success its outputs are written
    /// and the dead letter deleted (`Ok(Ok(()))`); a new failure keeps it (`Ok(Err(error))`).
    ///
    /// # Errors
    /// [`HostError::UnknownFunction`]; [`HostError::UnknownDeadLetter`] when `function` has
    /// no dead letter `id`; [`HostError::Account`] if the dead letter cannot be read.
    pub async fn replay_dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Result<(), String>, HostError> {
        let runner = self.runner(function)?;
        let box_ = &runner.dead_letters;
        let dead_letter = box_
            .account
            .read(
                &box_.database,
                &box_.container,
                &Value::String(id.to_owned()),
                id,
            )
            .await
            .map_err(|source| HostError::Account {
                function: function.to_owned(),
                source,
            })?
            .filter(|document| document.get("function").and_then(Value::as_str) == Some(function))
            .ok_or_else(|| HostError::UnknownDeadLetter {
                function: function.to_owned(),
                id: id.to_owned(),
            })?;
        let outcome = runner.replay(&dead_letter).await;
        match &outcome {
            Ok(()) => tracing::info!(function, dead_letter = id, "dead letter replayed"),
            Err(error) => {
                tracing::warn!(function, dead_letter = id, %error, "dead letter failed again");
            }
        }
        Ok(outcome)
    }

    fn runner(&self, function: &str) -> Result<&Arc<FunctionRunner>, HostError> {
        self.functions
            .iter()
            .map(|watched| &watched.runner)
            .find(|runner| runner.definition.name == function)
            .ok_or_else(|| HostError::UnknownFunction(function.to_owned()))
    }
}

/// A function looked at without running it (`tributary functions status`, `deadletter`).
pub struct FunctionInspection {
    /// The function.
    pub name: String,
    /// Its processor (lease prefix) name.
    pub processor: String,
    /// The monitored container, `database/container`.
    pub source: String,
    /// Its leases and their lag.
    pub estimator: ChangeFeedEstimator,
    /// Its dead-letter container.
    pub dead_letters: DeadLetterBox,
}

/// Resolves the app's functions without running them: their leases (which must exist) and
/// dead-letter containers. Nothing is created.
///
/// # Errors
/// A function's configuration is invalid, or its lease container does not exist.
pub async fn inspect(
    app: &FunctionApp,
    options: &HostOptions,
) -> Result<Vec<FunctionInspection>, ConfigError> {
    let mut inspections = Vec::new();
    for (definition, handler) in &app.functions {
        let (runner, feed, leases) =
            prepare(definition, handler, &app.settings, options, Mode::Inspect).await?;
        let estimator = ChangeFeedEstimator::new(
            &runner.processor_name,
            feed,
            leases,
            start_from(&runner.definition),
        )
        .await
        .map_err(|error| ConfigError::Unavailable {
            function: definition.name.clone(),
            message: error.to_string(),
        })?;
        inspections.push(FunctionInspection {
            name: definition.name.clone(),
            processor: runner.processor_name.clone(),
            source: format!(
                "{}/{}",
                runner.definition.trigger.database_name, runner.definition.trigger.container_name
            ),
            estimator,
            dead_letters: runner.dead_letters.clone(),
        });
    }
    Ok(inspections)
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Dead letters whose item was processed and which were deleted.
    pub n_replayed: usize,
    /// Dead letters whose item failed again (they stay), with the error.
    pub failures: Vec<(String, String)>,
}

/// Runs functions again on their dead-lettered items (those of `function`, or all; only
/// `id` if given): each success writes its outputs and deletes its dead letter.
///
/// # Errors
/// A function's configuration is invalid; a dead-letter container cannot be read.
pub async fn replay_dead_letters(
    app: &FunctionApp,
    options: &HostOptions,
    function: Option<&str>,
    id: Option<&str>,
) -> Result<ReplayReport, ConfigError> {
    let mut report = ReplayReport::default();
    for (definition, handler) in &app.functions {
        if function.is_some_and(|function| function != definition.name) {
            continue;
        }
        let (runner, _, _) =
            prepare(definition, handler, &app.settings, options, Mode::Run).await?;
        let dead_letters = runner
            .dead_letters
            .list(Some(&definition.name))
            .await
            .map_err(|error| ConfigError::Unavailable {
                function: definition.name.clone(),
                message: error.to_string(),
            })?;
        for dead_letter in dead_letters {
            let dead_letter_id = dead_letter
                .get("id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if id.is_some_and(|id| id != dead_letter_id) {
                continue;
            }
            match runner.replay(&dead_letter).await {
                Ok(()) => report.n_replayed += 1,
                Err(error) => report.failures.push((dead_letter_id, error)),
            }
        }
    }
    Ok(report)
}

fn start_from(definition: &FunctionDefinition) -> StartFrom {
    let trigger = &definition.trigger;
    if trigger.start_from_beginning {
        StartFrom::Beginning
    } else if let Some(time) = trigger.start_from_time {
        StartFrom::Time(time)
    } else {
        StartFrom::Now
    }
}

type Prepared = (
    Arc<FunctionRunner>,
    Arc<dyn tributary_processor::ChangeFeed>,
    Arc<dyn tributary_processor::LeaseContainer>,
);

/// Why a function is prepared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// To run it: missing containers are created where its options say so.
    Run,
    /// To look at its leases and dead letters: nothing is created, outputs are not checked.
    Inspect,
}

/// Resolves one function's settings and accounts and checks its containers.
async fn prepare(
    definition: &FunctionDefinition,
    handler: &Arc<dyn Handler>,
    settings: &Settings,
    options: &HostOptions,
    mode: Mode,
) -> Result<Prepared, ConfigError> {
    let name = definition.name.as_str();
    let mut definition = definition.clone();
    let expand = |text: &mut String| -> Result<(), ConfigError> {
        *text = settings.expand(name, text)?;
        Ok(())
    };
    let trigger = &mut definition.trigger;
    expand(&mut trigger.database_name)?;
    expand(&mut trigger.container_name)?;
    expand(&mut trigger.lease_container_name)?;
    if let Some(database) = &mut trigger.lease_database_name {
        expand(database)?;
    }
    for output in &mut definition.outputs {
        expand(&mut output.database_name)?;
        expand(&mut output.container_name)?;
    }
    for input in &mut definition.inputs {
        expand(&mut input.database_name)?;
        expand(&mut input.container_name)?;
    }
    let mut accounts: BTreeMap<String, Account> = BTreeMap::new();
    let mut account = |setting: &str| -> Result<Account, ConfigError> {
        if let Some(account) = accounts.get(setting) {
            return Ok(account.clone());
        }
        let value = settings.get(setting).ok_or_else(|| ConfigError::Setting {
            function: name.to_owned(),
            setting: setting.to_owned(),
            message: format!(
                "is not set; add it to {} Values or the environment",
                crate::settings::LOCAL_SETTINGS_FILE
            ),
        })?;
        let account = Account::resolve(&value, options.embedded.as_ref(), options.embedded_port)
            .map_err(|error| ConfigError::Setting {
                function: name.to_owned(),
                setting: setting.to_owned(),
                message: format!("is not a valid connection string: {error}"),
            })?;
        accounts.insert(setting.to_owned(), account.clone());
        Ok(account)
    };
    let unavailable = |message: String| ConfigError::Unavailable {
        function: name.to_owned(),
        message,
    };
    let trigger = &definition.trigger;
    let source = account(&trigger.connection)?;
    source
        .check_container(&trigger.database_name, &trigger.container_name)
        .await
        .map_err(|error| unavailable(format!("the trigger's container: {error}")))?;
    let lease_account = account(trigger.lease_connection())?;
    let leases = lease_account
        .lease_container(
            trigger.lease_database(),
            &trigger.lease_container_name,
            mode == Mode::Run && trigger.create_lease_container_if_not_exists,
        )
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let mut outputs = Vec::new();
    let checked_outputs = if mode == Mode::Run {
        definition.outputs.as_slice()
    } else {
        &[]
    };
    for output in checked_outputs {
        let output_account = account(&output.connection)?;
        let partition_key = output_account
            .output_container(
                &output.database_name,
                &output.container_name,
                &output.partition_key,
                output.create_if_not_exists,
            )
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        outputs.push(ResolvedOutput {
            parameter: output.parameter.clone(),
            account: output_account,
            database: output.database_name.clone(),
            container: output.container_name.clone(),
            partition_key,
        });
    }
    let mut inputs = Vec::new();
    for input in &definition.inputs {
        let input_account = account(&input.connection)?;
        input_account
            .check_container(&input.database_name, &input.container_name)
            .await
            .map_err(|error| {
                unavailable(format!("input binding '{}': {error}", input.parameter))
            })?;
        inputs.push(ResolvedInput {
            binding: input.clone(),
            account: input_account,
        });
    }
    let dead_letters = match mode {
        Mode::Run => DeadLetterBox::open(
            lease_account.clone(),
            trigger.lease_database(),
            &definition.dead_letter_container,
        )
        .await
        .map_err(|error| unavailable(format!("the dead-letter container: {error}")))?,
        Mode::Inspect => DeadLetterBox::existing(
            lease_account.clone(),
            trigger.lease_database(),
            &definition.dead_letter_container,
        ),
    };
    // Checked here so a bad filter names its function; the processor evaluates it where the
    // changes are read.
    if let Some(text) = &definition.filter {
        Query::parse_filter(text).map_err(|error| ConfigError::Function {
            function: name.to_owned(),
            message: format!("filter '{text}' is not a valid SQL condition: {error}"),
        })?;
    }
    let transactional = leases.supports_attached_writes()
        && outputs
            .iter()
            .all(|output| output.account.same_store(&lease_account));
    let feed = source.feed(&trigger.database_name, &trigger.container_name);
    let processor_name = trigger
        .lease_container_prefix
        .clone()
        .unwrap_or_else(|| definition.name.clone());
    let output_names: Arc<[String]> = definition
        .outputs
        .iter()
        .map(|output| output.parameter.clone())
        .collect();
    let runner = FunctionRunner {
        definition: Arc::new(definition),
        processor_name,
        handler: Arc::clone(handler),
        outputs,
        inputs,
        dead_letters,
        transactional,
        stats: Arc::new(FunctionStats::default()),
        output_names,
    };
    Ok((Arc::new(runner), feed, leases))
}
