//! The processor on the embedded store: delivery, checkpoints, balancing between hosts,
//! graceful hand-off, splits, failures, manual checkpoints, modes and the estimator.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tributary_processor::embedded::{EmbeddedFeed, EmbeddedLeaseContainer};
use tributary_processor::{
    AttachedWrite, Change, ChangeFeedEstimator, ChangeFeedProcessor, ChangeFeedProcessorBuilder,
    CheckpointError, HandlerError, LeaseContainer, LeaseStoreError, MemoryLeaseContainer,
    ProcessorError, ReleaseReason, StartFrom,
};
use tributary_store::{
    ContainerDefinition, FeedScope, ItemWrite, MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS, Store,
};

use crate::harness::{Seen, store_with_orders, wait_for_no_pending, wait_until, write_orders};

/// A builder with intervals short enough for tests.
async fn builder(store: &Arc<Store>, instance: &str) -> ChangeFeedProcessorBuilder {
    let leases = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(store), "db", "leases")
            .await
            .expect("lease container"),
    );
    builder_over(store, instance, leases)
}

/// [`builder`] with the leases in `leases`.
fn builder_over(
    store: &Arc<Store>,
    instance: &str,
    leases: Arc<dyn LeaseContainer>,
) -> ChangeFeedProcessorBuilder {
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(store), "db", "orders"));
    ChangeFeedProcessorBuilder::new("view", feed, leases)
        .instance_name(instance)
        .start_from(StartFrom::Beginning)
        .lease_acquire_interval(Duration::from_millis(100))
        .lease_renew_interval(Duration::from_millis(200))
        .lease_expiration_interval(Duration::from_millis(3000))
        .read_wait(Duration::from_millis(500))
        .retry_backoff(Duration::from_millis(10))
}

async fn start(builder: ChangeFeedProcessorBuilder) -> ChangeFeedProcessor {
    let mut processor = builder.build().expect("valid configuration");
    processor.start().await.expect("processor starts");
    processor
}

