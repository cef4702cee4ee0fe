//! Integration tests of the public API, one module per area.

mod operations;
mod properties;
mod request;
