//! Integration tests of the public API, one module per area.

mod definition;
mod key;
mod properties;
mod range;
mod vectors;
