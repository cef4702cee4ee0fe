//! The functions host: runs functions on Cosmos DB change feed triggers, the way Azure
//! Functions does, on Tributary's embedded store, a `tributary serve`, or Azure Cosmos DB.
//!
//! An app is a directory. A Python `function_app.py` written with the `azure-functions`
//! package runs unchanged: Tributary's Python worker ([`python`]) imports it with the real
//! package, and the host reads each function's bindings from it. A `tributary.toml`
//! ([`manifest`]) defines functions in any other language, served by a worker process
//! speaking JSON lines ([`process`], `docs/functions-protocol.md`) or by an HTTP endpoint
//! ([`http_handler`]); Rust programs register async closures ([`handler::RustHandler`]).
//! `local.settings.json` gives the settings the bindings name ([`settings`]).
//!
//! # How a batch is processed
//!
//! Each function gets its own change feed processor (its leases carry the function's name,
//! or its `lease_container_prefix`), so several functions on one container each see every
//! change, and several hosts running the same app share the leases. For each batch
//! (`runner.rs`):
//!
//! 1. changes that do not match the function's filter are skipped (they still advance the
//!    lease);
//! 2. input bindings are read, and the function is invoked; a failure is retried by the
//!    function's retry policy (its `@app.retry`, or 3 retries with exponential back-off);
//! 3. when the retries run out, the batch is **bisected**: halves are retried once each
//!    until the failing items stand alone, and those go to the **dead-letter container**
//!    with their error, traceback, attempt count and lease position; the rest of the batch
//!    is processed;
//! 4. the outputs, the dead letters and the lease checkpoint are written. When they all live
//!    in the host's embedded store they commit in **one transaction**: a crash never applies
//!    a batch's outputs twice. Elsewhere they are written one after another, outputs first:
//!    at least once, as upserts.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use tributary_functions::{FunctionApp, FunctionHost, HostOptions};
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let app = FunctionApp::load(std::path::Path::new("examples/functions-seed")).await?;
//! let host = FunctionHost::start(app, HostOptions::default()).await?;
//! // ... until shutdown:
//! host.stop().await;
//! # Ok(()) }
//! ```
//!
//! # What it is not
//!
//! It runs Cosmos DB triggers only: functions with other triggers (HTTP, timer, queue) are
//! reported as skipped at start. It is not Azure's gRPC worker protocol: the Python worker
//! is Tributary's own, built on the public `azure-functions` package.

pub mod account;
pub mod dead_letter;
pub mod definition;
mod error;
pub mod handler;
mod host;
pub mod http_handler;
pub mod manifest;
pub mod metrics;
pub mod process;
pub mod python;
mod runner;
pub mod settings;

pub use error::{ConfigError, HostError};
pub use host::{
    FunctionApp, FunctionHost, FunctionInspection, FunctionStatus, HostHandle, HostOptions,
    LAG_INTERVAL, MAX_WORKER_PROCESSES, PYTHON_APP_FILE, ReplayReport,
    WORKER_PROCESS_COUNT_SETTING, default_instance_name, inspect, replay_dead_letters,
};
