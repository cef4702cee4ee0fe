//! Starting Tributary's Python worker for an app directory (`function_app.py` written with the
//! `azure-functions` package).
//!
//! The worker script is part of the binary ([`WORKER_SCRIPT`]); each start writes it to a
//! private directory under the system's temporary directory and runs
//! `PYTHON -u WORKER_SCRIPT APP_DIR` in the app directory, where `PYTHON` is, in order:
//! - the `TRIBUTARY_PYTHON` environment variable ([`PYTHON_OVERRIDE_VAR`]), if set;
//! - the app's virtual environment, `APP_DIR/.venv/bin/python` (`.venv\Scripts\python.exe`
//!   on Windows), if it exists;
//! - `python3` on `PATH`.
//!
//! The worker itself reports what it cannot do (no `azure-functions`, an app that does not
//! import) in its `fatal` line, which [`start_python_workers`] passes through verbatim.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::process::{DescribedFunction, WorkerCommand, WorkerError, WorkerPool};

/// The Python worker, embedded in the binary.
pub const WORKER_SCRIPT: &str = include_str!("../python/tributary_functions_worker.py");

/// The environment variable that names the Python interpreter to run the worker with (it takes
/// precedence over the app's `.venv`).
pub const PYTHON_OVERRIDE_VAR: &str = "TRIBUTARY_PYTHON";

/// The interpreter used when neither [`PYTHON_OVERRIDE_VAR`] nor a `.venv` names one.
pub const DEFAULT_PYTHON: &str = "python3";

