'use strict';
// The app's functions: one export per [[function]] of tributary.toml (worker.js runs them).
// Each gets the batch of changed documents, in feed order, and a context (see worker.js).

const STATUSES = new Set(['pending', 'paid', 'shipped', 'delivered', 'cancelled']);

// Every order change becomes the order's row in the `view` container (the output binding
// `view`; an upsert each, so a later change of the order replaces its row).
exports.project_orders = async (documents, context) => {
  context.log('info', `Projecting ${documents.length} order changes (attempt ${context.attempt})`);
  const view = [];
  const batchItemFailures = [];
  for (const order of documents) {
    // Malformed data is a bug upstream: throwing fails the batch, the host retries it, then
    // narrows it down to this order and dead-letters it with the error and stack trace.
    if (typeof order.total !== 'number') {
      throw new TypeError(`order ${order.id} has no numeric total (got ${JSON.stringify(order.total)})`);
    }
    // A status this projection does not know: report the order as failed and carry on with
    // the others; only it is retried and, if it keeps failing, dead-lettered.
    if (!STATUSES.has(order.status)) {
      context.log('warning', `order ${order.id} has an unknown status ${JSON.stringify(order.status)}`);
      batchItemFailures.push({ itemIdentifier: order.id });
      continue;
    }
    view.push({
      id: order.id,
      customerId: order.customerId,
      status: order.status,
      total: order.total,
      itemCount: (order.items || []).reduce((sum, item) => sum + (item.quantity || 1), 0),
      changedAt: new Date(order._ts * 1000).toISOString(),
    });
  }
  // console.* works too: the worker turns it into a log line of this invocation.
  console.log(`Projected ${view.length} orders into the view`);
  return { outputs: { view }, batchItemFailures };
};

// Sees only shipped orders: tributary.toml's filter skips the other changes before they get
// here (they still advance this function's leases).
exports.log_shipped_orders = async (documents, context) => {
  for (const order of documents) {
    context.log('info', `Order ${order.id} of customer ${order.customerId} shipped (total ${order.total})`);
  }
};
