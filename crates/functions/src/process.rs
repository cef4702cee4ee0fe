//! Worker processes: a pool of long-lived processes that speak the JSON-lines protocol of
//! `docs/functions-protocol.md`, as a [`Handler`].
//!
//! [`WorkerPool::start`] spawns the processes and waits for each one's `ready` line. An
//! invocation goes to the process with the fewest invocations in flight (at most
//! [`MAX_IN_FLIGHT_PER_PROCESS`] each; a caller waits for a free slot), as one `invoke` line
//! whose `documents` are the changes' JSON texts spliced in as they are, never re-parsed. One
//! reader task per process hands each `result` line to the invocation with its id and turns
//! `log` lines into `tracing` events with the target [`FUNCTION_LOG_TARGET`].
//!
//! A process is replaced when it dies or is stopped: when an invocation runs past its timeout
//! (the process is killed, since the hung call cannot be stopped any other way), when it exits
//! on its own, or when it breaks the protocol (a line longer than [`MAX_LINE_BYTES`]). Every
//! invocation in flight on it fails, and a new process with the same command is started, with
//! back-off while starting fails. Nothing the worker sends is trusted: malformed lines are
//! logged and skipped, and memory per process is bounded by the line limit.
//!
//! Architecture invariant: one task per process owns its [`Child`] (and is the only one that
//! kills or reaps it); everything else asks that task to stop it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tributary_processor::BoxFuture;

use crate::handler::{Handler, Invocation, InvocationFailure, InvocationOutput, InvocationResult};

/// How long a worker may take to send its first line (`ready` or `fatal`).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Most invocations sent to one process and not yet answered; further ones wait for a slot.
pub const MAX_IN_FLIGHT_PER_PROCESS: usize = 64;

/// Longest line a worker may send on stdout (without its `\n`); a longer one breaks the
/// protocol and the process is replaced.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Longest stderr line logged as one event; the rest of a longer line follows as further events.
pub const MAX_STDERR_LINE_BYTES: usize = 64 * 1024;

/// How many of a process's last stderr lines are kept for error messages.
pub const STDERR_TAIL_LINES: usize = 20;

/// How long [`Handler::shutdown`] lets processes exit after their stdin is closed before it
/// kills them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Most processes in one pool.
pub const MAX_PROCESSES: usize = 256;

/// The first wait before starting a replacement process again after a failed start.
pub const RESTART_BACKOFF_INITIAL: Duration = Duration::from_millis(500);

/// The longest wait between attempts to start a replacement process.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The `tracing` target of the log lines functions send (`RUST_LOG=function=debug`).
pub const FUNCTION_LOG_TARGET: &str = "function";

/// How long a stopped process's output is still read (results sent just before it exited)
/// before its reader is abandoned (a grandchild may hold the pipe open).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long to wait for a process to be reaped after it was killed.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Longest stderr line kept in the tail for error messages, in bytes.
const STDERR_TAIL_LINE_BYTES: usize = 1_000;

/// How a worker process is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program (a path, or a name looked up on `PATH`).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its working directory (the app directory).
    pub working_dir: PathBuf,
    /// Variables added to the inherited environment (the app's settings).
    pub env: BTreeMap<String, String>,
}

/// A function a worker can run, from its `ready` line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DescribedFunction {
    /// The function's name.
    pub name: String,
    /// The `bindings` array of its `function.json`, as Azure Functions defines it.
    #[serde(default)]
    pub bindings: Vec<Value>,
    /// Its retry policy as `azure-functions` records it, if it has one.
    #[serde(default)]
    pub retry: Option<Value>,
    /// Whether the function is a coroutine.
    #[serde(default)]
    pub is_async: bool,
}

/// Why worker processes could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The program could not be executed (not found, not executable).
    #[error("cannot start the worker program {program}: {source}")]
    Spawn {
        /// The program, quoted.
        program: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The worker said it cannot start; the message is its `fatal` line's error, verbatim.
    #[error("{0}")]
    Fatal(String),
    /// The worker exited (or closed its stdout) before it sent `ready`.
    #[error("the worker {label} exited with {status} before it was ready{stderr_tail}")]
    ExitedBeforeReady {
        /// The pool's label and the process id.
        label: String,
        /// The exit status, or what is known of it.
        status: String,
        /// The worker's last stderr lines, introduced by `; its last stderr lines:`, or empty.
        stderr_tail: String,
    },
    /// The worker sent nothing for [`READY_TIMEOUT`].
    #[error("the worker {label} did not send its ready line within {} s", timeout.as_secs())]
    ReadyTimeout {
        /// The pool's label and the process id.
        label: String,
        /// How long the host waited.
        timeout: Duration,
    },
    /// The worker broke the protocol before it was ready.
    #[error("the worker {label} broke the protocol: {reason}")]
    Protocol {
        /// The pool's label and the process id.
        label: String,
        /// What was wrong.
        reason: String,
    },
    /// Reading the worker's output failed.
    #[error("cannot read the output of the worker {label}: {source}")]
    Io {
        /// The pool's label and the process id.
        label: String,
        /// The error.
        source: std::io::Error,
    },
    /// The pool was asked for no processes or too many.
    #[error("a worker pool runs 1 to {MAX_PROCESSES} processes, not {0}")]
    ProcessCount(usize),
}

