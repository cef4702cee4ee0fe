//! The account's keys on the command line: `keys generate`, the key flags and `--keys-file`
//! (a bad key is a one-line error naming it), the banner, and SIGHUP re-reading the keys file
//! in a running `serve`.

use serde_json::Value;

use crate::harness::{DataDir, run, tributary};

/// Runs `tributary keys generate` and returns its JSON.
fn generate() -> Value {
    run(tributary(&["keys", "generate"])).json()
}

#[test]
fn keys_generate_prints_four_fresh_64_byte_keys_under_azure_names() {
    use base64::Engine as _;
    let keys = generate();
    let names = [
        "primaryMasterKey",
        "secondaryMasterKey",
        "primaryReadonlyMasterKey",
        "secondaryReadonlyMasterKey",
    ];
    assert_eq!(keys.as_object().map(|o| o.len()), Some(4), "{keys}");
    for name in names {
        let text = keys[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {keys}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_else(|e| panic!("{name} is not base64 ({e}): {text}"));
        assert_eq!(bytes.len(), 64, "{name}");
    }
    assert_ne!(generate(), keys, "every run makes new keys");
}

#[test]
fn a_bad_key_is_a_one_line_error_naming_the_key() {
    let data_dir = DataDir::new();
    let keys_dir = DataDir::new();
    let serve = |extra: &[&str]| {
        let mut command = tributary(&["serve", "--http", "--port", "0"]);
        command.args(data_dir.arg()).args(extra);
        command
    };
    let write = |name: &str, text: &str| {
        let path = keys_dir.path().join(name);
        std::fs::write(&path, text).expect("the keys file is written");
        path.display().to_string()
    };

    for (flag, expected) in [
        ("--key", "--key is not a valid key"),
        ("--secondary-key", "--secondary-key is not a valid key"),
        ("--readonly-key", "--readonly-key is not a valid key"),
        (
            "--secondary-readonly-key",
            "--secondary-readonly-key is not a valid key",
        ),
    ] {
        let error = run(serve(&[flag, "not base64!"]))
            .one_line_failure()
            .to_owned();
        assert!(error.contains(expected), "{flag}: {error}");
        assert!(error.contains("base64"), "{flag}: {error}");
        assert!(
            !error.contains("not base64!"),
            "the key is not echoed: {error}"
        );
    }

    let cases = [
        (
            "bad-base64.json",
            r#"{"primaryMasterKey": "YWJj", "secondaryReadonlyMasterKey": "secret!"}"#,
            "secondaryReadonlyMasterKey",
        ),
        (
            "read-only.json",
            r#"{"primaryReadonlyMasterKey": "YWJj"}"#,
            "no read-write key",
        ),
        ("not-json.json", "primaryMasterKey=YWJj", "not a keys file"),
        (
            "misspelt.json",
            r#"{"primaryKey": "YWJj"}"#,
            "unknown field `primaryKey`",
        ),
    ];
    for (name, text, expected) in cases {
        let path = write(name, text);
        let error = run(serve(&["--keys-file", &path]))
            .one_line_failure()
            .to_owned();
        assert!(
            error.contains(expected) && error.contains(&path),
            "{name}: {error}"
        );
        assert!(!error.contains("secret!"), "the key is not echoed: {error}");
    }
    let missing = keys_dir.path().join("missing.json").display().to_string();
    let error = run(serve(&["--keys-file", &missing]))
        .one_line_failure()
        .to_owned();
    assert!(error.contains(&missing), "{error}");

    // A keys file holds every key: a key flag, or its variable, beside it is refused.
    let good = write("good.json", &generate().to_string());
    let mut command = serve(&["--keys-file", &good]);
    command.env("TRIBUTARY_READONLY_KEY", "YWJj");
    let error = run(command).one_line_failure().to_owned();
    assert!(
        error.contains("--readonly-key (TRIBUTARY_READONLY_KEY)"),
        "{error}"
    );
}

#[cfg(unix)]
mod sighup {
    use std::io::{BufRead as _, BufReader, Read as _};
    use std::path::Path;
    use std::process::{Child, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use serde_json::Value;
    use tributary_client::{CosmosClient, Method};

    use super::generate;
    use crate::harness::{DataDir, tributary};

    /// Longest the server may take to print its banner, or to apply a reload.
    const TIMEOUT: Duration = Duration::from_secs(20);

    /// `tributary serve --keys-file`, with its banner and everything it logs.
    struct ServerProcess {
        child: Child,
        banner: Vec<String>,
        stderr: Arc<Mutex<String>>,
    }

    impl ServerProcess {
        fn start(data_dir: &DataDir, keys_file: &Path) -> ServerProcess {
            let mut command = tributary(&["serve", "--http", "--port", "0"]);
            command
                .args(data_dir.arg())
                .arg("--keys-file")
                .arg(keys_file)
                .args(["--durability", "relaxed"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = command.spawn().expect("the server starts");
            let stdout = child.stdout.take().expect("stdout is piped");
            let mut stderr = child.stderr.take().expect("stderr is piped");
            let logged = Arc::new(Mutex::new(String::new()));
            std::thread::spawn({
                let logged = Arc::clone(&logged);
                move || {
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = stderr.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        logged
                            .lock()
                            .expect("not poisoned")
                            .push_str(&String::from_utf8_lossy(&chunk[..n]));
                    }
                }
            });
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = sender.send(line);
                }
            });
            let mut server = ServerProcess {
                child,
                banner: Vec::new(),
                stderr: logged,
            };
            loop {
                let line = receiver
                    .recv_timeout(TIMEOUT)
                    .unwrap_or_else(|_| panic!("no banner; stderr: {}", server.logged()));
                let done = line.starts_with("ready in ");
                server.banner.push(line);
                if done {
                    break;
                }
            }
            server
        }

        /// The value of the banner line `label: value`.
        fn printed(&self, label: &str) -> Option<&str> {
            self.banner
                .iter()
                .find_map(|line| line.strip_prefix(&format!("{label}: ")))
        }

        fn logged(&self) -> String {
            self.stderr.lock().expect("not poisoned").clone()
        }

        fn signal(&self, signal: rustix::process::Signal) {
            rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), signal)
                .expect("the signal is sent");
        }

        /// Sends SIGHUP and waits for the server to log its outcome (`fragment`).
        fn hang_up_and_wait_for(&self, n_before: usize, fragment: &str) {
            self.signal(rustix::process::Signal::HUP);
            let deadline = Instant::now() + TIMEOUT;
            while self.logged().matches(fragment).count() <= n_before {
                assert!(
                    Instant::now() < deadline,
                    "the server did not log '{fragment}' after SIGHUP: {}",
                    self.logged()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for ServerProcess {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Replaces the keys file the way an operator should: a new file renamed over it.
    fn replace_keys_file(path: &Path, keys: &Value) {
        let new = path.with_extension("new");
        std::fs::write(&new, keys.to_string()).expect("the new keys file is written");
        std::fs::rename(&new, path).expect("the new keys file replaces the old");
    }

    /// The status of `GET /dbs` signed with `key`.
    async fn status_with(endpoint: &str, key: &Value) -> u16 {
        let key = key.as_str().expect("a key");
        let client = CosmosClient::from_connection_string(&format!(
            "AccountEndpoint={endpoint};AccountKey={key};"
        ))
        .expect("a valid connection string");
        client
            .send(Method::GET, "/dbs", &[], None)
            .await
            .expect("the server answers")
            .status
    }

    #[tokio::test]
    async fn sighup_rereads_the_keys_file_and_a_refused_file_changes_nothing() {
        let data_dir = DataDir::new();
        let keys_dir = DataDir::new();
        let keys_file = keys_dir.path().join("keys.json");
        let old = generate();
        replace_keys_file(&keys_file, &old);
        let server = ServerProcess::start(&data_dir, &keys_file);

        // The banner: the primary as `key:` and in the connection string, and the read-only key.
        let endpoint = server
            .printed("endpoint")
            .expect("an endpoint line")
            .to_owned();
        assert_eq!(server.printed("key"), old["primaryMasterKey"].as_str());
        assert_eq!(
            server.printed("connection string"),
            Some(
                format!(
                    "AccountEndpoint={endpoint};AccountKey={};",
                    old["primaryMasterKey"].as_str().expect("a key")
                )
                .as_str()
            )
        );
        assert_eq!(
            server.printed("read-only key"),
            old["primaryReadonlyMasterKey"].as_str()
        );
        assert!(server.printed("keys file").is_some(), "{:?}", server.banner);
        assert_eq!(
            status_with(&endpoint, &old["secondaryMasterKey"]).await,
            200
        );

        // The secondary is regenerated; SIGHUP puts the new file in force.
        let mut new = old.clone();
        new["secondaryMasterKey"] = generate()["secondaryMasterKey"].clone();
        replace_keys_file(&keys_file, &new);
        server.hang_up_and_wait_for(0, "keys reloaded from");
        assert_eq!(
            status_with(&endpoint, &old["secondaryMasterKey"]).await,
            401
        );
        assert_eq!(
            status_with(&endpoint, &new["secondaryMasterKey"]).await,
            200
        );
        assert_eq!(status_with(&endpoint, &new["primaryMasterKey"]).await, 200);

        // A file that is refused: logged, and the keys stay as they were.
        std::fs::write(&keys_file, "{\"primaryMasterKey\": ").expect("written");
        server.hang_up_and_wait_for(0, "keys not reloaded");
        assert_eq!(
            status_with(&endpoint, &new["secondaryMasterKey"]).await,
            200
        );

        // The read-only keys dropped: their requests are refused from then on.
        let mut without_read_only = new.clone();
        let object = without_read_only.as_object_mut().expect("an object");
        object.remove("primaryReadonlyMasterKey");
        object.remove("secondaryReadonlyMasterKey");
        replace_keys_file(&keys_file, &without_read_only);
        server.hang_up_and_wait_for(1, "keys reloaded from");
        assert_eq!(
            status_with(&endpoint, &new["primaryReadonlyMasterKey"]).await,
            401
        );

        server.signal(rustix::process::Signal::TERM);
        let logged = server.logged();
        let reloads: Vec<&str> = logged
            .lines()
            .filter(|line| line.contains("keys reloaded from"))
            .collect();
        assert_eq!(reloads.len(), 2, "{logged}");
        assert!(
            reloads[0].contains(
                "primary read-write key, secondary read-write key, primary read-only key, secondary read-only key set"
            ),
            "{}",
            reloads[0]
        );
        assert!(
            reloads[1].contains("; primary read-only key, secondary read-only key not set"),
            "{}",
            reloads[1]
        );
        let refusal: Vec<&str> = logged
            .lines()
            .filter(|line| line.contains("keys not reloaded"))
            .collect();
        assert_eq!(refusal.len(), 1, "{logged}");
        assert!(refusal[0].contains("not a keys file"), "{}", refusal[0]);
        for keys in [&old, &new] {
            for key in keys.as_object().expect("an object").values() {
                let key = key.as_str().expect("a key");
                assert!(!logged.contains(key), "a key was logged: {logged}");
            }
        }
    }
}
