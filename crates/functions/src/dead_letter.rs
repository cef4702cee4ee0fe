//! The dead-letter container: where an item goes when its function kept failing on it, with
//! the error and traceback, the function, the attempt count and the lease position; listed,
//! replayed and purged by `tributary deadletter`.
//!
//! A dead letter is a document in a container partitioned by `/id` (by default `deadletter`
//! in the lease database):
//!
//! ```json
//! {"id": "…uuid…", "function": "materialize_customer_summary", "processor": "…",
//!  "source": {"database": "ECommerceDB", "container": "Orders"},
//!  "itemId": "o7", "item": { …the change… },
//!  "error": "KeyError: 'total'", "traceback": "Traceback …", "attempts": 5,
//!  "lease": "-FF", "continuation": "…the lease position of the batch…",
//!  "deadLetteredAt": "2026-12-02T10:00:00Z"}
//! ```

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::account::{Account, AccountError};
use crate::handler::InvocationFailure;

/// A dead-letter container.
#[derive(Clone)]
pub struct DeadLetterBox {
    /// Where it is.
    pub account: Account,
    /// Its database.
    pub database: String,
    /// Its name.
    pub container: String,
}

/// Everything recorded with a dead-lettered item except the item.
#[derive(Clone, Debug)]
pub(crate) struct DeadLetterContext<'a> {
    pub(crate) function: &'a str,
    pub(crate) processor: &'a str,
    pub(crate) source_database: &'a str,
    pub(crate) source_container: &'a str,
    pub(crate) lease: &'a str,
    pub(crate) continuation: Option<&'a str>,
}

impl DeadLetterBox {
    /// Creates the container (partition key `/id`) if it does not exist.
    ///
    /// # Errors
    /// The account failed.
    pub async fn open(
        account: Account,
        database: &str,
        container: &str,
    ) -> Result<DeadLetterBox, AccountError> {
        account
            .output_container(database, container, "/id", true)
            .await?;
        Ok(DeadLetterBox {
            account,
            database: database.to_owned(),
            container: container.to_owned(),
        })
    }

    /// The same container, without creating it (for the `deadletter` commands).
    pub fn existing(account: Account, database: &str, container: &str) -> DeadLetterBox {
        DeadLetterBox {
            account,
            database: database.to_owned(),
            container: container.to_owned(),
        }
    }

    /// The dead letters of `function` (all functions if `None`), oldest first.
    ///
    /// # Errors
    /// The account failed.
    pub async fn list(&self, function: Option<&str>) -> Result<Vec<Value>, AccountError> {
        let sql = match function {
            Some(function) => format!(
                "SELECT * FROM c WHERE c.function = {} ORDER BY c.deadLetteredAt",
                Value::String(function.to_owned())
            ),
            None => "SELECT * FROM c ORDER BY c.deadLetteredAt".to_owned(),
        };
        self.account
            .query(&self.database, &self.container, &sql)
            .await
    }

    /// Deletes one dead letter; `false` if it was not there.
    ///
    /// # Errors
    /// The account failed.
    pub async fn delete(&self, id: &str) -> Result<bool, AccountError> {
        self.account
            .delete_by_id(&self.database, &self.container, id)
            .await
    }
}

/// The dead-letter document for `item` (a change).
pub(crate) fn dead_letter_document(
    context: &DeadLetterContext<'_>,
    item: Value,
    failure: &InvocationFailure,
    attempts: u32,
) -> Value {
    let item_id = item.get("id").cloned().unwrap_or(Value::Null);
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "function": context.function,
        "processor": context.processor,
        "source": {"database": context.source_database, "container": context.source_container},
        "itemId": item_id,
        "item": item,
        "error": failure.error,
        "traceback": failure.traceback,
        "timedOut": failure.timed_out,
        "attempts": attempts,
        "lease": context.lease,
        "continuation": context.continuation,
        "deadLetteredAt": utc_timestamp(SystemTime::now()),
    })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (sorts as text in time order).
pub(crate) fn utc_timestamp(time: SystemTime) -> String {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    tributary_processor::iso8601(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_205_600_123);
        assert_eq!(utc_timestamp(time), "2026-12-02T10:00:00.123Z");
        assert_eq!(
            utc_timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
