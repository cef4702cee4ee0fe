//! Random sequences of store operations, checked against an in-memory model.
//!
//! The model keeps, per container, the LSN counter, the live items, every version's body,
//! the all-versions-and-deletes history and the tree of feed ranges. After every operation
//! the store must agree with it exactly: results and error statuses (409, 404, 412), point
//! reads and scans, and change feed reads in both modes over every kind of scope, from any
//! earlier position, paginated, across splits, TTL expiry and reopening the directory.
//!
//! Background maintenance is off (see [`quiet_options`]), so the only expiries are the ones a
//! write performs when it touches an expired item; the sweeper has its own test (`ttl`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{RngSeed, TestRunner};
use serde_json::{Map, Value, json};
use tributary_partition_key::{Epk, EpkRange, PartitionKeyDefinition};
use tributary_patch::PatchRequest;
use tributary_store::{
    ContainerDefinition, FeedMode, FeedScope, FeedStart, ItemWrite, ManualClock, OperationResult,
    Precondition, Store, StoreError, TransactionOperation, WriteOutcome, WriteStatus,
};

use crate::support::{
    DATABASE, START_MS, changes, drain_feed, error_variant, open_store, pk, quiet_options, runtime,
};

/// Distinct partition key values (`p0`, `p1`, ...).
const N_PKS: usize = 2;
/// Distinct item ids (`i0`, `i1`, ...) under each partition key.
const N_IDS: usize = 3;
/// Longest operation sequence.
const MAX_OPS: usize = 60;
/// Cases run unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 48;
/// The generator's seed unless `PROPTEST_RNG_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x5452_4942_5554_4152;
/// Continuations remembered per container for later reads.
const MAX_SAVED_POSITIONS: usize = 48;
/// EPK boundaries that random EPK scopes are built from (V2 EPKs start below `40`).
const EPK_BOUNDS: [&str; 8] = ["", "08", "10", "1C", "20", "2F", "3F", "FF"];
/// System properties the store adds to every stored item.
const SYSTEM_PROPERTIES: [&str; 6] = ["_rid", "_self", "_etag", "_attachments", "_ts", "_lsn"];

/// The containers of every case.
struct Spec {
    name: &'static str,
    default_ttl: Option<i64>,
    retention_minutes: Option<u64>,
    initial_ranges: u32,
}

const SPECS: [Spec; 2] = [
    // TTL on without a default (items expire only with their own ttl); all versions kept.
    Spec {
        name: "versions",
        default_ttl: Some(-1),
        retention_minutes: Some(60),
        initial_ranges: 1,
    },
    // Items expire 7 s after their last write unless their own ttl says otherwise;
    // latest-version feed only.
    Spec {
        name: "latest",
        default_ttl: Some(7),
        retention_minutes: None,
        initial_ranges: 2,
    },
];

// ---- operations ------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum EtagChoice {
    /// No precondition.
    Absent,
    /// `If-Match` with the item's current etag (as the model knew it before the request).
    Current,
    /// `If-Match` with an etag that was once valid but has been superseded.
    Stale,
}

#[derive(Clone, Debug)]
enum ItemOp {
    Create {
        ttl: Option<i64>,
    },
    Upsert {
        ttl: Option<i64>,
    },
    Replace {
        ttl: Option<i64>,
        etag: EtagChoice,
    },
    Delete {
        etag: EtagChoice,
    },
    PatchSet {
        etag: EtagChoice,
    },
    PatchIncrement {
        by: i64,
    },
    /// A patch whose condition never holds (`c.v < 0`; `v` never goes negative).
    PatchFalseCondition,
}

#[derive(Clone, Debug)]
enum ScopeChoice {
    Container,
    /// Any range ever, current or gone, by position in the model's range list.
    Range(Index),
    /// `[EPK_BOUNDS[i], EPK_BOUNDS[j])` with `i < j`.
    Epk(usize, usize),
    PartitionKey(usize),
}

#[derive(Clone, Debug)]
enum StartChoice {
    Beginning,
    Now,
    /// Any LSN from 0 to the high LSN.
    AfterLsn(Index),
    /// A continuation saved by an earlier read (its own scope is used).
    Saved(Index),
}

#[derive(Clone, Debug)]
enum Op {
    Item {
        c: usize,
        pk: usize,
        id: usize,
        op: ItemOp,
    },
    /// `cross`: a multi-container transaction with per-operation keys; otherwise a
    /// transactional batch on the first operation's container and partition key.
    Batch {
        cross: bool,
        ops: Vec<(usize, usize, usize, ItemOp)>,
    },
    AdvanceClock {
        seconds: u64,
    },
    Split {
        c: usize,
        range: Index,
    },
    ReadFeed {
        c: usize,
        scope: ScopeChoice,
        start: StartChoice,
        all_versions: bool,
        max_items: usize,
    },
    CheckItems {
        c: usize,
    },
    Reopen,
}

fn etag_choice() -> impl Strategy<Value = EtagChoice> {
    prop_oneof![
        3 => Just(EtagChoice::Absent),
        2 => Just(EtagChoice::Current),
        1 => Just(EtagChoice::Stale),
    ]
}

fn ttl_choice() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(-1)),
        2 => (1i64..=5).prop_map(Some),
    ]
}

fn item_op() -> impl Strategy<Value = ItemOp> {
    prop_oneof![
        3 => ttl_choice().prop_map(|ttl| ItemOp::Create { ttl }),
        2 => ttl_choice().prop_map(|ttl| ItemOp::Upsert { ttl }),
        2 => (ttl_choice(), etag_choice()).prop_map(|(ttl, etag)| ItemOp::Replace { ttl, etag }),
        2 => etag_choice().prop_map(|etag| ItemOp::Delete { etag }),
        1 => etag_choice().prop_map(|etag| ItemOp::PatchSet { etag }),
        1 => (1i64..=3).prop_map(|by| ItemOp::PatchIncrement { by }),
        1 => Just(ItemOp::PatchFalseCondition),
    ]
}