/// A pool of worker processes running the functions of one app.
///
/// Dropping the pool kills its processes; [`Handler::shutdown`] stops them gently.
pub struct WorkerPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("label", &self.inner.label)
            .field("n_processes", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}

/// What the pool's tasks share.
struct PoolInner {
    command: WorkerCommand,
    label: Arc<str>,
    /// The running process of each slot; `None` while it is being replaced.
    slots: Vec<Mutex<Option<Arc<Process>>>>,
    /// Signalled when an invocation slot frees up (one waiter) or a slot gets a new process
    /// or the pool shuts down (every waiter).
    changed: Notify,
    /// `true` once the pool is shutting down (or dropped).
    shutting_down: watch::Sender<bool>,
    /// The task that supervises each slot.
    slot_tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One running worker process, as the invocations and its reader see it.
struct Process {
    /// The pool's label with the process id, for logs and errors.
    name: String,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    pending: Mutex<PendingTable>,
    next_id: AtomicU64,
    in_flight: Arc<Semaphore>,
    /// Set once the process is being stopped or has exited: it takes no new invocations.
    closing: AtomicBool,
    /// Why the process is being stopped (the first reason given wins).
    stop_reason: Mutex<Option<String>>,
    /// Wakes the slot task to kill the process.
    stop_requested: Notify,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// The invocations sent to a process and not yet answered.
#[derive(Default)]
struct PendingTable {
    /// Set when the process is gone; nothing can be registered any more.
    closed: bool,
    invocations: HashMap<u64, PendingInvocation>,
}

struct PendingInvocation {
    function: Arc<str>,
    invocation_id: Arc<str>,
    answer: oneshot::Sender<InvocationResult>,
}

/// A process that sent `ready`, before its slot task takes it over.
struct StartedProcess {
    process: Arc<Process>,
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr_task: JoinHandle<()>,
    functions: Vec<DescribedFunction>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a single insert, remove or swap).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WorkerPool {
    /// Starts `n_processes` processes running `command` and waits until each has sent
    /// `ready`; returns the pool and the functions the first process described. `label` names
    /// the pool in logs and errors (e.g. the app directory).
    ///
    /// # Errors
    /// - [`WorkerError::Spawn`]: the program cannot be executed.
    /// - [`WorkerError::Fatal`]: a worker sent `fatal` (its message, verbatim).
    /// - [`WorkerError::ExitedBeforeReady`], [`WorkerError::ReadyTimeout`],
    ///   [`WorkerError::Protocol`], [`WorkerError::Io`]: a worker did not get to `ready`.
    /// - [`WorkerError::ProcessCount`]: `n_processes` is 0 or above [`MAX_PROCESSES`].
    ///
    /// The processes already started are killed when one fails.
    pub async fn start(
        command: WorkerCommand,
        n_processes: usize,
        label: &str,
    ) -> Result<(WorkerPool, Vec<DescribedFunction>), WorkerError> {
        if n_processes == 0 || n_processes > MAX_PROCESSES {
            return Err(WorkerError::ProcessCount(n_processes));
        }
        let (shutting_down, _) = watch::channel(false);
        let inner = Arc::new(PoolInner {
            command,
            label: Arc::from(label),
            slots: (0..n_processes).map(|_| Mutex::new(None)).collect(),
            changed: Notify::new(),
            shutting_down,
            slot_tasks: Mutex::new(Vec::with_capacity(n_processes)),
        });
        // Started at once; a failure is reported by the lowest-numbered process that failed.
        let starting: Vec<JoinHandle<Result<StartedProcess, WorkerError>>> = (0..n_processes)
            .map(|_| {
                let command = inner.command.clone();
                let label = Arc::clone(&inner.label);
                tokio::spawn(async move { start_process(&command, &label).await })
            })
            .collect();
        let mut started = Vec::with_capacity(n_processes);
        let mut failed = None;
        for task in starting {
            if failed.is_some() {
                // Aborting drops its process, and `kill_on_drop` stops it.
                task.abort();
                continue;
            }
            match task.await {
                Ok(Ok(process)) => started.push(process),
                Ok(Err(error)) => failed = Some(error),
                Err(join_error) => {
                    failed = Some(WorkerError::Io {
                        label: inner.label.to_string(),
                        source: std::io::Error::other(format!(
                            "starting a worker process panicked or was cancelled: {join_error}"
                        )),
                    });
                }
            }
        }
        if let Some(error) = failed {
            // Dropping the processes started so far stops them.
            return Err(error);
        }
        let functions = started
            .first_mut()
            .map(|first| std::mem::take(&mut first.functions))
            .unwrap_or_default();
        let mut tasks = Vec::with_capacity(n_processes);
        for (slot, process) in started.into_iter().enumerate() {
            *lock(&inner.slots[slot]) = Some(Arc::clone(&process.process));
            tasks.push(tokio::spawn(run_slot(Arc::clone(&inner), slot, process)));
        }
        *lock(&inner.slot_tasks) = tasks;
        tracing::info!(worker = %inner.label, n_processes, "worker processes ready");
        Ok((WorkerPool { inner }, functions))
    }

    /// How many processes the pool runs (some may be being replaced).
    pub fn n_processes(&self) -> usize {
        self.inner.slots.len()
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.inner.shutting_down.send_replace(true);
        for process in self.inner.processes() {
            process.stop("the worker pool was dropped".to_owned());
        }
    }
}

impl Handler for WorkerPool {
    fn invoke(&self, invocation: Invocation, timeout: Duration) -> BoxFuture<'_, InvocationResult> {
        Box::pin(self.inner.invoke(invocation, timeout))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.inner.shutdown())
    }
}

