//! Worker processes, the Python worker's command and HTTP endpoints as handlers: the worker
//! fixtures under `workers/` are standard-library Python scripts speaking the protocol of
//! `docs/functions-protocol.md` (run with `python3` from `PATH`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::OsString;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tributary_functions::handler::{Handler, Invocation, InvocationResult};
use tributary_functions::http_handler::{HttpHandler, HttpHandlerError};
use tributary_functions::process::{
    DescribedFunction, FUNCTION_LOG_TARGET, MAX_LINE_BYTES, SHUTDOWN_GRACE, WorkerCommand,
    WorkerError, WorkerPool,
};
use tributary_functions::python::{
    DEFAULT_PYTHON, PYTHON_OVERRIDE_VAR, PythonError, WORKER_SCRIPT, python_interpreter,
    python_worker_command, start_python_workers, write_worker_script,
};
use tributary_processor::Change;

/// The timeout of invocations expected to succeed, and the longest wait for anything that
/// should happen: generous, so a slow machine never fails a test.
const LONG: Duration = Duration::from_secs(60);

/// The timeout of invocations expected to time out.
const SHORT: Duration = Duration::from_millis(300);

fn worker_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/functions/workers")
        .join(name)
}

fn python_command(script: &str) -> WorkerCommand {
    WorkerCommand {
        program: OsString::from("python3"),
        args: vec![OsString::from("-u"), worker_script(script).into_os_string()],
        working_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        env: BTreeMap::new(),
    }
}

async fn echo_pool(n_processes: usize) -> WorkerPool {
    start_echo_pool(python_command("echo_worker.py"), n_processes).await
}

async fn start_echo_pool(command: WorkerCommand, n_processes: usize) -> WorkerPool {
    let (pool, _) = WorkerPool::start(command, n_processes, "echo")
        .await
        .expect("the echo worker starts");
    pool
}

fn invocation(function: &str, documents: &[Value]) -> Invocation {
    Invocation {
        function: Arc::from(function),
        trigger_parameter: Arc::from("documents"),
        changes: documents
            .iter()
            .map(|document| Change::from_json(document.to_string()))
            .collect(),
        inputs: BTreeMap::new(),
        outputs: Arc::from(vec!["out".to_owned()]),
        lease: "-FF".to_owned(),
        attempt: 1,
        invocation_id: format!("invocation-of-{function}"),
    }
}

/// The documents of output `out`.
fn out(result: &InvocationResult) -> &[Value] {
    let output = result.as_ref().expect("the invocation succeeds");
    output.outputs.get("out").expect("output out")
}

