//! The accounts a function's bindings name: a connection setting resolved to the embedded
//! store this host runs on, or to a server (`tributary serve` or Azure Cosmos DB) reached by
//! its connection string; and what the host does with them (feeds, lease containers, output
//! writes, input reads).
//!
//! When the host runs on an embedded store (`tributary functions run --data-dir` or
//! `tributary serve --functions`), a connection string that points at this machine
//! (`localhost`, `127.0.0.1`, `::1`) on the store's port (the server's, or `--store-port`)
//! names that store: its outputs, leases and feed are then
//! in one store, and outputs commit with the checkpoint. Other endpoints are servers; on one
//! `tributary serve` outputs commit with the checkpoint too, through its transaction
//! extension.

use std::sync::Arc;

use serde_json::Value;
use tributary_client::{ClientError, ConnectionString, CosmosClient};
use tributary_partition_key::{PartitionKey, PartitionKeyDefinition};
use tributary_processor::embedded::{EmbeddedFeed, EmbeddedLeaseContainer};
use tributary_processor::remote::{RemoteFeed, RemoteLeaseContainer};
use tributary_processor::{ChangeFeed, LeaseContainer};
use tributary_query::{Parameters, Query};
use tributary_store::{ContainerDefinition, ItemWrite, Store, StoreError};

/// A resolved account.
#[derive(Clone)]
pub enum Account {
    /// The store this host runs on.
    Embedded(Arc<Store>),
    /// A server.
    Remote {
        /// The client.
        client: CosmosClient,
        /// The server is a `tributary serve`, with its extensions (change feed long-poll,
        /// the transaction that commits outputs with a checkpoint): true for every endpoint
        /// but Azure Cosmos DB's (`*.documents.azure.*`).
        long_poll: bool,
    },
}

/// An account operation failed; the message names the container.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AccountError(pub String);

impl Account {
    /// Resolves a connection string; `embedded` is the host's own store, if it has one, and
    /// the port that names it on this machine (`None`: any port).
    ///
    /// # Errors
    /// The connection string is malformed.
    pub fn resolve(
        text: &str,
        embedded: Option<&Arc<Store>>,
        embedded_port: Option<u16>,
    ) -> Result<Account, ClientError> {
        let parsed = ConnectionString::parse(text)?;
        let (host, port) = endpoint_host_port(&parsed.endpoint);
        if let Some(store) = embedded
            && matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
            && (embedded_port.is_none() || port == embedded_port)
        {
            return Ok(Account::Embedded(Arc::clone(store)));
        }
        let long_poll = !host.contains(".documents.azure.");
        Ok(Account::Remote {
            client: CosmosClient::from_connection_string(text)?,
            long_poll,
        })
    }

    /// Whether outputs in `other` can commit in one transaction with writes here: the same
    /// embedded store, or the same Tributary server (its transaction extension).
    pub fn same_store(&self, other: &Account) -> bool {
        match (self, other) {
            (Account::Embedded(a), Account::Embedded(b)) => Arc::ptr_eq(a, b),
            (
                Account::Remote {
                    client: a,
                    long_poll: true,
                },
                Account::Remote {
                    client: b,
                    long_poll: true,
                },
            ) => a.endpoint() == b.endpoint(),
            _ => false,
        }
    }