/// Frees an invocation slot of a process when dropped, and tells waiting invocations.
struct InFlightPermit<'a> {
    _permit: OwnedSemaphorePermit,
    pool: &'a PoolInner,
}

impl Drop for InFlightPermit<'_> {
    fn drop(&mut self) {
        // One slot frees up: one waiter (a waiter that gives up passes it on).
        self.pool.changed.notify_one();
    }
}

/// Removes an invocation from its process's table when the invocation ends, however it ends.
struct PendingEntry<'a> {
    process: &'a Process,
    id: u64,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        lock(&self.process.pending).invocations.remove(&self.id);
    }
}

/// Stops a process whose invoke line was cut off half-written: the rest of its input would be
/// garbage. (At the invocation's deadline the process is stopped anyway, for the timeout,
/// with that reason.)
struct WriteGuard<'a> {
    process: &'a Process,
    deadline: Instant,
    done: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.done && Instant::now() < self.deadline {
            self.process.stop(
                "an invocation was cancelled while its invoke line was half-written".to_owned(),
            );
        }
    }
}

impl PoolInner {
    fn is_shutting_down(&self) -> bool {
        *self.shutting_down.borrow()
    }

    fn shut_down_failure(&self) -> InvocationFailure {
        InvocationFailure::new(format!("the worker pool {} is shut down", self.label))
    }

    /// The processes running now.
    fn processes(&self) -> Vec<Arc<Process>> {
        self.slots
            .iter()
            .filter_map(|slot| lock(slot).as_ref().map(Arc::clone))
            .collect()
    }

