//! Integration tests for `tributary-client`, one module per area.
//!
//! Every test starts a real Tributary server in-process, on a free loopback port, over a fresh
//! store in a temporary directory ([`harness`]), and drives it with the client: over plain
//! HTTP, and over HTTPS with the server's self-signed certificate.

mod change_feed;
mod connection;
mod documents;
mod harness;
mod resources;
