//! The host's errors: bad configuration (one line naming the function and the setting) and
//! failures while running.

/// Why an app cannot start. Every message is one line that names what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The app directory or one of its files cannot be read or parsed.
    #[error("{0}")]
    App(String),
    /// A function's configuration is wrong.
    #[error("function '{function}': {message}")]
    Function {
        /// The function.
        function: String,
        /// What is wrong.
        message: String,
    },
    /// A setting a function names is missing or malformed.
    #[error("function '{function}': setting '{setting}' {message}")]
    Setting {
        /// The function.
        function: String,
        /// The setting's name.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// The worker process could not start (the worker's own one-line message).
    #[error("{0}")]
    Worker(String),
    /// A store, server or lease container the app needs is unusable.
    #[error("function '{function}': {message}")]
    Unavailable {
        /// The function.
        function: String,
        /// What failed.
        message: String,
    },
}

/// Why a running host cannot do what it was asked ([`crate::HostHandle`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// No function of that name runs in this host.
    #[error("no function named '{0}' runs in this host")]
    UnknownFunction(String),
    /// The function has no dead letter of that id.
    #[error("function '{function}' has no dead letter '{id}'")]
    UnknownDeadLetter {
        /// The function.
        function: String,
        /// The dead letter's id.
        id: String,
    },
    /// The function's dead-letter container failed.
    #[error("function '{function}': {source}")]
    Account {
        /// The function.
        function: String,
        /// What failed.
        source: crate::account::AccountError,
    },
}
