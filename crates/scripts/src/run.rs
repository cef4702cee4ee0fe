//! The three ways a script runs: a stored procedure, a trigger, a user-defined function.

use std::cell::RefCell;
use std::rc::Rc;

use rquickjs::Function;
use serde_json::{Value, json};

use crate::context::DocumentContext;
use crate::engine::{Engine, ScriptLimits};
use crate::error::ScriptError;

/// What a stored procedure or trigger left behind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScriptOutput {
    /// The response body a stored procedure set (`None` when it set none).
    pub response_body: Option<Value>,
    /// The request body after the script: a pre-trigger may have changed it.
    pub request_body: Option<Value>,
    /// What `console.log` wrote, one line per call.
    pub log: String,
}

/// When a trigger runs, and what it sees.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerInput {
    /// Before the write: the request's body (the document, or `None` for a delete), which
    /// the trigger may replace.
    Pre {
        /// The document being written.
        request_body: Option<Value>,
    },
    /// After the write: the request's body and the response's (the document as stored).
    Post {
        /// The document as the request sent it (after any pre-trigger).
        request_body: Option<Value>,
        /// The document as written, with its system properties.
        response_body: Option<Value>,
    },
}

fn run(
    kind: &str,
    source: &str,
    input: Value,
    documents: Rc<RefCell<dyn DocumentContext>>,
    limits: ScriptLimits,
) -> Result<ScriptOutput, ScriptError> {
    let (self_link, alt_link) = documents.borrow().collection_links();
    let mut input = input;
    input["selfLink"] = Value::from(self_link);
    input["altLink"] = Value::from(alt_link);
    let started = std::time::Instant::now();
    let engine = Engine::new(limits, Some(documents))?;
    let output = engine.with(|ctx| {
        let run: Function = ctx.globals().get("__tributary_run")?;
        run.call::<_, String>((kind, source, input.to_string()))
    });
    tracing::debug!(
        kind,
        elapsed_ms = started.elapsed().as_millis(),
        ok = output.is_ok(),
        "ran a script"
    );
    let output = output?;
    let mut output: Value = serde_json::from_str(&output)
        .map_err(|e| ScriptError::Engine(format!("the run's output is not JSON: {e}")))?;
    Ok(ScriptOutput {
        response_body: output.get_mut("body").map(Value::take),
        request_body: output.get_mut("request").map(Value::take),
        log: output["log"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Runs a stored procedure's `source` (a JavaScript function) with `parameters` as its
/// arguments, against `documents`.
///
/// # Errors
/// [`ScriptError::Thrown`] when the script throws (or an operation fails with no callback);
/// [`ScriptError::TimedOut`], [`ScriptError::OutOfMemory`] past `limits`.
pub fn run_stored_procedure(
    source: &str,
    parameters: Vec<Value>,
    documents: Rc<RefCell<dyn DocumentContext>>,
    limits: ScriptLimits,
) -> Result<ScriptOutput, ScriptError> {
    let input = json!({ "request": parameters, "operationType": "ExecuteJavaScript" });
    run("sproc", source, input, documents, limits)
}

/// Runs a trigger's `source` for an item write of `operation_type` (`Create`, `Replace`,
/// `Upsert`, `Delete`), against `documents`.
///
/// # Errors
/// As [`run_stored_procedure`].
pub fn run_trigger(
    source: &str,
    operation_type: &str,
    trigger: TriggerInput,
    documents: Rc<RefCell<dyn DocumentContext>>,
    limits: ScriptLimits,
) -> Result<ScriptOutput, ScriptError> {
    let (kind, request, response) = match trigger {
        TriggerInput::Pre { request_body } => ("pre", request_body, None),
        TriggerInput::Post {
            request_body,
            response_body,
        } => ("post", request_body, response_body),
    };
    let input = json!({
        "request": request,
        "response": response,
        "operationType": operation_type,
    });
    run(kind, source, input, documents, limits)
}

/// The user-defined functions of a container, compiled once for one query: each call runs
/// in the same runtime, within one time limit for them all.
pub struct UserDefinedFunctions {
    engine: Engine,
}

impl UserDefinedFunctions {
    /// Compiles `functions` (name, JavaScript function source).
    ///
    /// # Errors
    /// [`ScriptError::Thrown`] for a source that is not a function (a syntax error, ...).
    pub fn new<'a>(
        functions: impl IntoIterator<Item = (&'a str, &'a str)>,
        limits: ScriptLimits,
    ) -> Result<Self, ScriptError> {
        let engine = Engine::new(limits, None)?;
        for (name, source) in functions {
            engine.with(|ctx| {
                let define: Function = ctx.globals().get("__tributary_define_udf")?;
                define.call::<_, ()>((name, source))
            })?;
        }
        Ok(UserDefinedFunctions { engine })
    }

    /// Calls function `name` (one of those compiled) with `arguments`; `None` when it
    /// returns `undefined`.
    ///
    /// # Errors
    /// As [`run_stored_procedure`].
    pub fn call(&self, name: &str, arguments: &[Value]) -> Result<Option<Value>, ScriptError> {
        let arguments = Value::Array(arguments.to_vec()).to_string();
        let result: Option<String> = self.engine.with(|ctx| {
            let call: Function = ctx.globals().get("__tributary_call_udf")?;
            call.call((name, arguments))
        })?;
        result
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| {
                    ScriptError::Engine(format!("the function's result is not JSON: {e}"))
                })
            })
            .transpose()
    }
}
