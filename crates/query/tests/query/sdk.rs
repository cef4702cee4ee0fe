//! Queries the official SDKs send on their own (metadata reads) or show in their samples and
//! tests: each must parse, and the metadata lookups must find their record.

use serde_json::json;

use crate::support::{case, case_with, check_all};
use tributary_query::Query;

const SDK_QUERIES: &[&str] = &[
    "SELECT * FROM root r WHERE r.id=@id",
    "SELECT * FROM root r WHERE r.id = @database",
    "SELECT * FROM root r WHERE r.resource=@link",
    "SELECT * from root where root.resource = \"dbs/db1/colls/c1\"",
    "SELECT * FROM Families f WHERE f.lastName = @lastName",
    "SELECT * FROM Families f where f.lastName = @lastName",
    "select * from c",
    "SELECT * from c WHERE c.yourPartitionKey = \"foo\"",
    "SELECT DISTINCT VALUE t FROM c JOIN t IN c.tags",
    "SELECT TOP 3 * FROM c ORDER BY c.n",
    "SELECT TOP 3 c.v FROM c ORDER BY c.v",
    "SELECT VALUE COUNT(1) FROM c WHERE c.colour = @c",
    "SELECT VALUE MAX(c.v) FROM c",
    "SELECT VALUE SUM(c.n) FROM c",
    "SELECT VALUE c.id FROM c ORDER BY c.id OFFSET 1 LIMIT 1",
    "SELECT c.id, c.n FROM c WHERE c.n < @n ORDER BY c.n",
    "SELECT c.status, COUNT(c.id) AS count FROM c GROUP BY c.status",
    "SELECT COUNT(1) + 5 FROM c",
    "SELECT VALUE COUNT(1)",
    "SELECT * FROM c WHERE c.id IN ('a', 'c')",
    "SELECT * FROM c WHERE NOT IS_DEFINED(c.tags)",
    "SELECT * FROM c WHERE c.v >= @low AND c.even = @even",
];

#[test]
fn sdk_queries_parse() {
    for text in SDK_QUERIES {
        if let Err(error) = Query::parse(text) {
            panic!("{text}: {error}");
        }
    }
}

#[test]
fn sdk_metadata_and_sample_queries_return_what_the_sdks_expect() {
    let databases = json!([{"id": "db1", "_rid": "a"}, {"id": "db2", "_rid": "b"}]);
    let items = json!([
        {"id": "1", "status": "open", "n": 3, "tags": ["x", "y"]},
        {"id": "2", "status": "closed", "n": 1, "tags": ["y"]},
        {"id": "3", "status": "open", "n": 2}
    ]);
    check_all(vec![
        case_with(
            "SELECT * FROM root r WHERE r.id=@id",
            json!([{"name": "@id", "value": "db2"}]),
            databases,
            json!([{"id": "db2", "_rid": "b"}]),
        ),
        case(
            "SELECT DISTINCT VALUE t FROM c JOIN t IN c.tags",
            items.clone(),
            json!(["x", "y"]),
        ),
        case(
            "SELECT c.status, COUNT(c.id) AS count FROM c GROUP BY c.status",
            items.clone(),
            json!([{"status": "open", "count": 2}, {"status": "closed", "count": 1}]),
        ),
        case(
            "SELECT COUNT(1) + 5 FROM c",
            items.clone(),
            json!([{"$1": 8}]),
        ),
        case("SELECT VALUE COUNT(1)", items.clone(), json!([1])),
        case(
            "SELECT TOP 2 c.id FROM c ORDER BY c.n",
            items,
            json!([{"id": "2"}, {"id": "3"}]),
        ),
    ]);
}
