//! A function as the host runs it: its Cosmos DB trigger with the Azure Functions options and
//! defaults, its input and output bindings, its retry policy, filter and timeout; read from
//! the `function.json` bindings that the `azure-functions` package (or `tributary.toml`)
//! gives.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::ConfigError;

/// Default lease container name (Azure's `leaseContainerName` default).
pub const DEFAULT_LEASE_CONTAINER: &str = "leases";
/// Default dead-letter container name (in the lease database).
pub const DEFAULT_DEAD_LETTER_CONTAINER: &str = "deadletter";
/// Azure's default `feedPollDelay`: the wait between polls where changes cannot be pushed.
pub const DEFAULT_FEED_POLL_DELAY: Duration = Duration::from_millis(5_000);
/// Azure's default `leaseAcquireInterval`.
pub const DEFAULT_LEASE_ACQUIRE_INTERVAL: Duration = Duration::from_millis(13_000);
/// Azure's default `leaseExpirationInterval`.
pub const DEFAULT_LEASE_EXPIRATION_INTERVAL: Duration = Duration::from_millis(60_000);
/// Azure's default `leaseRenewInterval`.
pub const DEFAULT_LEASE_RENEW_INTERVAL: Duration = Duration::from_millis(17_000);
/// Default timeout of one invocation (Azure's default function timeout is 5 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Most items one invocation gets, whatever `maxItemsPerInvocation` says.
pub const MAX_ITEMS_PER_INVOCATION: usize = 10_000;
/// Most retries a retry policy may ask for.
pub const MAX_RETRY_COUNT: u32 = 100;

/// A function bound to a Cosmos DB trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDefinition {
    /// The function's name (its processor name unless `lease_container_prefix` is set).
    pub name: String,
    /// Where its changes come from and where its leases live.
    pub trigger: CosmosTrigger,
    /// Documents read before each invocation.
    pub inputs: Vec<CosmosInput>,
    /// Containers its outputs are written to.
    pub outputs: Vec<CosmosOutput>,
    /// How failed batches are retried before the failing items are dead-lettered.
    pub retry: RetryPolicy,
    /// A SQL condition (`WHERE` clause without the keyword, over `c`); changes that do not
    /// match are skipped, and still advance the lease.
    pub filter: Option<String>,
    /// The longest one invocation may run.
    pub timeout: Duration,
    /// The container dead-lettered items go to (in the lease database).
    pub dead_letter_container: String,
}

/// A Cosmos DB trigger's options, with the names of the `azure-functions` decorator.
#[derive(Clone, Debug, PartialEq)]
pub struct CosmosTrigger {
    /// The trigger parameter's name.
    pub parameter: String,
    /// The setting that holds the monitored account's connection string.
    pub connection: String,
    /// The monitored database.
    pub database_name: String,
    /// The monitored container.
    pub container_name: String,
    /// The setting for the lease account (default: `connection`).
    pub lease_connection: Option<String>,
    /// The lease database (default: `database_name`).
    pub lease_database_name: Option<String>,
    /// The lease container.
    pub lease_container_name: String,
    /// A prefix for this function's leases: its processor name (default: the function name).
    pub lease_container_prefix: Option<String>,
    /// Create the lease container (partition key `/id`) if it does not exist.
    pub create_lease_container_if_not_exists: bool,
    /// Most changes one invocation gets.
    pub max_items_per_invocation: Option<usize>,
    /// Start from the beginning of the feed instead of from now (new leases only).
    pub start_from_beginning: bool,
    /// Start from changes at or after this time (new leases only).
    pub start_from_time: Option<SystemTime>,
    /// The wait between polls where changes cannot be pushed.
    pub feed_poll_delay: Duration,
    /// How often a host looks for leases to take.
    pub lease_acquire_interval: Duration,
    /// How long a lease whose owner stopped renewing it stays that owner's.
    pub lease_expiration_interval: Duration,
    /// How often owned leases are renewed.
    pub lease_renew_interval: Duration,
}

impl CosmosTrigger {
    /// The setting naming the lease account.
    pub fn lease_connection(&self) -> &str {
        self.lease_connection.as_deref().unwrap_or(&self.connection)
    }