    /// Waits for the running process with the fewest invocations in flight to have a free
    /// slot, and takes it.
    async fn acquire(&self) -> Result<(Arc<Process>, InFlightPermit<'_>), InvocationFailure> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a slot freed meanwhile is not missed.
            changed.as_mut().enable();
            if self.is_shutting_down() {
                return Err(self.shut_down_failure());
            }
            let best = self
                .processes()
                .into_iter()
                .filter(|process| !process.closing.load(Ordering::Acquire))
                .max_by_key(|process| process.in_flight.available_permits());
            if let Some(process) = best
                && let Ok(permit) = Arc::clone(&process.in_flight).try_acquire_owned()
            {
                return Ok((
                    process,
                    InFlightPermit {
                        _permit: permit,
                        pool: self,
                    },
                ));
            }
            changed.await;
        }
    }

    async fn invoke(&self, invocation: Invocation, timeout: Duration) -> InvocationResult {
        let deadline = Instant::now() + timeout;
        // Built once; each attempt only puts its id in front.
        let body = invoke_object_body(&invocation);
        loop {
            let Ok(acquired) = tokio::time::timeout_at(deadline, self.acquire()).await else {
                return Err(InvocationFailure::new(format!(
                    "no worker process of {} could take function '{}' within its timeout of {} \
                     ms (all busy or being restarted)",
                    self.label,
                    invocation.function,
                    timeout.as_millis()
                )));
            };
            let (process, _permit) = acquired?;
            let id = process.next_id.fetch_add(1, Ordering::Relaxed);
            let (answer, answered) = oneshot::channel();
            {
                let mut pending = lock(&process.pending);
                if pending.closed {
                    // It died between the choice and now: choose again.
                    continue;
                }
                pending.invocations.insert(
                    id,
                    PendingInvocation {
                        function: Arc::clone(&invocation.function),
                        invocation_id: Arc::from(invocation.invocation_id.as_str()),
                        answer,
                    },
                );
            }
            let _entry = PendingEntry {
                process: &process,
                id,
            };
            let mut line = String::with_capacity(body.len() + 48);
            let _ = write!(line, "{{\"type\":\"invoke\",\"id\":{id},");
            line.push_str(&body);
            line.push('\n');
            let sent_and_answered = async {
                process.send_line(line.as_bytes(), deadline).await;
                answered.await
            };
            return match tokio::time::timeout_at(deadline, sent_and_answered).await {
                Ok(Ok(result)) => result,
                // The table was dropped without an answer: only when the process is gone.
                Ok(Err(_)) => Err(InvocationFailure::new(format!(
                    "the worker {} stopped without answering",
                    process.name
                ))),
                Err(_) => {
                    lock(&process.pending).invocations.remove(&id);
                    process.stop(format!(
                        "another invocation on it (function '{}', invocation {}) ran past its \
                         timeout of {} ms",
                        invocation.function,
                        invocation.invocation_id,
                        timeout.as_millis()
                    ));
                    tracing::warn!(
                        worker = %process.name,
                        function = %invocation.function,
                        invocation = %invocation.invocation_id,
                        timeout_ms = timeout.as_millis(),
                        "invocation timed out; killing the worker process"
                    );
                    Err(InvocationFailure::timed_out(&invocation.function, timeout))
                }
            };
        }
    }

    async fn shutdown(&self) {
        self.shutting_down.send_replace(true);
        self.changed.notify_waiters();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        for process in self.processes() {
            // A write stuck on a full pipe holds the lock; the process is killed below then.
            if let Ok(mut stdin) = tokio::time::timeout_at(deadline, process.stdin.lock()).await {
                drop(stdin.take());
            }
        }
        let mut tasks = std::mem::take(&mut *lock(&self.slot_tasks));
        let mut remaining = Vec::new();
        for mut task in tasks.drain(..) {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                remaining.push(task);
            }
        }
        if remaining.is_empty() {
            return;
        }
        for process in self.processes() {
            tracing::warn!(
                worker = %process.name,
                grace_ms = SHUTDOWN_GRACE.as_millis(),
                "worker process did not exit after its stdin was closed; killing it"
            );
            process.stop("the worker pool was shut down".to_owned());
        }
        let deadline = Instant::now() + KILL_WAIT;
        for mut task in remaining {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Process {
    /// Asks the slot task to kill the process; invocations in flight fail with `reason`
    /// (unless an earlier call gave one).
    fn stop(&self, reason: String) {
        self.closing.store(true, Ordering::Release);
        lock(&self.stop_reason).get_or_insert(reason);
        self.stop_requested.notify_one();
    }

    /// Writes one line to the process's stdin. A failed write stops the process; its slot task
    /// then fails the invocation.
    async fn send_line(&self, line: &[u8], deadline: Instant) {
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            // Closed for shutdown: the process exits and the invocation fails with it.
            return;
        };
        let mut guard = WriteGuard {
            process: self,
            deadline,
            done: false,
        };
        let written = pipe.write_all(line).await;
        guard.done = true;
        if let Err(error) = written {
            tracing::warn!(worker = %self.name, %error, "cannot write to the worker's stdin");
            self.stop(format!("writing to its stdin failed: {error}"));
        }
    }

    /// Fails every invocation in flight with `failure`; nothing can be registered afterwards.
    fn close(&self, failure: &InvocationFailure) {
        self.closing.store(true, Ordering::Release);
        let invocations = {
            let mut pending = lock(&self.pending);
            pending.closed = true;
            std::mem::take(&mut pending.invocations)
        };
        for (_, invocation) in invocations {
            let _ = invocation.answer.send(Err(failure.clone()));
        }
    }

    fn stderr_tail(&self) -> String {
        stderr_tail_text(&self.stderr_tail)
    }
}

