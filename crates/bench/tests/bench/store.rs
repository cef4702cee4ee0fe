//! `tributary bench store` with a few hundred items.

use tributary_bench::{StoreBenchOptions, run_store_bench};
use tributary_store::Durability;

use crate::positive_number;

fn tiny_options() -> StoreBenchOptions {
    StoreBenchOptions {
        n_items: 500,
        n_concurrent_items: 250,
        n_writers: 16,
        feed_page_items: 100,
        n_latency_writes: 50,
        latency_interval_ms: 1,
        ..StoreBenchOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_bench_reports_every_figure() {
    let report = run_store_bench(&tiny_options())
        .await
        .expect("the store benchmark runs");
    let json = serde_json::to_value(&report).expect("reports serialize");
    for key in [
        "ingest_batch_docs_per_s",
        "ingest_concurrent_docs_per_s",
        "feed_catchup_items_per_s",
        "feed_catchup_mb_per_s",
        "commit_to_reader_p50_ms",
        "commit_to_reader_p99_ms",
        "store_disk_mb",
        "peak_rss_mb",
    ] {
        positive_number(&json, key);
    }
    // ack→reader may legitimately be zero: the commit wakes writer and reader together.
    assert!(json["ack_to_reader_p50_ms"].as_f64().is_some());
    assert_eq!(
        json["ingest_batch_commit_ms"]["n"], 5,
        "500 items in commits of 100"
    );
    assert_eq!(json["ingest_concurrent_write_ms"]["n"], 250);
    assert_eq!(json["commit_to_reader_ms"]["n"], 50);
    assert_eq!(json["item_bytes"], 1024);
    assert_eq!(json["parameters"]["durability"], "fsync");
    assert!(json["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1));
    let text = report.render_text();
    assert!(
        text.contains("ingest-batch (100/commit, 4 in flight)"),
        "{text}"
    );
    assert!(text.contains("commit→reader (submit→seen)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_bench_refuses_an_oversized_batch() {
    let options = StoreBenchOptions {
        batch_size: 101,
        durability: Durability::Relaxed,
        ..tiny_options()
    };
    let error = run_store_bench(&options).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid benchmark parameter: batch size must be 1 to 100, not 101"
    );
}
