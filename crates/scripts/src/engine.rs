//! One QuickJS runtime per run: its limits, the host function the prelude calls, and the
//! translation of what the script threw into a [`ScriptError`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rquickjs::{Context, Ctx, Function, Runtime};
use serde_json::{Value, json};

use crate::context::{DocumentContext, DocumentError, DocumentWrite};
use crate::error::ScriptError;

/// The Cosmos DB server-side API, in JavaScript over the host function.
const PRELUDE: &str = include_str!("prelude.js");

/// What one run may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Wall-clock time, checked by QuickJS's interrupt handler (every few thousand
    /// instructions), so a loop that never ends is stopped.
    pub max_duration: Duration,
    /// Memory the runtime may allocate (its heap: objects, strings, the script's code).
    pub max_memory_bytes: usize,
    /// Native stack the interpreter may use (deep recursion fails with an error past it).
    pub max_stack_bytes: usize,
}

impl Default for ScriptLimits {
    /// 5 s (Cosmos DB's own bound on a stored procedure), 64 MiB, 512 KiB of stack.
    fn default() -> Self {
        ScriptLimits {
            max_duration: Duration::from_secs(5),
            max_memory_bytes: 64 * 1024 * 1024,
            max_stack_bytes: 512 * 1024,
        }
    }
}

/// A runtime and context with the limits set, the prelude loaded and, if given, the
/// document context reachable through the host function.
pub(crate) struct Engine {
    // Field order: the context must go before its runtime.
    context: Context,
    _runtime: Runtime,
    timed_out: Arc<AtomicBool>,
    limits: ScriptLimits,
}

impl Engine {
    pub(crate) fn new(
        limits: ScriptLimits,
        documents: Option<Rc<RefCell<dyn DocumentContext>>>,
    ) -> Result<Engine, ScriptError> {
        let runtime = Runtime::new()?;
        runtime.set_memory_limit(limits.max_memory_bytes);
        runtime.set_max_stack_size(limits.max_stack_bytes);
        let timed_out = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + limits.max_duration;
        let flag = Arc::clone(&timed_out);
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let past = Instant::now() >= deadline;
            if past {
                flag.store(true, Ordering::Relaxed);
            }
            past
        })));
        let context = Context::full(&runtime)?;
        let engine = Engine {
            context,
            _runtime: runtime,
            timed_out,
            limits,
        };
        engine.with(|ctx| {
            let host = Function::new(ctx.clone(), move |operation: String, arguments: String| {
                let reply = match &documents {
                    Some(documents) => {
                        host_call(&mut *documents.borrow_mut(), &operation, &arguments)
                    }
                    None => Err(DocumentError::new(
                        400,
                        "a user-defined function cannot reach documents",
                    )),
                };
                match reply {
                    Ok(result) => json!({ "ok": result }).to_string(),
                    Err(error) => json!({
                        "err": { "number": error.status, "message": error.message }
                    })
                    .to_string(),
                }
            })?;
            ctx.globals().set("__tributary_host", host)?;
            ctx.eval::<(), _>(PRELUDE)
        })?;
        Ok(engine)
    }

    /// Runs `work` in the context; what the script threw becomes a [`ScriptError`].
    pub(crate) fn with<T>(
        &self,
        work: impl for<'js> FnOnce(&Ctx<'js>) -> rquickjs::Result<T>,
    ) -> Result<T, ScriptError> {
        self.context.with(|ctx| {
            work(&ctx).map_err(|error| {
                if self.timed_out.load(Ordering::Relaxed) {
                    return ScriptError::TimedOut(self.limits.max_duration);
                }
                match error {
                    rquickjs::Error::Exception => thrown(&ctx, self.limits.max_memory_bytes),
                    rquickjs::Error::Allocation => {
                        ScriptError::OutOfMemory(self.limits.max_memory_bytes)
                    }
                    other => ScriptError::Engine(other.to_string()),
                }
            })
        })
    }
}

/// What the script threw, as text: `Name: message` for an `Error`, the value otherwise.
fn thrown(ctx: &Ctx<'_>, max_memory_bytes: usize) -> ScriptError {
    let value = ctx.catch();
    if let Some(exception) = value.as_exception() {
        let message = exception.message().unwrap_or_default();
        if message == "out of memory" {
            return ScriptError::OutOfMemory(max_memory_bytes);
        }
        let name: Option<String> = exception.get("name").ok();
        return ScriptError::Thrown(match name {
            Some(name) if !name.is_empty() => format!("{name}: {message}"),
            _ => message,
        });
    }
    if let Some(text) = value.as_string() {
        return ScriptError::Thrown(text.to_string().unwrap_or_default());
    }
    let text = ctx
        .json_stringify(value)
        .ok()
        .flatten()
        .and_then(|text| text.to_string().ok())
        .unwrap_or_else(|| "a value that is not JSON".to_owned());
    ScriptError::Thrown(text)
}

/// One document operation asked for by the prelude: `arguments` is its JSON.
fn host_call(
    documents: &mut dyn DocumentContext,
    operation: &str,
    arguments: &str,
) -> Result<Value, DocumentError> {
    let arguments: Value = serde_json::from_str(arguments)
        .map_err(|e| DocumentError::new(400, format!("bad arguments to {operation}: {e}")))?;
    let link = arguments["link"]
        .as_str()
        .ok_or_else(|| DocumentError::new(400, format!("{operation} needs a link (a string)")))?;
    let options = &arguments["options"];
    let etag = match &options["etag"] {
        Value::Null => None,
        Value::String(etag) => Some(etag.as_str()),
        other => {
            return Err(DocumentError::new(
                400,
                format!("the 'etag' option must be a string, not {other}"),
            ));
        }
    };
    let document = || -> Result<Value, DocumentError> {
        match &arguments["document"] {
            Value::Object(_) => Ok(arguments["document"].clone()),
            other => Err(DocumentError::new(
                400,
                format!("a document must be a JSON object, not {other}"),
            )),
        }
    };
    match operation {
        "create" | "upsert" => {
            let mut document = document()?;
            if document.get("id").is_none() {
                if options["disableAutomaticIdGeneration"] == Value::Bool(true) {
                    return Err(DocumentError::new(
                        400,
                        "the document has no 'id' and disableAutomaticIdGeneration is set",
                    ));
                }
                document["id"] = Value::from(uuid::Uuid::new_v4().to_string());
            }
            let kind = if operation == "create" {
                DocumentWrite::Create
            } else {
                DocumentWrite::Upsert
            };
            documents.write(kind, link, document, etag)
        }
        "replace" => documents.write(DocumentWrite::Replace, link, document()?, etag),
        "read" => documents.read(link),
        "delete" => documents.delete(link, etag).map(|()| Value::Null),
        "query" => {
            let (text, parameters) = match &arguments["query"] {
                Value::String(text) => (text.as_str(), Value::Array(Vec::new())),
                Value::Object(spec) => (
                    spec.get("query").and_then(Value::as_str).ok_or_else(|| {
                        DocumentError::new(400, "a query object needs a string 'query'")
                    })?,
                    spec.get("parameters")
                        .cloned()
                        .unwrap_or(Value::Array(Vec::new())),
                ),
                other => {
                    return Err(DocumentError::new(
                        400,
                        format!("a query must be a string or {{query, parameters}}, not {other}"),
                    ));
                }
            };
            documents.query(link, text, &parameters).map(Value::Array)
        }
        "readAll" => documents.read_all(link).map(Value::Array),
        other => Err(DocumentError::new(
            400,
            format!("'{other}' is not a document operation"),
        )),
    }
}
