//! How running a script fails.

use std::time::Duration;

/// Why a script did not complete.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script threw (or an operation failed with no callback to take the error); the
    /// message is what it threw: an `Error`'s name and message, or the thrown value as text.
    #[error("{0}")]
    Thrown(String),
    /// The script ran past its time limit and was stopped.
    #[error("the script ran longer than its limit of {} ms and was stopped", .0.as_millis())]
    TimedOut(Duration),
    /// The script needed more memory than its limit.
    #[error("the script needed more than its limit of {0} bytes of memory")]
    OutOfMemory(usize),
    /// The engine could not be set up or gave something unexpected back.
    #[error("the JavaScript engine failed: {0}")]
    Engine(String),
}

impl From<rquickjs::Error> for ScriptError {
    fn from(error: rquickjs::Error) -> Self {
        ScriptError::Engine(error.to_string())
    }
}
