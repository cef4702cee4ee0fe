//! The functions host's tests: one binary, one module per area.

mod host;
mod process;