    /// The lease database.
    pub fn lease_database(&self) -> &str {
        self.lease_database_name
            .as_deref()
            .unwrap_or(&self.database_name)
    }
}

/// A Cosmos DB output binding: what the function sets is upserted into the container.
#[derive(Clone, Debug, PartialEq)]
pub struct CosmosOutput {
    /// The parameter's name.
    pub parameter: String,
    /// The setting with the account's connection string.
    pub connection: String,
    /// The database.
    pub database_name: String,
    /// The container.
    pub container_name: String,
    /// Create the database and container if missing.
    pub create_if_not_exists: bool,
    /// The partition key path for a container created here (Azure's default `/id`).
    pub partition_key: String,
}

/// A Cosmos DB input binding: documents read before each invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct CosmosInput {
    /// The parameter's name.
    pub parameter: String,
    /// The setting with the account's connection string.
    pub connection: String,
    /// The database.
    pub database_name: String,
    /// The container.
    pub container_name: String,
    /// What to read.
    pub read: InputRead,
}

/// What an input binding reads.
#[derive(Clone, Debug, PartialEq)]
pub enum InputRead {
    /// One document by id and partition key (absent: an empty list).
    Point {
        /// The id.
        id: String,
        /// The partition key value (default: the id).
        partition_key: Option<String>,
    },
    /// The documents a query returns.
    Query {
        /// The SQL text.
        sql: String,
        /// The partition key to scope it to.
        partition_key: Option<String>,
    },
}

/// How a failed batch is retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retry_count: u32,
    /// The waits between attempts.
    pub backoff: Backoff,
}

/// The wait before each retry.
#[derive(Clone, Debug, PartialEq)]
pub enum Backoff {
    /// The same wait every time.
    Fixed(Duration),
    /// `minimum` doubled per retry, at most `maximum`.
    Exponential {
        /// The first wait.
        minimum: Duration,
        /// The longest wait.
        maximum: Duration,
    },
}

impl Default for RetryPolicy {
    /// The policy of functions that declare none: 3 retries, 500 ms doubling up to 10 s.
    fn default() -> Self {
        RetryPolicy {
            max_retry_count: 3,
            backoff: Backoff::Exponential {
                minimum: Duration::from_millis(500),
                maximum: Duration::from_secs(10),
            },
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        match &self.backoff {
            Backoff::Fixed(delay) => *delay,
            Backoff::Exponential { minimum, maximum } => {
                let factor = 1u32 << retry.saturating_sub(1).min(20);
                minimum.saturating_mul(factor).min(*maximum)
            }
        }
    }

    /// Reads the `retry_policy` settings the `azure-functions` package records
    /// (`strategy`, `max_retry_count`, `delay_interval` or `minimum_interval` and
    /// `maximum_interval`, intervals as `HH:MM:SS`; values may be strings or numbers).
    ///
    /// # Errors
    /// An unknown strategy, a missing or malformed field.
    pub fn from_azure_settings(function: &str, settings: &Value) -> Result<Self, ConfigError> {
        let bad = |message: String| ConfigError::Function {
            function: function.to_owned(),
            message,
        };
        let field = |name: &str| -> Option<String> {
            match settings.get(name)? {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            }
        };
        let max_retry_count = field("max_retry_count")
            .ok_or_else(|| bad("the retry policy has no max_retry_count".into()))?;
        let max_retry_count: i64 = max_retry_count.trim().parse().map_err(|_| {
            bad(format!(
                "retry max_retry_count '{max_retry_count}' is not a whole number"
            ))
        })?;
        // Azure reads -1 as "retry forever"; here every retry count is bounded.
        let max_retry_count = if max_retry_count < 0 {
            MAX_RETRY_COUNT
        } else {
            u32::try_from(max_retry_count)
                .unwrap_or(MAX_RETRY_COUNT)
                .min(MAX_RETRY_COUNT)
        };
        let interval = |name: &str| -> Result<Duration, ConfigError> {
            let text = field(name).ok_or_else(|| bad(format!("the retry policy has no {name}")))?;
            parse_interval(&text)
                .ok_or_else(|| bad(format!("retry {name} '{text}' is not HH:MM:SS")))
        };
        let strategy = field("strategy").unwrap_or_default();
        let backoff = match strategy.to_ascii_lowercase().as_str() {
            "fixed_delay" | "fixeddelay" => Backoff::Fixed(interval("delay_interval")?),
            "exponential_backoff" | "exponentialbackoff" => Backoff::Exponential {
                minimum: interval("minimum_interval")?,
                maximum: interval("maximum_interval")?,
            },
            other => {
                return Err(bad(format!(
                    "retry strategy '{other}' is unknown (fixed_delay or exponential_backoff)"
                )));
            }
        };
        Ok(RetryPolicy {
            max_retry_count,
            backoff,
        })
    }
}

/// Parses an interval: `HH:MM:SS` (with optional `.fff`), `D.HH:MM:SS`, or milliseconds.
pub fn parse_interval(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return Some(Duration::from_millis(ms));
    }
    let (days, rest) = match text.split_once('.') {
        Some((days, rest)) if rest.contains(':') && !days.contains(':') => {
            (days.parse::<u64>().ok()?, rest)
        }
        _ => (0, text),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let [hours, minutes, seconds] = parts.as_slice() else {
        return None;
    };
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: f64 = seconds.parse().ok()?;
    if minutes >= 60 || !(0.0..60.0).contains(&seconds) {
        return None;
    }
    let whole = (days * 24 + hours) * 3600 + minutes * 60;
    Some(Duration::from_secs(whole) + Duration::from_secs_f64(seconds))
}

/// Why a function is not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFunction {
    /// The function.
    pub name: String,
    /// Why (its trigger type).
    pub reason: String,
}

