//! Queries read only what their scope needs: one whose filter fixes the partition key (by a
//! literal or a parameter, also a hierarchical key's prefix) reads that key's items alone, as
//! the query metrics' `retrievedDocumentCount` shows, and answers exactly what a scan of the
//! whole container would. Pages read on from where the last ended: any page size gives the
//! unpaged answer, each page reads only its items, and items written meanwhile are not skipped.

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::{Response, TestServer, retrieved_documents};

/// Items per partition key value.
const PER_KEY: usize = 10;

/// A query of container `c`, with parameters, asking for the query metrics.
async fn query(server: &TestServer, path: &str, sql: &str, parameters: Value) -> Response {
    let response = server
        .request(Method::POST, path)
        .query(sql)
        .header("x-ms-documentdb-populatequerymetrics", "true")
        .body(
            json!({ "query": sql, "parameters": parameters })
                .to_string()
                .into_bytes(),
        )
        .send()
        .await;
    response.expect_status(200);
    response
}

fn ids(response: &Response) -> Vec<String> {
    crate::harness::document_ids(&response.json())
}

#[tokio::test]
async fn a_query_that_fixes_the_partition_key_reads_only_that_keys_items() {
    let server = TestServer::with_container().await;
    for pk in ["a", "b", "c"] {
        for n in 0..PER_KEY {
            server
                .create_item(pk, &json!({"id": format!("{pk}{n}"), "pk": pk, "n": n}))
                .await;
        }
    }
    let path = "/dbs/db/colls/c/docs";
    let everything = query(&server, path, "SELECT * FROM c", json!([])).await;
    assert_eq!(retrieved_documents(&everything), 3 * PER_KEY as u64);
    let expected: Vec<String> = (0..PER_KEY).map(|n| format!("b{n}")).collect();
    for (sql, parameters) in [
        ("SELECT * FROM c WHERE c.pk = 'b'", json!([])),
        (
            "SELECT * FROM c WHERE c.n >= 0 AND @key = c.pk",
            json!([{"name": "@key", "value": "b"}]),
        ),
    ] {
        let pinned = query(&server, path, sql, parameters).await;
        assert_eq!(ids(&pinned), expected, "{sql}");
        assert_eq!(
            retrieved_documents(&pinned),
            PER_KEY as u64,
            "{sql} reads one key"
        );
    }
    // Two keys are not one: the whole container is read, the answer is the same.
    let either = query(
        &server,
        path,
        "SELECT VALUE c.id FROM c WHERE c.pk = 'a' OR c.pk = 'b'",
        json!([]),
    )
    .await;
    assert_eq!(retrieved_documents(&either), 3 * PER_KEY as u64);
    assert_eq!(
        either.json()["Documents"].as_array().map(Vec::len),
        Some(2 * PER_KEY)
    );
    // A key no item has: nothing read, nothing answered.
    let none = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.pk = 'zzz'",
        json!([]),
    )
    .await;
    assert_eq!(retrieved_documents(&none), 0);
    assert!(ids(&none).is_empty());
}

#[tokio::test]
async fn a_query_that_fixes_a_hierarchical_keys_prefix_reads_only_that_prefix() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({
            "id": "h",
            "partitionKey": { "paths": ["/tenant", "/user"], "kind": "MultiHash", "version": 2 },
        }))
        .send()
        .await
        .expect_status(201);
    for tenant in ["t1", "t2"] {
        for user in ["u1", "u2"] {
            for n in 0..PER_KEY {
                server
                    .request(Method::POST, "/dbs/db/colls/h/docs")
                    .header(
                        "x-ms-documentdb-partitionkey",
                        &json!([tenant, user]).to_string(),
                    )
                    .json(&json!({"id": format!("{tenant}{user}{n}"), "tenant": tenant, "user": user}))
                    .send()
                    .await
                    .expect_status(201);
            }
        }
    }
    let path = "/dbs/db/colls/h/docs";
    let tenant = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.tenant = 't2'",
        json!([]),
    )
    .await;
    assert_eq!(ids(&tenant).len(), 2 * PER_KEY);
    assert_eq!(
        retrieved_documents(&tenant),
        2 * PER_KEY as u64,
        "one tenant's items"
    );
    let user = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.user = 'u1' AND c.tenant = 't2'",
        json!([]),
    )
    .await;
    assert_eq!(ids(&user).len(), PER_KEY);
    assert_eq!(
        retrieved_documents(&user),
        PER_KEY as u64,
        "one tenant's user's items"
    );
    // The second path alone is no prefix: the range index on `/user/?` finds its items.
    let by_user = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.user = 'u1'",
        json!([]),
    )
    .await;
    assert_eq!(ids(&by_user).len(), 2 * PER_KEY);
    assert_eq!(retrieved_documents(&by_user), 2 * PER_KEY as u64);
}

