//! `tributary.toml`: an app definition for functions in any language, and Tributary's own
//! settings for functions of a Python app.
//!
//! ```toml
//! # A worker process speaking the JSON-lines protocol serves the functions below
//! # (omit it in a Python app directory: the Python worker serves function_app.py).
//! [worker]
//! command = ["node", "worker.js"]
//!
//! [[function]]
//! name = "project_orders"
//! handler = "worker"                    # or "http://127.0.0.1:7071/project"
//! trigger = { connection = "CosmosDBConnection", database_name = "shop", container_name = "orders", lease_container_name = "leases", create_lease_container_if_not_exists = true }
//! outputs = [{ name = "view", connection = "CosmosDBConnection", database_name = "shop", container_name = "view", create_if_not_exists = true }]
//! retry = { strategy = "fixed_delay", max_retry_count = 2, delay_interval = "00:00:01" }
//! filter = "c.status = 'shipped'"       # changes that do not match are skipped
//! timeout_ms = 30000
//! dead_letter_container = "deadletter"
//!
//! # In a Python app: Tributary settings for a function of function_app.py.
//! [[function]]
//! name = "send_order_notifications"
//! filter = "c.status IN ('shipped', 'delivered', 'cancelled')"
//! ```
//!
//! Option names are those of the `azure-functions` decorators (snake_case); they are read
//! exactly as the same options in `function.json`.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::definition::{FunctionDefinition, ReadFunction, RetryPolicy, read_function};
use crate::error::ConfigError;

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "tributary.toml";

/// A parsed `tributary.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The worker process for `handler = "worker"` functions.
    pub worker: Option<WorkerSection>,
    /// Functions (or settings for a Python app's functions).
    #[serde(default, rename = "function")]
    pub functions: Vec<FunctionSection>,
}

/// `[worker]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// The program and its arguments, run in the app directory.
    pub command: Vec<String>,
}

/// One `[[function]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSection {
    /// The function's name.
    pub name: String,
    /// `"worker"`, or an `http://` URL.
    pub handler: Option<String>,
    /// The Cosmos DB trigger's options (absent: settings for a Python function).
    pub trigger: Option<toml::Table>,
    /// Cosmos DB output bindings (each with `name`).
    #[serde(default)]
    pub outputs: Vec<toml::Table>,
    /// Cosmos DB input bindings (each with `name`).
    #[serde(default)]
    pub inputs: Vec<toml::Table>,
    /// The retry policy (`strategy`, `max_retry_count`, intervals).
    pub retry: Option<toml::Table>,
    /// A SQL condition over `c`.
    pub filter: Option<String>,
    /// The invocation timeout.
    pub timeout_ms: Option<u64>,
    /// The dead-letter container.
    pub dead_letter_container: Option<String>,
}

/// Where a manifest function's batches go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandlerRef {
    /// The `[worker]` process.
    Worker,
    /// An HTTP endpoint.
    Http(String),
}

impl Manifest {
    /// Reads `APP_DIR/tributary.toml`, if there is one.
    ///
    /// # Errors
    /// The file exists but is not a valid manifest.
    pub fn load(app_dir: &Path) -> Result<Option<Manifest>, ConfigError> {
        let path = app_dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(ConfigError::App(format!(
                    "cannot read {}: {error}",
                    path.display()
                )));
            }
        };
        toml::from_str(&text).map(Some).map_err(|error| {
            ConfigError::App(format!(
                "{}: {}",
                path.display(),
                error.to_string().lines().collect::<Vec<_>>().join(" ")
            ))
        })
    }
}

