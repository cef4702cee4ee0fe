//! Session tokens: the `x-ms-session-token` header.
//!
//! A token is `{pkRangeId}:{version}#{globalLSN}`, optionally followed by
//! `#{regionId}={localLSN}` pairs for multi-region accounts: `0:-1#12`,
//! `3:2#40#1=38`. A request may carry several tokens separated by commas,
//! one per partition key range. The Python SDK fails the request with 500
//! ("Could not parse the received session token") when a response carries a
//! token it cannot parse, so the server must only send this exact form.

use std::fmt;
use std::str::FromStr;

/// The most tokens [`parse_session_token_header`] accepts in one header.
pub const MAX_TOKENS_PER_HEADER: usize = 1024;

/// The most `region=lsn` pairs one token may carry.
pub const MAX_REGIONS_PER_TOKEN: usize = 64;

/// One partition key range's session token.
///
/// ```
/// use tributary_wire::session::SessionToken;
/// let token: SessionToken = "0:-1#12".parse()?;
/// assert_eq!(token, SessionToken::new("0", 12));
/// assert_eq!(token.to_string(), "0:-1#12");
/// # Ok::<(), tributary_wire::session::SessionTokenError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The partition key range the token is for (`0`).
    pub partition_key_range_id: String,
    /// The replica-set configuration version; `-1` when not tracked.
    pub version: i64,
    /// The highest LSN the client has seen in this range.
    pub global_lsn: u64,
    /// Per-region local LSNs, `(region id, lsn)`, in the order sent.
    pub regional_lsns: Vec<(u32, u64)>,
}

impl SessionToken {
    /// A single-region token with version `-1`, the form a single-replica
    /// server sends: `{partition_key_range_id}:-1#{global_lsn}`.
    pub fn new(partition_key_range_id: impl Into<String>, global_lsn: u64) -> Self {
        SessionToken {
            partition_key_range_id: partition_key_range_id.into(),
            version: -1,
            global_lsn,
            regional_lsns: Vec::new(),
        }
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}#{}",
            self.partition_key_range_id, self.version, self.global_lsn
        )?;
        for (region_id, local_lsn) in &self.regional_lsns {
            write!(formatter, "#{region_id}={local_lsn}")?;
        }
        Ok(())
    }
}

impl FromStr for SessionToken {
    type Err = SessionTokenError;

    /// Parses one token, surrounding whitespace ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let invalid = |reason: &str| SessionTokenError::Invalid {
            token: crate::quoted_excerpt(text),
            reason: reason.to_owned(),
        };
        let (partition_key_range_id, vector) = text
            .split_once(':')
            .ok_or_else(|| invalid("there is no ':' after the partition key range id"))?;
        if partition_key_range_id.is_empty() {
            return Err(invalid("the partition key range id is empty"));
        }
        let mut parts = vector.split('#');
        let version = parts
            .next()
            .and_then(|version| version.parse::<i64>().ok())
            .ok_or_else(|| invalid("the version is not an integer"))?;
        let global_lsn = parts
            .next()
            .ok_or_else(|| invalid("there is no '#' before the global LSN"))?
            .parse::<u64>()
            .map_err(|_| invalid("the global LSN is not a non-negative integer"))?;
        let mut regional_lsns = Vec::new();
        for region in parts {
            if regional_lsns.len() == MAX_REGIONS_PER_TOKEN {
                return Err(invalid(&format!(
                    "it has more than {MAX_REGIONS_PER_TOKEN} regional LSNs"
                )));
            }
            let (region_id, local_lsn) = region
                .split_once('=')
                .ok_or_else(|| invalid("a regional LSN is not of the form region=lsn"))?;
            let region_id = region_id
                .parse::<u32>()
                .map_err(|_| invalid("a region id is not a non-negative integer"))?;
            let local_lsn = local_lsn
                .parse::<u64>()
                .map_err(|_| invalid("a regional LSN is not a non-negative integer"))?;
            regional_lsns.push((region_id, local_lsn));
        }
        Ok(SessionToken {
            partition_key_range_id: partition_key_range_id.to_owned(),
            version,
            global_lsn,
            regional_lsns,
        })
    }
}

/// Parses an `x-ms-session-token` header: one or more tokens separated by
/// commas.
///
/// # Errors
///
/// [`SessionTokenError::Invalid`] for the first token that does not parse,
/// [`SessionTokenError::TooManyTokens`] past [`MAX_TOKENS_PER_HEADER`], and
/// [`SessionTokenError::Empty`] for a blank header.
pub fn parse_session_token_header(value: &str) -> Result<Vec<SessionToken>, SessionTokenError> {
    if value.trim().is_empty() {
        return Err(SessionTokenError::Empty);
    }
    let mut tokens = Vec::new();
    for token in value.split(',') {
        if tokens.len() == MAX_TOKENS_PER_HEADER {
            return Err(SessionTokenError::TooManyTokens);
        }
        tokens.push(token.parse()?);
    }
    Ok(tokens)
}

/// Formats tokens as one `x-ms-session-token` header value, comma-separated.
pub fn format_session_token_header(tokens: &[SessionToken]) -> String {
    tokens
        .iter()
        .map(SessionToken::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A session token header that does not parse.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    /// The header is empty or blank.
    #[error("the session token header is empty")]
    Empty,
    /// The header holds more than [`MAX_TOKENS_PER_HEADER`] tokens.
    #[error("the session token header holds more than {MAX_TOKENS_PER_HEADER} tokens")]
    TooManyTokens,
    /// One token is not `{pkRangeId}:{version}#{globalLSN}[#{region}={lsn}...]`.
    #[error(
        "invalid session token '{token}': {reason}; expected {{pkRangeId}}:{{version}}#{{globalLSN}}, e.g. '0:-1#12'"
    )]
    Invalid {
        /// The token (at most 64 characters of it).
        token: String,
        /// What is wrong with it.
        reason: String,
    },
}
