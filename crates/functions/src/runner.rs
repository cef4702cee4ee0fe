//! One function at work: each batch the processor hands over (already filtered by the
//! function's filter, where the changes were read) is given its inputs, invoked with retries, bisected to the failing items when the retries run out, and then
//! its outputs, its dead letters and the lease checkpoint are written — in one store
//! transaction when they all live in the host's embedded store, else one after another
//! (at least once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tributary_partition_key::PartitionKeyDefinition;
use tributary_processor::{
    AttachedWrite, BatchContext, Change, CheckpointError, Checkpointer, HandlerError,
    LeaseStoreError,
};

use crate::account::{Account, AccountError};
use crate::dead_letter::{DeadLetterBox, DeadLetterContext, dead_letter_document};
use crate::definition::{CosmosInput, FunctionDefinition, InputRead};
use crate::handler::{Handler, Invocation, InvocationFailure};
use crate::metrics::{FunctionStats, Outcome};

/// An output binding with its account and the container's partition key.
pub(crate) struct ResolvedOutput {
    pub(crate) parameter: String,
    pub(crate) account: Account,
    pub(crate) database: String,
    pub(crate) container: String,
    pub(crate) partition_key: PartitionKeyDefinition,
}

/// An input binding with its account.
pub(crate) struct ResolvedInput {
    pub(crate) binding: CosmosInput,
    pub(crate) account: Account,
}

/// Everything one function needs to process batches.
pub(crate) struct FunctionRunner {
    pub(crate) definition: Arc<FunctionDefinition>,
    pub(crate) processor_name: String,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) outputs: Vec<ResolvedOutput>,
    pub(crate) inputs: Vec<ResolvedInput>,
    pub(crate) dead_letters: DeadLetterBox,
    /// Outputs and dead letters commit with the checkpoint (all in the lease store).
    pub(crate) transactional: bool,
    pub(crate) stats: Arc<FunctionStats>,
    pub(crate) output_names: Arc<[String]>,
}

/// What processing a batch produced, to be written with the checkpoint.
#[derive(Default)]
struct BatchResult {
    /// Documents per output binding, in the order the invocations produced them.
    outputs: BTreeMap<String, Vec<Value>>,
    dead_letters: Vec<Value>,
}

impl FunctionRunner {
    /// Processes one batch and checkpoints it (the processor's manual-checkpoint handler).
    pub(crate) async fn process(
        self: Arc<Self>,
        context: BatchContext,
        changes: Vec<Change>,
        checkpointer: Checkpointer,
    ) -> Result<(), HandlerError> {
        let function = self.definition.name.as_str();
        // The processor applied the function's filter where it read the changes.
        self.stats
            .changes(function, changes.len() as u64, context.n_filtered);
        let mut result = BatchResult::default();
        if !changes.is_empty() {
            let mut inputs = self.read_inputs().await?;
            self.run_with_retries(&context, changes, &mut inputs, &mut result)
                .await?;
        }
        self.commit(result, &checkpointer).await
    }

    async fn read_inputs(&self) -> Result<BTreeMap<String, Vec<Value>>, HandlerError> {
        let mut inputs = BTreeMap::new();
        for input in &self.inputs {
            let binding = &input.binding;
            let documents = match &binding.read {
                InputRead::Point { id, partition_key } => {
                    let key = Value::String(partition_key.clone().unwrap_or_else(|| id.clone()));
                    input
                        .account
                        .read(&binding.database_name, &binding.container_name, &key, id)
                        .await?
                        .into_iter()
                        .collect()
                }
                InputRead::Query { sql, .. } => {
                    input
                        .account
                        .query(&binding.database_name, &binding.container_name, sql)
                        .await?
                }
            };
            inputs.insert(binding.parameter.clone(), documents);
        }
        Ok(inputs)
    }

