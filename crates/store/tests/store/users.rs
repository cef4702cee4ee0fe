//! Users and permissions: created, renamed, upserted and deleted with Cosmos DB's conflicts and
//! absences; durable across a reopen; gone with their database; a permission deleted and
//! created again gets a new resource id.

use serde_json::json;
use tributary_store::{PermissionDefinition, PermissionMode, StoreError, StoreOptions};

use crate::support::open_store;

fn permission(id: &str, mode: &str, resource: &str) -> PermissionDefinition {
    PermissionDefinition::from_json(
        &json!({"id": id, "permissionMode": mode, "resource": resource}),
    )
    .expect("a valid permission")
}

#[test]
fn users_and_permissions_survive_a_reopen_and_go_with_their_database() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (user_rid, permission_rid) = runtime.block_on(async {
        let store = open_store(dir.path(), StoreOptions::relaxed());
        store.create_database("db").await.unwrap();
        let user = store.create_user("db", "ada").await.unwrap();
        assert!(matches!(
            store.create_user("db", "ada").await,
            Err(StoreError::UserExists(_))
        ));
        assert!(matches!(
            store.create_user("nodb", "ada").await,
            Err(StoreError::DatabaseNotFound(_))
        ));
        let created = store
            .create_permission("db", "ada", permission("p", "Read", "dbs/db/colls/c"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_permission("db", "ada", permission("p", "All", "dbs/db"))
                .await,
            Err(StoreError::PermissionExists(_))
        ));
        let (upserted, was_created) = store
            .upsert_permission("db", "ada", permission("p", "All", "dbs/db/colls/c"))
            .await
            .unwrap();
        assert!(!was_created);
        assert_eq!(upserted.rid, created.rid, "an upsert keeps the resource id");
        assert_ne!(upserted.etag, created.etag, "an upsert changes the etag");
        assert_eq!(upserted.definition.mode, PermissionMode::All);
        let renamed = store.replace_user("db", "ada", "grace").await.unwrap();
        assert_eq!(renamed.rid, user.rid, "a rename keeps the resource id");
        assert!(matches!(
            store.read_user("db", "ada"),
            Err(StoreError::UserNotFound { .. })
        ));
        (renamed.rid, upserted.rid)
    });

    let store = open_store(dir.path(), StoreOptions::relaxed());
    assert_eq!(store.read_user("db", "grace").unwrap().rid, user_rid);
    let permissions = store.list_permissions("db", "grace").unwrap();
    assert_eq!(permissions.len(), 1, "the permission moved with its user");
    assert_eq!(permissions[0].rid, permission_rid);
    runtime.block_on(async {
        store.delete_permission("db", "grace", "p").await.unwrap();
        assert!(matches!(
            store.delete_permission("db", "grace", "p").await,
            Err(StoreError::PermissionNotFound { .. })
        ));
        let again = store
            .create_permission("db", "grace", permission("p", "Read", "dbs/db"))
            .await
            .unwrap();
        assert_ne!(
            again.rid, permission_rid,
            "a new permission gets a new resource id"
        );
        store.delete_database("db").await.unwrap();
        store.create_database("db").await.unwrap();
        assert!(
            store.list_users("db").unwrap().is_empty(),
            "users go with their database"
        );
    });
    drop(store);
    let store = open_store(dir.path(), StoreOptions::relaxed());
    assert!(store.list_users("db").unwrap().is_empty());
}