/// Why the Python worker could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PythonError {
    /// The interpreter could not be executed.
    #[error(
        "cannot run the Python interpreter '{interpreter}': {source}; install Python 3 so that \
         `python3` is on PATH, create a virtual environment in the app directory (python3 -m \
         venv .venv), or set {PYTHON_OVERRIDE_VAR} to the interpreter's path"
    )]
    Interpreter {
        /// The interpreter tried.
        interpreter: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The worker script could not be written to its private directory.
    #[error("cannot write the Python worker script to {}: {source}", path.display())]
    WriteScript {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The app directory's absolute path could not be found.
    #[error("cannot resolve the app directory {}: {source}", path.display())]
    AppDir {
        /// The app directory as given.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The worker started but did not get to `ready` (a `fatal` line is passed through as
    /// [`WorkerError::Fatal`], verbatim).
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// The Python interpreter for `app_dir`: [`PYTHON_OVERRIDE_VAR`] if set, else the app's
/// `.venv` interpreter if it exists, else [`DEFAULT_PYTHON`].
pub fn python_interpreter(app_dir: &Path) -> PathBuf {
    if let Some(python) = std::env::var_os(PYTHON_OVERRIDE_VAR).filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let venv_python = if cfg!(windows) {
        app_dir.join(".venv").join("Scripts").join("python.exe")
    } else {
        app_dir.join(".venv").join("bin").join("python")
    };
    if venv_python.exists() {
        venv_python
    } else {
        PathBuf::from(DEFAULT_PYTHON)
    }
}

/// The command that runs the Python worker for `app_dir` with the app's settings `env` added
/// to the environment: `PYTHON -u WORKER_SCRIPT APP_DIR` in `APP_DIR` (made absolute). Writes
/// the worker script (see [`write_worker_script`]).
///
/// # Errors
/// - [`PythonError::AppDir`]: the app directory's absolute path cannot be found.
/// - [`PythonError::WriteScript`]: the worker script cannot be written.
pub fn python_worker_command(
    app_dir: &Path,
    env: BTreeMap<String, String>,
) -> Result<WorkerCommand, PythonError> {
    let app_dir = std::path::absolute(app_dir).map_err(|source| PythonError::AppDir {
        path: app_dir.to_owned(),
        source,
    })?;
    let script = write_worker_script()?;
    Ok(WorkerCommand {
        program: python_interpreter(&app_dir).into_os_string(),
        args: vec![
            OsString::from("-u"),
            script.into_os_string(),
            app_dir.clone().into_os_string(),
        ],
        working_dir: app_dir,
        env,
    })
}

/// Starts `n_processes` Python workers for `app_dir` and returns the pool and the functions
/// the app defines.
///
/// # Errors
/// - [`PythonError::Interpreter`]: the interpreter cannot be executed (the message names it
///   and what to do).
/// - [`PythonError::Worker`] with [`WorkerError::Fatal`]: the worker's own one-line message
///   (e.g. `azure-functions` not installed, an error importing `function_app.py`).
/// - the other errors of [`python_worker_command`] and [`WorkerPool::start`].
pub async fn start_python_workers(
    app_dir: &Path,
    env: BTreeMap<String, String>,
    n_processes: usize,
) -> Result<(WorkerPool, Vec<DescribedFunction>), PythonError> {
    let command = python_worker_command(app_dir, env)?;
    let interpreter = command.program.to_string_lossy().into_owned();
    let label = format!("python {}", command.working_dir.display());
    WorkerPool::start(command, n_processes, &label)
        .await
        .map_err(|error| match error {
            WorkerError::Spawn { source, .. } => PythonError::Interpreter {
                interpreter,
                source,
            },
            other => PythonError::Worker(other),
        })
}

/// Writes [`WORKER_SCRIPT`] to `worker-<hash of its text>.py` in a directory only this user
/// can read (`tributary-functions-<uid>` under the temporary directory, mode 0700) and returns
/// its path. Written each time (to a temporary name, then renamed, so a worker starting
/// concurrently never reads half a file).
///
/// # Errors
/// [`PythonError::WriteScript`]: the directory cannot be created, is not private to this
/// user, or the file cannot be written.
pub fn write_worker_script() -> Result<PathBuf, PythonError> {
    // Numbers the temporary files: several pools of this process may start at once.
    static N_WRITES: AtomicU64 = AtomicU64::new(0);
    let dir = private_dir()?;
    let mut hasher = std::hash::DefaultHasher::new();
    WORKER_SCRIPT.hash(&mut hasher);
    let path = dir.join(format!("worker-{:016x}.py", hasher.finish()));
    let temporary = dir.join(format!(
        "worker-{:016x}.py.{}-{}.tmp",
        hasher.finish(),
        std::process::id(),
        N_WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| PythonError::WriteScript { path, source }
    };
    std::fs::write(&temporary, WORKER_SCRIPT).map_err(write_error(&temporary))?;
    if let Err(error) = std::fs::rename(&temporary, &path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(write_error(&path)(error));
    }
    Ok(path)
}

/// The private directory the worker script is written to, created if missing.
#[cfg(unix)]
fn private_dir() -> Result<PathBuf, PythonError> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};

    let temp = std::env::temp_dir();
    let uid = current_uid(&temp).map_err(|source| PythonError::WriteScript {
        path: temp.clone(),
        source,
    })?;
    let dir = temp.join(format!("tributary-functions-{uid}"));
    let error = |source| PythonError::WriteScript {
        path: dir.clone(),
        source,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(error(e)),
    }
    // Never follow a link, and never use a directory someone else could have prepared.
    let metadata = std::fs::symlink_metadata(&dir).map_err(error)?;
    if !metadata.is_dir() || metadata.uid() != uid {
        return Err(error(std::io::Error::other(
            "it exists and is not a directory owned by this user",
        )));
    }
    if metadata.mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
    }
    Ok(dir)
}

/// This process's user id: the owner of `/proc/self` on Linux, else of a file it creates.
#[cfg(unix)]
fn current_uid(temp: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt as _;

    if let Ok(metadata) = std::fs::metadata("/proc/self") {
        return Ok(metadata.uid());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let probe = temp.join(format!(
        "tributary-uid-probe-{}-{nanos}",
        std::process::id()
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    let uid = file.metadata().map(|m| m.uid());
    drop(file);
    let _ = std::fs::remove_file(&probe);
    uid
}

/// The directory the worker script is written to, created if missing (the temporary
/// directory is per user on Windows).
#[cfg(not(unix))]
fn private_dir() -> Result<PathBuf, PythonError> {
    let dir = std::env::temp_dir().join("tributary-functions");
    std::fs::create_dir_all(&dir).map_err(|source| PythonError::WriteScript {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}