/// Follows a query's (or, with `sql` `None`, the read feed's) continuations to the end with
/// pages of `page_size`; returns each page's ids and `retrievedDocumentCount`.
async fn all_pages(
    server: &TestServer,
    sql: Option<&str>,
    page_size: usize,
    mut between_pages: impl FnMut(usize) -> Option<Value>,
) -> Vec<(Vec<String>, Option<u64>)> {
    let mut pages = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut request = match sql {
            Some(sql) => server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .query(sql)
                .header("x-ms-documentdb-populatequerymetrics", "true"),
            None => server.request(Method::GET, "/dbs/db/colls/c/docs"),
        }
        .header("x-ms-max-item-count", &page_size.to_string());
        if let Some(token) = &continuation {
            request = request.header("x-ms-continuation", token);
        }
        let response = request.send().await;
        response.expect_status(200);
        let count = sql.map(|_| retrieved_documents(&response));
        pages.push((ids(&response), count));
        continuation = response.header("x-ms-continuation").map(str::to_owned);
        assert!(pages.len() <= 1_000, "the continuations never end");
        if continuation.is_none() {
            return pages;
        }
        if let Some(item) = between_pages(pages.len()) {
            let pk = item["pk"].as_str().expect("a pk").to_owned();
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key(&pk)
                .header("x-ms-documentdb-is-upsert", "true")
                .json(&item)
                .send()
                .await
                .expect_status(200);
        }
    }
}

#[tokio::test]
async fn pages_of_any_size_give_the_unpaged_answer_and_each_reads_only_its_page() {
    let server = TestServer::with_container().await;
    let n_items = 60;
    for n in 0..n_items {
        let pk = ["a", "b", "c"][n % 3];
        server
            .create_item(pk, &json!({"id": format!("i{n:02}"), "pk": pk, "n": n}))
            .await;
    }
    for sql in [
        None,
        Some("SELECT * FROM c"),
        Some("SELECT * FROM c WHERE c.n % 2 = 0"),
        Some("SELECT VALUE c FROM c WHERE c.pk = 'b'"),
    ] {
        let unpaged: Vec<String> = all_pages(&server, sql, 1000, |_| None)
            .await
            .into_iter()
            .flat_map(|(ids, _)| ids)
            .collect();
        assert!(!unpaged.is_empty(), "{sql:?}");
        for page_size in [1, 7] {
            let pages = all_pages(&server, sql, page_size, |_| None).await;
            let paged: Vec<String> = pages.iter().flat_map(|(ids, _)| ids.clone()).collect();
            assert_eq!(paged, unpaged, "{sql:?} in pages of {page_size}");
            // Each page reads its own items (and one more, to know there are more), not
            // the scope again from its start.
            if sql == Some("SELECT * FROM c") {
                for (ids, n_read) in &pages {
                    assert!(ids.len() <= page_size);
                    assert!(
                        n_read.expect("metrics") <= page_size as u64 + 1,
                        "{pages:?}"
                    );
                }
            }
        }
    }
    // A query that needs its whole input still pages its result.
    let ordered = all_pages(
        &server,
        Some("SELECT * FROM c ORDER BY c.n DESC"),
        7,
        |_| None,
    )
    .await;
    let ordered: Vec<String> = ordered.into_iter().flat_map(|(ids, _)| ids).collect();
    let expected: Vec<String> = (0..n_items).rev().map(|n| format!("i{n:02}")).collect();
    assert_eq!(ordered, expected);
}

#[tokio::test]
async fn items_written_while_paging_are_never_skipped() {
    let server = TestServer::with_container().await;
    let n_items = 30;
    for n in 0..n_items {
        server
            .create_item("a", &json!({"id": format!("i{n:02}"), "pk": "a", "n": n}))
            .await;
    }
    // Between pages, an item not yet read and one already read are replaced: both are
    // seen (at least once), none is lost, as an offset would lose the ones it shifts.
    let pages = all_pages(&server, Some("SELECT * FROM c"), 5, |page| {
        let n = (page * 7) % n_items;
        Some(json!({"id": format!("i{n:02}"), "pk": "a", "n": n, "page": page}))
    })
    .await;
    let mut seen: Vec<String> = pages.into_iter().flat_map(|(ids, _)| ids).collect();
    seen.sort();
    seen.dedup();
    let every: Vec<String> = (0..n_items).map(|n| format!("i{n:02}")).collect();
    assert_eq!(seen, every);
}

