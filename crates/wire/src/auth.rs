//! Master-key authorization: signing a request and checking its signature,
//! and telling a resource token apart ([`resource_token_of`]; the tokens
//! themselves are [`crate::resource_token`]'s).
//!
//! Every Cosmos request carries an `authorization` header that is the
//! URL-encoded form of `type=master&ver=1.0&sig=<signature>`. The signature is
//! `base64(HMAC-SHA256(base64decode(master key), payload))`, where the payload
//! is five lines, each ending in `\n`:
//!
//! ```text
//! lower(verb)
//! lower(resource type)
//! resource link            (not lowercased)
//! lower(x-ms-date)
//! lower(Date header, or "")
//! ```
//!
//! Both SDKs send only `x-ms-date`, so the fifth line is empty. The resource
//! type and link are not sent: the server rebuilds them from the request path
//! ([`resource_of_path`]) and must arrive at exactly what the client signed.
//!
//! # Leniency, and why
//!
//! [`verify`] accepts the forms real clients produce, and nothing looser:
//!
//! * the header percent-encoded (both SDKs) or not, with hex digits in either
//!   case, and with a `+` of the signature turned into a space by a form
//!   decoder along the way;
//! * the resource link exactly as rebuilt from the path, or lowercased: the
//!   Python SDK lowercases RID-based links before signing, and the Node SDK
//!   lowercases `offers` links;
//! * the date in `x-ms-date` (the SDKs) or only in `Date` (the REST
//!   documentation's form, where the date takes the fourth line).

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

/// The Cosmos DB emulator's well-known master key.
///
/// SDK code written for the emulator uses it unchanged, so a local server
/// should accept it by default. It is public knowledge: never use it to
/// protect anything.
pub const EMULATOR_KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/// How far a request's date may be from the server's clock before [`verify`]
/// rejects it with [`AuthError::DateOutOfRange`]: 15 minutes, as Cosmos DB
/// allows.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The longest `authorization` header [`verify`] and [`resource_token_of`]
/// read, in bytes. A master token is about 80 bytes, a resource token a few
/// hundred (more with long ids); anything past this limit is rejected as
/// malformed before any work is done on it.
pub const MAX_AUTHORIZATION_LEN: usize = 8192;

/// The longest request path [`resource_of_path`] reads, in bytes.
pub const MAX_PATH_LEN: usize = 8192;

/// What `encodeURIComponent` (Node) and `urllib.parse.quote(s, "-_.!~*'()")`
/// (Python) leave as is: ASCII letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

type HmacSha256 = Hmac<Sha256>;

/// An account master key (read-write or read-only), decoded and ready to
/// sign with.
///
/// Its `Debug` output shows the key's length, never its bytes.
#[derive(Clone)]
pub struct MasterKey {
    /// An HMAC keyed with the decoded key, cloned for every signature.
    keyed_mac: HmacSha256,
    n_key_bytes: usize,
}

