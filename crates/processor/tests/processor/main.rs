//! The processor's integration tests: on the embedded store, over HTTP, and a deterministic
//! simulation of many hosts.

mod embedded;
mod harness;
mod memory_feed;
mod remote;
mod simulation;
