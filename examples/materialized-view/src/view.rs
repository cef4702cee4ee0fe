//! The view document of one customer and the idempotent fold of orders into it.
//!
//! The view keeps, per order id, the order's total, status and the `_lsn` of the version it
//! was last folded from, and derives the sums from that map. An order version is applied
//! only if its `_lsn` is newer than the one recorded, so folding a batch a second time, or
//! an older version after a newer one, changes nothing: redelivery is harmless.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One version of an order, as the change feed delivers it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Order {
    /// The order id.
    pub id: String,
    /// The customer, also the orders container's partition key.
    #[serde(rename = "customerId")]
    pub customer_id: String,
    /// What the order costs.
    pub total: f64,
    /// Where the order is: `placed`, `shipped`, `cancelled`, ...
    pub status: String,
    /// The position of this version in the container's change feed.
    #[serde(rename = "_lsn")]
    pub lsn: u64,
}

/// The view document of one customer in the view container (partition key `/id`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CustomerTotals {
    /// The customer id.
    pub id: String,
    /// Orders of the customer.
    pub order_count: u64,
    /// Sum of their totals.
    pub total: f64,
    /// Count and sum per order status.
    pub by_status: BTreeMap<String, StatusTotals>,
    /// Each order as last applied: what the sums are computed from.
    pub orders: BTreeMap<String, AppliedOrder>,
}

/// Count and sum of the orders in one status.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusTotals {
    /// Orders in this status.
    pub order_count: u64,
    /// Sum of their totals.
    pub total: f64,
}

/// An order as the view last applied it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct AppliedOrder {
    /// The order's total.
    pub total: f64,
    /// The order's status.
    pub status: String,
    /// The `_lsn` of the applied version.
    pub lsn: u64,
}

impl CustomerTotals {
    /// The view of a customer with no orders yet.
    pub fn new(customer_id: &str) -> Self {
        CustomerTotals {
            id: customer_id.to_owned(),
            order_count: 0,
            total: 0.0,
            by_status: BTreeMap::new(),
            orders: BTreeMap::new(),
        }
    }

    /// Folds in the order versions that are newer than what the view holds, and returns how
    /// many were. The sums are recomputed from the order map (in order id order, so the same
    /// orders always give the same sums).
    pub fn apply<'a>(&mut self, orders: impl IntoIterator<Item = &'a Order>) -> usize {
        let mut n_applied = 0;
        for order in orders {
            let is_newer = self
                .orders
                .get(&order.id)
                .is_none_or(|applied| order.lsn > applied.lsn);
            if is_newer {
                self.orders.insert(
                    order.id.clone(),
                    AppliedOrder {
                        total: order.total,
                        status: order.status.clone(),
                        lsn: order.lsn,
                    },
                );
                n_applied += 1;
            }
        }
        if n_applied > 0 {
            self.recompute();
        }
        n_applied
    }

    fn recompute(&mut self) {
        self.order_count = self.orders.len() as u64;
        self.total = self.orders.values().map(|order| order.total).sum();
        self.by_status.clear();
        for order in self.orders.values() {
            let totals = self.by_status.entry(order.status.clone()).or_default();
            totals.order_count += 1;
            totals.total += order.total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, total: f64, status: &str, lsn: u64) -> Order {
        Order {
            id: id.into(),
            customer_id: "ada".into(),
            total,
            status: status.into(),
            lsn,
        }
    }

    #[test]
    fn applying_a_batch_twice_changes_nothing() {
        let batch = [
            order("o1", 10.0, "placed", 1),
            order("o2", 5.0, "placed", 2),
        ];
        let mut view = CustomerTotals::new("ada");
        assert_eq!(view.apply(&batch), 2);
        let once = view.clone();

        assert_eq!(view.apply(&batch), 0);
        assert_eq!(view, once);
        assert_eq!((view.order_count, view.total), (2, 15.0));
        assert_eq!(view.by_status["placed"].order_count, 2);
    }

    #[test]
    fn an_older_version_does_not_undo_a_newer_one() {
        let mut view = CustomerTotals::new("ada");
        view.apply(&[
            order("o1", 10.0, "placed", 1),
            order("o1", 12.0, "shipped", 3),
        ]);
        assert_eq!(view.apply(&[order("o1", 10.0, "placed", 1)]), 0);

        assert_eq!((view.order_count, view.total), (1, 12.0));
        assert!(!view.by_status.contains_key("placed"));
        assert_eq!(view.by_status["shipped"].total, 12.0);
    }
}
