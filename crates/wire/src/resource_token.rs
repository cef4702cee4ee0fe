//! Resource tokens: the credential a permission hands out, minted and checked by the server.
//!
//! Cosmos DB gives a user's permission a `_token`; a client holding it (and no master key)
//! sends it, URL-encoded, as its `authorization` header, and may then reach that permission's
//! resource and nothing else. The SDKs treat the token as opaque: they only pick which of
//! their tokens to send for a request. So its content is the server's design:
//!
//! ```text
//! type=resource&ver=1.0&sig=<signature>;<claims>
//! ```
//!
//! * `<claims>` is the unpadded base64url of a small JSON object ([`ResourceTokenClaims`]):
//!   which permission (database, user and permission ids, the permission's `_rid` and
//!   `_etag`) and when the token expires.
//! * `<signature>` is the unpadded base64url HMAC-SHA256 of `<claims>` (the base64url text)
//!   under a [`ResourceTokenKey`], which is itself derived from the account's primary master
//!   key: regenerating that key invalidates every token, as on Cosmos DB.
//!
//! Both parts use only `A-Z a-z 0-9 - _` (and the `;` between them), so the token survives
//! URL-encoding and form decoding unchanged.
//!
//! What the token grants is not in it: the server reads the permission it names (its
//! resource, mode and partition key) and refuses the token if the permission is gone or was
//! replaced since (its `_rid` or `_etag` differ). Revoking a token is deleting or replacing
//! its permission, or deleting its user.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tributary_wire::auth::{EMULATOR_KEY, MasterKey};
//! use tributary_wire::resource_token::{ResourceTokenClaims, ResourceTokenKey};
//!
//! let key = ResourceTokenKey::derive(&MasterKey::from_base64(EMULATOR_KEY)?);
//! let now = SystemTime::now();
//! let claims = ResourceTokenClaims {
//!     database: "db".into(),
//!     user: "ada".into(),
//!     permission: "read-orders".into(),
//!     permission_rid: "AAAAAQAAAAEAAAAAAAAAAQ==".into(),
//!     permission_etag: "\"1\"".into(),
//!     expires_at_s: ResourceTokenClaims::expiry_from(now, Duration::from_secs(3600)),
//! };
//! let token = key.mint(&claims);
//! assert!(token.starts_with("type=resource&ver=1.0&sig="));
//! assert_eq!(key.verify(&token, now)?, claims);
//! // An hour and a second later, it has expired.
//! assert!(key.verify(&token, now + Duration::from_secs(3601)).is_err());
//! # Ok::<(), tributary_wire::auth::AuthError>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{AuthError, MasterKey};

type HmacSha256 = Hmac<Sha256>;

/// How long a token lives when the request asks for no particular time: one hour, as on
/// Cosmos DB.
pub const DEFAULT_TOKEN_VALIDITY: Duration = Duration::from_secs(3600);

/// The longest validity a request may ask for (`x-ms-documentdb-expiry-seconds`): five
/// hours, as on Cosmos DB.
pub const MAX_TOKEN_VALIDITY: Duration = Duration::from_secs(5 * 3600);

/// The prefix of every resource token: its type and version.
pub const TOKEN_PREFIX: &str = "type=resource&ver=1.0&sig=";

/// What the key-derivation HMAC signs: changing it invalidates every token ever minted.
const KEY_DERIVATION_LABEL: &str = "tributary resource token key v1";

/// What one token says: the permission it was minted from, and until when it is valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTokenClaims {
    /// The database the permission's user belongs to.
    #[serde(rename = "db")]
    pub database: String,
    /// The user's id.
    #[serde(rename = "u")]
    pub user: String,
    /// The permission's id.
    #[serde(rename = "p")]
    pub permission: String,
    /// The permission's `_rid` when the token was minted.
    #[serde(rename = "rid")]
    pub permission_rid: String,
    /// The permission's `_etag` when the token was minted.
    #[serde(rename = "etag")]
    pub permission_etag: String,
    /// When the token stops being valid, in seconds since the Unix epoch.
    #[serde(rename = "exp")]
    pub expires_at_s: u64,
}

impl ResourceTokenClaims {
    /// The [`ResourceTokenClaims::expires_at_s`] of a token minted at `now` that is valid for
    /// `validity`.
    pub fn expiry_from(now: SystemTime, validity: Duration) -> u64 {
        unix_seconds(now).saturating_add(validity.as_secs())
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The secret resource tokens are signed with, derived from a master key.
///
/// Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct ResourceTokenKey {
    keyed_mac: HmacSha256,
}

impl ResourceTokenKey {
    /// The token key of an account whose primary master key is `master_key`: the
    /// HMAC-SHA256 of a fixed label under that key. Tokens never reveal the master key, and
    /// a new master key means new token keys.
    pub fn derive(master_key: &MasterKey) -> Self {
        let secret = master_key.hmac(KEY_DERIVATION_LABEL.as_bytes());
        ResourceTokenKey {
            keyed_mac: HmacSha256::new_from_slice(&secret)
                .expect("HMAC-SHA256 takes a key of any length"),
        }
    }