impl MasterKey {
    /// Decodes a master key from its base64 form, as shown in the Azure
    /// portal or as [`EMULATOR_KEY`]. Surrounding whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidMasterKey`] if the text is not standard padded
    /// base64, or decodes to no bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, AuthError> {
        let key_bytes =
            BASE64
                .decode(encoded.trim())
                .map_err(|error| AuthError::InvalidMasterKey {
                    reason: format!("it is not valid base64 ({error})"),
                })?;
        if key_bytes.is_empty() {
            return Err(AuthError::InvalidMasterKey {
                reason: "it is empty".to_owned(),
            });
        }
        let keyed_mac = HmacSha256::new_from_slice(&key_bytes).map_err(|error| {
            AuthError::InvalidMasterKey {
                reason: format!("HMAC-SHA256 refused it ({error})"),
            }
        })?;
        Ok(MasterKey {
            keyed_mac,
            n_key_bytes: key_bytes.len(),
        })
    }

    /// The base64 HMAC-SHA256 of `payload` under this key.
    fn sign(&self, payload: &str) -> String {
        let mut mac = self.keyed_mac.clone();
        mac.update(payload.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }

    /// The raw HMAC-SHA256 of `data` under this key.
    pub(crate) fn hmac(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.keyed_mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `signature` is the HMAC of `payload` under this key, compared
    /// in constant time.
    fn is_signature_of(&self, payload: &str, signature: &[u8]) -> bool {
        let mut mac = self.keyed_mac.clone();
        mac.update(payload.as_bytes());
        mac.verify_slice(signature).is_ok()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("MasterKey")
            .field("n_key_bytes", &self.n_key_bytes)
            .finish_non_exhaustive()
    }
}

/// One of the four keys of a Cosmos DB account.
///
/// An account has two read-write keys and two read-only keys, so that each
/// pair can be rotated one key at a time: clients move to the secondary key,
/// the primary is regenerated, and clients move back. A read-only key signs
/// requests exactly as a read-write key does; what it may do is up to the
/// server (see [`KeyKind::is_read_only`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The primary read-write key (`primaryMasterKey`).
    Primary,
    /// The secondary read-write key (`secondaryMasterKey`).
    Secondary,
    /// The primary read-only key (`primaryReadonlyMasterKey`).
    PrimaryReadOnly,
    /// The secondary read-only key (`secondaryReadonlyMasterKey`).
    SecondaryReadOnly,
}

impl KeyKind {
    /// The four kinds, in the order [`verify_keys`] tries them.
    pub const ALL: [KeyKind; 4] = [
        KeyKind::Primary,
        KeyKind::Secondary,
        KeyKind::PrimaryReadOnly,
        KeyKind::SecondaryReadOnly,
    ];

    /// Whether requests signed with this key may only read.
    pub fn is_read_only(self) -> bool {
        matches!(self, KeyKind::PrimaryReadOnly | KeyKind::SecondaryReadOnly)
    }

    /// The key's name in Azure's APIs and in `az cosmosdb keys list`:
    /// `primaryMasterKey`, `secondaryMasterKey`, `primaryReadonlyMasterKey`,
    /// `secondaryReadonlyMasterKey`.
    pub fn azure_name(self) -> &'static str {
        match self {
            KeyKind::Primary => "primaryMasterKey",
            KeyKind::Secondary => "secondaryMasterKey",
            KeyKind::PrimaryReadOnly => "primaryReadonlyMasterKey",
            KeyKind::SecondaryReadOnly => "secondaryReadonlyMasterKey",
        }
    }

    fn index(self) -> usize {
        match self {
            KeyKind::Primary => 0,
            KeyKind::Secondary => 1,
            KeyKind::PrimaryReadOnly => 2,
            KeyKind::SecondaryReadOnly => 3,
        }
    }
}

impl fmt::Display for KeyKind {
    /// `primary read-write key`, `secondary read-only key`, ...
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            KeyKind::Primary => "primary read-write key",
            KeyKind::Secondary => "secondary read-write key",
            KeyKind::PrimaryReadOnly => "primary read-only key",
            KeyKind::SecondaryReadOnly => "secondary read-only key",
        })
    }
}

/// The keys an account accepts: at least one read-write key, and up to all
/// four [`KeyKind`]s.
///
/// Its `Debug` output shows which keys are set, never their bytes.
///
/// ```
/// use tributary_wire::auth::{EMULATOR_KEY, KeyKind, KeySet, MasterKey};
/// let keys = KeySet::new([
///     (KeyKind::Primary, MasterKey::from_base64(EMULATOR_KEY)?),
///     (KeyKind::PrimaryReadOnly, MasterKey::from_base64("cmVhZCBvbmx5")?),
/// ])?;
/// assert_eq!(keys.kinds().collect::<Vec<_>>(), [KeyKind::Primary, KeyKind::PrimaryReadOnly]);
/// // Read-only keys alone are refused.
/// assert!(KeySet::new([(KeyKind::SecondaryReadOnly, MasterKey::from_base64("cmVhZCBvbmx5")?)]).is_err());
/// # Ok::<(), tributary_wire::auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct KeySet {
    /// Indexed by [`KeyKind::index`].
    keys: [Option<MasterKey>; 4],
}