fn scope_choice() -> impl Strategy<Value = ScopeChoice> {
    prop_oneof![
        2 => Just(ScopeChoice::Container),
        3 => any::<Index>().prop_map(ScopeChoice::Range),
        1 => (0..EPK_BOUNDS.len() - 1)
            .prop_flat_map(|i| (Just(i), i + 1..EPK_BOUNDS.len()))
            .prop_map(|(i, j)| ScopeChoice::Epk(i, j)),
        1 => (0..N_PKS).prop_map(ScopeChoice::PartitionKey),
    ]
}

fn start_choice() -> impl Strategy<Value = StartChoice> {
    prop_oneof![
        2 => Just(StartChoice::Beginning),
        1 => Just(StartChoice::Now),
        3 => any::<Index>().prop_map(StartChoice::AfterLsn),
        3 => any::<Index>().prop_map(StartChoice::Saved),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let keyed = || (0..SPECS.len(), 0..N_PKS, 0..N_IDS, item_op());
    prop_oneof![
        12 => keyed().prop_map(|(c, pk, id, op)| Op::Item { c, pk, id, op }),
        3 => (any::<bool>(), prop::collection::vec(keyed(), 1..=4))
            .prop_map(|(cross, ops)| Op::Batch { cross, ops }),
        3 => (0u64..=4).prop_map(|seconds| Op::AdvanceClock { seconds }),
        2 => (0..SPECS.len(), any::<Index>()).prop_map(|(c, range)| Op::Split { c, range }),
        6 => (0..SPECS.len(), scope_choice(), start_choice(), any::<bool>(), 1usize..=4).prop_map(
            |(c, scope, start, all_versions, max_items)| Op::ReadFeed {
                c,
                scope,
                start,
                all_versions,
                max_items,
            }
        ),
        1 => (0..SPECS.len()).prop_map(|c| Op::CheckItems { c }),
        1 => Just(Op::Reopen),
    ]
}

// ---- the model -------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ModelItem {
    /// LSN of the latest version.
    lsn: u64,
    /// `_ts` of the latest version.
    ts: u64,
    /// The item's own `ttl`.
    ttl: Option<i64>,
    /// `_rid`, fixed at creation; `None` until the store reported it.
    rid: Option<String>,
}

#[derive(Clone, Debug)]
struct Event {
    lsn: u64,
    operation: &'static str,
    key: (usize, usize),
    crts: u64,
    ttl_expired: bool,
    /// LSN of the version this change wrote (creates and replaces).
    current: Option<u64>,
    /// LSN of the version it superseded.
    previous: Option<u64>,
}

#[derive(Clone, Debug)]
struct ModelRange {
    min: String,
    max: String,
    children: Vec<u32>,
    ancestors: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq)]
enum ScopeSelection {
    Container,
    Range(u32),
    Epk(usize, usize),
    PartitionKey(usize),
}

#[derive(Clone, Debug)]
struct SavedPosition {
    scope: ScopeSelection,
    mode: FeedMode,
    lsn: u64,
    continuation: String,
}

#[derive(Clone, Debug)]
struct ModelContainer {
    name: &'static str,
    default_ttl: Option<i64>,
    keeps_all_versions: bool,
    next_lsn: u64,
    items: BTreeMap<(usize, usize), ModelItem>,
    /// User JSON (no system properties) of every version, by LSN.
    users: BTreeMap<u64, Value>,
    /// Stored body text of every version the store has reported, by LSN.
    bodies: BTreeMap<u64, String>,
    /// Etag of every version the store has reported, by LSN.
    etags: BTreeMap<u64, String>,
    /// An etag of a superseded version, for stale `If-Match` conditions.
    stale_etag: Option<String>,
    events: Vec<Event>,
    ranges: BTreeMap<u32, ModelRange>,
    saved: Vec<SavedPosition>,
}

impl ModelContainer {
    fn high_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    fn take_lsn(&mut self) -> u64 {
        let lsn = self.next_lsn;
        self.next_lsn += 1;
        lsn
    }

    fn is_expired(&self, item: &ModelItem, now_s: u64) -> bool {
        let Some(default_ttl) = self.default_ttl else {
            return false;
        };
        let ttl = match item.ttl {
            Some(-1) => return false,
            Some(ttl) => ttl,
            None if default_ttl > 0 => default_ttl,
            None => return false,
        };
        item.ts + ttl as u64 <= now_s
    }

    fn live(&self, key: (usize, usize), now_s: u64) -> Option<&ModelItem> {
        self.items
            .get(&key)
            .filter(|item| !self.is_expired(item, now_s))
    }

    /// The etag the store gave version `lsn`, or a placeholder for a version written
    /// earlier in the same batch (which never equals a real etag).
    fn etag_of(&self, lsn: u64) -> String {
        self.etags
            .get(&lsn)
            .cloned()
            .unwrap_or_else(|| format!("pending-{lsn}"))
    }

    fn record(&mut self, event: Event) {
        if self.keeps_all_versions {
            self.events.push(event);
        }
    }

    fn supersede(&mut self, lsn: u64) {
        if let Some(etag) = self.etags.get(&lsn) {
            self.stale_etag = Some(etag.clone());
        }
    }

