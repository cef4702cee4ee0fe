//! `tributary bench server` with a few hundred requests.

use tributary_bench::{ServerBenchOptions, run_server_bench};

use crate::positive_number;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bench_reports_every_figure() {
    let options = ServerBenchOptions {
        n_items: 500,
        n_reads: 300,
        n_connections: 8,
        feed_page_items: 100,
        ..ServerBenchOptions::default()
    };
    let report = run_server_bench(&options)
        .await
        .expect("the server benchmark runs");
    let json = serde_json::to_value(&report).expect("reports serialize");
    for key in [
        "upserts_per_s",
        "upsert_p50_ms",
        "upsert_p99_ms",
        "point_reads_per_s",
        "read_p50_ms",
        "read_p99_ms",
        "feed_items_per_s",
        "idle_rss_mb",
        "ready_ms",
        "peak_rss_mb",
    ] {
        positive_number(&json, key);
    }
    assert_eq!(json["upsert_ms"]["n"], 500);
    assert_eq!(json["read_ms"]["n"], 300);
    // 4 ranges: at least one full page each way plus one 304 per range.
    assert!(
        json["feed_page_ms"]["n"]
            .as_u64()
            .is_some_and(|n| n >= 5 + 4)
    );
    let text = report.render_text();
    assert!(text.contains("upsert (POST docs)"), "{text}");
}