/// The process id a worker of the echo fixture runs in.
async fn worker_pid(pool: &WorkerPool) -> u64 {
    let result = pool.invoke(invocation("pid", &[]), LONG).await;
    out(&result)[0]["pid"].as_u64().expect("a pid")
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + LONG;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process with this id exists (or is an unreaped zombie).
#[cfg(target_os = "linux")]
fn process_exists(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn start_returns_the_functions_the_first_worker_describes() {
    let (pool, functions) = WorkerPool::start(python_command("echo_worker.py"), 2, "echo")
        .await
        .expect("the echo worker starts");
    assert_eq!(
        functions,
        vec![
            DescribedFunction {
                name: "echo".to_owned(),
                bindings: vec![json!({"direction": "IN", "type": "cosmosDBTrigger",
                                      "name": "documents", "containerName": "orders"})],
                retry: Some(json!({"strategy": "fixed_delay", "max_retry_count": "2"})),
                is_async: true,
            },
            DescribedFunction {
                name: "minimal".to_owned(),
                bindings: vec![],
                retry: None,
                is_async: false,
            },
        ]
    );
    assert_eq!(pool.n_processes(), 2);
    pool.shutdown().await;
}

#[tokio::test]
async fn an_invocation_sends_the_protocols_fields_and_returns_the_outputs() {
    let pool = echo_pool(1).await;
    // Stored JSON text with line breaks between tokens still goes on one line.
    let documents = [
        Change::from_json(
            "{\n  \"id\": \"o1\",\r\n  \"text\": \"a\\nb ü \\\"q\\\"\"\n}".to_owned(),
        ),
        Change::from_json(r#"{"id":"o2","n":1.5,"nested":{"list":[1,2,null]}}"#.to_owned()),
    ];
    let mut call = invocation("echo", &[]);
    call.changes = documents.to_vec();
    call.inputs
        .insert("products".to_owned(), vec![json!({"id": "p1"})]);
    call.outputs = Arc::from(vec!["out".to_owned(), "request".to_owned()]);
    call.attempt = 3;
    let result = pool.invoke(call, LONG).await;
    let output = result.as_ref().expect("the invocation succeeds");
    assert_eq!(
        output.outputs["out"],
        vec![
            json!({"id": "o1", "text": "a\nb ü \"q\""}),
            json!({"id": "o2", "n": 1.5, "nested": {"list": [1, 2, null]}}),
        ]
    );
    assert_eq!(
        output.outputs["request"],
        vec![json!({
            "type": "invoke", "id": 1, "function": "echo", "trigger": "documents",
            "inputs": {"products": [{"id": "p1"}]}, "outputs": ["out", "request"],
            "context": {"lease": "-FF", "attempt": 3, "invocation_id": "invocation-of-echo"},
        })]
    );
    assert!(output.failed_items.is_empty());
    // Ids count up per process.
    let result = pool.invoke(invocation("echo", &[]), LONG).await;
    assert_eq!(
        result.expect("the invocation succeeds").outputs["request"][0]["id"],
        json!(2)
    );
    pool.shutdown().await;
}

#[tokio::test]
async fn failures_and_failed_items_come_back_as_the_worker_sent_them() {
    let pool = echo_pool(1).await;
    let failure = pool
        .invoke(invocation("fail", &[json!({"id": "o1"})]), LONG)
        .await
        .expect_err("the function raised");
    assert_eq!(failure.error, "KeyError: 'total'");
    assert_eq!(
        failure.traceback.as_deref(),
        Some("Traceback (most recent call last):\n  ...\nKeyError: 'total'\n")
    );
    assert!(!failure.timed_out);
    let output = pool
        .invoke(
            invocation("partial", &[json!({"id": "o1"}), json!({"id": "o2"})]),
            LONG,
        )
        .await
        .expect("per-item failures are a success");
    assert_eq!(output.failed_items, vec!["o1", "o2"]);
    assert!(output.outputs.is_empty());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_run_concurrently_on_every_process() {
    let pool = Arc::new(echo_pool(2).await);
    // Each call waits until both have started: it completes only if they run on the two
    // processes at once (the fewest-in-flight choice sends the second to the idle process).
    let meeting = tempfile::tempdir().expect("a temporary directory");
    let rendezvous = json!({"dir": meeting.path(), "count": 2});
    let (first, second) = tokio::join!(
        pool.invoke(
            invocation("rendezvous", std::slice::from_ref(&rendezvous)),
            LONG
        ),
        pool.invoke(
            invocation("rendezvous", std::slice::from_ref(&rendezvous)),
            LONG
        ),
    );
    assert_ne!(out(&first)[0]["pid"], out(&second)[0]["pid"]);

    // More calls at once than the processes take in flight: the rest wait for a slot.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..300 {
        let pool = Arc::clone(&pool);
        calls.spawn(async move {
            let result = pool
                .invoke(invocation("echo", &[json!({"id": format!("d{i}")})]), LONG)
                .await;
            (i, result)
        });
    }
    let mut n_answered = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, result) = joined.expect("the call task completes");
        assert_eq!(out(&result), [json!({"id": format!("d{i}")})]);
        n_answered += 1;
    }
    assert_eq!(n_answered, 300);
    pool.shutdown().await;
}

#[tokio::test]
async fn a_fatal_line_is_returned_verbatim() {
    let error = WorkerPool::start(python_command("fatal_worker.py"), 2, "fatal")
        .await
        .expect_err("the worker cannot start");
    let expected = "azure-functions is not installed for python3: run `python3 -m pip install azure-functions`";
    assert!(
        matches!(&error, WorkerError::Fatal(message) if message == expected),
        "{error:?}"
    );
    assert_eq!(error.to_string(), expected);
}

#[tokio::test]
async fn a_worker_that_exits_before_ready_is_reported_with_its_status_and_stderr() {
    let error = WorkerPool::start(python_command("exit_worker.py"), 1, "exits")
        .await
        .expect_err("the worker exits");
    assert!(
        matches!(error, WorkerError::ExitedBeforeReady { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("exit status: 2"), "{message}");
    assert!(
        message.contains("starting...\nsomething went wrong before ready"),
        "{message}"
    );
}

#[tokio::test]
async fn a_program_that_cannot_run_is_named_in_the_error() {
    let mut command = python_command("echo_worker.py");
    command.program = OsString::from("/nonexistent/tributary-test-worker");
    let error = WorkerPool::start(command, 1, "missing")
        .await
        .expect_err("there is no such program");
    assert!(matches!(error, WorkerError::Spawn { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("'/nonexistent/tributary-test-worker'"),
        "{error}"
    );
}

#[tokio::test]
async fn a_pool_of_no_processes_is_refused() {
    let error = WorkerPool::start(python_command("echo_worker.py"), 0, "none")
        .await
        .expect_err("no processes");
    assert!(matches!(error, WorkerError::ProcessCount(0)), "{error:?}");
}

#[tokio::test]
async fn log_lines_become_events_with_the_function_and_invocation() {
    // A current-thread runtime: every task, so every event, runs on this thread.
    let events = Capture::start();
    let pool = echo_pool(1).await;
    let result = pool.invoke(invocation("log", &[]), LONG).await;
    assert!(result.is_ok(), "{result:?}");
    let logged: Vec<(Level, String, String, String)> = events
        .take()
        .into_iter()
        .filter(|event| event.target == FUNCTION_LOG_TARGET)
        .map(|event| {
            (
                event.level,
                event.field("message"),
                event.field("function"),
                event.field("invocation"),
            )
        })
        .collect();
    let line = |level, message: &str, function: &str, invocation: &str| {
        (
            level,
            message.to_owned(),
            function.to_owned(),
            invocation.to_owned(),
        )
    };
    assert_eq!(
        logged,
        vec![
            line(Level::INFO, "echo worker starting", "", ""),
            line(Level::TRACE, "a trace line", "log", "invocation-of-log"),
            line(Level::DEBUG, "a debug line", "log", "invocation-of-log"),
            line(Level::INFO, "a info line", "log", "invocation-of-log"),
            line(Level::WARN, "a warning line", "log", "invocation-of-log"),
            line(Level::ERROR, "a error line", "log", "invocation-of-log"),
            line(Level::ERROR, "a critical line", "log", "invocation-of-log"),
        ]
    );
    pool.shutdown().await;
}

#[tokio::test]
async fn malformed_lines_are_logged_and_skipped() {
    let events = Capture::start();
    let pool = echo_pool(1).await;
    let result = pool
        .invoke(invocation("garbage", &[json!({"id": "g"})]), LONG)
        .await;
    assert_eq!(out(&result), [json!({"id": "g"})]);
    let warnings: Vec<String> = events
        .take()
        .into_iter()
        .filter(|event| event.level == Level::WARN)
        .map(|event| event.field("line"))
        .collect();
    assert_eq!(
        warnings,
        vec!["this is not JSON", "[1, 2, 3]", r#"{"type": "mystery"}"#]
    );
    // The worker still answers.
    let result = pool
        .invoke(invocation("echo", &[json!({"id": "e"})]), LONG)
        .await;
    assert_eq!(out(&result), [json!({"id": "e"})]);
    pool.shutdown().await;
}

#[tokio::test]
async fn a_hung_invocation_times_out_stops_its_process_and_the_pool_recovers() {
    let pool = echo_pool(1).await;
    let pid_before = worker_pid(&pool).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let marker = dir.path().join("bystander-started");
    // A bystander in flight on the same process when the other invocation hangs.
    let bystander = pool.invoke(invocation("hang", &[json!({"marker": marker})]), LONG);
    let hung = async {
        wait_for_file(&marker).await;
        let started = Instant::now();
        let result = pool.invoke(invocation("hang", &[]), SHORT).await;
        (result, started.elapsed())
    };
    let (bystander, (hung, elapsed)) = tokio::join!(bystander, hung);

    let failure = hung.expect_err("the invocation hangs");
    assert!(failure.timed_out, "{failure:?}");
    assert_eq!(
        failure.error,
        "function 'hang' ran past its timeout of 300 ms and was stopped"
    );
    assert!(elapsed >= SHORT && elapsed < LONG, "{elapsed:?}");

    let failure = bystander.expect_err("its process was killed");
    assert!(!failure.timed_out, "{failure:?}");
    assert!(
        failure.error.contains(
            "was stopped: another invocation on it (function 'hang', invocation \
             invocation-of-hang) ran past its timeout of 300 ms"
        ),
        "{failure:?}"
    );

    // The next invocation runs on a replacement process.
    let pid_after = worker_pid(&pool).await;
    assert_ne!(pid_before, pid_after);
    #[cfg(target_os = "linux")]
    assert!(!process_exists(pid_before));
    pool.shutdown().await;
}

#[tokio::test]
async fn a_crashed_process_fails_its_invocations_and_is_replaced() {
    let pool = echo_pool(1).await;
    let pid_before = worker_pid(&pool).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let marker = dir.path().join("bystander-started");
    let bystander = pool.invoke(invocation("crash", &[json!({"marker": marker})]), LONG);
    let crash = async {
        wait_for_file(&marker).await;
        pool.invoke(invocation("crash", &[json!({"crash_now": true})]), LONG)
            .await
    };
    let (bystander, crash) = tokio::join!(bystander, crash);
    for failure in [bystander, crash] {
        let failure = failure.expect_err("the process crashed");
        assert!(!failure.timed_out, "{failure:?}");
        assert!(
            failure
                .error
                .contains(&format!("(pid {pid_before}) exited with exit status: 3")),
            "{failure:?}"
        );
        assert_eq!(failure.traceback.as_deref(), Some("crashing on purpose"));
    }
    let pid_after = worker_pid(&pool).await;
    assert_ne!(pid_before, pid_after);
    pool.shutdown().await;
}

#[tokio::test]
async fn a_line_over_the_limit_stops_the_process_and_the_pool_recovers() {
    let pool = echo_pool(1).await;
    let failure = pool
        .invoke(invocation("huge", &[]), LONG)
        .await
        .expect_err("the worker broke the protocol");
    assert!(
        failure.error.contains(&format!(
            "was stopped: it sent a line longer than {MAX_LINE_BYTES} bytes"
        )),
        "{failure:?}"
    );
    let result = pool
        .invoke(invocation("echo", &[json!({"id": "e"})]), LONG)
        .await;
    assert_eq!(out(&result), [json!({"id": "e"})]);
    pool.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_processes_and_fails_what_is_in_flight() {
    let pool = echo_pool(2).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let marker = dir.path().join("started");
    let in_flight = pool.invoke(invocation("hang", &[json!({"marker": marker})]), LONG);
    let pids_and_shutdown = async {
        wait_for_file(&marker).await;
        let meeting = tempfile::tempdir().expect("a temporary directory");
        let rendezvous = json!({"dir": meeting.path(), "count": 1});
        let pid = out(&pool
            .invoke(invocation("rendezvous", &[rendezvous]), LONG)
            .await)[0]["pid"]
            .as_u64()
            .expect("a pid");
        pool.shutdown().await;
        pid
    };
    let (in_flight, other_pid) = tokio::join!(in_flight, pids_and_shutdown);
    let failure = in_flight.expect_err("the pool shut down");
    assert!(failure.error.contains("shut down"), "{failure:?}");
    let failure = pool
        .invoke(invocation("echo", &[]), LONG)
        .await
        .expect_err("the pool is shut down");
    assert_eq!(failure.error, "the worker pool echo is shut down");
    // The marker holds the id of the process that ran the hanging invocation.
    let hanging_pid: u64 = std::fs::read_to_string(&marker)
        .expect("read the marker")
        .parse()
        .expect("a pid");
    assert_ne!(hanging_pid, other_pid);
    #[cfg(target_os = "linux")]
    for pid in [hanging_pid, other_pid] {
        assert!(!process_exists(pid), "process {pid} is gone");
    }
}

#[tokio::test]
async fn shutdown_kills_a_worker_that_keeps_running_after_its_stdin_closes() {
    let mut command = python_command("echo_worker.py");
    command
        .env
        .insert("TEST_WORKER_IGNORE_EOF".to_owned(), "1".to_owned());
    let pool = start_echo_pool(command, 1).await;
    let pid = worker_pid(&pool).await;
    let started = Instant::now();
    pool.shutdown().await;
    assert!(started.elapsed() >= SHUTDOWN_GRACE);
    #[cfg(target_os = "linux")]
    assert!(!process_exists(pid), "the process was killed");
    #[cfg(not(target_os = "linux"))]
    let _ = pid;
}

#[tokio::test]
async fn dropping_the_pool_kills_its_processes() {
    let pool = echo_pool(1).await;
    let pid = worker_pid(&pool).await;
    drop(pool);
    #[cfg(target_os = "linux")]
    {
        let deadline = Instant::now() + LONG;
        while process_exists(pid) {
            assert!(Instant::now() < deadline, "the process outlived its pool");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pid;
}

// The Python worker's command.

/// Makes `APP_DIR/.venv/bin/python` a shell script that runs `args_worker.py`.
#[cfg(unix)]
fn fake_venv_python(app_dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;

    let bin = app_dir.join(".venv/bin");
    std::fs::create_dir_all(&bin).expect("create .venv/bin");
    let python = bin.join("python");
    let script = format!(
        "#!/bin/sh\nexec python3 '{}' \"$@\"\n",
        worker_script("args_worker.py").display()
    );
    std::fs::write(&python, script).expect("write the fake python");
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    python
}

#[cfg(unix)]
#[test]
fn the_interpreter_is_the_apps_venv_python_else_python3() {
    let app_dir = tempfile::tempdir().expect("a temporary directory");
    if let Some(python) = std::env::var_os(PYTHON_OVERRIDE_VAR) {
        // The override wins over everything.
        assert_eq!(python_interpreter(app_dir.path()), PathBuf::from(python));
        return;
    }
    assert_eq!(
        python_interpreter(app_dir.path()),
        PathBuf::from(DEFAULT_PYTHON)
    );
    let venv_python = fake_venv_python(app_dir.path());
    assert_eq!(python_interpreter(app_dir.path()), venv_python);
}

#[cfg(unix)]
#[test]
fn the_worker_script_is_written_to_a_private_directory() {
    use std::os::unix::fs::PermissionsExt as _;

    let path = write_worker_script().expect("the script is written");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read the script"),
        WORKER_SCRIPT
    );
    let dir = path.parent().expect("a directory");
    let mode = std::fs::metadata(dir)
        .expect("its metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // Writing again (each start does) gives the same file.
    assert_eq!(write_worker_script().expect("written again"), path);
}

#[cfg(unix)]
#[tokio::test]
async fn the_python_command_runs_the_worker_script_in_the_app_directory() {
    if std::env::var_os(PYTHON_OVERRIDE_VAR).is_some() {
        // The fake interpreter below would not be used.
        return;
    }
    let app_dir = tempfile::tempdir().expect("a temporary directory");
    let app_dir = app_dir.path().canonicalize().expect("canonical app dir");
    fake_venv_python(&app_dir);
    let env = BTreeMap::from([("TEST_SETTING".to_owned(), "from settings".to_owned())]);
    let command = python_worker_command(&app_dir, env.clone()).expect("the command");
    assert_eq!(command.working_dir, app_dir);
    assert_eq!(command.env, env);
    let (pool, functions) = WorkerPool::start(command, 1, "python")
        .await
        .expect("the fake interpreter starts");
    let started = &functions[0].bindings[0];
    let script = write_worker_script().expect("the script path");
    assert_eq!(
        started,
        &json!({
            "argv": ["-u", script, app_dir],
            "cwd": app_dir,
            "setting": "from settings",
        })
    );
    pool.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn an_interpreter_that_cannot_run_is_named_with_what_to_do() {
    if std::env::var_os(PYTHON_OVERRIDE_VAR).is_some() {
        return;
    }
    let app_dir = tempfile::tempdir().expect("a temporary directory");
    let python = app_dir.path().join(".venv/bin/python");
    std::fs::create_dir_all(python.parent().expect("bin")).expect("create .venv/bin");
    // Not executable.
    std::fs::write(&python, "").expect("write python");
    let error = start_python_workers(app_dir.path(), BTreeMap::new(), 1)
        .await
        .expect_err("it cannot run");
    assert!(
        matches!(error, PythonError::Interpreter { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("'{}'", python.display())),
        "{message}"
    );
    assert!(message.contains(PYTHON_OVERRIDE_VAR), "{message}");
}

#[tokio::test]
async fn the_python_worker_reports_an_app_that_cannot_start_in_one_line() {
    // Without azure-functions the worker says so; with it, it says the app does not import.
    // Either way the worker's fatal line comes back as it is.
    let app_dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        app_dir.path().join("function_app.py"),
        "raise RuntimeError('this app cannot be imported')\n",
    )
    .expect("write function_app.py");
    let error = start_python_workers(app_dir.path(), BTreeMap::new(), 1)
        .await
        .expect_err("the app cannot start");
    let PythonError::Worker(WorkerError::Fatal(message)) = &error else {
        panic!("expected the worker's fatal line, got {error:?}");
    };
    assert!(!message.is_empty() && !message.contains('\n'), "{message}");
    assert_eq!(&error.to_string(), message);
}

// HTTP endpoints.

/// A test endpoint: answers by the invocation's function name and counts the connections it
/// accepted.
struct Endpoint {
    url: String,
    n_connections: Arc<AtomicUsize>,
}

async fn endpoint() -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("its address");
    let n_connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&n_connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Endpoint {
        url: format!("http://{address}/api/invoke?code=1"),
        n_connections,
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = request.uri().to_string();
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .expect("the request body")
        .to_bytes();
    let invoke: Value = serde_json::from_slice(&body).expect("a JSON request");
    let respond = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        Ok(response)
    };
    match invoke["function"].as_str().unwrap_or("") {
        "echo" => {
            let received = json!({"target": target, "content_type": content_type, "body": invoke});
            let result = json!({"ok": true,
                                "outputs": {"out": invoke["documents"], "request": [received]},
                                "failed_items": ["o2"]});
            respond(StatusCode::OK, result.to_string())
        }
        "fail" => respond(
            StatusCode::OK,
            json!({"ok": false, "error": "ValueError: bad", "traceback": "Traceback ..."})
                .to_string(),
        ),
        "status500" => respond(StatusCode::INTERNAL_SERVER_ERROR, "é".repeat(1_000)),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            respond(StatusCode::OK, String::new())
        }
        _ => respond(StatusCode::OK, "not json".to_owned()),
    }
}

#[tokio::test]
async fn an_http_endpoint_gets_the_invoke_object_and_answers_the_result() {
    let endpoint = endpoint().await;
    let handler = HttpHandler::new(&endpoint.url).expect("an http URL");
    for _ in 0..3 {
        let output = handler
            .invoke(
                invocation("echo", &[json!({"id": "o1"}), json!({"id": "o2"})]),
                LONG,
            )
            .await
            .expect("the endpoint answers");
        assert_eq!(
            output.outputs["out"],
            vec![json!({"id": "o1"}), json!({"id": "o2"})]
        );
        assert_eq!(
            output.outputs["request"],
            vec![json!({
                "target": "/api/invoke?code=1",
                "content_type": "application/json",
                "body": {
                    "function": "echo", "trigger": "documents",
                    "documents": [{"id": "o1"}, {"id": "o2"}],
                    "inputs": {}, "outputs": ["out"],
                    "context": {"lease": "-FF", "attempt": 1,
                                "invocation_id": "invocation-of-echo"},
                },
            })]
        );
        assert_eq!(output.failed_items, vec!["o2"]);
    }
    // One keep-alive connection served the calls one after another.
    assert_eq!(endpoint.n_connections.load(Ordering::SeqCst), 1);

    let failure = handler
        .invoke(invocation("fail", &[]), LONG)
        .await
        .expect_err("the function failed");
    assert_eq!(failure.error, "ValueError: bad");
    assert_eq!(failure.traceback.as_deref(), Some("Traceback ..."));
    let failure = handler
        .invoke(invocation("other", &[]), LONG)
        .await
        .expect_err("not a result");
    assert!(
        failure.error.contains("not a JSON result object: not json"),
        "{failure:?}"
    );
    handler.shutdown().await;
}

#[tokio::test]
async fn a_non_2xx_answer_fails_with_the_status_and_the_start_of_the_body() {
    let endpoint = endpoint().await;
    let handler = HttpHandler::new(&endpoint.url).expect("an http URL");
    let failure = handler
        .invoke(invocation("status500", &[]), LONG)
        .await
        .expect_err("a server error");
    assert_eq!(
        failure.error,
        format!(
            "the function endpoint {} answered 500 Internal Server Error: {}",
            endpoint.url,
            "é".repeat(100)
        )
    );
    assert!(!failure.timed_out);
}

#[tokio::test]
async fn an_endpoint_that_refuses_connections_is_named_in_the_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("its address");
    drop(listener);
    let url = format!("http://{address}/");
    let handler = HttpHandler::new(&url).expect("an http URL");
    let failure = handler
        .invoke(invocation("echo", &[]), LONG)
        .await
        .expect_err("nothing listens");
    assert!(
        failure.error.starts_with(&format!(
            "the function endpoint {url} could not be called: cannot connect"
        )),
        "{failure:?}"
    );
    assert!(!failure.timed_out);
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_in_time_times_out() {
    let endpoint = endpoint().await;
    let handler = HttpHandler::new(&endpoint.url).expect("an http URL");
    let started = Instant::now();
    let failure = handler
        .invoke(invocation("hang", &[]), SHORT)
        .await
        .expect_err("it hangs");
    assert!(failure.timed_out, "{failure:?}");
    assert!(started.elapsed() >= SHORT);
    // The handler still works.
    let output = handler
        .invoke(invocation("echo", &[json!({"id": "o1"})]), LONG)
        .await
        .expect("the endpoint answers");
    assert_eq!(output.outputs["out"], vec![json!({"id": "o1"})]);
}

#[test]
fn only_plain_http_urls_are_accepted() {
    let error = HttpHandler::new("https://localhost:7071/api/f").expect_err("https");
    assert!(
        matches!(error, HttpHandlerError::HttpsNotSupported { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("only plain http://"), "{error}");
    for url in [
        "localhost:7071",
        "ftp://host/",
        "http://user@host/",
        "not a url",
    ] {
        let error = HttpHandler::new(url).expect_err(url);
        assert!(
            matches!(error, HttpHandlerError::InvalidUrl { .. }),
            "{url}: {error:?}"
        );
    }
}

// Capturing `tracing` events.

#[derive(Debug)]
struct CapturedEvent {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

impl CapturedEvent {
    fn field(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }
}

thread_local! {
    /// The events captured on this thread, while a [`Capture`] is alive.
    static CAPTURED: RefCell<Option<Vec<CapturedEvent>>> = const { RefCell::new(None) };
}

/// Captures the events emitted on this thread (with a current-thread runtime: by every task
/// of the test) while it is alive.
///
/// The subscriber is global and keeps only the events of capturing threads: a scoped one
/// (`tracing::subscriber::set_default`) misses callsites that another test's thread registers
/// first while it is the only scoped subscriber.
struct Capture;

impl Capture {
    fn start() -> Capture {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(ThreadCapture)
                .expect("no other global tracing subscriber in the test binary");
        });
        tracing::callsite::rebuild_interest_cache();
        CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
        Capture
    }

    fn take(&self) -> Vec<CapturedEvent> {
        CAPTURED.with(|captured| std::mem::take(captured.borrow_mut().as_mut().expect("capturing")))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURED.with(|captured| *captured.borrow_mut() = None);
    }
}

struct ThreadCapture;

struct FieldsVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for ThreadCapture {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        CAPTURED.with(|captured| captured.borrow().is_some())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldsVisitor(&mut fields));
        CAPTURED.with(|captured| {
            if let Some(events) = captured.borrow_mut().as_mut() {
                events.push(CapturedEvent {
                    target: event.metadata().target().to_owned(),
                    level: *event.metadata().level(),
                    fields,
                });
            }
        });
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}
