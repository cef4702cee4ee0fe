//! Integration tests of the `tributary` binary: each runs the built binary against a
//! temporary data directory or an in-process server, as a user would.

mod disk;
mod feed;
mod harness;
mod keys;
mod leases;
#[cfg(unix)]
mod processor_processes;
mod remote;
mod repair;
mod soak;
