//! Integration tests of the public API, one module per area.

mod auth;
mod binary_json;
mod error;
mod headers;
mod session;
