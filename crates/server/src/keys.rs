//! The account's keys, as Azure Cosmos DB has them: a primary and a secondary read-write key,
//! a primary and a secondary read-only key. [`AccountKeys`] holds them in base64, in the shape
//! `az cosmosdb keys list` prints (which is also the keys file's); [`KeyRing`] holds the
//! decoded keys a running server checks signatures against, and swaps them from a keys file
//! without a restart.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use tributary_wire::auth::{self, AuthError, KeyKind, KeySet, MasterKey};
use tributary_wire::resource_token::ResourceTokenKey;

/// Random bytes in a key [`AccountKeys::generate`] makes: 64, as in Azure's keys.
pub const GENERATED_KEY_BYTES: usize = 64;

/// Longest keys file read, in bytes: four keys take about 500.
const MAX_KEYS_FILE_BYTES: u64 = 64 * 1024;

/// An account's keys in base64, named as `az cosmosdb keys list` prints them; a keys file is
/// this object as JSON. Any key may be absent, but an account needs a read-write key
/// (primary or secondary) to be served.
///
/// Its `Debug` output names the keys that are set, never their text.
///
/// ```
/// use tributary_server::AccountKeys;
/// let keys = AccountKeys::from_json(r#"{"secondaryMasterKey": "c2Vjb25kYXJ5", "primaryReadonlyMasterKey": "cmVhZA=="}"#)?;
/// assert_eq!(keys.read_write_key(), Some("c2Vjb25kYXJ5"));
/// assert_eq!(keys.read_only_key(), Some("cmVhZA=="));
/// assert!(AccountKeys::from_json(r#"{"primaryReadonlyMasterKey": "cmVhZA=="}"#).is_err());
/// # Ok::<(), tributary_server::KeysError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountKeys {
    /// The primary read-write key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_master_key: Option<String>,
    /// The secondary read-write key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_master_key: Option<String>,
    /// The primary read-only key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_readonly_master_key: Option<String>,
    /// The secondary read-only key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_readonly_master_key: Option<String>,
}

impl AccountKeys {
    /// The Cosmos DB emulator's well-known key ([`auth::EMULATOR_KEY`]) as the primary
    /// read-write key, and no other key: what `tributary serve` uses when given none.
    pub fn emulator() -> AccountKeys {
        AccountKeys {
            primary_master_key: Some(auth::EMULATOR_KEY.to_owned()),
            secondary_master_key: None,
            primary_readonly_master_key: None,
            secondary_readonly_master_key: None,
        }
    }

    /// Four fresh keys of [`GENERATED_KEY_BYTES`] random bytes each, from the operating
    /// system's random source.
    ///
    /// # Errors
    ///
    /// [`KeysError::Random`] if the operating system gives no random bytes.
    pub fn generate() -> Result<AccountKeys, KeysError> {
        let fresh_key = || {
            let mut bytes = [0u8; GENERATED_KEY_BYTES];
            getrandom::fill(&mut bytes).map_err(|error| KeysError::Random {
                reason: error.to_string(),
            })?;
            Ok::<_, KeysError>(Some(BASE64.encode(bytes)))
        };
        Ok(AccountKeys {
            primary_master_key: fresh_key()?,
            secondary_master_key: fresh_key()?,
            primary_readonly_master_key: fresh_key()?,
            secondary_readonly_master_key: fresh_key()?,
        })
    }

    /// Parses and checks keys file text: the JSON object `az cosmosdb keys list` prints.
    ///
    /// # Errors
    ///
    /// [`KeysError::NotKeysJson`] if the text is not such an object (a field of another name
    /// is refused, so a misspelt key is not silently missing); then those of
    /// [`AccountKeys::key_set`].
    pub fn from_json(text: &str) -> Result<AccountKeys, KeysError> {
        let keys: AccountKeys =
            serde_json::from_str(text).map_err(|error| KeysError::NotKeysJson {
                reason: error.to_string(),
            })?;
        keys.key_set()?;
        Ok(keys)
    }