fn lease_documents(store: &Store) -> Vec<Value> {
    store
        .scan_items("db", "leases", &FeedScope::Container)
        .unwrap()
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_delivers_every_change_and_checkpoints_each_lease() {
    let (store, _dir) = store_with_orders(4).await;
    write_orders(&store, 0, 300).await;
    let seen = Seen::default();
    let mut processor = start(builder(&store, "a").await.handler(seen.handler())).await;
    wait_until("all 300 changes", || seen.n_distinct() == 300).await;
    assert_eq!(processor.owned_leases().len(), 4);
    // Changes written while it runs arrive too (pushed, not polled).
    write_orders(&store, 300, 310).await;
    wait_until("10 live changes", || seen.n_distinct() == 310).await;
    processor.stop().await;
    assert_eq!(seen.n_deliveries(), 310, "no duplicates without failures");

    let leases = lease_documents(&store);
    let lease_docs: Vec<&Value> = leases
        .iter()
        .filter(|d| d["id"].as_str().unwrap().contains(".."))
        .filter(|d| d.get("LeaseToken").is_some())
        .collect();
    assert_eq!(lease_docs.len(), 4);
    for doc in lease_docs {
        assert_eq!(doc["version"], 1);
        assert!(doc["id"].as_str().unwrap().starts_with("viewembedded_"));
        assert!(doc["FeedRange"]["Range"]["max"].is_string());
        assert!(
            doc["Owner"].is_null(),
            "a stopped host leaves its leases free"
        );
        assert!(doc["ContinuationToken"].as_str().unwrap().starts_with('"'));
        assert_eq!(doc["Mode"], "Incremental Feed");
        assert!(doc["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    assert!(
        leases
            .iter()
            .any(|d| d["id"].as_str().unwrap().ends_with("=.info"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_resumes_from_its_checkpoints() {
    let (store, _dir) = store_with_orders(2).await;
    write_orders(&store, 0, 100).await;
    let seen = Seen::default();
    let mut processor = start(builder(&store, "a").await.handler(seen.handler())).await;
    wait_until("100 changes", || seen.n_distinct() == 100).await;
    processor.stop().await;
    write_orders(&store, 100, 150).await;
    let mut processor = start(builder(&store, "a").await.handler(seen.handler())).await;
    wait_until("150 changes", || seen.n_distinct() == 150).await;
    processor.stop().await;
    assert_eq!(
        seen.n_deliveries(),
        150,
        "nothing before the checkpoint again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_now_skips_history_and_the_estimator_is_exact_at_once() {
    let (store, _dir) = store_with_orders(2).await;
    write_orders(&store, 0, 50).await;
    let seen = Seen::default();
    let mut processor = start(
        builder(&store, "a")
            .await
            .start_from(StartFrom::Now)
            .handler(seen.handler()),
    )
    .await;
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(&store), "db", "orders"));
    let leases: Arc<dyn LeaseContainer> = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(&store), "db", "leases")
            .await
            .unwrap(),
    );
    let estimator = ChangeFeedEstimator::new("view", feed, Arc::clone(&leases), StartFrom::Now)
        .await
        .unwrap();
    let total = |estimates: &[tributary_processor::LeaseEstimate]| {
        estimates.iter().map(|e| e.pending).sum::<u64>()
    };
    assert_eq!(total(&estimator.estimate().await.unwrap()), 0);
    processor.stop().await;
    write_orders(&store, 50, 80).await;
    let estimates = estimator.estimate().await.unwrap();
    assert_eq!(total(&estimates), 30, "{estimates:?}");
    assert!(estimates.iter().all(|e| e.exact));
    let mut processor = start(
        builder(&store, "a")
            .await
            .start_from(StartFrom::Now)
            .handler(seen.handler()),
    )
    .await;
    wait_until("30 changes", || seen.n_distinct() == 30).await;
    assert!(!seen.contains("o0"), "history before the start is skipped");
    processor.stop().await;
    assert_eq!(total(&estimator.estimate().await.unwrap()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_the_leases_and_a_stopping_host_hands_them_over() {
    let (store, _dir) = store_with_orders(4).await;
    write_orders(&store, 0, 200).await;
    let seen = Seen::default();
    let mut a = start(builder(&store, "a").await.handler(seen.handler())).await;
    wait_until("a holds all leases", || a.owned_leases().len() == 4).await;
    let mut b = start(builder(&store, "b").await.handler(seen.handler())).await;
    // b asks a for leases; a hands them over at its next renewal, well before expiry.
    wait_until("2 leases each", || {
        a.owned_leases().len() == 2 && b.owned_leases().len() == 2
    })
    .await;
    wait_until("200 changes", || seen.n_distinct() == 200).await;
    a.stop().await;
    wait_until("b takes a's leases after a graceful stop", || {
        b.owned_leases().len() == 4
    })
    .await;
    write_orders(&store, 200, 260).await;
    wait_until("260 changes", || seen.n_distinct() == 260).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_host_s_leases_are_taken_after_expiry() {
    let (store, _dir) = store_with_orders(2).await;
    write_orders(&store, 0, 40).await;
    let seen = Seen::default();
    let a = start(builder(&store, "a").await.handler(seen.handler())).await;
    wait_until("40 changes", || seen.n_distinct() == 40).await;
    drop(a); // a crash: nothing released
    let mut b = start(builder(&store, "b").await.handler(seen.handler())).await;
    write_orders(&store, 40, 60).await;
    wait_until("b owns both leases", || b.owned_leases().len() == 2).await;
    wait_until("60 changes", || seen.n_distinct() == 60).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_replaces_the_lease_by_child_leases_and_loses_nothing() {
    let (store, _dir) = store_with_orders(1).await;
    write_orders(&store, 0, 200).await;
    let seen = Seen::default();
    let mut processor = start(
        builder(&store, "a")
            .await
            .max_items(10)
            .handler(seen.handler()),
    )
    .await;
    wait_until("some changes", || seen.n_distinct() >= 20).await;
    store.split_range("db", "orders", 0).await.expect("split");
    write_orders(&store, 200, 300).await;
    wait_until("300 changes", || seen.n_distinct() == 300).await;
    wait_until("two child leases", || processor.owned_leases().len() == 2).await;
    processor.stop().await;
    let tokens: Vec<String> = lease_documents(&store)
        .iter()
        .filter_map(|d| d["LeaseToken"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert!(
        !tokens.contains(&"-FF".to_owned()),
        "the parent lease is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_is_retried_reported_and_marked_stuck() {
    let (store, _dir) = store_with_orders(1).await;
    write_orders(&store, 0, 5).await;
    let seen = Seen::default();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU32::new(0));
    let failing = Arc::new(AtomicU32::new(4));
    let (seen2, attempts2, failing2, errors2) = (
        seen.clone(),
        Arc::clone(&attempts),
        Arc::clone(&failing),
        Arc::clone(&errors),
    );
    let mut processor = start(
        builder(&store, "a")
            .await
            .stuck_after_failures(3)
            .on_error(move |_, _| {
                errors2.fetch_add(1, Ordering::SeqCst);
            })
            .handler(move |context, changes| {
                attempts2.lock().unwrap().push(context.attempt);
                let fail = failing2
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if !fail {
                    seen2.record(&changes);
                }
                async move {
                    if fail {
                        Err("downstream is down".into())
                    } else {
                        Ok(())
                    }
                }
            }),
    )
    .await;
    // After 3 failures the lease records it; the estimator reports it stuck.
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(&store), "db", "orders"));
    let leases = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(&store), "db", "leases")
            .await
            .unwrap(),
    );
    wait_until("5 changes after the failures", || seen.n_distinct() == 5).await;
    processor.stop().await;
    assert_eq!(*attempts.lock().unwrap(), vec![1, 2, 3, 4, 5]);
    assert!(errors.load(Ordering::SeqCst) >= 4);
    let estimator = ChangeFeedEstimator::new("view", feed, leases, StartFrom::Beginning)
        .await
        .unwrap();
    let estimates = estimator.estimate().await.unwrap();
    assert!(
        estimates.iter().all(|e| !e.is_stuck()),
        "recovered: {estimates:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_keeps_failing_is_visible_as_stuck() {
    let (store, _dir) = store_with_orders(1).await;
    write_orders(&store, 0, 3).await;
    let mut processor = start(
        builder(&store, "a")
            .await
            .stuck_after_failures(2)
            .handler(|_, _| async { Err("poison message".into()) }),
    )
    .await;
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(&store), "db", "orders"));
    let leases = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(&store), "db", "leases")
            .await
            .unwrap(),
    );
    let estimator = ChangeFeedEstimator::new("view", feed, leases, StartFrom::Beginning)
        .await
        .unwrap();
    let mut stuck = Vec::new();
    for _ in 0..300 {
        stuck = estimator.estimate().await.unwrap();
        if stuck.iter().any(|e| e.is_stuck()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    processor.stop().await;
    let lease = stuck.iter().find(|e| e.is_stuck()).expect("a stuck lease");
    assert!(lease.consecutive_failures >= 2);
    assert_eq!(lease.last_error.as_deref(), Some("poison message"));
    assert_eq!(lease.pending, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_checkpoints_decide_what_is_delivered_again() {
    let (store, _dir) = store_with_orders(1).await;
    write_orders(&store, 0, 10).await;
    let seen = Seen::default();
    let run = |checkpoint: bool| {
        let seen = seen.clone();
        let store = Arc::clone(&store);
        async move {
            start(builder(&store, "a").await.manual_checkpoint_handler(
                move |_, changes, checkpointer| {
                    seen.record(&changes);
                    async move {
                        if checkpoint {
                            checkpointer.checkpoint().await?;
                        }
                        Ok(())
                    }
                },
            ))
            .await
        }
    };
    let mut processor = run(false).await;
    wait_until("10 changes", || seen.n_deliveries() == 10).await;
    processor.stop().await;
    let mut processor = run(true).await;
    wait_until("10 changes again", || seen.n_deliveries() == 20).await;
    processor.stop().await;
    let mut processor = run(true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    processor.stop().await;
    assert_eq!(
        seen.n_deliveries(),
        20,
        "checkpointed changes are not delivered again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_versions_mode_delivers_deletes_and_refuses_latest_version_leases() {
    let (store, _dir) = store_with_orders(1).await;
    let seen = Seen::default();
    let mut processor = start(
        builder(&store, "a")
            .await
            .start_from(StartFrom::Now)
            .all_versions_and_deletes()
            .handler(seen.handler()),
    )
    .await;
    write_orders(&store, 0, 3).await;
    store
        .write_item("db", "orders", {
            let mut write = ItemWrite::upsert(serde_json::json!({"id": "o1", "pk": "k1"}));
            write.kind = tributary_store::WriteKind::Delete;
            write.body = None;
            write.id = Some("o1".into());
            write.partition_key = Some(
                tributary_partition_key::PartitionKey::from_json(&serde_json::json!("k1")).unwrap(),
            );
            write
        })
        .await
        .unwrap();
    wait_until("3 creates and 1 delete", || seen.n_deliveries() == 4).await;
    processor.stop().await;
    let error = builder(&store, "a")
        .await
        .handler(seen.handler())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProcessorError::ModeMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("Full-Fidelity Feed"), "{error}");
}

/// The estimator of the `view` processor on the embedded store, from the beginning.
async fn estimator(store: &Arc<Store>) -> ChangeFeedEstimator {
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(store), "db", "orders"));
    let leases: Arc<dyn LeaseContainer> = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(store), "db", "leases")
            .await
            .expect("lease container"),
    );
    ChangeFeedEstimator::new("view", feed, leases, StartFrom::Beginning)
        .await
        .expect("an estimator")
}

/// The filter of the feed filter tests: `o90`..`o99` of `write_orders`' first hundred match,
/// and nothing written from `n` 200 on.
const NINETIES: &str = "c.n >= 90 AND c.n < 200";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_filter_hands_over_only_matching_changes_and_the_lease_still_reaches_the_end() {
    let (store, _dir) = store_with_orders(1).await;
    write_orders(&store, 0, 100).await;
    let seen = Seen::default();
    let n_filtered = Arc::new(AtomicU64::new(0));
    let n_batches = Arc::new(AtomicU64::new(0));
    let run = || {
        let (seen, n_filtered, n_batches) = (
            seen.clone(),
            Arc::clone(&n_filtered),
            Arc::clone(&n_batches),
        );
        let store = Arc::clone(&store);
        async move {
            start(
                builder(&store, "a")
                    .await
                    .max_items(10)
                    .feed_filter(NINETIES)
                    .handler(move |context, changes| {
                        assert!(!changes.is_empty(), "no handler call without changes");
                        seen.record(&changes);
                        n_filtered.fetch_add(context.n_filtered, Ordering::SeqCst);
                        n_batches.fetch_add(1, Ordering::SeqCst);
                        async { Ok(()) }
                    }),
            )
            .await
        }
    };
    let mut processor = run().await;
    wait_until("o90..o99", || seen.n_distinct() == 10).await;
    assert!((90..100).all(|n| seen.contains(&format!("o{n}"))));
    // Nine pages of ten where nothing matched were checkpointed without a handler call and
    // are reported with the one batch that followed them.
    assert_eq!(n_batches.load(Ordering::SeqCst), 1);
    assert_eq!(n_filtered.load(Ordering::SeqCst), 90);

    // Live changes that all fail the filter move the lease to the end without a batch.
    write_orders(&store, 200, 215).await;
    let estimator = estimator(&store).await;
    wait_for_no_pending(&estimator).await;
    assert_eq!(n_batches.load(Ordering::SeqCst), 1);
    processor.stop().await;
    assert_eq!(seen.n_deliveries(), 10);

    // The estimator counts every change, filtered out or not.
    write_orders(&store, 215, 220).await;
    let estimates = estimator.estimate().await.expect("an estimate");
    assert_eq!(estimates.iter().map(|e| e.pending).sum::<u64>(), 5);

    // A restart resumes past everything filtered out.
    let mut processor = run().await;
    wait_for_no_pending(&estimator).await;
    processor.stop().await;
    assert_eq!(seen.n_deliveries(), 10, "nothing delivered again");
    assert_eq!(n_batches.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_manual_handler_filtered_pages_are_checkpointed_only_after_the_handler_s_own() {
    let (store, _dir) = store_with_orders(1).await;
    write_orders(&store, 0, 100).await;
    let seen = Seen::default();
    let run = |checkpoint: bool| {
        let seen = seen.clone();
        let store = Arc::clone(&store);
        async move {
            start(
                builder(&store, "a")
                    .await
                    .max_items(10)
                    .feed_filter(NINETIES)
                    .manual_checkpoint_handler(move |_, changes, checkpointer| {
                        seen.record(&changes);
                        async move {
                            if checkpoint {
                                checkpointer.checkpoint().await?;
                            }
                            Ok(())
                        }
                    }),
            )
            .await
        }
    };
    let estimator = estimator(&store).await;
    let total = |estimates: &[tributary_processor::LeaseEstimate]| {
        estimates.iter().map(|e| e.pending).sum::<u64>()
    };

    // A handler that does not checkpoint: the changes filtered out after its batch are not
    // checkpointed either, or the checkpoint would pass the batch it did not checkpoint.
    let mut processor = run(false).await;
    wait_until("o90..o99", || seen.n_deliveries() == 10).await;
    write_orders(&store, 200, 206).await;
    // Long enough for the worker to read the six (one read wait is 500 ms).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let estimates = estimator.estimate().await.expect("an estimate");
    assert_eq!(total(&estimates), 106, "{estimates:?}");
    processor.stop().await;

    // A handler that checkpoints: its batch again, and then the filtered pages after it.
    let mut processor = run(true).await;
    wait_until("o90..o99 again", || seen.n_deliveries() == 20).await;
    wait_for_no_pending(&estimator).await;
    processor.stop().await;
    assert_eq!(seen.n_deliveries(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_all_versions_mode_a_feed_filter_sees_the_current_image_and_deletes_pass() {
    let (store, _dir) = store_with_orders(1).await;
    let seen = Seen::default();
    let mut processor = start(
        builder(&store, "a")
            .await
            .start_from(StartFrom::Now)
            .all_versions_and_deletes()
            .feed_filter("c.n = 1")
            .handler(seen.handler()),
    )
    .await;
    write_orders(&store, 0, 3).await;
    let mut delete = ItemWrite::upsert(json!({"id": "o2", "pk": "k2"}));
    delete.kind = tributary_store::WriteKind::Delete;
    delete.body = None;
    delete.id = Some("o2".into());
    delete.partition_key =
        Some(tributary_partition_key::PartitionKey::from_json(&json!("k2")).unwrap());
    store.write_item("db", "orders", delete).await.unwrap();
    wait_until("o1's create and o2's delete", || seen.n_deliveries() == 2).await;
    processor.stop().await;
    assert!(seen.contains("o1") && seen.contains("o2"));
    assert!(!seen.contains("o0"));
}

#[tokio::test]
async fn a_feed_filter_that_does_not_parse_is_refused_when_the_processor_is_built() {
    let (store, _dir) = store_with_orders(1).await;
    let error = builder(&store, "a")
        .await
        .feed_filter("c.n >")
        .handler(|_, _| async { Ok(()) })
        .build()
        .err()
        .expect("a bad filter");
    let message = error.to_string();
    assert!(message.contains("feed filter 'c.n >'"), "{message}");
    let processor = builder(&store, "a")
        .await
        .feed_filter("WHERE c.n > 1")
        .handler(|_, _| async { Ok(()) })
        .build()
        .expect("a valid filter");
    let filter = processor.config().feed_filter.as_ref().expect("a filter");
    assert_eq!(filter.condition(), "WHERE c.n > 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_report_acquired_and_released_leases() {
    let (store, _dir) = store_with_orders(2).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let (acquired, released) = (Arc::clone(&events), Arc::clone(&events));
    let mut processor = start(
        builder(&store, "a")
            .await
            .on_lease_acquired(move |token| acquired.lock().unwrap().push(format!("+{token}")))
            .on_lease_released(move |token, reason| {
                assert_eq!(*reason, ReleaseReason::Shutdown);
                released.lock().unwrap().push(format!("-{token}"));
            })
            .handler(|_, _| async { Ok(()) }),
    )
    .await;
    wait_until("2 leases", || processor.owned_leases().len() == 2).await;
    processor.stop().await;
    let mut events = events.lock().unwrap().clone();
    events.sort();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events.iter().filter(|e| e.starts_with('+')).count(), 2);
}

#[tokio::test]
async fn bad_settings_are_refused_with_the_setting_named() {
    let (store, _dir) = store_with_orders(1).await;
    let no_handler = builder(&store, "a").await.build().err().unwrap();
    assert!(no_handler.to_string().contains("handler"), "{no_handler}");
    let renew = builder(&store, "a")
        .await
        .lease_renew_interval(Duration::from_secs(40))
        .lease_expiration_interval(Duration::from_secs(60))
        .handler(|_, _| async { Ok(()) })
        .build()
        .err()
        .unwrap();
    assert!(renew.to_string().contains("renew interval"), "{renew}");
    let max_items = builder(&store, "a")
        .await
        .max_items(0)
        .handler(|_, _| async { Ok(()) })
        .build()
        .err()
        .unwrap();
    assert!(max_items.to_string().contains("max items"), "{max_items}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_export_and_import_between_lease_containers() {
    let (store, _dir) = store_with_orders(2).await;
    write_orders(&store, 0, 20).await;
    let seen = Seen::default();
    let mut processor = start(builder(&store, "a").await.handler(seen.handler())).await;
    wait_until("20 changes", || seen.n_distinct() == 20).await;
    processor.stop().await;
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(&store), "db", "orders"));
    let leases = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(&store), "db", "leases")
            .await
            .unwrap(),
    );
    let estimator =
        ChangeFeedEstimator::new("view", Arc::clone(&feed) as _, leases, StartFrom::Beginning)
            .await
            .unwrap();
    let export = estimator.leases().export().await.unwrap();
    assert_eq!(export.as_array().unwrap().len(), 3, "2 leases and .info");
    let other = Arc::new(tributary_processor::MemoryLeaseContainer::new());
    let moved = ChangeFeedEstimator::new("view", feed, other, StartFrom::Beginning)
        .await
        .unwrap();
    assert_eq!(moved.leases().import(&export).await.unwrap(), 3);
    let estimates = moved.estimate().await.unwrap();
    assert_eq!(estimates.len(), 2);
    assert!(
        estimates
            .iter()
            .all(|e| e.pending == 0 && e.continuation.is_some())
    );
    let foreign = serde_json::json!([{"id": "other..x", "LeaseToken": "0"}]);
    assert!(moved.leases().import(&foreign).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_calls_within_a_lease_keep_each_partition_key_in_order() {
    let (store, _dir) = store_with_orders(1).await;
    write_orders(&store, 0, 400).await;
    let order: Arc<Mutex<std::collections::BTreeMap<String, Vec<u64>>>> = Arc::default();
    let (running, max_running) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (order2, running2, max2) = (
        Arc::clone(&order),
        Arc::clone(&running),
        Arc::clone(&max_running),
    );
    let mut processor = start(
        builder(&store, "a")
            .await
            .max_items(100)
            .parallelism(4)
            .handler(move |_, changes| {
                let (order, running, max_running) = (
                    Arc::clone(&order2),
                    Arc::clone(&running2),
                    Arc::clone(&max2),
                );
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    max_running.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    {
                        let mut order = order.lock().unwrap();
                        for change in &changes {
                            let value = change.value()?;
                            let key = value["pk"].as_str().unwrap_or_default().to_owned();
                            order
                                .entry(key)
                                .or_default()
                                .push(value["n"].as_u64().unwrap_or(0));
                        }
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
    )
    .await;
    wait_until("400 changes", || {
        order.lock().unwrap().values().map(Vec::len).sum::<usize>() == 400
    })
    .await;
    processor.stop().await;
    assert!(
        max_running.load(Ordering::SeqCst) > 1,
        "one lease ran several handler calls at once"
    );
    for (key, ns) in order.lock().unwrap().iter() {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "{key} out of order: {ns:?}"
        );
    }
    let manual = builder(&store, "a")
        .await
        .parallelism(2)
        .manual_checkpoint_handler(|_, _, _| async { Ok(()) })
        .build()
        .err()
        .unwrap();
    assert!(manual.to_string().contains("parallelism"), "{manual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processors_with_different_names_share_a_lease_container_independently() {
    let (store, _dir) = store_with_orders(2).await;
    write_orders(&store, 0, 50).await;
    let (view, audit) = (Seen::default(), Seen::default());
    let mut first = start(builder(&store, "a").await.handler(view.handler())).await;
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(&store), "db", "orders"));
    let leases = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(&store), "db", "leases")
            .await
            .unwrap(),
    );
    let mut second = start(
        ChangeFeedProcessorBuilder::new("audit", feed, leases)
            .instance_name("a")
            .start_from(StartFrom::Beginning)
            .lease_acquire_interval(Duration::from_millis(100))
            .lease_renew_interval(Duration::from_millis(200))
            .lease_expiration_interval(Duration::from_millis(3000))
            .handler(audit.handler()),
    )
    .await;
    wait_until("both see 50 changes", || {
        view.n_distinct() == 50 && audit.n_distinct() == 50
    })
    .await;
    assert_eq!(first.owned_leases().len(), 2);
    assert_eq!(second.owned_leases().len(), 2);
    first.stop().await;
    second.stop().await;
    let ids: Vec<String> = lease_documents(&store)
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    let view_leases = ids
        .iter()
        .filter(|id| id.starts_with("viewembedded_"))
        .count();
    let audit_leases = ids
        .iter()
        .filter(|id| id.starts_with("auditembedded_"))
        .count();
    // Two leases and the .info document each.
    assert_eq!((view_leases, audit_leases), (3, 3), "{ids:?}");
}

/// Where the attached-write tests put a handler's outputs: another database than the
/// monitored container's and the leases'.
const OUTPUT_DATABASE: &str = "out";
const OUTPUT_CONTAINER: &str = "results";

/// Creates [`OUTPUT_DATABASE`]/[`OUTPUT_CONTAINER`] (partition key `/pk`).
async fn create_outputs(store: &Store) {
    store
        .create_database(OUTPUT_DATABASE)
        .await
        .expect("database");
    store
        .create_container(
            OUTPUT_DATABASE,
            ContainerDefinition::new(OUTPUT_CONTAINER, "/pk"),
            1,
        )
        .await
        .expect("container");
}

/// An upsert of `document` into the outputs container.
fn output(document: Value) -> AttachedWrite {
    AttachedWrite {
        database: OUTPUT_DATABASE.into(),
        container: OUTPUT_CONTAINER.into(),
        document,
    }
}

/// One output per change: its id, partition key and `n`.
fn outputs_of(changes: &[Change]) -> Result<Vec<AttachedWrite>, HandlerError> {
    changes
        .iter()
        .map(|change| {
            let value = change.value()?;
            Ok(output(
                json!({"id": value["id"], "pk": value["pk"], "n": value["n"]}),
            ))
        })
        .collect()
}

/// How many writes the outputs container has taken (its high LSN): an output written
/// twice counts twice.
fn n_output_writes(store: &Store) -> u64 {
    store
        .read_container(OUTPUT_DATABASE, OUTPUT_CONTAINER)
        .expect("outputs container")
        .high_lsn
}

/// What a checkpoint returned, as the tests compare it.
fn checkpoint_result(result: &Result<(), CheckpointError>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(CheckpointError::LeaseLost) => "lease lost".into(),
        Err(CheckpointError::LeaseStore(LeaseStoreError::Unsupported(_))) => "unsupported".into(),
        Err(other) => format!("failed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_with_writes_commits_the_outputs_with_the_checkpoint() {
    let (store, _dir) = store_with_orders(1).await;
    create_outputs(&store).await;
    write_orders(&store, 0, 50).await;
    let mut processor = start(
        builder(&store, "a")
            .await
            .max_items(10)
            .manual_checkpoint_handler(|_, changes, checkpointer| async move {
                checkpointer
                    .checkpoint_with_writes(outputs_of(&changes)?)
                    .await?;
                Ok(())
            }),
    )
    .await;
    wait_until("50 outputs", || n_output_writes(&store) == 50).await;
    processor.stop().await;

    let outputs = store
        .scan_items(OUTPUT_DATABASE, OUTPUT_CONTAINER, &FeedScope::Container)
        .expect("outputs");
    assert_eq!(outputs.len(), 50, "one output per change");
    assert_eq!(n_output_writes(&store), 50, "each output written once");
    let leases: Vec<Value> = lease_documents(&store)
        .into_iter()
        .filter(|d| d.get("LeaseToken").is_some())
        .collect();
    assert_eq!(leases.len(), 1);
    let high_lsn = store
        .read_container("db", "orders")
        .expect("orders")
        .high_lsn;
    assert_eq!(
        leases[0]["ContinuationToken"],
        format!("\"{high_lsn}\""),
        "the checkpoints advanced with the outputs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_with_writes_of_a_lost_lease_writes_nothing() {
    let (store, _dir) = store_with_orders(1).await;
    create_outputs(&store).await;
    write_orders(&store, 0, 5).await;
    let results: Arc<Mutex<Vec<String>>> = Arc::default();
    let (handler_store, handler_results) = (Arc::clone(&store), Arc::clone(&results));
    let mut processor = start(builder(&store, "a").await.manual_checkpoint_handler(
        move |_, changes, checkpointer| {
            let (store, results) = (Arc::clone(&handler_store), Arc::clone(&handler_results));
            async move {
                // Only the first delivery; a later one (the lease taken back) does nothing.
                if !results.lock().unwrap().is_empty() {
                    return Ok(());
                }
                // Another host takes the lease while the batch is handled.
                for mut lease in lease_documents(&store) {
                    if lease.get("LeaseToken").is_some() {
                        lease["Owner"] = json!("thief");
                        store
                            .write_item("db", "leases", ItemWrite::upsert(lease))
                            .await?;
                    }
                }
                let result = checkpointer
                    .checkpoint_with_writes(outputs_of(&changes)?)
                    .await;
                results.lock().unwrap().push(checkpoint_result(&result));
                Ok(())
            }
        },
    ))
    .await;
    wait_until("the checkpoint", || !results.lock().unwrap().is_empty()).await;

    assert_eq!(*results.lock().unwrap(), ["lease lost"]);
    assert_eq!(
        n_output_writes(&store),
        0,
        "no output without the checkpoint"
    );
    let lease = lease_documents(&store)
        .into_iter()
        .find(|d| d.get("LeaseToken").is_some())
        .expect("the lease");
    assert_eq!(lease["Owner"], "thief");
    assert_eq!(lease["ContinuationToken"], Value::Null, "not checkpointed");
    processor.stop().await;
    assert_eq!(n_output_writes(&store), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_with_writes_on_a_memory_lease_container_is_unsupported() {
    let (store, _dir) = store_with_orders(1).await;
    create_outputs(&store).await;
    write_orders(&store, 0, 5).await;
    let memory = Arc::new(MemoryLeaseContainer::new());
    assert!(!memory.supports_attached_writes());
    let embedded = EmbeddedLeaseContainer::open(Arc::clone(&store), "db", "leases")
        .await
        .expect("lease container");
    assert!(embedded.supports_attached_writes());
    let results: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler_results = Arc::clone(&results);
    let mut processor = start(builder_over(&store, "a", memory).manual_checkpoint_handler(
        move |_, changes, checkpointer| {
            let results = Arc::clone(&handler_results);
            async move {
                let result = checkpointer
                    .checkpoint_with_writes(outputs_of(&changes)?)
                    .await;
                results.lock().unwrap().push(checkpoint_result(&result));
                Ok(())
            }
        },
    ))
    .await;
    wait_until("the checkpoint", || !results.lock().unwrap().is_empty()).await;
    processor.stop().await;
    assert_eq!(results.lock().unwrap()[0], "unsupported");
    assert_eq!(n_output_writes(&store), 0);
}

#[tokio::test]
async fn an_embedded_lease_write_with_attached_writes_commits_all_or_nothing() {
    let (store, _dir) = store_with_orders(1).await;
    create_outputs(&store).await;
    let leases = EmbeddedLeaseContainer::open(Arc::clone(&store), "db", "leases")
        .await
        .expect("lease container");
    let lease = leases
        .create(json!({"id": "l1", "n": 0}))
        .await
        .expect("lease created");
    let to = |database: &str, container: &str, document: Value| AttachedWrite {
        database: database.into(),
        container: container.into(),
        document,
    };
    let refused = |container: &str, reason: &str| LeaseStoreError::AttachedWriteFailed {
        database: OUTPUT_DATABASE.into(),
        container: container.into(),
        reason: reason.into(),
    };
    let good = output(json!({"id": "o1", "pk": "a"}));
    let too_many = vec![good.clone(); MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS];
    // (what, the lease etag, the writes, the error)
    let cases: Vec<(&str, &str, Vec<AttachedWrite>, LeaseStoreError)> = vec![
        (
            "a stale lease etag",
            "\"stale\"",
            vec![good.clone()],
            LeaseStoreError::PreconditionFailed("l1".into()),
        ),
        (
            "a missing container",
            &lease.etag,
            vec![
                good.clone(),
                to(OUTPUT_DATABASE, "missing", json!({"id": "x", "pk": "a"})),
            ],
            refused(
                "missing",
                "container 'missing' does not exist in database 'out'",
            ),
        ),
        (
            "a missing database",
            &lease.etag,
            vec![
                good.clone(),
                to("nowhere", OUTPUT_CONTAINER, json!({"id": "x", "pk": "a"})),
            ],
            LeaseStoreError::AttachedWriteFailed {
                database: "nowhere".into(),
                container: OUTPUT_CONTAINER.into(),
                reason: "database 'nowhere' does not exist".into(),
            },
        ),
        (
            "a document without an id",
            &lease.etag,
            vec![good.clone(), output(json!({"pk": "a"}))],
            refused(OUTPUT_CONTAINER, "the item has no 'id' property"),
        ),
        (
            "a document that is not an object",
            &lease.etag,
            vec![output(json!("text")), good.clone()],
            refused(OUTPUT_CONTAINER, "an item must be a JSON object"),
        ),
        (
            "more writes than one transaction holds",
            &lease.etag,
            too_many,
            LeaseStoreError::Unsupported(format!(
                "the embedded store commits at most {} writes with a lease, not {}",
                MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS - 1,
                MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS
            )),
        ),
    ];
    for (what, etag, writes, error) in cases {
        let result = leases
            .replace_with_writes(json!({"id": "l1", "n": 1}), etag, writes)
            .await;
        assert_eq!(result, Err(error), "{what}");
        assert_eq!(
            leases.read("l1").await.expect("read"),
            Some(lease.clone()),
            "{what}: the lease is unchanged"
        );
        assert_eq!(n_output_writes(&store), 0, "{what}: no output");
    }

    let written = leases
        .replace_with_writes(
            json!({"id": "l1", "n": 1}),
            &lease.etag,
            vec![good, output(json!({"id": "o2", "pk": "b"}))],
        )
        .await
        .expect("committed");
    assert_eq!(written.body["n"], 1);
    assert_ne!(written.etag, lease.etag);
    assert_eq!(leases.read("l1").await.expect("read"), Some(written));
    assert_eq!(n_output_writes(&store), 2);
}
