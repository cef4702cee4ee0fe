//! Cosmos DB server-side JavaScript: stored procedures, triggers and user-defined functions,
//! run on QuickJS (through `rquickjs`) against an abstract, partition-scoped document
//! context.
//!
//! A run gets a fresh QuickJS runtime with a time limit (the interrupt handler stops a
//! script past it), a memory limit and a stack limit ([`ScriptLimits`]). The Cosmos DB
//! server-side API is written in JavaScript (`prelude.js`) over one host function, which
//! hands each document operation to the caller's [`DocumentContext`]:
//!
//! - `getContext()` with `getCollection()` (also `__`), `getRequest()`, `getResponse()`;
//! - the collection's `createDocument`, `upsertDocument`, `replaceDocument`,
//!   `readDocument`, `deleteDocument`, `queryDocuments` (SQL text or `{query,
//!   parameters}`, paged with `pageSize` and `continuation`), `readDocuments`,
//!   `getSelfLink`, `getAltLink`: each `(link, ..., options, callback)`, returning `true`
//!   (accepted), the callback getting `(error, result, responseOptions)` once the current
//!   call stack has finished, as Cosmos DB completes operations asynchronously; an error
//!   with no callback aborts the script;
//! - the response's `getBody`, `setBody`, `appendBody` and `getValue`/`setValue`/
//!   `appendValue` of `Body`; the request's `getBody` (and `setBody` in a pre-trigger);
//! - `console.log`, with `%s`, `%d`, `%i`, `%f`, `%j`, `%o` substitutions, collected into
//!   [`ScriptOutput::log`].
//!
//! What it is not: a store. Atomicity (a stored procedure's writes committed all or none)
//! belongs to the caller's context, which sees each write and decides when to commit. The
//! JavaScript query API (`__.filter`, `map`, `chain`, ...) and attachments are not
//! supported and throw when called; so do values other than `Body`.
//!
//! ```
//! use tributary_scripts::{ScriptLimits, UserDefinedFunctions};
//! let functions = UserDefinedFunctions::new(
//!     [("tax", "function (price) { return price * 0.2; }")],
//!     ScriptLimits::default(),
//! )
//! .unwrap();
//! assert_eq!(functions.call("tax", &[serde_json::json!(50)]).unwrap(), Some(serde_json::json!(10)));
//! ```

mod context;
mod engine;
mod error;
mod run;

pub use context::{DocumentContext, DocumentError, DocumentWrite};
pub use engine::ScriptLimits;
pub use error::ScriptError;
pub use run::{
    ScriptOutput, TriggerInput, UserDefinedFunctions, run_stored_procedure, run_trigger,
};