    /// Reads and checks a keys file (see [`AccountKeys::from_json`]).
    ///
    /// # Errors
    ///
    /// [`KeysError::File`], naming the file and why: it cannot be read, is larger than
    /// 64 KiB, or its content is refused by [`AccountKeys::from_json`].
    pub fn read_file(path: &Path) -> Result<AccountKeys, KeysError> {
        let in_file = |error: &dyn fmt::Display| KeysError::File {
            path: path.to_owned(),
            reason: error.to_string(),
        };
        let size = std::fs::metadata(path)
            .map_err(|error| in_file(&error))?
            .len();
        if size > MAX_KEYS_FILE_BYTES {
            return Err(in_file(&format!(
                "it is {size} bytes long; a keys file is at most {MAX_KEYS_FILE_BYTES}"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|error| in_file(&error))?;
        AccountKeys::from_json(&text).map_err(|error| in_file(&error))
    }

    /// The key of this kind, if set.
    pub fn get(&self, kind: KeyKind) -> Option<&str> {
        match kind {
            KeyKind::Primary => self.primary_master_key.as_deref(),
            KeyKind::Secondary => self.secondary_master_key.as_deref(),
            KeyKind::PrimaryReadOnly => self.primary_readonly_master_key.as_deref(),
            KeyKind::SecondaryReadOnly => self.secondary_readonly_master_key.as_deref(),
        }
    }

    /// The key a client with full access uses: the primary read-write key, else the
    /// secondary.
    pub fn read_write_key(&self) -> Option<&str> {
        self.get(KeyKind::Primary)
            .or_else(|| self.get(KeyKind::Secondary))
    }

    /// The key a client that only reads uses: the primary read-only key, else the secondary.
    pub fn read_only_key(&self) -> Option<&str> {
        self.get(KeyKind::PrimaryReadOnly)
            .or_else(|| self.get(KeyKind::SecondaryReadOnly))
    }

    /// The keys decoded, ready to check signatures.
    ///
    /// # Errors
    ///
    /// [`KeysError::InvalidKey`] for the first key (in [`KeyKind::ALL`] order) that is not
    /// standard base64 or is empty; [`KeysError::NoReadWriteKey`] if neither read-write key
    /// is set.
    pub fn key_set(&self) -> Result<KeySet, KeysError> {
        let mut decoded = Vec::with_capacity(KeyKind::ALL.len());
        for kind in KeyKind::ALL {
            if let Some(text) = self.get(kind) {
                let key = MasterKey::from_base64(text).map_err(|error| KeysError::InvalidKey {
                    kind,
                    reason: match error {
                        AuthError::InvalidMasterKey { reason } => reason,
                        other => other.to_string(),
                    },
                })?;
                decoded.push((kind, key));
            }
        }
        KeySet::new(decoded).map_err(|_| KeysError::NoReadWriteKey)
    }

    /// The kinds of the keys that are set.
    fn kinds(&self) -> impl Iterator<Item = KeyKind> + '_ {
        KeyKind::ALL
            .into_iter()
            .filter(|kind| self.get(*kind).is_some())
    }
}

impl fmt::Debug for AccountKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AccountKeys")
            .field("set", &self.kinds().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why keys were refused. No variant holds a key's text.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// A key is not standard base64, or is empty.
    #[error("the {kind} ({}) is not a valid key: {reason}", .kind.azure_name())]
    InvalidKey {
        /// Which key.
        kind: KeyKind,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither read-write key is set.
    #[error(
        "no read-write key: set primaryMasterKey or secondaryMasterKey (read-only keys alone cannot serve an account)"
    )]
    NoReadWriteKey,
    /// Keys file text is not the JSON object `az cosmosdb keys list` prints.
    #[error(
        "it is not a keys file ({reason}); expected a JSON object with some of primaryMasterKey, secondaryMasterKey, primaryReadonlyMasterKey and secondaryReadonlyMasterKey, as `az cosmosdb keys list` prints"
    )]
    NotKeysJson {
        /// What the JSON parser said.
        reason: String,
    },
    /// A keys file cannot be read or is refused.
    #[error("keys file {}: {reason}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why: an I/O error or another variant's message.
        reason: String,
    },
    /// The operating system gave no random bytes for new keys.
    #[error("cannot generate keys: the operating system's random source failed: {reason}")]
    Random {
        /// The error from the random source.
        reason: String,
    },
}

/// The keys a running [`crate::Server`] accepts, shared with whoever may change them
/// ([`crate::Server::key_ring`]). Cloning it is cheap and every clone sees the same keys.
///
/// A change applies to the requests whose signature is checked after it: each request takes
/// the key set once, so one in flight finishes with the keys it started with.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<ArcSwap<KeySet>>,
}

impl KeyRing {
    /// A ring holding `keys`.
    pub(crate) fn new(keys: KeySet) -> KeyRing {
        KeyRing {
            keys: Arc::new(ArcSwap::from_pointee(keys)),
        }
    }

