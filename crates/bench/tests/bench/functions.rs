//! `tributary bench functions` with a few thousand changes: the Rust handler and the
//! JSON-lines worker run (`python3` is on `PATH`); the Python worker runs where a Python with
//! `azure-functions` is found (`TRIBUTARY_PYTHON`), and is reported as skipped elsewhere.

use tributary_bench::{FunctionsBenchOptions, HandlerKind, HandlerOutcome, run_functions_bench};
use tributary_store::Durability;

use crate::positive_number;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_bench_sees_every_change_through_each_handler_kind() {
    let options = FunctionsBenchOptions {
        n_items: 2_000,
        n_live_writes: 100,
        live_writes_per_s: 1_000,
        durability: Durability::Relaxed,
        ..FunctionsBenchOptions::default()
    };
    let report = run_functions_bench(&options)
        .await
        .expect("the functions benchmark runs");
    let kinds: Vec<HandlerKind> = report.handlers.iter().map(|h| h.kind).collect();
    assert_eq!(kinds, HandlerKind::ALL);
    let json = serde_json::to_value(&report).expect("reports serialize");
    let mut n_documents = 2_000;
    for (handler, handler_json) in report
        .handlers
        .iter()
        .zip(json["handlers"].as_array().expect("handlers"))
    {
        match &handler.outcome {
            HandlerOutcome::Measured(run) => {
                assert_eq!(handler_json["status"], "measured");
                // Each kind catches up on everything written before it started.
                assert_eq!(run.n_changes, n_documents, "{:?}", handler.kind);
                n_documents += run.live_writes;
                for key in [
                    "catchup_changes_per_s",
                    "catchup_seconds",
                    "live_writes_per_s",
                ] {
                    positive_number(handler_json, key);
                }
                // 2,000 changes in pages of at most 100 over 4 leases.
                assert!(run.catchup_invocations >= 20, "{:?}: {run:?}", handler.kind);
                assert!(
                    run.catchup_mean_batch <= 100.0,
                    "{:?}: {run:?}",
                    handler.kind
                );
                assert_eq!(run.live_writes, 100);
                assert_eq!(run.live_ms.n, 100, "every live write was seen");
                assert!(run.live_ms.p50_ms <= run.live_ms.p99_ms);
                assert!(run.live_ms.p99_ms <= run.live_ms.max_ms);
                assert!(run.live_commit_ms.n == 100 && run.live_from_submit_ms.n == 100);
                assert_eq!(run.failed_invocations, 0, "{:?}", handler.kind);
            }
            HandlerOutcome::Skipped { reason } => {
                assert_eq!(
                    handler.kind,
                    HandlerKind::Python,
                    "only the Python worker may be skipped"
                );
                assert_eq!(handler_json["status"], "skipped");
                assert!(reason.contains("azure-functions"), "{reason}");
            }
        }
    }
    assert!(
        matches!(report.handlers[0].outcome, HandlerOutcome::Measured(_))
            && matches!(report.handlers[1].outcome, HandlerOutcome::Measured(_)),
        "the Rust handler and the JSON-lines worker always run"
    );
    assert_eq!(report.max_items_per_invocation, 100);
    let text = report.render_text();
    assert!(text.contains("(a) Rust handler"), "{text}");
    assert!(text.contains("(b) JSON-lines worker"), "{text}");
    assert!(text.contains("write's acknowledgement"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_bench_refuses_zero_items() {
    let options = FunctionsBenchOptions {
        n_items: 0,
        ..FunctionsBenchOptions::default()
    };
    let error = run_functions_bench(&options).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid benchmark parameter: items must be 1 to 10000000, not 0"
    );
}