/// Supervises one slot for the life of the pool: waits for its process to exit (or kills it
/// when asked), fails what was in flight, and starts a replacement unless the pool is
/// shutting down.
async fn run_slot(pool: Arc<PoolInner>, slot: usize, mut started: StartedProcess) {
    let mut shutting_down = pool.shutting_down.subscribe();
    loop {
        let StartedProcess {
            process,
            mut child,
            stdout,
            stderr_task,
            functions: _,
        } = started;
        let mut reader = tokio::spawn(read_results(Arc::clone(&process), stdout));
        if pool.is_shutting_down() {
            // Started while the pool began to shut down, after it closed the others' stdin.
            process.stdin.lock().await.take();
        }
        let (status, killed) = tokio::select! {
            status = child.wait() => (status, false),
            () = process.stop_requested.notified() => {
                process.closing.store(true, Ordering::Release);
                if let Err(error) = child.start_kill() {
                    tracing::warn!(
                        worker = %process.name,
                        %error,
                        "cannot kill the worker process"
                    );
                }
                (child.wait().await, true)
            }
        };
        // A process that exited with a code of its own (e.g. crashed just before a write to
        // it failed, which asked to stop it) is reported by its exit, not by the stop reason.
        let killed =
            killed && !(cfg!(unix) && matches!(&status, Ok(status) if status.code().is_some()));
        process.closing.store(true, Ordering::Release);
        // Results written just before the exit are still delivered.
        if tokio::time::timeout(OUTPUT_DRAIN_TIMEOUT, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
        wait_or_abort(stderr_task, OUTPUT_DRAIN_TIMEOUT).await;
        let failure = exit_failure(&pool, &process, &status, killed);
        if pool.is_shutting_down() {
            tracing::debug!(worker = %process.name, status = ?status, "worker process exited");
        } else {
            tracing::error!(worker = %process.name, "worker process stopped: {}", failure.error);
        }
        process.close(&failure);
        *lock(&pool.slots[slot]) = None;
        drop(process);
        match restart(&pool, &mut shutting_down).await {
            Some(replacement) => {
                *lock(&pool.slots[slot]) = Some(Arc::clone(&replacement.process));
                pool.changed.notify_waiters();
                tracing::info!(
                    worker = %replacement.process.name,
                    "replacement worker process ready"
                );
                started = replacement;
            }
            None => return,
        }
    }
}

/// What the invocations in flight on a process that exited fail with: why it was stopped if
/// it was `killed`, else that the pool shut down or how it exited.
fn exit_failure(
    pool: &PoolInner,
    process: &Process,
    status: &std::io::Result<ExitStatus>,
    killed: bool,
) -> InvocationFailure {
    let status = match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("an unknown status ({error})"),
    };
    if killed {
        let reason = lock(&process.stop_reason)
            .clone()
            .unwrap_or_else(|| "no reason given".to_owned());
        return InvocationFailure::new(format!(
            "the worker {} was stopped: {reason}",
            process.name
        ));
    }
    if pool.is_shutting_down() {
        return pool.shut_down_failure();
    }
    let tail = process.stderr_tail();
    InvocationFailure {
        error: format!(
            "the worker {} exited with {status} while the invocation ran",
            process.name
        ),
        traceback: (!tail.is_empty()).then_some(tail),
        timed_out: false,
    }
}

/// Starts a replacement process, retrying with back-off; `None` once the pool shuts down.
async fn restart(
    pool: &PoolInner,
    shutting_down: &mut watch::Receiver<bool>,
) -> Option<StartedProcess> {
    let mut backoff = RESTART_BACKOFF_INITIAL;
    loop {
        if pool.is_shutting_down() {
            return None;
        }
        let attempt = tokio::select! {
            attempt = start_process(&pool.command, &pool.label) => attempt,
            _ = shutting_down.wait_for(|down| *down) => return None,
        };
        match attempt {
            // Shutdown may have begun while it started: dropping it kills it.
            Ok(_) if pool.is_shutting_down() => return None,
            Ok(started) => return Some(started),
            Err(error) => {
                tracing::error!(
                    worker = %pool.label,
                    retry_in_ms = backoff.as_millis(),
                    "cannot start a replacement worker process: {error}"
                );
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutting_down.wait_for(|down| *down) => return None,
        }
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}

/// Waits for a task a bounded time, then abandons it.
async fn wait_or_abort(mut task: JoinHandle<()>, timeout: Duration) {
    if tokio::time::timeout(timeout, &mut task).await.is_err() {
        task.abort();
    }
}

/// Spawns one process and waits for its `ready` line.
async fn start_process(
    command: &WorkerCommand,
    label: &str,
) -> Result<StartedProcess, WorkerError> {
    let mut child = Command::new(&command.program)
        .args(&command.args)
        .current_dir(&command.working_dir)
        .envs(&command.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| WorkerError::Spawn {
            program: format!("'{}'", command.program.to_string_lossy()),
            source,
        })?;
    let name = match child.id() {
        Some(pid) => format!("{label} (pid {pid})"),
        None => label.to_owned(),
    };
    let io_error = |what: &str| WorkerError::Io {
        label: name.clone(),
        source: std::io::Error::other(format!("its {what} was not piped")),
    };
    let stdin = child.stdin.take().ok_or_else(|| io_error("stdin"))?;
    let stdout = child.stdout.take().ok_or_else(|| io_error("stdout"))?;
    let stderr = child.stderr.take().ok_or_else(|| io_error("stderr"))?;
    let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
    let stderr_task = tokio::spawn(forward_stderr(
        name.clone(),
        stderr,
        Arc::clone(&stderr_tail),
    ));
    let mut stdout = BufReader::new(stdout);
    let first = tokio::time::timeout(READY_TIMEOUT, read_until_ready(&name, &mut stdout)).await;
    let functions = match first {
        Ok(Ok(Some(functions))) => functions,
        Ok(Ok(None)) => {
            // Stdout closed: the process is exiting; its status and last words say why.
            let status = match tokio::time::timeout(KILL_WAIT, child.wait()).await {
                Ok(Ok(status)) => status.to_string(),
                Ok(Err(error)) => format!("an unknown status ({error})"),
                Err(_) => "no exit (it closed its stdout)".to_owned(),
            };
            wait_or_abort(stderr_task, OUTPUT_DRAIN_TIMEOUT).await;
            let tail = stderr_tail_text(&stderr_tail);
            return Err(WorkerError::ExitedBeforeReady {
                label: name,
                status,
                stderr_tail: if tail.is_empty() {
                    String::new()
                } else {
                    format!("; its last stderr lines:\n{tail}")
                },
            });
        }
        Ok(Err(error)) => return Err(error),
        Err(_) => {
            return Err(WorkerError::ReadyTimeout {
                label: name,
                timeout: READY_TIMEOUT,
            });
        }
    };
    let process = Arc::new(Process {
        name,
        stdin: tokio::sync::Mutex::new(Some(stdin)),
        pending: Mutex::new(PendingTable::default()),
        next_id: AtomicU64::new(1),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_PROCESS)),
        closing: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
        stop_requested: Notify::new(),
        stderr_tail,
    });
    Ok(StartedProcess {
        process,
        child,
        stdout,
        stderr_task,
        functions,
    })
}