    /// A label for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Account::Embedded(_) => "the embedded store".to_owned(),
            Account::Remote { client, .. } => client.endpoint().to_owned(),
        }
    }

    /// Checks that `database`/`container` exists.
    ///
    /// # Errors
    /// It does not, or the account cannot be reached.
    pub async fn check_container(
        &self,
        database: &str,
        container: &str,
    ) -> Result<(), AccountError> {
        match self {
            Account::Embedded(store) => store
                .read_container(database, container)
                .map(|_| ())
                .map_err(|error| AccountError(error.to_string())),
            Account::Remote { client, .. } => {
                match client.container_rids(database, container).await {
                    Ok(_) => Ok(()),
                    Err(ClientError::NotFound { .. }) => Err(AccountError(format!(
                        "container '{container}' does not exist in database '{database}' at {}",
                        client.endpoint()
                    ))),
                    Err(error) => Err(AccountError(format!(
                        "cannot reach {}: {error}",
                        client.endpoint()
                    ))),
                }
            }
        }
    }

    /// The change feed of `database`/`container`.
    pub fn feed(&self, database: &str, container: &str) -> Arc<dyn ChangeFeed> {
        match self {
            Account::Embedded(store) => {
                Arc::new(EmbeddedFeed::new(Arc::clone(store), database, container))
            }
            Account::Remote { client, long_poll } => Arc::new(RemoteFeed::new(
                client.clone(),
                database,
                container,
                *long_poll,
            )),
        }
    }

    /// The lease container; created (partition key `/id`) if missing and `create`, else a
    /// missing one is an error that says how to fix it.
    ///
    /// # Errors
    /// Missing without `create`; the account failed.
    pub async fn lease_container(
        &self,
        database: &str,
        container: &str,
        create: bool,
    ) -> Result<Arc<dyn LeaseContainer>, AccountError> {
        if !create && self.check_container(database, container).await.is_err() {
            return Err(AccountError(format!(
                "lease container '{container}' does not exist in database '{database}' on {}; create it (partition key /id) or set create_lease_container_if_not_exists=True",
                self.describe()
            )));
        }
        let failed = |error: tributary_processor::LeaseStoreError| {
            AccountError(format!(
                "cannot open lease container '{database}/{container}': {error}"
            ))
        };
        match self {
            Account::Embedded(store) => {
                if create {
                    self.ensure_database(database).await?;
                }
                let leases = EmbeddedLeaseContainer::open(Arc::clone(store), database, container)
                    .await
                    .map_err(failed)?;
                Ok(Arc::new(leases))
            }
            Account::Remote { client, long_poll } => {
                let mut leases = RemoteLeaseContainer::open(client.clone(), database, container)
                    .await
                    .map_err(failed)?;
                // A Tributary server commits outputs with the checkpoint (its transaction
                // extension); Azure Cosmos DB cannot.
                if *long_poll {
                    leases = leases.with_attached_writes();
                }
                Ok(Arc::new(leases))
            }
        }
    }

    async fn ensure_database(&self, database: &str) -> Result<(), AccountError> {
        match self {
            Account::Embedded(store) => match store.create_database(database).await {
                Ok(_) | Err(StoreError::DatabaseExists(_)) => Ok(()),
                Err(error) => Err(AccountError(format!(
                    "cannot create database '{database}': {error}"
                ))),
            },
            Account::Remote { client, .. } => client
                .create_database_if_not_exists(database)
                .await
                .map_err(|error| {
                    AccountError(format!(
                        "cannot create database '{database}' at {}: {error}",
                        client.endpoint()
                    ))
                }),
        }
    }

    /// Makes sure an output container exists: created with `partition_key_path` if missing
    /// and `create`; returns its partition key definition.
    ///
    /// # Errors
    /// Missing without `create`; the account failed.
    pub async fn output_container(
        &self,
        database: &str,
        container: &str,
        partition_key_path: &str,
        create: bool,
    ) -> Result<PartitionKeyDefinition, AccountError> {
        if create {
            self.ensure_database(database).await?;
            match self {
                Account::Embedded(store) => {
                    let definition = ContainerDefinition::new(container, partition_key_path);
                    match store.create_container(database, definition, 1).await {
                        Ok(_) | Err(StoreError::ContainerExists(_)) => {}
                        Err(error) => {
                            return Err(AccountError(format!(
                                "cannot create container '{database}/{container}': {error}"
                            )));
                        }
                    }
                }
                Account::Remote { client, .. } => client
                    .create_container_if_not_exists(database, container, partition_key_path)
                    .await
                    .map_err(|error| {
                        AccountError(format!(
                            "cannot create container '{database}/{container}': {error}"
                        ))
                    })?,
            }
        }
        let missing = || {
            AccountError(format!(
                "output container '{container}' does not exist in database '{database}' on {}; create it or set create_if_not_exists=True",
                self.describe()
            ))
        };
        match self {
            Account::Embedded(store) => store
                .read_container(database, container)
                .map(|properties| properties.definition.partition_key)
                .map_err(|_| missing()),
            Account::Remote { client, .. } => {
                let body = client
                    .read_container(database, container)
                    .await
                    .map_err(|error| match error {
                        ClientError::NotFound { .. } => missing(),
                        other => AccountError(format!(
                            "cannot read container '{database}/{container}': {other}"
                        )),
                    })?;
                let definition = body.get("partitionKey").cloned().unwrap_or(Value::Null);
                PartitionKeyDefinition::from_json(&definition).map_err(|error| {
                    AccountError(format!("container '{database}/{container}' has an unreadable partition key: {error}"))
                })
            }
        }
    }

    /// Upserts documents into `database`/`container`, one after another.
    ///
    /// # Errors
    /// A document has no valid partition key or id; the account refused a write.
    pub async fn upsert(
        &self,
        database: &str,
        container: &str,
        partition_key: &PartitionKeyDefinition,
        documents: &[Value],
    ) -> Result<(), AccountError> {
        for document in documents {
            match self {
                Account::Embedded(store) => {
                    store
                        .write_item(database, container, ItemWrite::upsert(document.clone()))
                        .await
                        .map_err(|error| {
                            AccountError(format!(
                                "cannot write to '{database}/{container}': {error}"
                            ))
                        })?;
                }
                Account::Remote { client, .. } => {
                    let key = PartitionKey::extract(partition_key, document).map_err(|error| {
                        AccountError(format!("a document for '{database}/{container}' has no valid partition key: {error}"))
                    })?;
                    client
                        .upsert_document(database, container, &key.to_json(), document)
                        .await
                        .map_err(|error| {
                            AccountError(format!(
                                "cannot write to '{database}/{container}': {error}"
                            ))
                        })?;
                }
            }
        }
        Ok(())
    }

    /// Deletes a document of a container partitioned by `/id` (`false` if it was missing).
    ///
    /// # Errors
    /// The account failed.
    pub async fn delete_by_id(
        &self,
        database: &str,
        container: &str,
        id: &str,
    ) -> Result<bool, AccountError> {
        let failed = |error: String| {
            AccountError(format!(
                "cannot delete '{id}' from '{database}/{container}': {error}"
            ))
        };
        let key = Value::Array(vec![Value::String(id.to_owned())]);
        match self {
            Account::Embedded(store) => {
                let key =
                    PartitionKey::from_json(&key).map_err(|error| failed(error.to_string()))?;
                match store
                    .write_item(database, container, ItemWrite::delete(key, id))
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(StoreError::ItemNotFound(_)) => Ok(false),
                    Err(error) => Err(failed(error.to_string())),
                }
            }
            Account::Remote { client, .. } => match client
                .delete_document(database, container, &key, id, None)
                .await
            {
                Ok(()) => Ok(true),
                Err(ClientError::NotFound { .. }) => Ok(false),
                Err(error) => Err(failed(error.to_string())),
            },
        }
    }

    /// Reads one document (`None` if missing).
    ///
    /// # Errors
    /// The account failed.
    pub async fn read(
        &self,
        database: &str,
        container: &str,
        partition_key: &Value,
        id: &str,
    ) -> Result<Option<Value>, AccountError> {
        let failed = |error: String| {
            AccountError(format!(
                "cannot read '{id}' from '{database}/{container}': {error}"
            ))
        };
        match self {
            Account::Embedded(store) => {
                let key = PartitionKey::from_json(&match partition_key {
                    Value::Array(_) => partition_key.clone(),
                    single => Value::Array(vec![single.clone()]),
                })
                .map_err(|error| failed(error.to_string()))?;
                match store.read_item(database, container, &key, id) {
                    Ok(item) => serde_json::from_str(&item.body)
                        .map(Some)
                        .map_err(|error| failed(error.to_string())),
                    Err(StoreError::ItemNotFound(_)) => Ok(None),
                    Err(error) => Err(failed(error.to_string())),
                }
            }
            Account::Remote { client, .. } => client
                .read_document(database, container, partition_key, id)
                .await
                .map(|document| document.map(|document| document.body))
                .map_err(|error| failed(error.to_string())),
        }
    }

    /// Runs a query over the container and returns every result.
    ///
    /// # Errors
    /// The query is invalid; the account failed.
    pub async fn query(
        &self,
        database: &str,
        container: &str,
        sql: &str,
    ) -> Result<Vec<Value>, AccountError> {
        let failed = |error: String| {
            AccountError(format!("query on '{database}/{container}' failed: {error}"))
        };
        match self {
            Account::Embedded(store) => {
                let query = Query::parse(sql).map_err(|error| failed(error.to_string()))?;
                let texts = store
                    .scan_items(database, container, &tributary_store::FeedScope::Container)
                    .map_err(|error| failed(error.to_string()))?;
                let documents: Vec<Value> = texts
                    .iter()
                    .map(|text| serde_json::from_str(text))
                    .collect::<Result<_, _>>()
                    .map_err(|error| failed(error.to_string()))?;
                tributary_query::execute(&query, &Parameters::new(), &documents)
                    .map_err(|error| failed(error.to_string()))
            }
            Account::Remote { client, .. } => client
                .query_documents(database, container, sql, &[])
                .await
                .map_err(|error| failed(error.to_string())),
        }
    }
}