#[tokio::test]
async fn a_continuation_of_another_kind_or_garbage_is_a_400() {
    let server = TestServer::with_container().await;
    for n in 0..3 {
        server
            .create_item("a", &json!({"id": format!("i{n}"), "pk": "a", "n": n}))
            .await;
    }
    let first = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c ORDER BY c.n")
        .header("x-ms-max-item-count", "1")
        .send()
        .await;
    let offset_token = first
        .header("x-ms-continuation")
        .expect("more pages")
        .to_owned();
    for token in [offset_token.as_str(), "garbage"] {
        let message = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c")
            .header("x-ms-continuation", token)
            .send()
            .await
            .expect_error(400);
        assert!(message.contains("continuation token"), "{message}");
    }
    // Cosmos DB's own backend format: naming another container, it is ignored and the query
    // starts over, as on Cosmos DB; naming this one (never minted here), it is a 400.
    let rid = server
        .request(Method::GET, "/dbs/db/colls/c")
        .send()
        .await
        .json()["_rid"]
        .as_str()
        .expect("a container rid")
        .to_owned();
    let send = |token: String| {
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c")
            .header("x-ms-continuation", &token)
            .send()
    };
    let other =
        send("-RID:~a0NPAOszCpOChB4AAAAAAA==#RT:1#TRC:2#ISV:2#IEO:65567#QCF:8".into()).await;
    other.expect_status(200);
    assert_eq!(ids(&other), ["i0", "i1", "i2"]);
    send(format!("-RID:~{rid}#RT:1#TRC:2"))
        .await
        .expect_error(400);
}

/// A server whose queries may hold `max_query_input` bytes, with container `c` holding items
/// `i00`, `i01`, ... (`n_items` of them, ~700 bytes each, all under key `a`), item `i` with
/// `"n": n_of(i)`.
async fn padded_items_server(
    max_query_input: usize,
    n_items: usize,
    n_of: impl Fn(usize) -> usize,
) -> TestServer {
    let server = TestServer::start_with(|config| config.max_query_input = max_query_input).await;
    server.create_database("db").await;
    server.create_container("db", "c").await;
    let padding = "x".repeat(500);
    for i in 0..n_items {
        server
            .create_item(
                "a",
                &json!({"id": format!("i{i:02}"), "pk": "a", "n": n_of(i), "padding": padding}),
            )
            .await;
    }
    server
}

#[tokio::test]
async fn a_query_that_needs_more_whole_input_than_allowed_is_a_400_and_a_paged_one_is_not() {
    let server = padded_items_server(4 * 1024, 20, |n| n).await;
    let message = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c ORDER BY c.n")
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("needs its whole input"), "{message}");
    assert!(message.contains("--max-query-input-mib"), "{message}");
    // Read item by item, the same items page through.
    let pages = all_pages(&server, Some("SELECT * FROM c"), 7, |_| None).await;
    assert_eq!(pages.iter().map(|(ids, _)| ids.len()).sum::<usize>(), 20);
}

#[tokio::test]
async fn a_query_without_from_answers_once_whatever_the_container_holds() {
    let server = TestServer::with_container().await;
    let path = "/dbs/db/colls/c/docs";
    for n_items in [0, 3] {
        for n in 0..n_items {
            server
                .create_item("a", &json!({"id": format!("once{n}"), "pk": "a"}))
                .await;
        }
        let answered = query(&server, path, "SELECT VALUE 1", json!([])).await;
        assert_eq!(answered.json()["Documents"], json!([1]), "{n_items} items");
    }
}