/// Reads a starting worker's lines up to `ready` (its functions) or `fatal`; `None` at end of
/// output. Log lines before them are forwarded; other lines are skipped with a warning.
async fn read_until_ready<R: AsyncBufRead + Unpin>(
    name: &str,
    stdout: &mut R,
) -> Result<Option<Vec<DescribedFunction>>, WorkerError> {
    let mut buffer = Vec::new();
    loop {
        let line = read_line_bounded(stdout, &mut buffer, MAX_LINE_BYTES)
            .await
            .map_err(|source| WorkerError::Io {
                label: name.to_owned(),
                source,
            })?;
        match line {
            Line::End => return Ok(None),
            Line::TooLong => {
                return Err(WorkerError::Protocol {
                    label: name.to_owned(),
                    reason: format!("it sent a line longer than {MAX_LINE_BYTES} bytes"),
                });
            }
            Line::Complete => {}
        }
        let Some(mut message) = parse_message(name, &buffer) else {
            continue;
        };
        match message.get("type").and_then(Value::as_str) {
            Some("ready") => {
                let functions = match message.remove("functions") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(functions) => serde_json::from_value(functions).map_err(|error| {
                        WorkerError::Protocol {
                            label: name.to_owned(),
                            reason: format!("its ready line's functions are malformed: {error}"),
                        }
                    })?,
                };
                return Ok(Some(functions));
            }
            Some("fatal") => {
                let error = match message.remove("error") {
                    Some(Value::String(error)) => error,
                    other => format!(
                        "the worker {name} could not start (its fatal line has no error message: \
                         {})",
                        other.unwrap_or(Value::Null)
                    ),
                };
                return Err(WorkerError::Fatal(error));
            }
            Some("log") => forward_log(&message, None),
            _ => tracing::warn!(
                worker = %name,
                line = %excerpt(&buffer),
                "worker sent an unexpected line before ready; ignored"
            ),
        }
    }
}

/// Reads a ready process's output until it ends: answers invocations and forwards logs. A
/// line over [`MAX_LINE_BYTES`] or a read error stops the process.
async fn read_results(process: Arc<Process>, mut stdout: BufReader<ChildStdout>) {
    let mut buffer = Vec::new();
    loop {
        // A huge line's buffer is not kept for the life of the process.
        if buffer.capacity() > 1024 * 1024 {
            buffer = Vec::new();
        }
        match read_line_bounded(&mut stdout, &mut buffer, MAX_LINE_BYTES).await {
            Ok(Line::Complete) => {}
            Ok(Line::End) => return,
            Ok(Line::TooLong) => {
                process.stop(format!(
                    "it sent a line longer than {MAX_LINE_BYTES} bytes, which breaks the protocol"
                ));
                return;
            }
            Err(error) => {
                process.stop(format!("reading its output failed: {error}"));
                return;
            }
        }
        let Some(message) = parse_message(&process.name, &buffer) else {
            continue;
        };
        match message.get("type").and_then(Value::as_str) {
            Some("result") => deliver_result(&process, message, &buffer),
            Some("log") => {
                let running = message.get("id").and_then(Value::as_u64).and_then(|id| {
                    lock(&process.pending).invocations.get(&id).map(|pending| {
                        (
                            Arc::clone(&pending.function),
                            Arc::clone(&pending.invocation_id),
                        )
                    })
                });
                forward_log(&message, running);
            }
            Some("fatal") => {
                let error = message.get("error").and_then(Value::as_str);
                tracing::error!(
                    worker = %process.name,
                    "worker reported a fatal error: {}",
                    error.unwrap_or("(no message)")
                );
            }
            _ => tracing::warn!(
                worker = %process.name,
                line = %excerpt(&buffer),
                "worker sent an unexpected line; ignored"
            ),
        }
    }
}