impl KeySet {
    /// The set of the given keys; a kind given twice keeps the last key.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoReadWriteKey`] if neither [`KeyKind::Primary`] nor
    /// [`KeyKind::Secondary`] is among them.
    pub fn new(keys: impl IntoIterator<Item = (KeyKind, MasterKey)>) -> Result<Self, AuthError> {
        let mut set = KeySet {
            keys: [None, None, None, None],
        };
        for (kind, key) in keys {
            set.keys[kind.index()] = Some(key);
        }
        if set.kinds().all(KeyKind::is_read_only) {
            return Err(AuthError::NoReadWriteKey);
        }
        Ok(set)
    }

    /// The key of this kind, if set.
    pub fn get(&self, kind: KeyKind) -> Option<&MasterKey> {
        self.keys[kind.index()].as_ref()
    }

    /// The kinds that are set, in [`KeyKind::ALL`] order.
    pub fn kinds(&self) -> impl Iterator<Item = KeyKind> + '_ {
        KeyKind::ALL
            .into_iter()
            .filter(|kind| self.get(*kind).is_some())
    }
}

impl From<MasterKey> for KeySet {
    /// A set of one key, the primary read-write key.
    fn from(primary: MasterKey) -> Self {
        KeySet {
            keys: [Some(primary), None, None, None],
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KeySet")
            .field("kinds", &self.kinds().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The resource type and resource link a request is signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAddress {
    /// `dbs`, `colls`, `docs`, `pkranges`, ..., or `""` for the account.
    pub resource_type: String,
    /// The path of the resource (or of the feed's parent), without leading or
    /// trailing `/`, with every segment URL-decoded: `dbs/db1/colls/c1`.
    pub resource_link: String,
}

/// The text that is signed for a request whose date travels in `x-ms-date`,
/// as both SDKs send it: five lines, each ending in `\n`, with the verb, the
/// resource type and the date lowercased and the link left as is.
///
/// ```
/// let payload = tributary_wire::auth::string_to_sign(
///     "GET", "docs", "dbs/db1/colls/c1/docs/a", "Tue, 01 Jul 2025 12:00:00 GMT",
/// );
/// assert_eq!(payload, "get\ndocs\ndbs/db1/colls/c1/docs/a\ntue, 01 jul 2025 12:00:00 gmt\n\n");
/// ```
pub fn string_to_sign(
    verb: &str,
    resource_type: &str,
    resource_link: &str,
    x_ms_date: &str,
) -> String {
    payload_with_date_lines(verb, resource_type, resource_link, x_ms_date, "")
}

fn payload_with_date_lines(
    verb: &str,
    resource_type: &str,
    resource_link: &str,
    fourth_line: &str,
    fifth_line: &str,
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n",
        verb.to_ascii_lowercase(),
        resource_type.to_ascii_lowercase(),
        resource_link,
        fourth_line.to_ascii_lowercase(),
        fifth_line.to_ascii_lowercase(),
    )
}

/// The value of the `authorization` header for a request, signed with `key`,
/// URL-encoded exactly as the SDKs send it (`type%3Dmaster%26ver%3D1.0%26sig%3D...`).
///
/// `date` is the value sent in `x-ms-date` (RFC 1123, see
/// [`crate::headers::format_http_date`]); `resource_type` and `resource_link`
/// are what [`resource_of_path`] gives for the request path.
pub fn authorization_header(
    key: &MasterKey,
    verb: &str,
    resource_type: &str,
    resource_link: &str,
    date: &str,
) -> String {
    let signature = key.sign(&string_to_sign(verb, resource_type, resource_link, date));
    let token = format!("type=master&ver=1.0&sig={signature}");
    utf8_percent_encode(&token, URI_COMPONENT).to_string()
}

/// The resource type and link that a request on `path` is signed for.
///
/// `path` is the request path without the query string. Segments are
/// URL-decoded; a leading and a trailing `/` are optional (Python sends a
/// trailing slash, Node does not).
///
/// * an odd number of segments is a feed (`/dbs/d/colls`): the type is the
///   last segment, the link is the segments before it;
/// * an even number is one resource (`/dbs/d/colls/c`): the type is the
///   second-to-last segment, the link is the whole path;
/// * `/` (the account) is type `""`, link `""`;
/// * `/dbs/d/colls/c/operations/partitionkeydelete` (delete all items of a
///   partition key) is signed as the container: type `colls`, link
///   `dbs/d/colls/c`.
///
/// ```
/// use tributary_wire::auth::resource_of_path;
/// let address = resource_of_path("/dbs/db1/colls/c1/docs/")?;
/// assert_eq!((address.resource_type.as_str(), address.resource_link.as_str()), ("docs", "dbs/db1/colls/c1"));
/// let address = resource_of_path("/dbs/my%20db")?;
/// assert_eq!((address.resource_type.as_str(), address.resource_link.as_str()), ("dbs", "dbs/my db"));
/// # Ok::<(), tributary_wire::auth::AuthError>(())
/// ```
///
/// # Errors
///
/// [`AuthError::InvalidPath`] if the path is longer than [`MAX_PATH_LEN`],
/// has an empty segment (`/dbs//colls`), or a segment that does not decode
/// to UTF-8.
pub fn resource_of_path(path: &str) -> Result<ResourceAddress, AuthError> {
    let invalid = |reason: String| AuthError::InvalidPath {
        path: crate::quoted_excerpt(path),
        reason,
    };
    if path.len() > MAX_PATH_LEN {
        return Err(invalid(format!(
            "it is {} bytes long; the limit is {MAX_PATH_LEN}",
            path.len()
        )));
    }
    let without_leading = path.strip_prefix('/').unwrap_or(path);
    if without_leading.is_empty() {
        return Ok(ResourceAddress {
            resource_type: String::new(),
            resource_link: String::new(),
        });
    }
    let trimmed = without_leading.strip_suffix('/').unwrap_or(without_leading);
    let mut segments = Vec::new();
    for (position, raw_segment) in trimmed.split('/').enumerate() {
        if raw_segment.is_empty() {
            return Err(invalid(format!("segment {} is empty", position + 1)));
        }
        let segment = percent_decode_str(raw_segment).decode_utf8().map_err(|_| {
            invalid(format!(
                "segment {} is not valid UTF-8 once URL-decoded",
                position + 1
            ))
        })?;
        segments.push(segment.into_owned());
    }
    let n_segments = segments.len();
    let is_partition_key_delete = n_segments == 6
        && segments[0] == "dbs"
        && segments[2] == "colls"
        && segments[4] == "operations"
        && segments[5] == "partitionkeydelete";
    // Offers are addressed by resource id, and a resource-id link is signed as the bare id
    // (`offers/AbCd` is signed as `abcd`; the SDKs lowercase it).
    let is_offer = n_segments == 2 && segments[0] == "offers";
    let address = if is_offer {
        ResourceAddress {
            resource_type: "offers".to_owned(),
            resource_link: segments[1].clone(),
        }
    } else if is_partition_key_delete {
        ResourceAddress {
            resource_type: "colls".to_owned(),
            resource_link: segments[..4].join("/"),
        }
    } else if n_segments % 2 == 1 {
        ResourceAddress {
            resource_type: segments[n_segments - 1].clone(),
            resource_link: segments[..n_segments - 1].join("/"),
        }
    } else {
        ResourceAddress {
            resource_type: segments[n_segments - 2].clone(),
            resource_link: segments.join("/"),
        }
    };
    Ok(address)
}

/// Checks a request's master-key signature and date.
///
/// `verb` is the HTTP method, `address` what [`resource_of_path`] gave for
/// the request path, and `authorization`, `x_ms_date` and `date` the raw
/// values of those headers (`None` when absent). The date that was signed
/// (`x-ms-date`, else `Date`) must lie within `max_skew` of `now`; see
/// [`DEFAULT_MAX_CLOCK_SKEW`].
///
/// The checks run in this order, and the first failure is returned: the
/// header is present, well formed and a master token; a date is present and
/// parses; the signature matches; the date is close enough to `now`.
///
/// [`verify_keys`] does the same for an account with several keys.
///
/// # Errors
///
/// One [`AuthError`] variant per failure; [`AuthError::http_status`] gives
/// the status Cosmos DB answers with.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per request fact; a struct would only rename them"
)]
pub fn verify(
    key: &MasterKey,
    verb: &str,
    address: &ResourceAddress,
    authorization: Option<&str>,
    x_ms_date: Option<&str>,
    date: Option<&str>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), AuthError> {
    verify_signed_by(
        std::iter::once(((), key)),
        verb,
        address,
        authorization,
        x_ms_date,
        date,
        now,
        max_skew,
    )
}

/// [`verify`] for an account with several keys: the request passes if any
/// key of `keys` signed it, and the answer is which one.
///
/// Keys are tried in [`KeyKind::ALL`] order, so a request signed with the
/// primary key costs one HMAC, as with [`verify`]. A signature that no key
/// matches is [`AuthError::SignatureMismatch`], whatever the number of keys.
/// What a read-only key may do is the caller's decision.
///
/// ```
/// use std::time::SystemTime;
/// use tributary_wire::auth::{self, KeyKind, KeySet, MasterKey, EMULATOR_KEY};
/// let read_only = MasterKey::from_base64("cmVhZCBvbmx5")?;
/// let keys = KeySet::new([
///     (KeyKind::Primary, MasterKey::from_base64(EMULATOR_KEY)?),
///     (KeyKind::PrimaryReadOnly, read_only.clone()),
/// ])?;
/// let now = SystemTime::now();
/// let date = tributary_wire::headers::format_http_date(now);
/// let token = auth::authorization_header(&read_only, "GET", "dbs", "dbs/db1", &date);
/// let address = auth::resource_of_path("/dbs/db1")?;
/// let signer = auth::verify_keys(
///     &keys, "GET", &address, Some(&token), Some(&date), None, now, auth::DEFAULT_MAX_CLOCK_SKEW,
/// )?;
/// assert_eq!(signer, KeyKind::PrimaryReadOnly);
/// assert!(signer.is_read_only());
/// # Ok::<(), tributary_wire::auth::AuthError>(())
/// ```
///
/// # Errors
///
/// As [`verify`].
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per request fact; a struct would only rename them"
)]
pub fn verify_keys(
    keys: &KeySet,
    verb: &str,
    address: &ResourceAddress,
    authorization: Option<&str>,
    x_ms_date: Option<&str>,
    date: Option<&str>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<KeyKind, AuthError> {
    let signers = KeyKind::ALL
        .into_iter()
        .filter_map(|kind| keys.get(kind).map(|key| (kind, key)));
    verify_signed_by(
        signers,
        verb,
        address,
        authorization,
        x_ms_date,
        date,
        now,
        max_skew,
    )
}

/// The checks of [`verify`], with a signature accepted from any of `signers`;
/// returns the label of the one that signed.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per request fact; a struct would only rename them"
)]
fn verify_signed_by<'k, Label: Copy>(
    signers: impl Iterator<Item = (Label, &'k MasterKey)> + Clone,
    verb: &str,
    address: &ResourceAddress,
    authorization: Option<&str>,
    x_ms_date: Option<&str>,
    date: Option<&str>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<Label, AuthError> {
    let authorization = authorization.ok_or(AuthError::MissingAuthorization)?;
    let signature = parse_master_token(authorization)?;

    let x_ms_date = x_ms_date.map(str::trim).filter(|value| !value.is_empty());
    let date = date.map(str::trim).filter(|value| !value.is_empty());
    // The (fourth line, fifth line) pair the SDKs sign, reported on a
    // mismatch, and the other pair a client may have signed.
    let (signed_date, sdk_date_lines, other_date_lines) = match (x_ms_date, date) {
        (Some(x_ms_date), None) => (x_ms_date, (x_ms_date, ""), None),
        (Some(x_ms_date), Some(date)) => (x_ms_date, (x_ms_date, ""), Some((x_ms_date, date))),
        (None, Some(date)) => (date, (date, ""), Some(("", date))),
        (None, None) => return Err(AuthError::MissingDate),
    };
    let signed_at = httpdate::parse_http_date(signed_date).map_err(|_| AuthError::InvalidDate {
        value: crate::quoted_excerpt(signed_date),
    })?;

    let lowercased_link = address.resource_link.to_lowercase();
    let other_link = (lowercased_link != address.resource_link).then_some(lowercased_link.as_str());
    // Each form of the payload once, tried against every key: the SDKs' form
    // comes first, so a request signed with the first key costs one HMAC.
    let signer = match BASE64.decode(&signature) {
        Ok(signature_bytes) => std::iter::once(address.resource_link.as_str())
            .chain(other_link)
            .flat_map(|link| {
                std::iter::once(sdk_date_lines)
                    .chain(other_date_lines)
                    .map(move |(fourth, fifth)| (link, fourth, fifth))
            })
            .find_map(|(link, fourth, fifth)| {
                let payload =
                    payload_with_date_lines(verb, &address.resource_type, link, fourth, fifth);
                signers
                    .clone()
                    .find(|(_, key)| key.is_signature_of(&payload, &signature_bytes))
                    .map(|(label, _)| label)
            }),
        Err(_) => None,
    };
    let Some(signer) = signer else {
        let (fourth, fifth) = sdk_date_lines;
        return Err(AuthError::SignatureMismatch {
            payload: payload_with_date_lines(
                verb,
                &address.resource_type,
                &address.resource_link,
                fourth,
                fifth,
            ),
        });
    };

    let skew = match now.duration_since(signed_at) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > max_skew {
        return Err(AuthError::DateOutOfRange {
            date: crate::quoted_excerpt(signed_date),
            skew_secs: skew.as_secs(),
            max_skew_secs: max_skew.as_secs(),
        });
    }
    Ok(signer)
}

/// The signed part of a resource token (`<signature>;<claims>`, see
/// [`crate::resource_token`]) if the `authorization` header carries one
/// (`type=resource`), `None` if it carries another kind of token or none.
///
/// ```
/// use tributary_wire::auth::resource_token_of;
/// assert_eq!(resource_token_of(Some("type%3Dresource%26ver%3D1.0%26sig%3Dab%3Bcd"))?.as_deref(), Some("ab;cd"));
/// assert_eq!(resource_token_of(Some("type%3Dmaster%26ver%3D1.0%26sig%3Dab"))?, None);
/// assert_eq!(resource_token_of(None)?, None);
/// # Ok::<(), tributary_wire::auth::AuthError>(())
/// ```
///
/// # Errors
/// [`AuthError::MalformedAuthorization`] if a header that says `type=resource`
/// is otherwise malformed (no `ver=1.0`, no `sig=`), or is too long.
pub fn resource_token_of(authorization: Option<&str>) -> Result<Option<String>, AuthError> {
    let Some(raw) = authorization else {
        return Ok(None);
    };
    match parse_token(raw) {
        Ok((token_type, signature)) if token_type.eq_ignore_ascii_case("resource") => {
            Ok(Some(signature))
        }
        Ok(_) => Ok(None),
        // A malformed header of another kind is `verify`'s to report.
        Err(error) if raw.to_ascii_lowercase().contains("resource") => Err(error),
        Err(_) => Ok(None),
    }
}

/// Decodes the `authorization` header and returns the signature of a master
/// token, with spaces turned back into the `+` they were.
fn parse_master_token(raw: &str) -> Result<String, AuthError> {
    let (token_type, signature) = parse_token(raw)?;
    if !token_type.eq_ignore_ascii_case("master") {
        return Err(AuthError::UnsupportedTokenType {
            token_type: crate::quoted_excerpt(&token_type.to_ascii_lowercase()),
        });
    }
    Ok(signature.replace(' ', "+"))
}

/// Decodes the `authorization` header into its type and signature fields.
fn parse_token(raw: &str) -> Result<(String, String), AuthError> {
    let malformed = |reason: String| AuthError::MalformedAuthorization { reason };
    if raw.len() > MAX_AUTHORIZATION_LEN {
        return Err(malformed(format!(
            "it is {} bytes long; the limit is {MAX_AUTHORIZATION_LEN}",
            raw.len()
        )));
    }
    let decoded = percent_decode_str(raw.trim())
        .decode_utf8()
        .map_err(|_| malformed("it is not valid UTF-8 once URL-decoded".to_owned()))?;

    let mut token_type = None;
    let mut version = None;
    let mut signature = None;
    for field in decoded.split('&') {
        let Some((name, value)) = field.split_once('=') else {
            return Err(malformed(format!(
                "'{}' is not a name=value pair",
                crate::quoted_excerpt(field)
            )));
        };
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "type" => &mut token_type,
            "ver" => &mut version,
            "sig" => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            return Err(malformed(format!(
                "field '{}' appears more than once",
                crate::quoted_excerpt(name)
            )));
        }
        *slot = Some(value.trim());
    }

    let token_type = token_type.ok_or_else(|| malformed("it has no type= field".to_owned()))?;
    match version {
        Some("1.0") => {}
        Some(other) => {
            return Err(malformed(format!(
                "version '{}' is not supported; only ver=1.0 is",
                crate::quoted_excerpt(other)
            )));
        }
        None => return Err(malformed("it has no ver= field".to_owned())),
    }
    match signature {
        Some(signature) if !signature.is_empty() => {
            Ok((token_type.to_owned(), signature.to_owned()))
        }
        _ => Err(malformed(
            "it has no sig= field, or the field is empty".to_owned(),
        )),
    }
}

