//! What runs a function: the [`Handler`] interface the host calls for each batch, and the
//! in-process Rust handler. Worker processes ([`crate::process`]) and HTTP endpoints
//! ([`crate::http_handler`]) implement it too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tributary_processor::{BoxFuture, Change};

/// One call of a function with a batch of changes.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The function's name.
    pub function: Arc<str>,
    /// The trigger parameter's name (`documents` in the seed app).
    pub trigger_parameter: Arc<str>,
    /// The changes, in feed order.
    pub changes: Vec<Change>,
    /// Documents read for each input binding, by parameter name.
    pub inputs: BTreeMap<String, Vec<Value>>,
    /// The names of the function's output bindings.
    pub outputs: Arc<[String]>,
    /// The lease the batch came from.
    pub lease: String,
    /// 1 for the first attempt of this batch, then 2, 3, ...
    pub attempt: u32,
    /// A unique id for this call (for logs).
    pub invocation_id: String,
}

/// What a successful invocation produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InvocationOutput {
    /// The documents to write, by output binding name (each written as an upsert).
    pub outputs: BTreeMap<String, Vec<Value>>,
    /// Ids of the changes the function reported as failed without failing the batch.
    pub failed_items: Vec<String>,
}

/// Why an invocation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationFailure {
    /// One line: the error type and message.
    pub error: String,
    /// The traceback or cause chain, when the handler gives one.
    pub traceback: Option<String>,
    /// The handler ran past its timeout and was stopped.
    pub timed_out: bool,
}

impl InvocationFailure {
    /// A failure with a message only.
    pub fn new(error: impl Into<String>) -> Self {
        InvocationFailure {
            error: error.into(),
            traceback: None,
            timed_out: false,
        }
    }

    /// The failure of a handler stopped after `timeout`.
    pub fn timed_out(function: &str, timeout: Duration) -> Self {
        InvocationFailure {
            error: format!(
                "function '{function}' ran past its timeout of {} ms and was stopped",
                timeout.as_millis()
            ),
            traceback: None,
            timed_out: true,
        }
    }
}

/// The result of one invocation.
pub type InvocationResult = Result<InvocationOutput, InvocationFailure>;

/// Runs functions. One handler may serve several functions (a worker process runs every
/// function of its app).
pub trait Handler: Send + Sync + 'static {
    /// Runs one invocation; a handler that has not answered after `timeout` is stopped and
    /// the invocation fails with [`InvocationFailure::timed_out`].
    fn invoke(&self, invocation: Invocation, timeout: Duration) -> BoxFuture<'_, InvocationResult>;

    /// Stops the handler's resources (worker processes); invocations after it fail.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The future a Rust handler returns.
pub type RustHandlerFuture = BoxFuture<'static, InvocationResult>;

/// A function written in Rust: an async closure registered with the host.
pub struct RustHandler {
    call: Box<dyn Fn(Invocation) -> RustHandlerFuture + Send + Sync>,
}

impl RustHandler {
    /// Wraps an async closure.
    pub fn new<F, Fut>(call: F) -> Self
    where
        F: Fn(Invocation) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = InvocationResult> + Send + 'static,
    {
        RustHandler {
            call: Box::new(move |invocation| Box::pin(call(invocation))),
        }
    }
}

impl Handler for RustHandler {
    fn invoke(&self, invocation: Invocation, timeout: Duration) -> BoxFuture<'_, InvocationResult> {
        let function = Arc::clone(&invocation.function);
        let call = (self.call)(invocation);
        Box::pin(async move {
            match tokio::time::timeout(timeout, call).await {
                Ok(result) => result,
                Err(_) => Err(InvocationFailure::timed_out(&function, timeout)),
            }
        })
    }
}