/// Hands a `result` line to the invocation with its id.
fn deliver_result(process: &Process, mut message: Map<String, Value>, line: &[u8]) {
    let Some(id) = message.get("id").and_then(Value::as_u64) else {
        tracing::warn!(
            worker = %process.name,
            line = %excerpt(line),
            "worker sent a result without a numeric id; ignored"
        );
        return;
    };
    let Some(pending) = lock(&process.pending).invocations.remove(&id) else {
        // Answered after its invocation gave up (timed out or cancelled).
        tracing::debug!(worker = %process.name, id, "result for no invocation in flight; ignored");
        return;
    };
    message.remove("type");
    message.remove("id");
    let _ = pending.answer.send(result_from_object(message));
}

/// The outcome a JSON `result` object (without `type` and `id`, as an HTTP handler answers it)
/// stands for; a malformed one is a failure that says what is wrong.
pub(crate) fn result_from_object(mut object: Map<String, Value>) -> InvocationResult {
    let malformed = |what: String| Err(InvocationFailure::new(format!("malformed result: {what}")));
    match object.get("ok") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            let error = match object.remove("error") {
                Some(Value::String(error)) if !error.is_empty() => error,
                Some(Value::String(_)) | Some(Value::Null) | None => {
                    "the function failed without an error message".to_owned()
                }
                Some(other) => other.to_string(),
            };
            let traceback = match object.remove("traceback") {
                Some(Value::String(traceback)) if !traceback.is_empty() => Some(traceback),
                _ => None,
            };
            return Err(InvocationFailure {
                error,
                traceback,
                timed_out: false,
            });
        }
        _ => return malformed("'ok' is missing or not a boolean".to_owned()),
    }
    let mut outputs = BTreeMap::new();
    match object.remove("outputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(bindings)) => {
            for (binding, documents) in bindings {
                match documents {
                    Value::Null => {}
                    Value::Array(documents) => {
                        outputs.insert(binding, documents);
                    }
                    document @ Value::Object(_) => {
                        outputs.insert(binding, vec![document]);
                    }
                    other => {
                        return malformed(format!(
                            "output '{binding}' is neither a document nor a list of them: {}",
                            excerpt(other.to_string().as_bytes())
                        ));
                    }
                }
            }
        }
        Some(_) => return malformed("'outputs' is not an object".to_owned()),
    }
    let mut failed_items = Vec::new();
    match object.remove("failed_items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(id) => failed_items.push(id),
                    Value::Number(id) => failed_items.push(id.to_string()),
                    other => {
                        return malformed(format!("a failed item id is not a string: {other}"));
                    }
                }
            }
        }
        Some(_) => return malformed("'failed_items' is not a list".to_owned()),
    }
    Ok(InvocationOutput {
        outputs,
        failed_items,
    })
}

/// Roughly how long the invoke object of `invocation` is, for one allocation.
fn invoke_json_capacity(invocation: &Invocation) -> usize {
    invocation
        .changes
        .iter()
        .map(|change| change.json().len() + 1)
        .sum::<usize>()
        + 256
}

/// The invoke object's fields after `"id":…,` (or after `{` without `type` and `id`), up to
/// and including the closing `}`: the changes' JSON texts are spliced in unparsed.
fn invoke_object_body(invocation: &Invocation) -> String {
    let mut out = String::with_capacity(invoke_json_capacity(invocation));
    out.push_str("\"function\":");
    push_json_string(&mut out, &invocation.function);
    out.push_str(",\"trigger\":");
    push_json_string(&mut out, &invocation.trigger_parameter);
    out.push_str(",\"documents\":[");
    for (i, change) in invocation.changes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let json = change.json();
        // A line break in JSON text can only be whitespace between tokens (never inside a
        // string); it would end the line, so it becomes a space.
        if json.contains(['\n', '\r']) {
            out.extend(
                json.chars()
                    .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
            );
        } else {
            out.push_str(json);
        }
    }
    out.push_str("],\"inputs\":");
    out.push_str(
        &serde_json::to_string(&invocation.inputs)
            .expect("a map from strings to JSON values always serializes"),
    );
    out.push_str(",\"outputs\":");
    out.push_str(
        &serde_json::to_string(&*invocation.outputs).expect("a list of strings always serializes"),
    );
    out.push_str(",\"context\":{\"lease\":");
    push_json_string(&mut out, &invocation.lease);
    let _ = write!(
        out,
        ",\"attempt\":{},\"invocation_id\":",
        invocation.attempt
    );
    push_json_string(&mut out, &invocation.invocation_id);
    out.push_str("}}");
    out
}