    /// Applies one item operation as the store should; `Err` names the expected error's
    /// variant (as [`error_variant`] does).
    fn apply(
        &mut self,
        now_s: u64,
        key: (usize, usize),
        op: &ItemOp,
        precondition: Option<&str>,
        v: i64,
    ) -> Result<(WriteStatus, Option<u64>), &'static str> {
        let live = self.live(key, now_s).cloned();
        let expired = self
            .items
            .get(&key)
            .filter(|item| self.is_expired(item, now_s))
            .cloned();
        let needs_item = matches!(
            op,
            ItemOp::Replace { .. }
                | ItemOp::Delete { .. }
                | ItemOp::PatchSet { .. }
                | ItemOp::PatchIncrement { .. }
                | ItemOp::PatchFalseCondition
        );
        if needs_item && live.is_none() {
            return Err("ItemNotFound");
        }
        if matches!(op, ItemOp::Create { .. }) && live.is_some() {
            return Err("ItemExists");
        }
        // An upsert of an absent item creates it whatever its If-Match says.
        let creates_by_upsert = matches!(op, ItemOp::Upsert { .. }) && live.is_none();
        if let Some(etag) = precondition.filter(|_| !creates_by_upsert) {
            match &live {
                Some(item) if etag == "*" || etag == self.etag_of(item.lsn) => {}
                _ => return Err("PreconditionFailed"),
            }
        }
        if matches!(op, ItemOp::PatchFalseCondition) {
            return Err("PreconditionFailed");
        }
        if let Some(old) = expired {
            note("expiry logged by a write");
            // The write logs the expiry it discovered before its own change.
            let lsn = self.take_lsn();
            self.record(Event {
                lsn,
                operation: "delete",
                key,
                crts: now_s,
                ttl_expired: true,
                current: None,
                previous: Some(old.lsn),
            });
            self.supersede(old.lsn);
            self.items.remove(&key);
        }
        let previous_user = live.as_ref().map(|item| self.users[&item.lsn].clone());
        let (user, ttl) = match op {
            ItemOp::Create { ttl } | ItemOp::Upsert { ttl } | ItemOp::Replace { ttl, .. } => {
                (item_body(key, v, *ttl), *ttl)
            }
            ItemOp::PatchSet { .. } => {
                let mut user = previous_user.clone().expect("checked above");
                user["tag"] = json!(format!("t{v}"));
                (user, live.as_ref().and_then(|item| item.ttl))
            }
            ItemOp::PatchIncrement { by } => {
                let mut user = previous_user.clone().expect("checked above");
                let value = user["v"].as_i64().expect("v is an integer");
                user["v"] = json!(value + by);
                (user, live.as_ref().and_then(|item| item.ttl))
            }
            ItemOp::Delete { .. } => {
                let old = live.expect("checked above");
                let lsn = self.take_lsn();
                self.record(Event {
                    lsn,
                    operation: "delete",
                    key,
                    crts: now_s,
                    ttl_expired: false,
                    current: None,
                    previous: Some(old.lsn),
                });
                self.supersede(old.lsn);
                self.items.remove(&key);
                return Ok((WriteStatus::Deleted, None));
            }
            ItemOp::PatchFalseCondition => unreachable!("refused above"),
        };
        let lsn = self.take_lsn();
        self.users.insert(lsn, user);
        let (operation, status, rid) = match &live {
            Some(old) => {
                self.supersede(old.lsn);
                ("replace", WriteStatus::Replaced, old.rid.clone())
            }
            None => ("create", WriteStatus::Created, None),
        };
        self.record(Event {
            lsn,
            operation,
            key,
            crts: now_s,
            ttl_expired: false,
            current: Some(lsn),
            previous: live.as_ref().map(|item| item.lsn),
        });
        self.items.insert(
            key,
            ModelItem {
                lsn,
                ts: now_s,
                ttl,
                rid,
            },
        );
        Ok((status, Some(lsn)))
    }

    /// Checks a version the store reported against the model, then remembers its body.
    fn accept_version(
        &mut self,
        key: (usize, usize),
        lsn: u64,
        now_s: u64,
        outcome: &WriteOutcome,
    ) {
        let item = outcome
            .item
            .as_ref()
            .expect("creates, replaces and patches return the item");
        assert_eq!(item.lsn, lsn, "{}: LSN of {key:?}", self.name);
        assert_eq!(item.ts, now_s, "{}: _ts of {key:?}", self.name);
        assert_eq!(item.id, item_id(key.1));
        let body: Value = serde_json::from_str(&item.body).expect("stored bodies are JSON");
        assert_eq!(body["_lsn"], json!(lsn), "_lsn is the version's LSN");
        assert_eq!(
            body["_etag"],
            json!(item.etag),
            "_etag is the version's etag"
        );
        assert_eq!(body["_ts"], json!(now_s));
        assert_eq!(
            user_part(&body),
            self.users[&lsn],
            "{}: user JSON of {key:?} at LSN {lsn}",
            self.name
        );
        assert!(
            !self.etags.values().any(|etag| *etag == item.etag),
            "every version gets a new etag: {} was used before",
            item.etag
        );
        let rid = body["_rid"].as_str().expect("_rid is a string").to_owned();
        if let Some(model_item) = self.items.get_mut(&key)
            && model_item.lsn == lsn
        {
            match &model_item.rid {
                Some(known) => assert_eq!(*known, rid, "an item keeps its _rid across versions"),
                None => model_item.rid = Some(rid),
            }
        }
        self.bodies.insert(lsn, item.body.clone());
        self.etags.insert(lsn, item.etag.clone());
    }

    fn current_descendants(&self, id: u32) -> Vec<String> {
        let range = &self.ranges[&id];
        if range.children.is_empty() {
            return vec![id.to_string()];
        }
        let mut leaves: Vec<u32> = range
            .children
            .iter()
            .flat_map(|child| self.current_descendants(*child))
            .map(|leaf| leaf.parse::<u32>().expect("range ids are numbers"))
            .collect();
        leaves.sort_unstable();
        leaves.iter().map(u32::to_string).collect()
    }

    fn current_ranges(&self) -> Vec<(u32, String, String)> {
        self.ranges
            .iter()
            .filter(|(_, range)| range.children.is_empty())
            .map(|(id, range)| (*id, range.min.clone(), range.max.clone()))
            .collect()
    }
}

