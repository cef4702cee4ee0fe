//! Partition-key JSON: the `x-ms-documentdb-partitionkey` header, container `partitionKey`
//! definitions, EPK text and paths. What parses round-trips through its JSON form, and a key
//! hashes into its own EPK range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary_partition_key::{
    Epk, PartitionKey, PartitionKeyDefinition, PartitionKeyVersion, parse_path,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = PartitionKey::from_header(text) {
        let again =
            PartitionKey::from_header(&key.to_json().to_string()).expect("a key's own JSON parses");
        assert_eq!(again, key);
        let definitions = [
            PartitionKeyDefinition::single("/pk"),
            PartitionKeyDefinition {
                version: PartitionKeyVersion::V1,
                ..PartitionKeyDefinition::single("/pk")
            },
            PartitionKeyDefinition::hierarchical(&["/a", "/b", "/c"]).expect("valid paths"),
        ];
        for definition in definitions {
            if let Ok(epk) = key.effective_partition_key(&definition) {
                let range = key
                    .epk_range(&definition)
                    .expect("a key with an EPK has a range");
                assert!(range.contains(&epk), "{epk} not in {range}");
            }
        }
    }
    if let Ok(body) = serde_json::from_str::<Value>(text) {
        if let Ok(definition) = PartitionKeyDefinition::from_json(&body) {
            assert!(definition.validate().is_ok());
            let again = PartitionKeyDefinition::from_json(&definition.to_json()).ok();
            assert_eq!(again, Some(definition));
        }
        if let Ok(document_key) =
            PartitionKey::extract(&PartitionKeyDefinition::single("/a/b"), &body)
        {
            let _ = document_key.effective_partition_key(&PartitionKeyDefinition::single("/a/b"));
        }
    }
    if let Ok(epk) = Epk::parse(text) {
        assert_eq!(epk.as_str(), text.to_ascii_uppercase());
        assert_eq!(Epk::from_bytes(&epk.to_bytes()), epk);
    }
    if let Ok(segments) = parse_path(text) {
        assert!(!segments.is_empty());
    }
});
