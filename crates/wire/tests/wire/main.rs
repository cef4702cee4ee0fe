//! Integration tests of the public API, one module per area.

mod auth;
mod error;
mod headers;
mod session;
