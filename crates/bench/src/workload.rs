//! The documents every benchmark writes: orders of exactly [`ITEM_BYTES`] bytes of JSON.
//!
//! Document `n` is a pure function of `n`, so any phase can name, re-create or look up any
//! item without keeping state: its id is [`order_id`]`(n)` and its partition key
//! [`customer_id`]`(n)`, one of [`N_PARTITION_KEYS`] values.

use serde_json::{Value, json};

/// Serialized size of every benchmark document, before the store adds system properties.
pub const ITEM_BYTES: usize = 1024;
/// Distinct partition key values (`customerId`) across the workload.
pub const N_PARTITION_KEYS: u64 = 1000;
/// The partition key path of the benchmark container.
pub const PARTITION_KEY_PATH: &str = "/customerId";
/// Most line items in one order.
const MAX_LINE_ITEMS: u64 = 4;

const STATUSES: [&str; 5] = ["pending", "paid", "shipped", "delivered", "cancelled"];

/// The id of document `n`: `order-000000042`.
pub fn order_id(n: u64) -> String {
    format!("order-{n:09}")
}

/// The inverse of [`order_id`].
pub fn order_number(id: &str) -> Option<u64> {
    id.strip_prefix("order-")?.parse().ok()
}

/// The partition key value of document `n`: `customer-0042`.
pub fn customer_id(n: u64) -> String {
    format!("customer-{:04}", n % N_PARTITION_KEYS)
}

/// Document `n`: `{id, customerId, status, total, items[], padding}`, padded so its
/// compact JSON is exactly [`ITEM_BYTES`] bytes.
pub fn order_document(n: u64) -> Value {
    let mut random = n;
    let mut next = || {
        random = splitmix64(random);
        random
    };
    let n_line_items = 1 + next() % MAX_LINE_ITEMS;
    let mut total_cents = 0;
    let items: Vec<Value> = (0..n_line_items)
        .map(|_| {
            let quantity = 1 + next() % 5;
            let price_cents = 100 + next() % 9_900;
            total_cents += quantity * price_cents;
            json!({
                "sku": format!("sku-{:05}", next() % 100_000),
                "quantity": quantity,
                "price": price_cents as f64 / 100.0,
            })
        })
        .collect();
    let status = STATUSES[(next() % STATUSES.len() as u64) as usize];
    let mut document = json!({
        "id": order_id(n),
        "customerId": customer_id(n),
        "status": status,
        "total": total_cents as f64 / 100.0,
        "items": items,
        "padding": "",
    });
    let unpadded = document.to_string().len();
    let padding = "x".repeat(ITEM_BYTES.saturating_sub(unpadded));
    document["padding"] = Value::String(padding);
    document
}

/// SplitMix64: a fast, well-mixed 64-bit hash, used as a deterministic random source.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_document_is_exactly_item_bytes() {
        for n in [0, 1, 999, 1000, 123_456, 999_999_999] {
            assert_eq!(
                order_document(n).to_string().len(),
                ITEM_BYTES,
                "document {n}"
            );
        }
    }

    #[test]
    fn documents_are_a_function_of_their_number() {
        assert_eq!(order_document(77), order_document(77));
        assert_ne!(order_document(77), order_document(78));
        assert_eq!(order_document(77)["id"], "order-000000077");
        assert_eq!(order_document(77)["customerId"], "customer-0077");
    }

    #[test]
    fn ids_round_trip_through_order_number() {
        assert_eq!(order_number(&order_id(42)), Some(42));
        assert_eq!(order_number("customer-1"), None);
        assert_eq!(order_number("order-x"), None);
    }

    #[test]
    fn partition_keys_take_exactly_n_partition_keys_values() {
        let keys: HashSet<String> = (0..5 * N_PARTITION_KEYS).map(customer_id).collect();
        assert_eq!(keys.len() as u64, N_PARTITION_KEYS);
    }
}