/// A function read from its bindings: run, or skipped with a reason.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadFunction {
    /// A Cosmos DB trigger function.
    Run(Box<FunctionDefinition>),
    /// Another trigger type.
    Skip(SkippedFunction),
}

/// Reads a function from its `function.json` bindings (Azure's camelCase names) and its
/// retry settings.
///
/// # Errors
/// A Cosmos DB binding without a required option, an option of the wrong type, an unknown
/// binding type on a Cosmos DB trigger function, both start options set.
pub fn read_function(
    name: &str,
    bindings: &[Value],
    retry: Option<&Value>,
) -> Result<ReadFunction, ConfigError> {
    let bad = |message: String| ConfigError::Function {
        function: name.to_owned(),
        message,
    };
    let trigger_bindings: Vec<&Value> = bindings
        .iter()
        .filter(|binding| {
            binding
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|kind| kind.ends_with("Trigger"))
        })
        .collect();
    let [trigger_binding] = trigger_bindings.as_slice() else {
        return Err(bad(format!(
            "a function needs exactly one trigger binding, it has {}",
            trigger_bindings.len()
        )));
    };
    let trigger_type = trigger_binding
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !trigger_type.eq_ignore_ascii_case("cosmosDBTrigger") {
        return Ok(ReadFunction::Skip(SkippedFunction {
            name: name.to_owned(),
            reason: format!(
                "its trigger is {trigger_type}; this host runs Cosmos DB triggers only"
            ),
        }));
    }
    let options = BindingOptions {
        function: name,
        binding: trigger_binding,
    };
    let start_from_time = match options.string("startFromTime")? {
        Some(text) => Some(parse_start_time(&text).ok_or_else(|| {
            bad(format!(
                "startFromTime '{text}' is not an ISO 8601 UTC time like 2026-01-31T12:00:00Z"
            ))
        })?),
        None => None,
    };
    let start_from_beginning = options.bool("startFromBeginning")?.unwrap_or(false);
    if start_from_beginning && start_from_time.is_some() {
        return Err(bad(
            "startFromBeginning and startFromTime are both set; choose one (as Azure Functions requires)"
                .into(),
        ));
    }
    let max_items = options.integer("maxItemsPerInvocation")?;
    if max_items == Some(0) || max_items.is_some_and(|n| n > MAX_ITEMS_PER_INVOCATION as u64) {
        return Err(bad(format!(
            "maxItemsPerInvocation must be 1..={MAX_ITEMS_PER_INVOCATION}"
        )));
    }
    let trigger = CosmosTrigger {
        parameter: options.required("name")?,
        connection: options.required("connection")?,
        database_name: options.required("databaseName")?,
        container_name: options.required("containerName")?,
        lease_connection: options.string("leaseConnection")?,
        lease_database_name: options.string("leaseDatabaseName")?,
        lease_container_name: options
            .string("leaseContainerName")?
            .unwrap_or_else(|| DEFAULT_LEASE_CONTAINER.to_owned()),
        lease_container_prefix: options.string("leaseContainerPrefix")?,
        create_lease_container_if_not_exists: options
            .bool("createLeaseContainerIfNotExists")?
            .unwrap_or(false),
        max_items_per_invocation: max_items.map(|n| n as usize),
        start_from_beginning,
        start_from_time,
        feed_poll_delay: options
            .millis("feedPollDelay")?
            .unwrap_or(DEFAULT_FEED_POLL_DELAY),
        lease_acquire_interval: options
            .millis("leaseAcquireInterval")?
            .unwrap_or(DEFAULT_LEASE_ACQUIRE_INTERVAL),
        lease_expiration_interval: options
            .millis("leaseExpirationInterval")?
            .unwrap_or(DEFAULT_LEASE_EXPIRATION_INTERVAL),
        lease_renew_interval: options
            .millis("leaseRenewInterval")?
            .unwrap_or(DEFAULT_LEASE_RENEW_INTERVAL),
    };
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for binding in bindings {
        if std::ptr::eq(binding, *trigger_binding) {
            continue;
        }
        let options = BindingOptions {
            function: name,
            binding,
        };
        let kind = options.string("type")?.unwrap_or_default();
        let direction = options.string("direction")?.unwrap_or_default();
        let parameter = options.required("name")?;
        match (
            kind.to_ascii_lowercase().as_str(),
            direction.to_ascii_lowercase().as_str(),
        ) {
            ("cosmosdb", "out") => outputs.push(CosmosOutput {
                parameter,
                connection: options.required("connection")?,
                database_name: options.required("databaseName")?,
                container_name: options.required("containerName")?,
                create_if_not_exists: options.bool("createIfNotExists")?.unwrap_or(false),
                partition_key: options
                    .string("partitionKey")?
                    .unwrap_or_else(|| "/id".to_owned()),
            }),
            ("cosmosdb", "in") => {
                let partition_key = options.string("partitionKey")?;
                let read = match (options.string("sqlQuery")?, options.string("id")?) {
                    (Some(sql), None) => InputRead::Query { sql, partition_key },
                    (None, Some(id)) => InputRead::Point { id, partition_key },
                    (Some(_), Some(_)) => {
                        return Err(bad(format!(
                            "input binding '{parameter}' sets both id and sql_query; set one"
                        )));
                    }
                    (None, None) => {
                        return Err(bad(format!(
                            "input binding '{parameter}' needs id (with partition_key) or sql_query"
                        )));
                    }
                };
                inputs.push(CosmosInput {
                    parameter,
                    connection: options.required("connection")?,
                    database_name: options.required("databaseName")?,
                    container_name: options.required("containerName")?,
                    read,
                });
            }
            _ => {
                return Err(bad(format!(
                    "binding '{parameter}' ({kind}, direction {direction}) is not supported: a Cosmos DB trigger function may have Cosmos DB input and output bindings"
                )));
            }
        }
    }
    let retry = match retry {
        Some(settings) if !settings.is_null() => RetryPolicy::from_azure_settings(name, settings)?,
        _ => RetryPolicy::default(),
    };
    Ok(ReadFunction::Run(Box::new(FunctionDefinition {
        name: name.to_owned(),
        trigger,
        inputs,
        outputs,
        retry,
        filter: None,
        timeout: DEFAULT_TIMEOUT,
        dead_letter_container: DEFAULT_DEAD_LETTER_CONTAINER.to_owned(),
    })))
}