    fn signature_of(&self, encoded_claims: &str) -> HmacSha256 {
        let mut mac = self.keyed_mac.clone();
        mac.update(encoded_claims.as_bytes());
        mac
    }

    /// The token for `claims`, not URL-encoded (the `_token` of a permission; clients encode
    /// it when they send it).
    pub fn mint(&self, claims: &ResourceTokenClaims) -> String {
        let encoded_claims =
            BASE64URL.encode(serde_json::to_vec(claims).expect("token claims serialize"));
        let signature =
            BASE64URL.encode(self.signature_of(&encoded_claims).finalize().into_bytes());
        format!("{TOKEN_PREFIX}{signature};{encoded_claims}")
    }

    /// Checks a token's signature and expiry and returns its claims. `token` is the decoded
    /// header value, or only its `sig=` field (`<signature>;<claims>`).
    ///
    /// # Errors
    /// [`AuthError::InvalidResourceToken`] if it is not a token this key minted (malformed,
    /// tampered with, or signed under another master key); [`AuthError::ResourceTokenExpired`]
    /// if it is past its expiry at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<ResourceTokenClaims, AuthError> {
        let invalid = |reason: &str| AuthError::InvalidResourceToken {
            reason: reason.to_owned(),
        };
        let signed = token.strip_prefix(TOKEN_PREFIX).unwrap_or(token).trim();
        let (signature, encoded_claims) = signed
            .split_once(';')
            .ok_or_else(|| invalid("it has no ';' between its signature and its claims"))?;
        let signature = BASE64URL
            .decode(signature)
            .map_err(|_| invalid("its signature is not base64url"))?;
        self.signature_of(encoded_claims)
            .verify_slice(&signature)
            .map_err(|_| {
                invalid(
                    "its signature does not match: it was altered, or minted under another primary master key",
                )
            })?;
        let claims_json = BASE64URL
            .decode(encoded_claims)
            .map_err(|_| invalid("its claims are not base64url"))?;
        let claims: ResourceTokenClaims = serde_json::from_slice(&claims_json)
            .map_err(|_| invalid("its claims are not the JSON this server mints"))?;
        let now_s = unix_seconds(now);
        if now_s >= claims.expires_at_s {
            return Err(AuthError::ResourceTokenExpired {
                permission: crate::quoted_excerpt(&claims.permission),
                user: crate::quoted_excerpt(&claims.user),
                expired_s_ago: now_s - claims.expires_at_s,
            });
        }
        Ok(claims)
    }
}

impl fmt::Debug for ResourceTokenKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ResourceTokenKey")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::EMULATOR_KEY;

    fn claims(expires_at_s: u64) -> ResourceTokenClaims {
        ResourceTokenClaims {
            database: "db".into(),
            user: "ada lovelace".into(),
            permission: "p/ü".into(),
            permission_rid: "rid".into(),
            permission_etag: "\"etag\"".into(),
            expires_at_s,
        }
    }

    fn emulator_token_key() -> ResourceTokenKey {
        ResourceTokenKey::derive(&MasterKey::from_base64(EMULATOR_KEY).unwrap())
    }

    #[test]
    fn a_token_uses_only_characters_that_survive_url_and_form_encoding() {
        let token = emulator_token_key().mint(&claims(u64::MAX));
        let signed = token.strip_prefix(TOKEN_PREFIX).unwrap();
        assert!(
            signed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ';')),
            "{signed}"
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid_and_late_ones_expired() {
        let key = emulator_token_key();
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let token = key.mint(&claims(1_001));
        assert_eq!(key.verify(&token, now).unwrap(), claims(1_001));

        let (signature, _) = token.split_once(';').unwrap();
        let forged_claims = BASE64URL.encode(serde_json::to_vec(&claims(u64::MAX)).unwrap());
        let forged = format!("{signature};{forged_claims}");
        let other_key = ResourceTokenKey::derive(&MasterKey::from_base64("c2VjcmV0").unwrap());
        for (bad, expected) in [
            (forged.as_str(), "does not match"),
            (&other_key.mint(&claims(1_001)), "does not match"),
            ("type=resource&ver=1.0&sig=abc", "no ';'"),
            ("type=resource&ver=1.0&sig=***;e30", "not base64url"),
        ] {
            let error = key.verify(bad, now).unwrap_err();
            assert_eq!(error.http_status(), 401);
            assert!(error.to_string().contains(expected), "{bad}: {error}");
        }
        let late = key
            .verify(&token, now + Duration::from_secs(5))
            .unwrap_err();
        assert!(
            matches!(
                late,
                AuthError::ResourceTokenExpired {
                    expired_s_ago: 4,
                    ..
                }
            ),
            "{late:?}"
        );
        assert!(late.to_string().contains("expired"), "{late}");
    }
}
