//! `materialized-view`: a change feed processor that keeps per-customer order totals
//! correct under redelivery.
//!
//! It follows the change feed of an orders container (`shop/orders`, partition key
//! `/customerId`, documents such as `{"id": "o1", "customerId": "ada", "total": 12.5,
//! "status": "placed"}`) on a `tributary serve` (long-poll, so changes are pushed) and keeps
//! one document per customer in a view container (`shop/customer-totals`, partition key
//! `/id`): the order count and the sum of totals, overall and per status.
//!
//! Delivery is at least once: after a crash, a batch whose view writes landed but whose
//! checkpoint did not is delivered again. The view stays correct because the fold is
//! idempotent ([`view`]): each view document records, per order, the `_lsn` it last applied,
//! and only newer versions change it. Each view document is written with `If-Match` on the
//! etag it was read with and re-read on a 412, so two hosts (during a lease hand-over) never
//! overwrite each other's work.
//!
//! Limits: the latest-version feed carries no deletes, so a deleted order stays in the view
//! (delete by setting a status such as `cancelled`, or use the all-versions mode); a
//! customer's view document holds every order id, so it reaches the 2 MB document limit at
//! some 20,000 orders.

mod view;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Parser, ValueEnum};
use serde_json::json;
use tributary_client::{ClientError, CosmosClient};
use tributary_processor::remote::{RemoteFeed, RemoteLeaseContainer};
use tributary_processor::{
    BatchContext, Change, ChangeFeedProcessorBuilder, HandlerError, StartFrom,
};

use crate::view::{CustomerTotals, Order};

/// The processor's name: hosts with this name share the work through the lease container.
const PROCESSOR_NAME: &str = "customer-totals";
/// Most attempts to write one view document while other writers keep changing it.
const MAX_WRITE_ATTEMPTS: u32 = 16;
/// Longest a stopping host waits for the batches in hand before it exits anyway.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps per-customer order totals (count and sum, overall and per status) in a view
/// container, from the change feed of an orders container, until Ctrl-C or SIGTERM.
#[derive(Parser, Debug)]
#[command(name = "materialized-view")]
struct Args {
    /// The server: `AccountEndpoint=<url>;AccountKey=<key>;` (as `tributary serve` prints).
    #[arg(long, env = "TRIBUTARY_CONNECTION_STRING", hide_env_values = true)]
    connection_string: String,
    /// The database of the three containers.
    #[arg(long, default_value = "shop")]
    database: String,
    /// The monitored orders container (partition key `/customerId`).
    #[arg(long, default_value = "orders")]
    container: String,
    /// The view container (partition key `/id`; created if missing).
    #[arg(long, default_value = "customer-totals")]
    view_container: String,
    /// The lease container (partition key `/id`; created if missing).
    #[arg(long, default_value = "leases")]
    lease_container: String,
    /// This host's name among the processor's hosts. A host restarted under the same name
    /// resumes its leases at once; under a new name it waits for them to expire (60 s).
    #[arg(long, env = "HOSTNAME", default_value = "materialized-view")]
    instance: String,
    /// Where to start on the processor's first run (later runs resume from the leases).
    #[arg(long, value_enum, default_value_t = From::Beginning)]
    from: From,
}