/// The coverage situation of a successful item operation.
fn write_situation(status: WriteStatus) -> &'static str {
    match status {
        WriteStatus::Created => "created",
        WriteStatus::Replaced => "replaced",
        WriteStatus::Deleted => "deleted",
        WriteStatus::Read => "read",
    }
}

fn item_id(id: usize) -> String {
    format!("i{id}")
}

fn pk_value(pk: usize) -> String {
    format!("p{pk}")
}

fn item_body(key: (usize, usize), v: i64, ttl: Option<i64>) -> Value {
    let mut body = json!({"id": item_id(key.1), "pk": pk_value(key.0), "v": v});
    if let Some(ttl) = ttl {
        body["ttl"] = json!(ttl);
    }
    body
}

fn user_part(body: &Value) -> Value {
    let mut user = body.clone();
    let object = user.as_object_mut().expect("items are objects");
    for property in SYSTEM_PROPERTIES {
        object.shift_remove(property);
    }
    user
}

fn patch(body: Value) -> PatchRequest {
    PatchRequest::from_json(&body).expect("the test's patch requests are valid")
}

/// The request for one item operation.
fn item_write(key: (usize, usize), op: &ItemOp, precondition: Option<String>, v: i64) -> ItemWrite {
    let (pk, id) = (crate::support::pk(&pk_value(key.0)), item_id(key.1));
    let write = match op {
        ItemOp::Create { ttl } => ItemWrite::create(item_body(key, v, *ttl)),
        ItemOp::Upsert { ttl } => ItemWrite::upsert(item_body(key, v, *ttl)),
        ItemOp::Replace { ttl, .. } => ItemWrite::replace(id, item_body(key, v, *ttl)),
        ItemOp::Delete { .. } => ItemWrite::delete(pk, id),
        ItemOp::PatchSet { .. } => ItemWrite::patch(
            pk,
            id,
            patch(json!({"operations": [{"op": "set", "path": "/tag", "value": format!("t{v}")}]})),
        ),
        ItemOp::PatchIncrement { by } => ItemWrite::patch(
            pk,
            id,
            patch(json!({"operations": [{"op": "incr", "path": "/v", "value": by}]})),
        ),
        ItemOp::PatchFalseCondition => ItemWrite::patch(
            pk,
            id,
            patch(json!({
                "operations": [{"op": "set", "path": "/tag", "value": "never"}],
                "condition": "from c where c.v < 0"
            })),
        ),
    };
    match precondition {
        Some(etag) => write.with_precondition(Precondition::IfMatch(etag)),
        None => write,
    }
}

/// The `If-Match` value an operation carries, from the model's state before the request.
fn precondition_for(model: &ModelContainer, key: (usize, usize), op: &ItemOp) -> Option<String> {
    let choice = match op {
        ItemOp::Replace { etag, .. } | ItemOp::Delete { etag } | ItemOp::PatchSet { etag } => *etag,
        _ => EtagChoice::Absent,
    };
    match choice {
        EtagChoice::Absent => None,
        EtagChoice::Current => Some(match model.items.get(&key) {
            Some(item) => model.etag_of(item.lsn),
            None => "\"no-such-version\"".to_owned(),
        }),
        EtagChoice::Stale => Some(
            model
                .stale_etag
                .clone()
                .unwrap_or_else(|| "\"never-valid\"".to_owned()),
        ),
    }
}

// ---- the runner --------------------------------------------------------------------------

struct Harness<'a> {
    dir: &'a Path,
    clock: Arc<ManualClock>,
    runtime: tokio::runtime::Runtime,
    store: Option<Store>,
    models: Vec<ModelContainer>,
    /// EPK of each partition key value.
    epks: Vec<String>,
    /// Source of distinct `v` values for bodies.
    counter: i64,
}

impl<'a> Harness<'a> {
    fn new(dir: &'a Path) -> Self {
        let clock = Arc::new(ManualClock::new(START_MS));
        let runtime = runtime();
        let store = open_store(dir, quiet_options(&clock));
        runtime
            .block_on(store.create_database(DATABASE))
            .expect("the database is created");
        let mut models = Vec::new();
        for spec in &SPECS {
            let definition = ContainerDefinition {
                default_ttl: spec.default_ttl,
                change_feed_retention_minutes: spec.retention_minutes,
                ..ContainerDefinition::new(spec.name, "/pk")
            };
            let properties = runtime
                .block_on(store.create_container(DATABASE, definition, spec.initial_ranges))
                .expect("the container is created");
            assert_eq!(properties.high_lsn, 0);
            assert_eq!(properties.feed_ranges.len(), spec.initial_ranges as usize);
            let ranges = properties
                .feed_ranges
                .iter()
                .map(|range| {
                    (
                        range.id,
                        ModelRange {
                            min: range.min.clone(),
                            max: range.max.clone(),
                            children: Vec::new(),
                            ancestors: Vec::new(),
                        },
                    )
                })
                .collect();
            models.push(ModelContainer {
                name: spec.name,
                default_ttl: spec.default_ttl,
                keeps_all_versions: spec.retention_minutes.is_some(),
                next_lsn: 1,
                items: BTreeMap::new(),
                users: BTreeMap::new(),
                bodies: BTreeMap::new(),
                etags: BTreeMap::new(),
                stale_etag: None,
                events: Vec::new(),
                ranges,
                saved: Vec::new(),
            });
        }
        let definition = PartitionKeyDefinition::single("/pk");
        let epks = (0..N_PKS)
            .map(|n| {
                let key = pk(&pk_value(n));
                let epk = key
                    .effective_partition_key(&definition)
                    .expect("string keys hash");
                let from_store = store
                    .effective_partition_key(DATABASE, SPECS[0].name, &key)
                    .expect("the store hashes keys");
                assert_eq!(epk, from_store);
                epk.as_str().to_owned()
            })
            .collect();
        Harness {
            dir,
            clock,
            runtime,
            store: Some(store),
            models,
            epks,
            counter: 0,
        }
    }