/// How to describe a token type other than `master` in an error message.
fn describe_token_type(token_type: &str) -> &'static str {
    match token_type {
        "resource" => {
            "resource tokens (type=resource, from a user's permissions) where a master key must sign"
        }
        "aad" => "Microsoft Entra ID (AAD) tokens (type=aad)",
        "sas" => "SAS tokens (type=sas)",
        _ => "tokens of this type",
    }
}

/// Replaces each line feed with the two characters `\n`, as Cosmos DB shows
/// the signed payload in its 401 message.
fn escape_line_feeds(payload: &str) -> String {
    payload.replace('\n', "\\n")
}

/// Why a request's authorization was refused, or a key or path rejected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The master key given to the server is not usable.
    #[error("the master key is invalid: {reason}")]
    InvalidMasterKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A [`KeySet`] was given read-only keys only: an account needs a
    /// read-write key.
    #[error(
        "no read-write key: an account needs a primary or secondary read-write key (primaryMasterKey or secondaryMasterKey) besides any read-only keys"
    )]
    NoReadWriteKey,
    /// The request path cannot be turned into a resource address.
    #[error("the request path '{path}' is invalid: {reason}")]
    InvalidPath {
        /// The path (at most 64 characters of it).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request has no `authorization` header.
    #[error(
        "Required header 'authorization' is missing. Ensure a valid authorization token is passed."
    )]
    MissingAuthorization,
    /// The `authorization` header is not `type=...&ver=1.0&sig=...`.
    #[error(
        "The authorization header is malformed: {reason}. Expected 'type=master&ver=1.0&sig=<signature>', URL-encoded."
    )]
    MalformedAuthorization {
        /// What is wrong with it.
        reason: String,
    },
    /// The token is well formed but not a master-key token.
    #[error(
        "Authorization tokens of type '{token_type}' are not supported: this server does not accept {}; sign requests with the account master key (type=master).",
        describe_token_type(.token_type)
    )]
    UnsupportedTokenType {
        /// The `type=` value, lowercased (`resource`, `aad`, `sas`, ...).
        token_type: String,
    },
    /// Neither `x-ms-date` nor `Date` is present.
    #[error(
        "The request has no date: send the 'x-ms-date' header (or 'Date') in RFC 1123 format, e.g. 'Tue, 01 Jul 2025 12:00:00 GMT'."
    )]
    MissingDate,
    /// The signed date does not parse as an HTTP date.
    #[error(
        "The input date header '{value}' is invalid format. Please pass in RFC 1123 style date format, e.g. 'Tue, 01 Jul 2025 12:00:00 GMT'."
    )]
    InvalidDate {
        /// The header value (at most 64 characters of it).
        value: String,
    },
    /// The signed date is too far from the server's clock (Cosmos answers 403).
    #[error(
        "The authorization token is not valid at the current time: the request date '{date}' is {skew_secs} s away from the server's clock, and at most {max_skew_secs} s is allowed. Check the client's clock and sign the request again."
    )]
    DateOutOfRange {
        /// The signed date header value.
        date: String,
        /// How far it is from the server's clock, in seconds.
        skew_secs: u64,
        /// The largest distance allowed, in seconds.
        max_skew_secs: u64,
    },
    /// The signature is not the HMAC of the payload under the server's key,
    /// nor under any of its keys (Cosmos answers 401).
    #[error(
        "The input authorization token can't serve the request. The wrong key is being used or the expected payload is not built as per the protocol. Server used the following payload to sign: '{}'",
        escape_line_feeds(.payload)
    )]
    SignatureMismatch {
        /// The payload the server signed, with real line feeds.
        payload: String,
    },
    /// A resource token that this server did not mint under its current primary master key,
    /// or that was altered (Cosmos answers 401).
    #[error(
        "The resource token is invalid: {reason}. Read the permission again for a fresh token (its '_token')."
    )]
    InvalidResourceToken {
        /// What is wrong with it.
        reason: String,
    },
    /// A resource token past its expiry (Cosmos answers 401).
    #[error(
        "The resource token of permission '{permission}' of user '{user}' has expired ({expired_s_ago} s ago). Read the permission again for a fresh token; 'x-ms-documentdb-expiry-seconds' sets how long one lasts (default 3600 s, at most 18000 s)."
    )]
    ResourceTokenExpired {
        /// The permission's id (at most 64 characters of it).
        permission: String,
        /// The user's id (at most 64 characters of it).
        user: String,
        /// How long ago it expired, in seconds.
        expired_s_ago: u64,
    },
}

impl AuthError {
    /// The HTTP status Cosmos DB answers with for this error: 403 for a date
    /// out of range, 400 for a path that cannot be parsed, 500 for a bad
    /// server key or key set, and 401 for everything else.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::InvalidMasterKey { .. } | AuthError::NoReadWriteKey => 500,
            AuthError::InvalidPath { .. } => 400,
            AuthError::DateOutOfRange { .. } => 403,
            AuthError::MissingAuthorization
            | AuthError::MalformedAuthorization { .. }
            | AuthError::UnsupportedTokenType { .. }
            | AuthError::MissingDate
            | AuthError::InvalidDate { .. }
            | AuthError::SignatureMismatch { .. }
            | AuthError::InvalidResourceToken { .. }
            | AuthError::ResourceTokenExpired { .. } => 401,
        }
    }
}
