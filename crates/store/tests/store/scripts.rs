//! Scripts (stored procedures, triggers, user-defined functions): created, replaced (and
//! renamed), upserted and deleted with Cosmos DB's conflicts, absences and etag conditions;
//! kept apart by kind; durable across a reopen; gone with their container.

use serde_json::json;
use tributary_store::{
    ContainerDefinition, ScriptDefinition, ScriptKind, StoreError, StoreOptions, TriggerOperation,
    TriggerType,
};

use crate::support::open_store;

fn script(kind: ScriptKind, id: &str, body: &str) -> ScriptDefinition {
    let mut json = json!({"id": id, "body": body});
    if kind == ScriptKind::Trigger {
        json["triggerType"] = json!("post");
        json["triggerOperation"] = json!("Delete");
    }
    ScriptDefinition::from_json(kind, &json).expect("a valid script")
}

#[test]
fn scripts_survive_a_reopen_and_go_with_their_container() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sproc_rid = runtime.block_on(async {
        let store = open_store(dir.path(), StoreOptions::relaxed());
        store.create_database("db").await.unwrap();
        store
            .create_container("db", ContainerDefinition::new("c", "/pk"), 1)
            .await
            .unwrap();
        let sproc = ScriptKind::StoredProcedure;
        let created = store
            .create_script("db", "c", sproc, script(sproc, "s", "function () {}"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_script("db", "c", sproc, script(sproc, "s", "function () {}"))
                .await,
            Err(StoreError::ScriptExists { .. })
        ));
        // The same id under another kind is another script.
        let udf = ScriptKind::UserDefinedFunction;
        store
            .create_script(
                "db",
                "c",
                udf,
                script(udf, "s", "function (x) { return x; }"),
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_script("db", "nothere", sproc, script(sproc, "t", "function () {}"))
                .await,
            Err(StoreError::ContainerNotFound { .. })
        ));
        assert!(matches!(
            store
                .replace_script(
                    "db",
                    "c",
                    sproc,
                    "s",
                    script(sproc, "s", "function () { 1; }"),
                    Some("\"not-its-etag\""),
                )
                .await,
            Err(StoreError::PreconditionFailed(_))
        ));
        let replaced = store
            .replace_script(
                "db",
                "c",
                sproc,
                "s",
                script(sproc, "renamed", "function () { 2; }"),
                Some(&created.etag),
            )
            .await
            .unwrap();
        assert_eq!(replaced.rid, created.rid, "a replace keeps the resource id");
        assert_ne!(replaced.etag, created.etag, "a replace changes the etag");
        assert!(matches!(
            store.read_script("db", "c", sproc, "s"),
            Err(StoreError::ScriptNotFound { .. })
        ));
        let (upserted, was_created) = store
            .upsert_script(
                "db",
                "c",
                sproc,
                script(sproc, "renamed", "function () { 3; }"),
                None,
            )
            .await
            .unwrap();
        assert!(!was_created);
        assert_eq!(upserted.definition.body, "function () { 3; }");
        let trigger = ScriptKind::Trigger;
        store
            .create_script("db", "c", trigger, script(trigger, "t", "function () {}"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .delete_script("db", "c", trigger, "t", Some("\"stale\""))
                .await,
            Err(StoreError::PreconditionFailed(_))
        ));
        store
            .delete_script("db", "c", trigger, "t", None)
            .await
            .unwrap();
        assert!(matches!(
            store.delete_script("db", "c", trigger, "t", None).await,
            Err(StoreError::ScriptNotFound { .. })
        ));
        store
            .create_script(
                "db",
                "c",
                trigger,
                script(trigger, "kept", "function () {}"),
            )
            .await
            .unwrap();
        upserted.rid
    });
    runtime.block_on(async {
        let store = open_store(dir.path(), StoreOptions::relaxed());
        let sprocs = store
            .list_scripts("db", "c", ScriptKind::StoredProcedure)
            .unwrap();
        assert_eq!(sprocs.len(), 1);
        assert_eq!(sprocs[0].rid, sproc_rid);
        assert_eq!(sprocs[0].definition.id, "renamed");
        let trigger = store
            .read_script("db", "c", ScriptKind::Trigger, "kept")
            .unwrap();
        let settings = trigger.definition.trigger.expect("a trigger's settings");
        assert_eq!(settings.trigger_type, TriggerType::Post);
        assert_eq!(settings.operation, TriggerOperation::Delete);
        // A container deleted and created again under its name starts with no scripts.
        store.delete_container("db", "c").await.unwrap();
        store
            .create_container("db", ContainerDefinition::new("c", "/pk"), 1)
            .await
            .unwrap();
        for kind in [
            ScriptKind::StoredProcedure,
            ScriptKind::Trigger,
            ScriptKind::UserDefinedFunction,
        ] {
            assert!(store.list_scripts("db", "c", kind).unwrap().is_empty());
        }
    });
    // Nor do they come back after another reopen.
    let store = open_store(dir.path(), StoreOptions::relaxed());
    assert!(
        store
            .list_scripts("db", "c", ScriptKind::UserDefinedFunction)
            .unwrap()
            .is_empty()
    );
}
