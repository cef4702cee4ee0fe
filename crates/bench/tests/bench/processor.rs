//! `tributary bench processor` with a few thousand changes, without the host processes.

use tributary_bench::{ProcessorBenchOptions, run_processor_bench};
use tributary_store::Durability;

use crate::positive_number;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_bench_sees_every_change_embedded_and_over_http() {
    let options = ProcessorBenchOptions {
        n_items: 2_000,
        n_live_writes: 200,
        live_writes_per_s: 1_000,
        max_items: 100,
        durability: Durability::Relaxed,
        ..ProcessorBenchOptions::default()
    };
    let report = run_processor_bench(&options)
        .await
        .expect("the processor benchmark runs");
    let json = serde_json::to_value(&report).expect("reports serialize");
    for run in ["embedded", "http"] {
        let run_json = &json[run];
        for key in [
            "catchup_changes_per_s",
            "catchup_ms",
            "live_writes_per_s",
            "live_p50_ms",
            "live_p99_ms",
        ] {
            positive_number(run_json, key);
        }
        // 2,000 changes in batches of at most 100 over 4 leases.
        let n_batches = run_json["catchup_batches"].as_u64().unwrap_or(0);
        assert!(n_batches >= 20, "{run}: {n_batches} batches");
        // Every live write was seen, each with a write→handler latency.
        assert_eq!(run_json["live_ms"]["n"].as_u64(), Some(200), "{run}");
        let live = &run_json["live_ms"];
        assert!(live["p50_ms"].as_f64() <= live["p90_ms"].as_f64(), "{run}");
        assert!(live["p99_ms"].as_f64() <= live["max_ms"].as_f64(), "{run}");
        assert!(run_json["catchup_duplicates"].as_u64().is_some(), "{run}");
    }
    assert!(
        json["failover"].is_null(),
        "no host command, no failover phase"
    );
    assert_eq!(json["parameters"]["n_feed_ranges"], 4);
    positive_number(&json, "peak_rss_mb");
    let text = report.render_text();
    assert!(text.contains("embedded catch-up, 1 host"), "{text}");
    assert!(
        text.contains("HTTP (long-poll) live, 1 host (write→handler)"),
        "{text}"
    );
    assert!(text.contains("failover phase not run"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_bench_refuses_a_zero_rate() {
    let options = ProcessorBenchOptions {
        live_writes_per_s: 0,
        ..ProcessorBenchOptions::default()
    };
    let error = run_processor_bench(&options).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid benchmark parameter: live write rate must be 1 to 100000 per second, not 0"
    );
}