#[tokio::test]
async fn without_cross_partition_consent_only_a_query_that_fixes_the_whole_key_runs() {
    let server = TestServer::with_container().await;
    server
        .create_item("a", &json!({"id": "one", "pk": "a"}))
        .await;
    let send = |sql: &'static str| {
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .header("x-ms-documentdb-isquery", "true")
            .header("content-type", "application/query+json")
            .body(json!({ "query": sql }).to_string().into_bytes())
            .send()
    };
    let pinned = send("SELECT * FROM c WHERE c.pk = 'a'").await;
    pinned.expect_status(200);
    assert_eq!(ids(&pinned), ["one"]);
    for sql in [
        "SELECT * FROM c",
        "SELECT * FROM c WHERE c.pk = 'a' OR c.pk = 'b'",
    ] {
        let message = send(sql).await.expect_error(400);
        assert!(
            message.contains("Cross partition query is required"),
            "{sql}: {message}"
        );
    }
}

#[tokio::test]
async fn computed_properties_are_queried_returned_replaced_and_checked() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    let computed = json!([
        {"name": "cp_lower", "query": "SELECT VALUE LOWER(c.group) FROM c"},
        {"name": "pk", "query": "SELECT VALUE 'not-the-key' FROM c"}
    ]);
    let created = server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({
            "id": "cp",
            "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
            "computedProperties": computed,
        }))
        .send()
        .await;
    created.expect_status(201);
    assert_eq!(created.json()["computedProperties"], computed);
    for (id, group) in [("a", "GrOuP1"), ("b", "group2"), ("c", "GROUP1")] {
        server
            .request(Method::POST, "/dbs/db/colls/cp/docs")
            .partition_key("p")
            .json(&json!({"id": id, "pk": "p", "group": group}))
            .send()
            .await
            .expect_status(201);
    }
    let path = "/dbs/db/colls/cp/docs";
    let lower = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.cp_lower = 'group1'",
        json!([]),
    )
    .await;
    assert_eq!(ids(&lower), ["a", "c"]);
    let document = &lower.json()["Documents"][0];
    assert!(
        document.get("cp_lower").is_none(),
        "SELECT * returns the item as stored"
    );
    // A computed property named like the partition key path wins in the filter and does not
    // pin the query to the key 'p'.
    let shadowed = query(
        &server,
        path,
        "SELECT VALUE c.id FROM c WHERE c.pk = 'not-the-key'",
        json!([]),
    )
    .await;
    assert_eq!(shadowed.json()["Documents"], json!(["a", "b", "c"]));

    let refused = server
        .request(Method::PUT, "/dbs/db/colls/cp")
        .json(&json!({
            "id": "cp",
            "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
            "computedProperties": [{"name": "cp_bad", "query": "SELECT VALUE c.x FROM c WHERE c.y = 1"}],
        }))
        .send()
        .await
        .expect_error(400);
    assert!(
        refused.contains("One of the specified inputs is invalid"),
        "{refused}"
    );
    assert!(refused.contains("cannot use WHERE"), "{refused}");
    let replaced = server
        .request(Method::PUT, "/dbs/db/colls/cp")
        .json(&json!({
            "id": "cp",
            "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
        }))
        .send()
        .await;
    replaced.expect_status(200);
    assert!(replaced.json().get("computedProperties").is_none());
    let gone = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.cp_lower = 'group1'",
        json!([]),
    )
    .await;
    assert!(
        ids(&gone).is_empty(),
        "a removed computed property reads as undefined"
    );
}

#[tokio::test]
async fn an_order_by_with_a_window_reads_past_the_whole_input_limit_holding_only_its_candidates() {
    // 60 items of ~700 bytes: 42 KB, five times the limit; `n` descends with the id, with ties.
    let server = padded_items_server(8 * 1024, 60, |i| (60 - i) / 2).await;
    let ids_of = |sql: &'static str| {
        let server = &server;
        async move {
            let answer = server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .query(sql)
                .header("x-ms-documentdb-populatequerymetrics", "true")
                .send()
                .await;
            answer.expect_status(200);
            let metrics = answer
                .header("x-ms-documentdb-query-metrics")
                .expect("metrics")
                .to_owned();
            assert!(metrics.contains("retrievedDocumentCount=60;"), "{metrics}");
            crate::harness::document_ids(&answer.json())
        }
    };
    // Ties keep the container's order, as one sort over every item would.
    assert_eq!(
        ids_of("SELECT TOP 3 * FROM c ORDER BY c.n").await,
        ["i59", "i57", "i58"]
    );
    assert_eq!(
        ids_of("SELECT c.id FROM c ORDER BY c.n DESC OFFSET 1 LIMIT 3").await,
        ["i01", "i02", "i03"]
    );
    // Without a window the whole input is needed, and too large.
    let message = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c ORDER BY c.n")
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("add a TOP"), "{message}");
}