    /// Invokes the function on `changes` with the retry policy; when the retries run out,
    /// bisects to find the failing items and dead-letters them.
    ///
    /// # Errors
    /// Writing outputs or reading inputs between parts failed (the batch is retried).
    async fn run_with_retries(
        &self,
        context: &BatchContext,
        mut changes: Vec<Change>,
        inputs: &mut BTreeMap<String, Vec<Value>>,
        result: &mut BatchResult,
    ) -> Result<(), HandlerError> {
        let policy = &self.definition.retry;
        let mut attempt = 1;
        loop {
            match self
                .invoke_into(context, &changes, inputs, attempt, result)
                .await
            {
                Ok(failed_items) if failed_items.is_empty() => return Ok(()),
                Ok(failed_items) => {
                    changes = select_items(changes, &failed_items);
                    if changes.is_empty() {
                        return Ok(());
                    }
                    if attempt > policy.max_retry_count {
                        let failure =
                            InvocationFailure::new("the function reported these items as failed");
                        self.dead_letter_all(context, changes, &failure, attempt, result);
                        return Ok(());
                    }
                    self.settle(result, inputs).await?;
                }
                Err(failure) => {
                    if attempt > policy.max_retry_count {
                        return self
                            .bisect(context, changes, inputs, failure, attempt, result)
                            .await;
                    }
                }
            }
            self.stats.retry(&self.definition.name);
            tokio::time::sleep(policy.delay(attempt)).await;
            attempt += 1;
        }
    }

    /// Splits a failing batch in halves until the failing items stand alone, depth first so
    /// that parts run in feed order; each part is tried once, and what fails alone is
    /// dead-lettered.
    ///
    /// # Errors
    /// As [`FunctionRunner::run_with_retries`].
    async fn bisect(
        &self,
        context: &BatchContext,
        changes: Vec<Change>,
        inputs: &mut BTreeMap<String, Vec<Value>>,
        failure: InvocationFailure,
        attempts: u32,
        result: &mut BatchResult,
    ) -> Result<(), HandlerError> {
        // Parts to run, the leftmost on top; a part with a failure is known to fail.
        let mut parts = vec![(changes, Some(failure))];
        while let Some((part, known_failure)) = parts.pop() {
            let failure = match known_failure {
                Some(failure) => failure,
                None => match self
                    .invoke_into(context, &part, inputs, attempts + 1, result)
                    .await
                {
                    Ok(failed_items) => {
                        if !failed_items.is_empty() {
                            let reported =
                                InvocationFailure::new("the function reported this item as failed");
                            let failed = select_items(part, &failed_items);
                            self.dead_letter_all(context, failed, &reported, attempts + 1, result);
                        }
                        self.settle(result, inputs).await?;
                        continue;
                    }
                    Err(failure) => failure,
                },
            };
            if part.len() <= 1 {
                self.dead_letter_all(context, part, &failure, attempts, result);
                continue;
            }
            let mut right = part;
            let left = right.drain(..right.len() / 2).collect::<Vec<_>>();
            parts.push((right, None));
            parts.push((left, None));
        }
        Ok(())
    }

    /// Between two invocations of one batch (a bisected part, the failed items of a partial
    /// success): a function with input bindings reads what the previous part wrote, so that
    /// read-modify-write functions lose nothing. Its outputs so far are written now and its
    /// inputs read again. (Such a batch is then at least once, not exactly once, if the host
    /// crashes before its checkpoint.) Without input bindings outputs stay with the batch.
    async fn settle(
        &self,
        result: &mut BatchResult,
        inputs: &mut BTreeMap<String, Vec<Value>>,
    ) -> Result<(), HandlerError> {
        if self.inputs.is_empty() || result.outputs.is_empty() {
            return Ok(());
        }
        self.write_outputs(&result.outputs).await?;
        result.outputs.clear();
        *inputs = self.read_inputs().await?;
        Ok(())
    }

