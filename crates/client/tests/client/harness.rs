//! An in-process Tributary server over a temporary store, and a client connected to it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tributary_client::{ClientOptions, ConnectionString, CosmosClient};
use tributary_server::{Server, ServerConfig, TlsSource};
use tributary_store::{Store, StoreOptions};
use tributary_wire::auth::EMULATOR_KEY;

/// The longest any request of a test may take: every test stays bounded.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server with its own store; stopped on drop.
pub struct TestServer {
    /// The store the server serves, so tests can act on it directly (splits).
    pub store: Arc<Store>,
    /// The endpoint the server reports, e.g. `http://localhost:41234/`.
    pub endpoint: String,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    /// A server over plain HTTP.
    pub async fn start() -> TestServer {
        TestServer::start_with(None).await
    }

    /// A server over HTTPS with a freshly generated self-signed certificate.
    pub async fn start_tls() -> TestServer {
        TestServer::start_with(Some(TlsSource::SelfSigned)).await
    }

    async fn start_with(tls: Option<TlsSource>) -> TestServer {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(
            Store::open(data_dir.path(), StoreOptions::relaxed()).expect("the store opens"),
        );
        let config = ServerConfig {
            port: 0,
            tls,
            data_dir: data_dir.path().to_owned(),
            ..ServerConfig::default()
        };
        let server = Server::bind(config, Arc::clone(&store))
            .await
            .expect("the server binds a free port");
        let endpoint = server.endpoint().to_owned();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            store,
            endpoint,
            shutdown: Some(shutdown),
            _data_dir: data_dir,
        }
    }

    /// The connection string of this server's account (the emulator key).
    pub fn connection_string(&self) -> String {
        format!(
            "AccountEndpoint={};AccountKey={EMULATOR_KEY};",
            self.endpoint
        )
    }

    /// A client with bounded requests (and any certificate accepted, for the self-signed one).
    pub fn client(&self) -> CosmosClient {
        let connection = ConnectionString {
            endpoint: self.endpoint.clone(),
            key: EMULATOR_KEY.to_owned(),
        };
        let options = ClientOptions {
            accept_invalid_certs: true,
            request_timeout: REQUEST_TIMEOUT,
            ..ClientOptions::default()
        };
        CosmosClient::new(&connection, options).expect("the client is configured")
    }

    /// A client, with database `db` and container `c` partitioned on `/pk` created.
    pub async fn client_with_container(&self) -> CosmosClient {
        let client = self.client();
        client
            .create_database_if_not_exists("db")
            .await
            .expect("the database is created");
        client
            .create_container_if_not_exists("db", "c", "/pk")
            .await
            .expect("the container is created");
        client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