impl FunctionSection {
    /// The function defined by this section (it has a `trigger`), and its handler.
    ///
    /// # Errors
    /// A missing handler; the trigger or a binding is invalid.
    pub fn definition(&self) -> Result<(FunctionDefinition, HandlerRef), ConfigError> {
        let bad = |message: String| ConfigError::Function {
            function: self.name.clone(),
            message,
        };
        let trigger = self
            .trigger
            .as_ref()
            .ok_or_else(|| bad("has no trigger".into()))?;
        let handler = match self.handler.as_deref() {
            Some("worker") => HandlerRef::Worker,
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                HandlerRef::Http(url.to_owned())
            }
            Some(other) => {
                return Err(bad(format!(
                    "handler '{other}' is neither \"worker\" nor an http:// URL"
                )));
            }
            None => return Err(bad("has no handler (\"worker\" or an http:// URL)".into())),
        };
        let mut bindings = vec![binding(trigger, "cosmosDBTrigger", "in", "documents")?];
        for output in &self.outputs {
            bindings.push(binding(output, "cosmosDB", "out", "")?);
        }
        for input in &self.inputs {
            bindings.push(binding(input, "cosmosDB", "in", "")?);
        }
        let retry = self.retry.as_ref().map(toml_to_json);
        let ReadFunction::Run(definition) = read_function(&self.name, &bindings, retry.as_ref())?
        else {
            return Err(bad("is not a Cosmos DB trigger function".into()));
        };
        let mut definition = *definition;
        self.apply_settings(&mut definition)?;
        Ok((definition, handler))
    }

    /// Applies `retry`, `filter`, `timeout_ms` and `dead_letter_container` to a function.
    ///
    /// # Errors
    /// A malformed retry policy, a zero timeout.
    pub fn apply_settings(&self, definition: &mut FunctionDefinition) -> Result<(), ConfigError> {
        if let Some(retry) = &self.retry {
            definition.retry = RetryPolicy::from_azure_settings(&self.name, &toml_to_json(retry))?;
        }
        if let Some(filter) = &self.filter {
            definition.filter = Some(filter.clone());
        }
        if let Some(timeout_ms) = self.timeout_ms {
            if timeout_ms == 0 {
                return Err(ConfigError::Function {
                    function: self.name.clone(),
                    message: "timeout_ms must be more than 0".into(),
                });
            }
            definition.timeout = Duration::from_millis(timeout_ms);
        }
        if let Some(container) = &self.dead_letter_container {
            definition.dead_letter_container = container.clone();
        }
        Ok(())
    }
}

/// A `function.json` binding from a toml table with snake_case option names.
fn binding(
    table: &toml::Table,
    kind: &str,
    direction: &str,
    default_name: &str,
) -> Result<Value, ConfigError> {
    let mut binding = Map::new();
    binding.insert("type".into(), Value::String(kind.into()));
    binding.insert("direction".into(), Value::String(direction.into()));
    if !default_name.is_empty() {
        binding.insert("name".into(), Value::String(default_name.into()));
    }
    for (key, value) in table {
        let key = match key.as_str() {
            "arg_name" => "name".to_owned(),
            other => camel_case(other),
        };
        binding.insert(key, toml_to_json_value(value));
    }
    Ok(Value::Object(binding))
}

/// `lease_container_name` → `leaseContainerName`.
fn camel_case(snake: &str) -> String {
    let mut camel = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    camel
}

fn toml_to_json(table: &toml::Table) -> Value {
    Value::Object(
        table
            .iter()
            .map(|(key, value)| (key.clone(), toml_to_json_value(value)))
            .collect(),
    )
}

fn toml_to_json_value(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(text) => Value::String(text.clone()),
        toml::Value::Integer(number) => Value::from(*number),
        toml::Value::Float(number) => Value::from(*number),
        toml::Value::Boolean(flag) => Value::Bool(*flag),
        toml::Value::Datetime(time) => Value::String(time.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json_value).collect()),
        toml::Value::Table(table) => toml_to_json(table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_function_reads_like_its_function_json() {
        let manifest: Manifest = toml::from_str(
            r#"
            [worker]
            command = ["node", "worker.js"]
            [[function]]
            name = "project"
            handler = "worker"
            trigger = { connection = "C", database_name = "shop", container_name = "orders", max_items_per_invocation = 50, start_from_beginning = true }
            outputs = [{ name = "view", connection = "C", database_name = "shop", container_name = "view", create_if_not_exists = true }]
            filter = "c.total > 10"
            timeout_ms = 2000
            "#,
        )
        .expect("the manifest parses");
        let (definition, handler) = manifest.functions[0]
            .definition()
            .expect("a valid function");
        assert_eq!(handler, HandlerRef::Worker);
        assert_eq!(definition.trigger.parameter, "documents");
        assert_eq!(definition.trigger.max_items_per_invocation, Some(50));
        assert!(definition.trigger.start_from_beginning);
        assert_eq!(definition.trigger.lease_container_name, "leases");
        assert_eq!(definition.outputs[0].container_name, "view");
        assert!(definition.outputs[0].create_if_not_exists);
        assert_eq!(definition.filter.as_deref(), Some("c.total > 10"));
        assert_eq!(definition.timeout, Duration::from_secs(2));
    }

    #[test]
    fn both_start_options_are_refused_as_azure_does() {
        let manifest: Manifest = toml::from_str(
            r#"
            [[function]]
            name = "f"
            handler = "worker"
            trigger = { connection = "C", database_name = "d", container_name = "c", start_from_beginning = true, start_from_time = "2026-01-01T00:00:00Z" }
            "#,
        )
        .expect("the manifest parses");
        let error = manifest.functions[0].definition().expect_err("refused");
        assert!(error.to_string().contains("both set"), "{error}");
    }
}
