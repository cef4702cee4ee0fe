//! Integration tests of `tributary-query`, one module per area. Most tests are tables of
//! (query, parameters, documents, expected rows).

mod aggregates;
mod clauses;
mod conditions;
mod errors;
mod expressions;
mod functions;
mod no_panic;
mod sdk;
mod support;
mod user_functions;
