//! Feed positions from outside (continuation tokens, `AfterLsn`) are input: any string and
//! any LSN, in both modes, give a page or a clear error, never a panic.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Value, json};
use tributary_store::{
    ContainerDefinition, FeedMode, FeedRequest, FeedScope, FeedStart, ItemWrite, Store,
    StoreOptions,
};

use crate::support::{DATABASE, create_container, open_store, runtime};

const CONTAINER: &str = "positions";
const MODES: [FeedMode; 2] = [FeedMode::LatestVersion, FeedMode::AllVersionsAndDeletes];

/// A store with a few changes in a container that keeps all versions, and one real
/// continuation token of it (decoded), to alter.
fn store_with_token(dir: &std::path::Path) -> (Store, Value) {
    let runtime = runtime();
    let store = open_store(dir, StoreOptions::relaxed());
    let definition = ContainerDefinition {
        change_feed_retention_minutes: Some(60),
        ..ContainerDefinition::new(CONTAINER, "/pk")
    };
    create_container(&runtime, &store, definition, 1);
    for n in 0..3 {
        let write = ItemWrite::upsert(json!({ "id": format!("i{n}"), "pk": "p" }));
        runtime
            .block_on(store.write_item(DATABASE, CONTAINER, write))
            .expect("written");
    }
    let page = store
        .read_feed(
            DATABASE,
            CONTAINER,
            &request(FeedStart::Beginning, FeedMode::LatestVersion),
        )
        .expect("a page");
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&page.continuation)
        .expect("tokens are base64url");
    let token = serde_json::from_slice(&token).expect("tokens are JSON");
    (store, token)
}

fn request(start: FeedStart, mode: FeedMode) -> FeedRequest {
    FeedRequest {
        scope: FeedScope::Container,
        start,
        mode,
        max_items: 10,
    }
}

fn encode(token: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_position_gives_a_page_or_an_error(
        text in "\\PC{0,80}",
        lsn in prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(0u64), Just(1u64), any::<u64>()],
        min in "[0-9A-F]{0,4}",
        max in "[0-9A-F]{0,4}",
        version in any::<u32>(),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, token) = store_with_token(dir.path());
        let mut altered = token.clone();
        altered["lsn"] = json!(lsn);
        let mut range = token.clone();
        range["min"] = json!(min);
        range["max"] = json!(max);
        let mut versioned = token;
        versioned["v"] = json!(version);
        for mode in MODES {
            for start in [
                FeedStart::Continuation(text.clone()),
                FeedStart::Continuation(encode(&altered)),
                FeedStart::Continuation(encode(&range)),
                FeedStart::Continuation(encode(&versioned)),
                FeedStart::AfterLsn(lsn),
                FeedStart::PointInTime(lsn),
            ] {
                // A page or a typed error; a panic fails the test.
                let _ = store.read_feed(DATABASE, CONTAINER, &request(start, mode));
            }
        }
        store.close();
    }
}
