//! Where the feed and lease commands find their data: the embedded store in a data
//! directory, opened directly, or a server reached through a connection string.
//!
//! A running `tributary serve` holds a lock on its data directory, so the embedded store can
//! only be opened while no server runs on it; the error then says to use
//! `--connection-string`. A data directory that does not exist is an error, never a new empty
//! store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tributary_client::{ClientError, CosmosClient};
use tributary_processor::embedded::{EmbeddedFeed, EmbeddedLeaseContainer};
use tributary_processor::remote::{RemoteFeed, RemoteLeaseContainer};
use tributary_processor::{ChangeFeed, LeaseContainer};
use tributary_store::{Store, StoreError, StoreOptions};

/// How a command reaches the data: `--data-dir` or `--connection-string`.
#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    /// Directory of the embedded store, opened directly (as `tributary serve` resolves it;
    /// not while a server runs on it: use --connection-string then).
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Reach a server instead: `AccountEndpoint=<url>;AccountKey=<key>;`. Takes precedence
    /// over --data-dir.
    #[arg(long, env = "TRIBUTARY_CONNECTION_STRING", hide_env_values = true)]
    pub connection_string: Option<String>,
}

/// The data directory `tributary serve` uses when none is given:
/// `$XDG_DATA_HOME/tributary`, else `~/.local/share/tributary`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("tributary");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/tributary"),
        None => PathBuf::from("tributary-data"),
    }
}

/// An opened source of feeds and lease containers.
pub enum Source {
    /// The embedded store, opened in this process.
    Embedded {
        /// The store.
        store: Arc<Store>,
        /// Its directory (for messages).
        data_dir: PathBuf,
    },
    /// A server.
    Remote(CosmosClient),
}

impl Source {
    /// Opens the store or makes the client (which connects at its first request).
    ///
    /// # Errors
    /// An invalid connection string; a data directory that does not exist, is locked by a
    /// running server, or cannot be opened.
    pub fn open(args: &SourceArgs) -> anyhow::Result<Source> {
        if let Some(text) = &args.connection_string {
            let client =
                CosmosClient::from_connection_string(text).context("--connection-string")?;
            return Ok(Source::Remote(client));
        }
        let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
        if !data_dir.is_dir() {
            return Err(anyhow!(
                "there is no store in {} (the directory does not exist); give --data-dir, or --connection-string to reach a server",
                data_dir.display()
            ));
        }
        let store = Store::open(&data_dir, StoreOptions::default())
            .map_err(|error| open_error(&data_dir, error))?;
        Ok(Source::Embedded {
            store: Arc::new(store),
            data_dir,
        })
    }

    /// Checks that `database`/`container` exists, so a typo is one clear line rather than
    /// a processor retrying.
    ///
    /// # Errors
    /// It does not exist, or the server cannot be reached.
    pub async fn check_container(&self, database: &str, container: &str) -> anyhow::Result<()> {
        match self {
            Source::Embedded { store, data_dir } => store
                .read_container(database, container)
                .map(|_| ())
                .with_context(|| format!("in the store in {}", data_dir.display())),
            Source::Remote(client) => match client.container_rids(database, container).await {
                Ok(_) => Ok(()),
                Err(ClientError::NotFound { .. }) => Err(anyhow!(
                    "container '{container}' does not exist in database '{database}' at {}",
                    client.endpoint()
                )),
                Err(error) => Err(anyhow!("cannot read {}: {error}", client.endpoint())),
            },
        }
    }

    /// The change feed of `database`/`container`; `long_poll` asks a server to push
    /// changes (Tributary's long-poll extension) instead of being polled.
    pub fn feed(&self, database: &str, container: &str, long_poll: bool) -> Arc<dyn ChangeFeed> {
        match self {
            Source::Embedded { store, .. } => {
                Arc::new(EmbeddedFeed::new(Arc::clone(store), database, container))
            }
            Source::Remote(client) => Arc::new(RemoteFeed::new(
                client.clone(),
                database,
                container,
                long_poll,
            )),
        }
    }

    /// The lease container `database`/`container`. With `create`, it is created if missing
    /// (on a server, its database too); without, a missing one is an error, so reading
    /// commands never create containers.
    ///
    /// # Errors
    /// It does not exist (without `create`), or the store or server failed.
    pub async fn lease_container(
        &self,
        database: &str,
        container: &str,
        create: bool,
    ) -> anyhow::Result<Arc<dyn LeaseContainer>> {
        let missing = || {
            anyhow!(
                "lease container '{container}' does not exist in database '{database}' (give --lease-database/--lease-container as the processor does)"
            )
        };
        match self {
            Source::Embedded { store, .. } => {
                if !create {
                    match store.read_container(database, container) {
                        Ok(_) => {}
                        Err(
                            StoreError::DatabaseNotFound(_) | StoreError::ContainerNotFound { .. },
                        ) => return Err(missing()),
                        Err(error) => return Err(error.into()),
                    }
                }
                let leases = EmbeddedLeaseContainer::open(Arc::clone(store), database, container)
                    .await
                    .context("cannot open the lease container")?;
                Ok(Arc::new(leases))
            }
            Source::Remote(client) => {
                if !create {
                    match client.container_rids(database, container).await {
                        Ok(_) => {}
                        Err(ClientError::NotFound { .. }) => return Err(missing()),
                        Err(error) => {
                            return Err(anyhow!("cannot read {}: {error}", client.endpoint()));
                        }
                    }
                }
                let leases = RemoteLeaseContainer::open(client.clone(), database, container)
                    .await
                    .context("cannot open the lease container")?;
                Ok(Arc::new(leases))
            }
        }
    }

    /// Closes the store (syncing it); nothing to do for a server.
    pub fn close(self) {
        if let Source::Embedded { store, .. } = self {
            store.close();
        }
    }
}

/// The error for a store that does not open; a lock held by another process (a running
/// `tributary serve`) gets its own message.
fn open_error(data_dir: &Path, error: StoreError) -> anyhow::Error {
    if let StoreError::Locked { holder, .. } = &error {
        return anyhow!(
            "the store in {} is in use by {}; use --connection-string to go through the server",
            data_dir.display(),
            holder
                .as_deref()
                .unwrap_or("another process (a running `tributary serve`?)")
        );
    }
    anyhow!("cannot open the store in {}: {error}", data_dir.display())
}