/// The host part of an endpoint URL, lower-cased, and its port (the scheme's default when
/// the URL has none).
fn endpoint_host_port(endpoint: &str) -> (String, Option<u16>) {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("https", endpoint));
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = if authority.starts_with('[') {
        match authority.split_once(']') {
            Some((host, port)) => (format!("{host}]"), port.strip_prefix(':')),
            None => (authority.to_owned(), None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        443
    };
    let port = match port {
        Some(port) => port.parse().ok(),
        None => Some(default_port),
    };
    (host.to_ascii_lowercase(), port)
}

#[cfg(test)]
mod tests {
    use super::endpoint_host_port;

    #[test]
    fn endpoints_give_their_host_and_port() {
        let cases = [
            ("https://localhost:8081/", "localhost", Some(8081)),
            ("http://127.0.0.1:9000", "127.0.0.1", Some(9000)),
            ("https://[::1]:8081/", "[::1]", Some(8081)),
            (
                "https://Acct.documents.azure.com/",
                "acct.documents.azure.com",
                Some(443),
            ),
            ("http://localhost/", "localhost", Some(80)),
        ];
        for (endpoint, host, port) in cases {
            assert_eq!(
                endpoint_host_port(endpoint),
                (host.to_owned(), port),
                "{endpoint}"
            );
        }
    }
}
