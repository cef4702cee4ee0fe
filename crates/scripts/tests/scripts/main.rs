//! Integration tests of `tributary-scripts`: stored procedures, triggers and user-defined
//! functions run against an in-memory document context.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};
use tributary_scripts::{
    DocumentContext, DocumentError, DocumentWrite, ScriptError, ScriptLimits, TriggerInput,
    UserDefinedFunctions, run_stored_procedure, run_trigger,
};

/// Documents by id, each given an `_etag` that counts its writes.
#[derive(Default)]
struct Documents {
    by_id: BTreeMap<String, Value>,
    n_writes: u64,
}

const COLLECTION: &str = "dbs/db/colls/c";

fn document_id(link: &str) -> Result<&str, DocumentError> {
    link.trim_end_matches('/')
        .strip_prefix("dbs/db/colls/c/docs/")
        .ok_or_else(|| DocumentError::new(400, format!("'{link}' is not a document link")))
}

impl DocumentContext for Documents {
    fn collection_links(&self) -> (String, String) {
        ("dbs/rid/colls/rid/".to_owned(), COLLECTION.to_owned())
    }

    fn write(
        &mut self,
        kind: DocumentWrite,
        link: &str,
        mut document: Value,
        if_match: Option<&str>,
    ) -> Result<Value, DocumentError> {
        let id = document["id"].as_str().unwrap_or_default().to_owned();
        if kind == DocumentWrite::Replace {
            let target = document_id(link)?;
            let existing = self
                .by_id
                .get(target)
                .ok_or_else(|| DocumentError::new(404, "not found"))?;
            if if_match.is_some_and(|etag| existing["_etag"] != etag) {
                return Err(DocumentError::new(412, "etag mismatch"));
            }
        } else if link != COLLECTION {
            return Err(DocumentError::new(400, "another collection"));
        }
        if kind == DocumentWrite::Create && self.by_id.contains_key(&id) {
            return Err(DocumentError::new(409, "exists"));
        }
        self.n_writes += 1;
        document["_etag"] = Value::from(format!("e{}", self.n_writes));
        self.by_id.insert(id, document.clone());
        Ok(document)
    }

    fn read(&mut self, link: &str) -> Result<Value, DocumentError> {
        self.by_id
            .get(document_id(link)?)
            .cloned()
            .ok_or_else(|| DocumentError::new(404, "not found"))
    }

    fn delete(&mut self, link: &str, _if_match: Option<&str>) -> Result<(), DocumentError> {
        self.by_id
            .remove(document_id(link)?)
            .map(drop)
            .ok_or_else(|| DocumentError::new(404, "not found"))
    }

    fn query(
        &mut self,
        _link: &str,
        query: &str,
        parameters: &Value,
    ) -> Result<Vec<Value>, DocumentError> {
        // Enough for the tests: all documents, or those whose n is @n.
        Ok(self
            .by_id
            .values()
            .filter(|d| !query.contains("@n") || d["n"] == parameters[0]["value"])
            .cloned()
            .collect())
    }

    fn read_all(&mut self, _link: &str) -> Result<Vec<Value>, DocumentError> {
        Ok(self.by_id.values().cloned().collect())
    }
}

fn sproc(source: &str, parameters: Vec<Value>) -> (Result<Value, ScriptError>, Documents) {
    let documents = Rc::new(RefCell::new(Documents::default()));
    let result = run_stored_procedure(
        source,
        parameters,
        documents.clone(),
        ScriptLimits {
            max_duration: Duration::from_millis(300),
            ..ScriptLimits::default()
        },
    )
    .map(|output| output.response_body.unwrap_or(Value::Null));
    let documents = Rc::try_unwrap(documents)
        .ok()
        .expect("the engine let go of the context")
        .into_inner();
    (result, documents)
}

#[test]
fn a_stored_procedure_writes_reads_and_queries_through_its_context() {
    let (body, documents) = sproc(
        r#"function (prefix) {
            var c = getContext().getCollection();
            var order = [];
            c.createDocument(c.getAltLink(), {id: prefix + "1", n: 1}, function (err, doc) {
                if (err) throw err;
                order.push("created " + doc.id);
                c.replaceDocument(c.getAltLink() + "/docs/" + doc.id, {id: doc.id, n: 2},
                    {etag: doc._etag}, function (err, replaced) {
                        if (err) throw err;
                        c.queryDocuments(c.getSelfLink(),
                            {query: "SELECT * FROM c WHERE c.n = @n", parameters: [{name: "@n", value: 2}]},
                            function (err, found) {
                                order.push("found " + found.length);
                                getContext().getResponse().setBody(order);
                            });
                    });
            });
            c.createDocument(c.getAltLink(), {n: 7}, function (err, doc) {
                order.push("generated an id: " + (typeof doc.id === "string"));
            });
            order.push("returned");
        }"#,
        vec![json!("a")],
    );
    assert_eq!(
        body.unwrap(),
        json!(["returned", "created a1", "generated an id: true", "found 1"]),
        "callbacks run after the call stack finished, in order"
    );
    assert_eq!(documents.by_id["a1"]["n"], 2);
    assert_eq!(documents.by_id.len(), 2);
}

