//! Patch request bodies: any JSON text gives a request within the limits that applies to a
//! document all or nothing, or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tributary_patch::{MAX_OPERATIONS, PatchRequest, SYSTEM_PROPERTIES, apply};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(request) = PatchRequest::from_json(&body) else {
        return;
    };
    assert!((1..=MAX_OPERATIONS).contains(&request.operations.len()));
    for operation in &request.operations {
        let path = operation.path();
        assert!(path.starts_with('/'), "{path}");
        let top = path[1..].split('/').next().unwrap_or_default();
        let top = top.replace("~1", "/").replace("~0", "~");
        assert!(!SYSTEM_PROPERTIES.contains(&top.as_str()), "{path}");
    }
    let original = json!({
        "id": "a", "pk": "p", "n": 1, "f": 2.5, "s": "text", "t": true, "z": null,
        "tags": ["x", "y", {"k": [1, 2]}], "o": {"a": {"b": [0, 1, 2]}, "": 3, "a/b": 4}
    });
    let mut patched = original.clone();
    if apply(&mut patched, &request.operations).is_err() {
        assert_eq!(patched, original, "a failed patch changed the document");
    }
});
