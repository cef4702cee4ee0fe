//! Integration tests of the public API, one module per area.

mod mutate;
mod operations;
mod properties;
mod request;