/// Parses `startFromTime`: RFC 3339 / ISO 8601 in UTC (`Z` or `+00:00`).
pub fn parse_start_time(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))
        .unwrap_or(text);
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let mut time_parts = time.split(':');
    let hour: u64 = time_parts.next()?.parse().ok()?;
    let minute: u64 = time_parts.next()?.parse().ok()?;
    let second: f64 = time_parts.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if !(0.0..61.0).contains(&second) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_secs_f64(second))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// One binding's options, read with the function's name in every error.
struct BindingOptions<'a> {
    function: &'a str,
    binding: &'a Value,
}

impl BindingOptions<'_> {
    /// An option by its Functions 4.x name, or by the 3.x extension's name for it
    /// (`cosmos_db_trigger_v3`: `collectionName`, `connectionStringSetting`, ...).
    fn get(&self, name: &str) -> Option<&Value> {
        let v3_name = match name {
            "containerName" => "collectionName",
            "connection" => "connectionStringSetting",
            "leaseContainerName" => "leaseCollectionName",
            "leaseContainerPrefix" => "leaseCollectionPrefix",
            "leaseConnection" => "leaseConnectionStringSetting",
            "createLeaseContainerIfNotExists" => "createLeaseCollectionIfNotExists",
            _ => name,
        };
        self.binding.get(name).or_else(|| self.binding.get(v3_name))
    }

    fn error(&self, message: String) -> ConfigError {
        ConfigError::Function {
            function: self.function.to_owned(),
            message,
        }
    }

    fn string(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(self.error(format!("option {name} must be a string, not {other}"))),
        }
    }

    fn required(&self, name: &str) -> Result<String, ConfigError> {
        match self.string(name)? {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(self.error(format!(
                "the {} binding has no {name}",
                self.binding
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
            ))),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => {
                Err(self.error(format!("option {name} must be true or false, not {other}")))
            }
        }
    }

    fn integer(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number.as_u64().map(Some).ok_or_else(|| {
                self.error(format!(
                    "option {name} must be a whole number ≥ 0, not {number}"
                ))
            }),
            Some(Value::String(text)) => text.trim().parse().map(Some).map_err(|_| {
                self.error(format!(
                    "option {name} must be a whole number, not '{text}'"
                ))
            }),
            Some(other) => {
                Err(self.error(format!("option {name} must be a whole number, not {other}")))
            }
        }
    }

    fn millis(&self, name: &str) -> Result<Option<Duration>, ConfigError> {
        Ok(self.integer(name)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_as_azure_writes_them() {
        assert_eq!(parse_interval("00:00:01"), Some(Duration::from_secs(1)));
        assert_eq!(parse_interval("01:02:03"), Some(Duration::from_secs(3723)));
        assert_eq!(
            parse_interval("00:00:00.250"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_interval("1.00:00:00"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_interval("1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_interval("00:61:00"), None);
        assert_eq!(parse_interval("soon"), None);
    }

    #[test]
    fn start_times_parse_in_utc() {
        let time = parse_start_time("2026-12-02T10:00:00Z").and_then(|time| {
            time.duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|elapsed| elapsed.as_secs())
        });
        assert_eq!(time, Some(1_796_205_600));
        assert_eq!(parse_start_time("2026-13-02T10:00:00Z"), None);
    }

    #[test]
    fn functions_3x_option_names_are_read_too() {
        let trigger = serde_json::json!({
            "type": "cosmosDBTrigger", "direction": "in", "name": "docs",
            "connectionStringSetting": "C", "databaseName": "d", "collectionName": "orders",
            "leaseCollectionName": "leases3", "createLeaseCollectionIfNotExists": true,
        });
        let Ok(ReadFunction::Run(definition)) = read_function("f", &[trigger], None) else {
            panic!("a valid 3.x trigger");
        };
        assert_eq!(definition.trigger.container_name, "orders");
        assert_eq!(definition.trigger.connection, "C");
        assert_eq!(definition.trigger.lease_container_name, "leases3");
        assert!(definition.trigger.create_lease_container_if_not_exists);
    }

    #[test]
    fn exponential_backoff_doubles_up_to_its_maximum() {
        let policy = RetryPolicy::default();
        let delays: Vec<u128> = (1..=7)
            .map(|retry| policy.delay(retry).as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    }
}
