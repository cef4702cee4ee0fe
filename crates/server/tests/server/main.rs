//! Conformance tests for `tributary-server`, one module per area.
//!
//! Every test starts its own server in-process, on a free loopback port, over a fresh store
//! in a temporary directory, and talks plain HTTP to it: with a small client that signs
//! requests as the SDKs do ([`harness`]), which lets a test send what no SDK would, and with
//! the official Rust SDK, `azure_data_cosmos` ([`sdk`]). Each request is bounded by
//! [`harness::REQUEST_TIMEOUT`].

mod atomicity;
mod auth;
mod basics;
mod bulk;
mod disk_full;
mod explorer;
mod explorer_functions;
mod feed_filter;
mod harness;
mod index_use;
mod input;
mod keys;
mod limits;
mod long_poll;
mod offers;
mod permissions;
mod queries;
mod query_plans;
mod range_index;
mod row_windows;
mod scripts;
mod sdk;
mod sessions;
mod transaction;