/// The invoke object without `type` and `id`, as an HTTP handler receives it.
pub(crate) fn invoke_object_json(invocation: &Invocation) -> String {
    let body = invoke_object_body(invocation);
    let mut out = String::with_capacity(body.len() + 1);
    out.push('{');
    out.push_str(&body);
    out
}

fn push_json_string(out: &mut String, text: &str) {
    out.push_str(&Value::from(text).to_string());
}

/// Parses a line as a JSON object; anything else is logged and skipped.
fn parse_message(name: &str, line: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(message)) => Some(message),
        Ok(_) => {
            tracing::warn!(
                worker = %name,
                line = %excerpt(line),
                "worker sent a line that is not a JSON object; ignored"
            );
            None
        }
        Err(error) => {
            tracing::warn!(
                worker = %name,
                line = %excerpt(line),
                %error,
                "worker sent a line that is not JSON; ignored"
            );
            None
        }
    }
}

/// Emits a worker's `log` line as a `tracing` event with the target [`FUNCTION_LOG_TARGET`].
/// `running` is the function and invocation id of the invocation the line names, if in flight.
fn forward_log(message: &Map<String, Value>, running: Option<(Arc<str>, Arc<str>)>) {
    let text = message.get("message").and_then(Value::as_str).unwrap_or("");
    let function = match (message.get("function").and_then(Value::as_str), &running) {
        (Some(function), _) => function,
        (None, Some((function, _))) => function,
        (None, None) => "",
    };
    let invocation = running.as_ref().map_or("", |(_, id)| id);
    let level = message
        .get("level")
        .and_then(Value::as_str)
        .unwrap_or("info");
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(target: FUNCTION_LOG_TARGET, $level, function, invocation, "{text}")
        };
    }
    match level {
        "trace" => emit!(tracing::Level::TRACE),
        "debug" => emit!(tracing::Level::DEBUG),
        "warning" | "warn" => emit!(tracing::Level::WARN),
        "error" | "critical" => emit!(tracing::Level::ERROR),
        _ => emit!(tracing::Level::INFO),
    }
}

/// Logs each stderr line of a worker at warn level and keeps the last ones.
async fn forward_stderr(name: String, stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut stderr = BufReader::new(stderr);
    let mut buffer = Vec::new();
    loop {
        match read_line_bounded(&mut stderr, &mut buffer, MAX_STDERR_LINE_BYTES).await {
            Ok(Line::End) => return,
            // A longer line is logged in pieces.
            Ok(Line::Complete | Line::TooLong) => {}
            Err(error) => {
                tracing::warn!(worker = %name, %error, "cannot read the worker's stderr");
                return;
            }
        }
        let line = String::from_utf8_lossy(&buffer);
        tracing::warn!(worker = %name, "{line}");
        let mut tail = lock(&tail);
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(truncate_at_char(&line, STDERR_TAIL_LINE_BYTES).to_owned());
    }
}

fn stderr_tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = lock(tail);
    let mut text = String::new();
    for line in tail.iter() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
    text
}

/// The start of a line, for log messages.
fn excerpt(line: &[u8]) -> String {
    const EXCERPT_BYTES: usize = 200;
    let text = String::from_utf8_lossy(&line[..line.len().min(EXCERPT_BYTES)]).into_owned();
    if line.len() > EXCERPT_BYTES {
        text + "…"
    } else {
        text
    }
}

/// `text` cut to at most `max_bytes`, on a character boundary.
pub(crate) fn truncate_at_char(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What one bounded line read found.
enum Line {
    /// A line (or the last, unterminated one) is in the buffer, without its line break.
    Complete,
    /// The line is longer than the limit; the buffer holds its first `limit + 1` bytes.
    TooLong,
    /// The output ended.
    End,
}

/// Reads one line into `buffer` (cleared first), never more than `limit + 1` bytes.
async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Line> {
    buffer.clear();
    let limit_plus_newline = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let n_read = (&mut *reader)
        .take(limit_plus_newline)
        .read_until(b'\n', buffer)
        .await?;
    if n_read == 0 {
        return Ok(Line::End);
    }
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
        if buffer.last() == Some(&b'\r') {
            buffer.pop();
        }
        return Ok(Line::Complete);
    }
    if buffer.len() > limit {
        return Ok(Line::TooLong);
    }
    Ok(Line::Complete)
}