    async fn invoke_into(
        &self,
        context: &BatchContext,
        changes: &[Change],
        inputs: &BTreeMap<String, Vec<Value>>,
        attempt: u32,
        result: &mut BatchResult,
    ) -> Result<Vec<String>, InvocationFailure> {
        let (outputs, failed_items) = self
            .invoke_raw(&context.lease_token, changes, inputs, attempt)
            .await?;
        for (name, documents) in outputs {
            result.outputs.entry(name).or_default().extend(documents);
        }
        Ok(failed_items)
    }

    /// One invocation, timed and counted: its outputs and the ids it reports as failed.
    async fn invoke_raw(
        &self,
        lease: &str,
        changes: &[Change],
        inputs: &BTreeMap<String, Vec<Value>>,
        attempt: u32,
    ) -> Result<(BTreeMap<String, Vec<Value>>, Vec<String>), InvocationFailure> {
        let definition = &self.definition;
        let invocation = Invocation {
            function: Arc::from(definition.name.as_str()),
            trigger_parameter: Arc::from(definition.trigger.parameter.as_str()),
            changes: changes.to_vec(),
            inputs: inputs.clone(),
            outputs: Arc::clone(&self.output_names),
            lease: lease.to_owned(),
            attempt,
            invocation_id: uuid::Uuid::new_v4().to_string(),
        };
        let started = Instant::now();
        let result = self.handler.invoke(invocation, definition.timeout).await;
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(failure) if failure.timed_out => Outcome::TimedOut,
            Err(_) => Outcome::Failed,
        };
        self.stats
            .invocation(&definition.name, outcome, started.elapsed());
        match result {
            Ok(output) => {
                if let Some(unknown) = output
                    .outputs
                    .keys()
                    .find(|name| !self.output_names.contains(name))
                {
                    return Err(InvocationFailure::new(format!(
                        "the function set '{unknown}', which is not one of its output bindings ({})",
                        self.output_names.join(", ")
                    )));
                }
                Ok((output.outputs, output.failed_items))
            }
            Err(failure) => {
                tracing::warn!(
                    function = %definition.name,
                    lease = %lease,
                    attempt,
                    n_changes = changes.len(),
                    error = %failure.error,
                    "invocation failed"
                );
                Err(failure)
            }
        }
    }

    fn dead_letter_all(
        &self,
        context: &BatchContext,
        changes: Vec<Change>,
        failure: &InvocationFailure,
        attempts: u32,
        result: &mut BatchResult,
    ) {
        let definition = &self.definition;
        let dead_letter_context = DeadLetterContext {
            function: &definition.name,
            processor: &self.processor_name,
            source_database: &definition.trigger.database_name,
            source_container: &definition.trigger.container_name,
            lease: &context.lease_token,
            continuation: context.from.as_deref(),
        };
        for change in changes {
            let item = change
                .value()
                .unwrap_or_else(|_| Value::String(change.json().to_owned()));
            let item_id = item.get("id").and_then(Value::as_str).unwrap_or("?");
            tracing::error!(
                function = %definition.name,
                item = %item_id,
                error = %failure.error,
                "item dead-lettered"
            );
            result.dead_letters.push(dead_letter_document(
                &dead_letter_context,
                item,
                failure,
                attempts,
            ));
        }
    }

    /// Writes the batch's outputs and dead letters and checkpoints the lease: one
    /// transaction where they share the lease's store, else in that order.
    async fn commit(
        &self,
        result: BatchResult,
        checkpointer: &Checkpointer,
    ) -> Result<(), HandlerError> {
        let n_dead_letters = result.dead_letters.len() as u64;
        let checkpointed = if self.transactional {
            let mut writes = Vec::new();
            for output in &self.outputs {
                for document in result.outputs.get(&output.parameter).into_iter().flatten() {
                    writes.push(AttachedWrite {
                        database: output.database.clone(),
                        container: output.container.clone(),
                        document: document.clone(),
                    });
                }
            }
            for document in &result.dead_letters {
                writes.push(AttachedWrite {
                    database: self.dead_letters.database.clone(),
                    container: self.dead_letters.container.clone(),
                    document: document.clone(),
                });
            }
            match checkpointer.checkpoint_with_writes(writes).await {
                Err(CheckpointError::LeaseStore(LeaseStoreError::Unsupported(reason))) => {
                    tracing::warn!(
                        function = %self.definition.name,
                        %reason,
                        "the batch's writes do not fit one transaction; written one by one (at least once)"
                    );
                    self.write_then_checkpoint(&result, checkpointer).await?
                }
                other => other,
            }
        } else {
            self.write_then_checkpoint(&result, checkpointer).await?
        };
        match checkpointed {
            Ok(()) => {
                if n_dead_letters > 0 {
                    self.stats
                        .dead_lettered(&self.definition.name, n_dead_letters);
                }
                Ok(())
            }
            // Another host owns the lease now and processes the batch again (with this
            // host's outputs not written when they are transactional).
            Err(CheckpointError::LeaseLost) => {
                tracing::info!(function = %self.definition.name, "lease lost before the checkpoint; the batch is delivered again elsewhere");
                Ok(())
            }
            Err(error) => Err(Box::new(error)),
        }
    }
}