/// Where the processor's first run starts.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum From {
    /// Every order written so far.
    Beginning,
    /// Only orders written from now on.
    Now,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    run(Args::parse()).await
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = CosmosClient::from_connection_string(&args.connection_string)
        .context("--connection-string")?;
    match client.container_rids(&args.database, &args.container).await {
        Ok(_) => {}
        Err(ClientError::NotFound { .. }) => {
            return Err(anyhow!(
                "container '{}' does not exist in database '{}' at {}",
                args.container,
                args.database,
                client.endpoint()
            ));
        }
        Err(error) => return Err(anyhow!("cannot reach {}: {error}", client.endpoint())),
    }
    client
        .create_container_if_not_exists(&args.database, &args.view_container, "/id")
        .await
        .context("cannot create the view container")?;
    let leases = RemoteLeaseContainer::open(client.clone(), &args.database, &args.lease_container)
        .await
        .context("cannot open the lease container")?;
    let feed = RemoteFeed::new(client.clone(), &args.database, &args.container, true);

    let writer = Arc::new(ViewWriter {
        client,
        database: args.database.clone(),
        container: args.view_container.clone(),
    });
    let mut processor =
        ChangeFeedProcessorBuilder::new(PROCESSOR_NAME, Arc::new(feed), Arc::new(leases))
            .instance_name(args.instance.clone())
            .start_from(match args.from {
                From::Beginning => StartFrom::Beginning,
                From::Now => StartFrom::Now,
            })
            .handler(move |context, changes| {
                let writer = Arc::clone(&writer);
                async move { writer.apply_batch(&context, &changes).await }
            })
            .build()?;
    processor
        .start()
        .await
        .context("cannot start the processor")?;
    tracing::info!(instance = %args.instance, "following {}/{}", args.database, args.container);

    shutdown_signal().await?;
    tracing::info!("stopping: finishing and checkpointing the batches in hand");
    if tokio::time::timeout(STOP_TIMEOUT, processor.stop())
        .await
        .is_err()
    {
        tracing::warn!("batches in hand did not finish in {STOP_TIMEOUT:?}; exiting anyway");
    }
    Ok(())
}

/// Waits for Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot watch Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}

/// Writes batches of order changes into the view container.
struct ViewWriter {
    client: CosmosClient,
    database: String,
    container: String,
}

impl ViewWriter {
    /// Folds a batch into the view documents of its customers, then prints one JSON line
    /// saying what it did. An error leaves the batch unchecked, so it is delivered again.
    async fn apply_batch(
        &self,
        context: &BatchContext,
        changes: &[Change],
    ) -> Result<(), HandlerError> {
        let mut by_customer: BTreeMap<String, Vec<Order>> = BTreeMap::new();
        let mut n_ignored = 0;
        for change in changes {
            match change.parse::<Order>() {
                Ok(order) => by_customer
                    .entry(order.customer_id.clone())
                    .or_default()
                    .push(order),
                Err(error) => {
                    // Not an order: nothing to fold, and retrying would not change that.
                    tracing::warn!(
                        lease = %context.lease_token,
                        "ignoring a change that is not an order: {error}"
                    );
                    n_ignored += 1;
                }
            }
        }
        let mut n_applied = 0;
        for (customer_id, orders) in &by_customer {
            n_applied += self.apply_to_customer(customer_id, orders).await?;
        }
        let line = json!({
            "lease": context.lease_token,
            "attempt": context.attempt,
            "changes": changes.len(),
            "applied": n_applied,
            "alreadyApplied": changes.len() - n_applied - n_ignored,
            "ignored": n_ignored,
        });
        // Progress report only: a closed stdout must not stop the view from being kept.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
        Ok(())
    }

    /// Folds one customer's orders into its view document, written only if it did not
    /// change since it was read (re-read and folded again on a 412 or a concurrent create).
    /// Returns how many order versions were new to the view.
    async fn apply_to_customer(
        &self,
        customer_id: &str,
        orders: &[Order],
    ) -> Result<usize, HandlerError> {
        let key = json!(customer_id);
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let stored = self
                .client
                .read_document(&self.database, &self.container, &key, customer_id)
                .await?;
            let (mut totals, etag) = match stored {
                Some(document) => (
                    serde_json::from_value::<CustomerTotals>(document.body)?,
                    Some(document.etag),
                ),
                None => (CustomerTotals::new(customer_id), None),
            };
            let n_applied = totals.apply(orders);
            if n_applied == 0 {
                return Ok(0);
            }
            let body = serde_json::to_value(&totals)?;
            let written = match &etag {
                Some(etag) => {
                    self.client
                        .replace_document(
                            &self.database,
                            &self.container,
                            &key,
                            customer_id,
                            &body,
                            Some(etag),
                        )
                        .await
                }
                None => {
                    self.client
                        .create_document(&self.database, &self.container, &key, &body)
                        .await
                }
            };
            match written {
                Ok(_) => return Ok(n_applied),
                // Someone else wrote (or created, or deleted) the document meanwhile.
                Err(
                    ClientError::PreconditionFailed { .. }
                    | ClientError::Conflict { .. }
                    | ClientError::NotFound { .. },
                ) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(format!(
            "the view document of customer '{customer_id}' changed under each of {MAX_WRITE_ATTEMPTS} attempts"
        )
        .into())
    }
}