    fn store(&self) -> &Store {
        self.store
            .as_ref()
            .expect("the store is open between operations")
    }

    fn now_s(&self) -> u64 {
        use tributary_store::Clock as _;
        self.clock.now_ms() / 1000
    }

    fn next_v(&mut self) -> i64 {
        self.counter += 1;
        self.counter
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Item { c, pk, id, op } => self.item(*c, (*pk, *id), op),
            Op::Batch { cross, ops } => self.batch(*cross, ops),
            Op::AdvanceClock { seconds } => self.clock.advance_ms(seconds * 1000),
            Op::Split { c, range } => self.split(*c, range),
            Op::ReadFeed {
                c,
                scope,
                start,
                all_versions,
                max_items,
            } => self.read_feed(*c, scope, start, *all_versions, *max_items),
            Op::CheckItems { c } => self.check_items(*c),
            Op::Reopen => self.reopen(),
        }
        for model in &self.models {
            let properties = self
                .store()
                .read_container(DATABASE, model.name)
                .expect("the container exists");
            assert_eq!(
                properties.high_lsn,
                model.high_lsn(),
                "{}: high LSN after {op:?}",
                model.name
            );
        }
    }

    fn item(&mut self, c: usize, key: (usize, usize), op: &ItemOp) {
        let now_s = self.now_s();
        let v = self.next_v();
        let precondition = precondition_for(&self.models[c], key, op);
        let write = item_write(key, op, precondition.clone(), v);
        let expected = self.models[c].apply(now_s, key, op, precondition.as_deref(), v);
        let actual = self.runtime.block_on(self.store().write_item(
            DATABASE,
            self.models[c].name,
            write,
        ));
        let model = &mut self.models[c];
        note(match &expected {
            Ok((status, _)) => write_situation(*status),
            Err(variant) => variant,
        });
        match (expected, actual) {
            (Err(variant), Err(error)) => {
                assert_eq!(
                    error_variant(&error),
                    variant,
                    "{}: {op:?} on {key:?}: {error}",
                    model.name
                )
            }
            (Err(variant), Ok(outcome)) => {
                panic!(
                    "{}: {op:?} on {key:?} should fail with {variant}, got {outcome:?}",
                    model.name
                )
            }
            (Ok(_), Err(error)) => panic!(
                "{}: {op:?} on {key:?} should succeed, got {error}",
                model.name
            ),
            (Ok((status, lsn)), Ok(outcome)) => {
                assert_eq!(outcome.status, status, "{}: {op:?} on {key:?}", model.name);
                match lsn {
                    Some(lsn) => model.accept_version(key, lsn, now_s, &outcome),
                    None => assert!(outcome.item.is_none(), "a delete returns no item"),
                }
            }
        }
    }

    fn batch(&mut self, cross: bool, ops: &[(usize, usize, usize, ItemOp)]) {
        let now_s = self.now_s();
        let (first_c, first_pk) = (ops[0].0, ops[0].1);
        // A transactional batch is one container and one partition key.
        let ops: Vec<(usize, (usize, usize), ItemOp)> = ops
            .iter()
            .map(|(c, pk, id, op)| {
                if cross {
                    (*c, (*pk, *id), op.clone())
                } else {
                    (first_c, (first_pk, *id), op.clone())
                }
            })
            .collect();
        let mut writes = Vec::new();
        let mut versions = Vec::new();
        let mut trial = self.models.clone();
        let mut failure = None;
        for (index, (c, key, op)) in ops.iter().enumerate() {
            let v = self.next_v();
            let precondition = precondition_for(&self.models[*c], *key, op);
            writes.push((*c, item_write(*key, op, precondition.clone(), v)));
            if failure.is_none() {
                match trial[*c].apply(now_s, *key, op, precondition.as_deref(), v) {
                    Ok((status, lsn)) => versions.push((status, lsn)),
                    Err(variant) => failure = Some((index, variant)),
                }
            }
        }
        let outcome = if cross {
            let operations = writes
                .into_iter()
                .map(|(c, write)| TransactionOperation {
                    container: self.models[c].name.to_owned(),
                    write,
                })
                .collect();
            self.runtime
                .block_on(self.store().transaction(DATABASE, operations))
        } else {
            let writes = writes.into_iter().map(|(_, write)| write).collect();
            self.runtime.block_on(self.store().execute_batch(
                DATABASE,
                self.models[first_c].name,
                pk(&pk_value(first_pk)),
                writes,
            ))
        }
        .expect("a well-formed batch reports per-operation results");
        assert_eq!(outcome.results.len(), ops.len());
        note(match (cross, failure.is_some()) {
            (false, false) => "batch committed",
            (false, true) => "batch failed",
            (true, false) => "transaction committed",
            (true, true) => "transaction failed",
        });
        match failure {
            Some((failed, variant)) => {
                assert!(!outcome.committed, "batch {ops:?} should fail at {failed}");
                for (index, result) in outcome.results.iter().enumerate() {
                    match result {
                        OperationResult::Failed(error) if index == failed => {
                            assert_eq!(
                                error_variant(error),
                                variant,
                                "batch {ops:?}, operation {index}: {error}"
                            )
                        }
                        OperationResult::NotApplied if index != failed => {}
                        other => panic!("batch {ops:?}, operation {index}: unexpected {other:?}"),
                    }
                }
            }
            None => {
                assert!(
                    outcome.committed,
                    "batch {ops:?} should commit: {:?}",
                    outcome.results
                );
                self.models = trial;
                for ((result, (status, lsn)), (c, key, _)) in
                    outcome.results.iter().zip(versions).zip(&ops)
                {
                    let OperationResult::Done(done) = result else {
                        panic!(
                            "batch {ops:?}: every operation of a committed batch is done, got {result:?}"
                        );
                    };
                    assert_eq!(done.status, status);
                    match lsn {
                        Some(lsn) => self.models[*c].accept_version(*key, lsn, now_s, done),
                        None => assert!(done.item.is_none()),
                    }
                }
            }
        }
    }

    fn split(&mut self, c: usize, pick: &Index) {
        let model = &self.models[c];
        let ids: Vec<u32> = model.ranges.keys().copied().collect();
        let id = ids[pick.index(ids.len())];
        let result = self
            .runtime
            .block_on(self.store().split_range(DATABASE, model.name, id));
        let model = &mut self.models[c];
        let parent = model.ranges[&id].clone();
        if !parent.children.is_empty() {
            note("split of a gone range");
            match result {
                Err(StoreError::RangeGone {
                    range_id,
                    replaced_by,
                }) => {
                    assert_eq!(range_id, id.to_string());
                    assert_eq!(
                        replaced_by,
                        model.current_descendants(id),
                        "a gone range names its current descendants"
                    );
                }
                other => panic!(
                    "{}: splitting gone range {id} should fail with RangeGone, got {other:?}",
                    model.name
                ),
            }
            return;
        }
        let children =
            result.unwrap_or_else(|e| panic!("{}: split of range {id}: {e}", model.name));
        note("split");
        assert_eq!(children.len(), 2);
        let (left, right) = (&children[0], &children[1]);
        assert_eq!(left.min, parent.min);
        assert_eq!(left.max, right.min);
        assert_eq!(right.max, parent.max);
        assert!(
            left.min < left.max && right.min < right.max,
            "children are not empty: {children:?}"
        );
        let mut ancestors = parent.ancestors.clone();
        ancestors.push(id);
        for child in &children {
            assert_eq!(child.parents, vec![id]);
            assert_eq!(child.ancestors, ancestors);
            assert_eq!(
                child.first_lsn, model.next_lsn,
                "children take writes from the next LSN"
            );
            assert!(child.children.is_empty());
            assert!(
                !model.ranges.contains_key(&child.id),
                "range ids are never reused"
            );
            model.ranges.insert(
                child.id,
                ModelRange {
                    min: child.min.clone(),
                    max: child.max.clone(),
                    children: Vec::new(),
                    ancestors: ancestors.clone(),
                },
            );
        }
        model
            .ranges
            .get_mut(&id)
            .expect("the parent exists")
            .children = vec![left.id, right.id];
        self.check_ranges(c);
    }

    fn check_ranges(&self, c: usize) {
        let model = &self.models[c];
        let properties = self
            .store()
            .read_container(DATABASE, model.name)
            .expect("the container exists");
        let actual: Vec<(u32, String, String)> = properties
            .feed_ranges
            .iter()
            .map(|range| (range.id, range.min.clone(), range.max.clone()))
            .collect();
        assert_eq!(
            actual,
            model.current_ranges(),
            "{}: current feed ranges",
            model.name
        );
        // Each range's item count is its items (expired ones too, until deleted).
        for range in &properties.feed_ranges {
            let expected = model
                .items
                .keys()
                .filter(|(pk_n, _)| self.in_scope(c, &ScopeSelection::Range(range.id), *pk_n))
                .count() as u64;
            assert_eq!(
                range.item_count,
                Some(expected),
                "{}: item count of range {}",
                model.name,
                range.id
            );
        }
    }

    fn scope_of(&self, c: usize, scope: &ScopeChoice) -> ScopeSelection {
        match scope {
            ScopeChoice::Container => ScopeSelection::Container,
            ScopeChoice::Range(pick) => {
                let ids: Vec<u32> = self.models[c].ranges.keys().copied().collect();
                ScopeSelection::Range(ids[pick.index(ids.len())])
            }
            ScopeChoice::Epk(i, j) => ScopeSelection::Epk(*i, *j),
            ScopeChoice::PartitionKey(n) => ScopeSelection::PartitionKey(*n),
        }
    }

    fn feed_scope(&self, selection: &ScopeSelection) -> FeedScope {
        match selection {
            ScopeSelection::Container => FeedScope::Container,
            ScopeSelection::Range(id) => FeedScope::Range(*id),
            ScopeSelection::Epk(i, j) => FeedScope::Epk(
                EpkRange::new(
                    Epk::parse(EPK_BOUNDS[*i]).expect("bounds are hex"),
                    Epk::parse(EPK_BOUNDS[*j]).expect("bounds are hex"),
                )
                .expect("i < j"),
            ),
            ScopeSelection::PartitionKey(n) => FeedScope::PartitionKey(pk(&pk_value(*n))),
        }
    }

    /// Whether an item under partition key `pk` belongs to a scope.
    fn in_scope(&self, c: usize, selection: &ScopeSelection, pk: usize) -> bool {
        let epk = self.epks[pk].as_str();
        match selection {
            ScopeSelection::Container => true,
            ScopeSelection::Range(id) => {
                let range = &self.models[c].ranges[id];
                range.min.as_str() <= epk && epk < range.max.as_str()
            }
            ScopeSelection::Epk(i, j) => EPK_BOUNDS[*i] <= epk && epk < EPK_BOUNDS[*j],
            ScopeSelection::PartitionKey(n) => *n == pk,
        }
    }

    fn expected_latest(&self, c: usize, selection: &ScopeSelection, after: u64) -> Vec<String> {
        let model = &self.models[c];
        let now_s = self.now_s();
        let mut live: Vec<(u64, String)> = model
            .items
            .iter()
            .filter(|(key, item)| {
                item.lsn > after
                    && !model.is_expired(item, now_s)
                    && self.in_scope(c, selection, key.0)
            })
            .map(|(_, item)| (item.lsn, model.bodies[&item.lsn].clone()))
            .collect();
        live.sort_unstable_by_key(|(lsn, _)| *lsn);
        live.into_iter().map(|(_, body)| body).collect()
    }

    fn expected_versions(&self, c: usize, selection: &ScopeSelection, after: u64) -> Vec<Value> {
        let model = &self.models[c];
        let body = |lsn: u64| -> Value {
            serde_json::from_str(&model.bodies[&lsn]).expect("bodies are JSON")
        };
        model
            .events
            .iter()
            .filter(|event| event.lsn > after && self.in_scope(c, selection, event.key.0))
            .map(|event| {
                let mut metadata = Map::new();
                metadata.insert("crts".into(), json!(event.crts));
                metadata.insert("lsn".into(), json!(event.lsn));
                metadata.insert("operationType".into(), json!(event.operation));
                if let Some(previous) = event.previous {
                    metadata.insert("previousImageLSN".into(), json!(previous));
                }
                metadata.insert("timeToLiveExpired".into(), json!(event.ttl_expired));
                if event.operation == "delete" {
                    metadata.insert("id".into(), json!(item_id(event.key.1)));
                    metadata.insert("partitionKey".into(), json!({"pk": pk_value(event.key.0)}));
                }
                let mut change = Map::new();
                // A delete carries an empty current image, as Cosmos DB sends it.
                let current = event.current.map_or_else(|| json!({}), body);
                change.insert("current".into(), current);
                if let Some(previous) = event.previous {
                    change.insert("previous".into(), body(previous));
                }
                change.insert("metadata".into(), Value::Object(metadata));
                Value::Object(change)
            })
            .collect()
    }

    fn read_feed(
        &mut self,
        c: usize,
        scope: &ScopeChoice,
        start: &StartChoice,
        all_versions: bool,
        max_items: usize,
    ) {
        let mode = if all_versions {
            FeedMode::AllVersionsAndDeletes
        } else {
            FeedMode::LatestVersion
        };
        let model = &self.models[c];
        let (selection, start, after, saved_mode) = match start {
            StartChoice::Beginning => (self.scope_of(c, scope), FeedStart::Beginning, 0, None),
            StartChoice::Now => (
                self.scope_of(c, scope),
                FeedStart::Now,
                model.high_lsn(),
                None,
            ),
            StartChoice::AfterLsn(pick) => {
                let lsn = pick.index(model.next_lsn as usize) as u64;
                (self.scope_of(c, scope), FeedStart::AfterLsn(lsn), lsn, None)
            }
            StartChoice::Saved(pick) if !model.saved.is_empty() => {
                let saved = &model.saved[pick.index(model.saved.len())];
                (
                    saved.scope.clone(),
                    FeedStart::Continuation(saved.continuation.clone()),
                    saved.lsn,
                    Some(saved.mode),
                )
            }
            StartChoice::Saved(_) => (self.scope_of(c, scope), FeedStart::Beginning, 0, None),
        };
        self.check_read(c, &selection, &start, after, mode, saved_mode, max_items);
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one read's parameters, each checked"
    )]
    fn check_read(
        &mut self,
        c: usize,
        selection: &ScopeSelection,
        start: &FeedStart,
        after: u64,
        mode: FeedMode,
        saved_mode: Option<FeedMode>,
        max_items: usize,
    ) {
        let model = &self.models[c];
        let name = model.name;
        let scope = self.feed_scope(selection);
        let context =
            format!("{name}: {mode:?} read of {selection:?} from {start:?} (after LSN {after})");
        let result = drain_feed(self.store(), name, &scope, start.clone(), mode, max_items);
        if let ScopeSelection::Range(id) = selection
            && !model.ranges[id].children.is_empty()
        {
            let Err(StoreError::RangeGone {
                range_id,
                replaced_by,
            }) = result
            else {
                panic!("{context}: a split range must be gone, got {result:?}");
            };
            assert_eq!(range_id, id.to_string());
            assert_eq!(replaced_by, model.current_descendants(*id), "{context}");
            note("read of a gone range");
            // The same position continues on each current descendant.
            for child in replaced_by {
                let child = ScopeSelection::Range(child.parse().expect("range ids are numbers"));
                self.check_read(c, &child, start, after, mode, saved_mode, max_items);
            }
            return;
        }
        if mode == FeedMode::AllVersionsAndDeletes && !model.keeps_all_versions {
            let error = result.expect_err("all-versions reads need a retention period");
            assert!(
                matches!(error, StoreError::OutsideRetention(_)),
                "{context}: {error}"
            );
            return;
        }
        if saved_mode.is_some_and(|saved| saved != mode) {
            let error = result.expect_err("a continuation belongs to one mode");
            assert!(
                matches!(error, StoreError::InvalidContinuation(_)),
                "{context}: {error}"
            );
            return;
        }
        let pages = result.unwrap_or_else(|e| panic!("{context}: {e}"));
        if matches!(start, FeedStart::Continuation(_)) {
            note("read from a saved continuation");
        }
        let high_lsn = model.high_lsn();
        let last = pages.last().expect("at least one page");
        assert_eq!(last.high_lsn, high_lsn, "{context}");
        assert_eq!(
            last.lsn,
            high_lsn.max(after),
            "{context}: the drained position"
        );
        if *start == FeedStart::Now {
            assert!(
                pages[0].changes.is_empty(),
                "{context}: nothing is newer than now"
            );
        } else {
            match mode {
                FeedMode::LatestVersion => {
                    assert_eq!(
                        changes(&pages),
                        self.expected_latest(c, selection, after),
                        "{context}"
                    );
                }
                FeedMode::AllVersionsAndDeletes => {
                    let actual: Vec<Value> = changes(&pages)
                        .iter()
                        .map(|change| serde_json::from_str(change).expect("changes are JSON"))
                        .collect();
                    assert_eq!(
                        actual,
                        self.expected_versions(c, selection, after),
                        "{context}"
                    );
                    if !actual.is_empty() {
                        note("non-empty all-versions read");
                    }
                }
            }
        }
        let model = &mut self.models[c];
        for page in &pages {
            if model.saved.len() == MAX_SAVED_POSITIONS {
                model
                    .saved
                    .remove((page.lsn as usize) % MAX_SAVED_POSITIONS);
            }
            model.saved.push(SavedPosition {
                scope: selection.clone(),
                mode,
                lsn: page.lsn,
                continuation: page.continuation.clone(),
            });
        }
    }

    fn check_items(&self, c: usize) {
        self.check_ranges(c);
        let model = &self.models[c];
        let store = self.store();
        let now_s = self.now_s();
        for pk_n in 0..N_PKS {
            for id_n in 0..N_IDS {
                let key = (pk_n, id_n);
                let read =
                    store.read_item(DATABASE, model.name, &pk(&pk_value(pk_n)), &item_id(id_n));
                match (model.live(key, now_s), read) {
                    (Some(item), Ok(read)) => {
                        assert_eq!(read.lsn, item.lsn, "{}: point read of {key:?}", model.name);
                        assert_eq!(read.body, model.bodies[&item.lsn]);
                        assert_eq!(read.etag, model.etags[&item.lsn]);
                        assert_eq!(read.ts, item.ts);
                    }
                    (None, Err(error)) => {
                        assert!(
                            matches!(error, StoreError::ItemNotFound(_)),
                            "{}: {key:?}: {error}",
                            model.name
                        )
                    }
                    (expected, actual) => panic!(
                        "{}: point read of {key:?}: model {expected:?}, store {actual:?}",
                        model.name
                    ),
                }
            }
        }
        let mut selections = vec![ScopeSelection::Container];
        selections.extend((0..N_PKS).map(ScopeSelection::PartitionKey));
        selections.extend(model.ranges.keys().map(|id| ScopeSelection::Range(*id)));
        let container_order = store
            .scan_items(DATABASE, model.name, &FeedScope::Container)
            .unwrap_or_else(|e| panic!("{}: scan of the container: {e}", model.name));
        for selection in selections {
            let result = store.scan_items(DATABASE, model.name, &self.feed_scope(&selection));
            if let ScopeSelection::Range(id) = selection
                && !model.ranges[&id].children.is_empty()
            {
                assert!(
                    matches!(result, Err(StoreError::RangeGone { .. })),
                    "{}: scan of gone range {id}",
                    model.name
                );
                continue;
            }
            let actual =
                result.unwrap_or_else(|e| panic!("{}: scan of {selection:?}: {e}", model.name));
            let mut expected = self.expected_latest(c, &selection, 0);
            expected.sort();
            let mut sorted = actual.clone();
            sorted.sort();
            assert_eq!(sorted, expected, "{}: scan of {selection:?}", model.name);
            // A narrower scope reads the pointers of its span, not the whole feed, and
            // still answers in the container's order.
            let in_container_order: Vec<&String> = container_order
                .iter()
                .filter(|item| expected.binary_search(item).is_ok())
                .collect();
            assert_eq!(
                actual.iter().collect::<Vec<_>>(),
                in_container_order,
                "{}: order of the scan of {selection:?}",
                model.name
            );
        }
    }

    fn reopen(&mut self) {
        note("reopen");
        drop(self.store.take());
        self.store = Some(open_store(self.dir, quiet_options(&self.clock)));
        for c in 0..self.models.len() {
            self.check_ranges(c);
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Counts of the interesting situations the cases reached, so that a generator change that
/// stops reaching one of them fails the test instead of silently weakening it.
static COVERAGE: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

fn note(situation: &'static str) {
    *COVERAGE
        .lock()
        .expect("coverage lock")
        .entry(situation)
        .or_default() += 1;
}

/// Situations every default-sized run must reach.
const REQUIRED_COVERAGE: [&str; 16] = [
    "created",
    "replaced",
    "deleted",
    "ItemNotFound",
    "ItemExists",
    "PreconditionFailed",
    "batch committed",
    "batch failed",
    "transaction committed",
    "expiry logged by a write",
    "split",
    "split of a gone range",
    "read of a gone range",
    "read from a saved continuation",
    "non-empty all-versions read",
    "reopen",
];

fn run_case(ops: &[Op]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut harness = Harness::new(dir.path());
    for op in ops {
        harness.run(op);
    }
    // A final full comparison: every item, every scope, both modes, from the beginning.
    for c in 0..SPECS.len() {
        harness.check_items(c);
        harness.check_read(
            c,
            &ScopeSelection::Container,
            &FeedStart::Beginning,
            0,
            FeedMode::LatestVersion,
            None,
            3,
        );
        if harness.models[c].keeps_all_versions {
            harness.check_read(
                c,
                &ScopeSelection::Container,
                &FeedStart::Beginning,
                0,
                FeedMode::AllVersionsAndDeletes,
                None,
                3,
            );
        }
    }
    harness.reopen();
    for c in 0..SPECS.len() {
        harness.check_items(c);
    }
}

/// Random operation sequences on two containers agree with the model. The seed is fixed
/// (`PROPTEST_RNG_SEED` picks another, `PROPTEST_CASES` runs more cases).
#[test]
fn store_matches_the_model_for_random_operation_sequences() {
    let defaults = ProptestConfig::default();
    let rng_seed = match defaults.rng_seed {
        RngSeed::Fixed(seed) => RngSeed::Fixed(seed),
        RngSeed::Random => RngSeed::Fixed(DEFAULT_SEED),
    };
    let config = ProptestConfig {
        cases: cases(),
        max_shrink_iters: 256,
        failure_persistence: None,
        rng_seed,
        ..defaults
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..=MAX_OPS), |ops| {
        run_case(&ops);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("seed {rng_seed}: {failure}");
    }
    let coverage = COVERAGE.lock().expect("coverage lock").clone();
    eprintln!("model coverage: {coverage:?}");
    if cases() >= DEFAULT_CASES {
        for situation in REQUIRED_COVERAGE {
            assert!(
                coverage.contains_key(situation),
                "no case reached '{situation}': {coverage:?}"
            );
        }
    }
}