impl FunctionRunner {
    /// Writes the outputs, then the dead letters, then checkpoints (at least once).
    async fn write_then_checkpoint(
        &self,
        result: &BatchResult,
        checkpointer: &Checkpointer,
    ) -> Result<Result<(), CheckpointError>, AccountError> {
        self.write_outputs(&result.outputs).await?;
        let dead_letters = &self.dead_letters;
        dead_letters
            .account
            .upsert(
                &dead_letters.database,
                &dead_letters.container,
                &PartitionKeyDefinition::single("/id"),
                &result.dead_letters,
            )
            .await?;
        Ok(checkpointer.checkpoint().await)
    }

    /// Upserts outputs, binding by binding.
    async fn write_outputs(
        &self,
        outputs: &BTreeMap<String, Vec<Value>>,
    ) -> Result<(), AccountError> {
        for output in &self.outputs {
            if let Some(documents) = outputs.get(&output.parameter) {
                output
                    .account
                    .upsert(
                        &output.database,
                        &output.container,
                        &output.partition_key,
                        documents,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs the function again on a dead-lettered item; on success writes its outputs and
    /// deletes the dead letter.
    ///
    /// # Errors
    /// The invocation failed again (the dead letter stays), or a write failed.
    pub(crate) async fn replay(&self, dead_letter: &Value) -> Result<(), String> {
        let id = dead_letter
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let item = dead_letter
            .get("item")
            .ok_or_else(|| format!("dead letter '{id}' has no item"))?;
        let lease = dead_letter
            .get("lease")
            .and_then(Value::as_str)
            .unwrap_or("replay");
        let attempts = dead_letter
            .get("attempts")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let inputs = self
            .read_inputs()
            .await
            .map_err(|error| error.to_string())?;
        let change = Change::from_json(item.to_string());
        let attempt = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
        let (outputs, failed_items) = self
            .invoke_raw(lease, &[change], &inputs, attempt)
            .await
            .map_err(|failure| failure.error)?;
        if !failed_items.is_empty() {
            return Err("the function reported the item as failed again".into());
        }
        self.write_outputs(&outputs)
            .await
            .map_err(|error| error.to_string())?;
        self.dead_letters
            .delete(id)
            .await
            .map_err(|error| error.to_string())?;
        Ok(())
    }
}

/// The changes whose `id` is in `ids`.
fn select_items(changes: Vec<Change>, ids: &[String]) -> Vec<Change> {
    changes
        .into_iter()
        .filter(|change| {
            change
                .value()
                .ok()
                .and_then(|value| value.get("id").and_then(Value::as_str).map(str::to_owned))
                .is_some_and(|id| ids.contains(&id))
        })
        .collect()
}