    /// The keys in force now.
    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// The key resource tokens are minted and checked with now: derived from the primary
    /// read-write key (the secondary when the account has no primary), so regenerating that
    /// key invalidates every token, as on Cosmos DB.
    pub(crate) fn resource_token_key(&self) -> ResourceTokenKey {
        let keys = self.current();
        let master_key = keys
            .get(KeyKind::Primary)
            .or_else(|| keys.get(KeyKind::Secondary))
            .expect("a key set holds a read-write key");
        ResourceTokenKey::derive(master_key)
    }

    /// Reads the keys file at `path` and, if it holds usable keys, makes them the only keys
    /// the server accepts; otherwise the current keys stay. Either way it logs one line: the
    /// keys now set (never their text), or why the file was refused. `tributary serve` calls
    /// this on SIGHUP.
    ///
    /// # Errors
    ///
    /// Those of [`AccountKeys::read_file`]; the keys in force are unchanged.
    pub fn reload_file(&self, path: &Path) -> Result<(), KeysError> {
        let loaded = AccountKeys::read_file(path).and_then(|keys| keys.key_set());
        match loaded {
            Ok(keys) => {
                let set = describe_kinds(keys.kinds(), true);
                let unset = describe_kinds(
                    KeyKind::ALL
                        .into_iter()
                        .filter(|kind| keys.get(*kind).is_none()),
                    false,
                );
                self.keys.store(Arc::new(keys));
                tracing::info!("keys reloaded from {}: {set}{unset}", path.display());
                Ok(())
            }
            Err(error) => {
                tracing::error!("keys not reloaded, the current keys stay in use: {error}");
                Err(error)
            }
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KeyRing")
            .field("keys", &*self.current())
            .finish()
    }
}

/// `primary read-write key, primary read-only key set` (or `; secondary ... not set`).
fn describe_kinds(kinds: impl Iterator<Item = KeyKind>, set: bool) -> String {
    let names: Vec<String> = kinds.map(|kind| kind.to_string()).collect();
    match (names.is_empty(), set) {
        (true, _) => String::new(),
        (false, true) => format!("{} set", names.join(", ")),
        (false, false) => format!("; {} not set", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_four_distinct_64_byte_keys_under_azure_names() {
        let keys = AccountKeys::generate().expect("random bytes");
        let texts: Vec<&str> = KeyKind::ALL
            .into_iter()
            .map(|kind| keys.get(kind).expect("every key is generated"))
            .collect();
        for text in &texts {
            assert_eq!(BASE64.decode(text).expect("base64").len(), 64);
        }
        let distinct: std::collections::HashSet<_> = texts.iter().collect();
        assert_eq!(distinct.len(), 4);
        let json: serde_json::Value = serde_json::to_value(&keys).expect("serializes");
        let mut names: Vec<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "primaryMasterKey",
                "primaryReadonlyMasterKey",
                "secondaryMasterKey",
                "secondaryReadonlyMasterKey"
            ]
        );
        assert_eq!(AccountKeys::from_json(&json.to_string()), Ok(keys));
    }

    #[test]
    fn debug_output_names_the_keys_set_and_hides_them() {
        let mut keys = AccountKeys::emulator();
        keys.secondary_readonly_master_key = Some("cmVhZA==".to_owned());
        let shown = format!("{keys:?}");
        assert_eq!(
            shown,
            "AccountKeys { set: [Primary, SecondaryReadOnly], .. }"
        );
    }

    #[test]
    fn null_keys_are_absent_and_errors_name_the_key_not_its_text() {
        let keys = AccountKeys::from_json(
            r#"{"primaryMasterKey": null, "secondaryMasterKey": "c2Vjb25kYXJ5"}"#,
        )
        .expect("the secondary is a read-write key");
        assert_eq!(keys.read_write_key(), Some("c2Vjb25kYXJ5"));
        assert_eq!(keys.read_only_key(), None);
        let error = AccountKeys::from_json(
            r#"{"primaryMasterKey": "c2Vjb25kYXJ5", "primaryReadonlyMasterKey": "secret!"}"#,
        )
        .expect_err("not base64");
        assert!(
            matches!(
                error,
                KeysError::InvalidKey {
                    kind: KeyKind::PrimaryReadOnly,
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("primaryReadonlyMasterKey"), "{message}");
        assert!(!message.contains("secret!"), "{message}");
    }
}