#[test]
fn errors_reach_callbacks_or_abort_the_script() {
    let (body, _) = sproc(
        r#"function () {
            var c = __;
            c.readDocument("dbs/db/colls/c/docs/missing", function (err) {
                getContext().getResponse().setBody([err.number, err.message]);
            });
        }"#,
        vec![],
    );
    assert_eq!(body.unwrap(), json!([404, "not found"]));
    let (result, _) = sproc(
        r#"function () { __.readDocument("dbs/db/colls/c/docs/missing"); }"#,
        vec![],
    );
    assert_eq!(result.unwrap_err().to_string(), "Error: not found");
    let (result, _) = sproc(r#"function () { throw "plain text"; }"#, vec![]);
    assert_eq!(result.unwrap_err().to_string(), "plain text");
    let (result, _) = sproc(
        r#"function () { __.createDocument(__.getAltLink(), {id: "x"}, {mystery: 1}); }"#,
        vec![],
    );
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("option 'mystery' is not supported"),
        "{message}"
    );
    let (result, _) = sproc(r#"function () { __.filter(function () {}); }"#, vec![]);
    assert!(result.unwrap_err().to_string().contains("not supported"));
    let (result, _) = sproc("var x = 1;", vec![]);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("must be a JavaScript function")
    );
}

#[test]
fn the_response_body_is_set_appended_and_read_back() {
    let (body, _) = sproc(
        r#"function () {
            for (var i = 0; i < 10; i++) getContext().getResponse().appendValue("Body", i);
        }"#,
        vec![],
    );
    assert_eq!(body.unwrap(), json!("0123456789"));
    let (body, _) = sproc(
        r#"function (input) { getContext().getResponse().setBody("a" + input.temp); }"#,
        vec![json!({"temp": "so"})],
    );
    assert_eq!(body.unwrap(), json!("aso"));
    let (result, _) = sproc(
        r#"function () { getContext().getResponse().setValue("Other", 1); }"#,
        vec![],
    );
    assert!(result.unwrap_err().to_string().contains("only 'Body'"));
}

#[test]
fn runaway_scripts_are_stopped_at_their_limits() {
    let (result, _) = sproc("function () { while (true) {} }", vec![]);
    assert!(
        matches!(result, Err(ScriptError::TimedOut(_))),
        "{result:?}"
    );
    let (result, _) = sproc(
        "function () { var a = []; while (true) a.push(new Array(100000).fill(1)); }",
        vec![],
    );
    assert!(
        matches!(result, Err(ScriptError::OutOfMemory(_))),
        "{result:?}"
    );
    let (result, _) = sproc(
        "function () { function f() { return f() + 1; } f(); }",
        vec![],
    );
    assert!(
        result.unwrap_err().to_string().contains("stack"),
        "deep recursion fails"
    );
}

#[test]
fn console_log_is_collected_with_substitutions() {
    let documents = Rc::new(RefCell::new(Documents::default()));
    let output = run_stored_procedure(
        r#"function () {
            console.log("The value of %s is %s.", "x", 1);
            console.log("n=%d", "42", {a: 1});
        }"#,
        vec![],
        documents,
        ScriptLimits::default(),
    )
    .unwrap();
    assert_eq!(output.log, "The value of x is 1.\nn=42 {\"a\":1}");
    assert_eq!(output.response_body, None);
}

#[test]
fn triggers_see_and_change_the_request_and_see_the_response() {
    let documents = Rc::new(RefCell::new(Documents::default()));
    let pre = run_trigger(
        r#"function () {
            var item = getContext().getRequest().getBody();
            item.id = item.id.toUpperCase() + getContext().getRequest().getOperationType();
            getContext().getRequest().setBody(item);
        }"#,
        "Create",
        TriggerInput::Pre {
            request_body: Some(json!({"id": "doc"})),
        },
        documents.clone(),
        ScriptLimits::default(),
    )
    .unwrap();
    assert_eq!(pre.request_body, Some(json!({"id": "DOCCreate"})));
    let error = run_trigger(
        "function () { getContext().getResponse(); }",
        "Create",
        TriggerInput::Pre { request_body: None },
        documents.clone(),
        ScriptLimits::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("no response yet"));
    let post = run_trigger(
        r#"function () {
            var body = getContext().getResponse().getBody();
            if (body._etag !== "e1") throw new Error("wrong response " + JSON.stringify(body));
            __.createDocument(__.getAltLink(), {id: "audit"});
        }"#,
        "Create",
        TriggerInput::Post {
            request_body: Some(json!({"id": "doc"})),
            response_body: Some(json!({"id": "doc", "_etag": "e1"})),
        },
        documents.clone(),
        ScriptLimits::default(),
    )
    .unwrap();
    assert_eq!(
        post.response_body,
        Some(json!({"id": "doc", "_etag": "e1"}))
    );
    assert!(documents.borrow().by_id.contains_key("audit"));
}

#[test]
fn user_defined_functions_are_called_with_json_arguments() {
    let functions = UserDefinedFunctions::new(
        [
            ("concat", "function (a, b) { return a + '-' + b; }"),
            ("nothing", "function () { }"),
            ("context", "function () { return getContext(); }"),
        ],
        ScriptLimits::default(),
    )
    .unwrap();
    assert_eq!(
        functions.call("concat", &[json!("a"), json!(1)]).unwrap(),
        Some(json!("a-1"))
    );
    assert_eq!(functions.call("nothing", &[]).unwrap(), None);
    assert!(
        functions
            .call("context", &[])
            .unwrap_err()
            .to_string()
            .contains("stored procedures and triggers only")
    );
    assert!(UserDefinedFunctions::new([("bad", "function (")], ScriptLimits::default()).is_err());
}
