//! `AccountEndpoint=...;AccountKey=...;`: the account connection string the Azure portal and
//! the emulator hand out.

use std::fmt;

use crate::ClientError;

/// The longest connection string [`ConnectionString::parse`] reads, in bytes.
pub const MAX_CONNECTION_STRING_LEN: usize = 4096;

/// An account's endpoint and master key, as given by a connection string.
///
/// Its `Debug` output hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// The account endpoint, e.g. `https://localhost:8081/`.
    pub endpoint: String,
    /// The account master key, base64.
    pub key: String,
}

impl ConnectionString {
    /// Parses `AccountEndpoint=<url>;AccountKey=<base64>;`: fields in any order, names in any
    /// case, surrounding whitespace ignored, the trailing `;` optional. Other fields (such as
    /// `DisableServerCertificateValidation`) are ignored.
    ///
    /// ```
    /// use tributary_client::ConnectionString;
    /// let parsed = ConnectionString::parse("AccountKey=a2V5;AccountEndpoint=http://localhost:8081/")?;
    /// assert_eq!(parsed.endpoint, "http://localhost:8081/");
    /// assert_eq!(parsed.key, "a2V5");
    /// # Ok::<(), tributary_client::ClientError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidConnectionString`], naming what is wrong: a field that is not
    /// `name=value`, a field given twice, a missing or empty `AccountEndpoint` or
    /// `AccountKey`, or a string longer than [`MAX_CONNECTION_STRING_LEN`]. The message never
    /// quotes the key.
    pub fn parse(text: &str) -> Result<ConnectionString, ClientError> {
        let invalid = |reason: String| ClientError::InvalidConnectionString(reason);
        if text.len() > MAX_CONNECTION_STRING_LEN {
            return Err(invalid(format!(
                "it is {} bytes long; the limit is {MAX_CONNECTION_STRING_LEN}",
                text.len()
            )));
        }
        let mut endpoint: Option<&str> = None;
        let mut key: Option<&str> = None;
        for (position, field) in text.split(';').enumerate() {
            let field = field.trim();
            if field.is_empty() {
                continue;
            }
            // The key is base64 and may end in '=': split at the first '=' only.
            let Some((name, value)) = field.split_once('=') else {
                return Err(invalid(format!(
                    "field {} is not name=value (expected 'AccountEndpoint=<url>;AccountKey=<key>;')",
                    position + 1
                )));
            };
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "accountendpoint" => &mut endpoint,
                "accountkey" => &mut key,
                _ => continue,
            };
            if slot.is_some() {
                return Err(invalid(format!("{} is given twice", name.trim())));
            }
            *slot = Some(value.trim());
        }
        let missing = |name: &str| {
            invalid(format!(
                "{name} is missing or empty (expected 'AccountEndpoint=<url>;AccountKey=<key>;')"
            ))
        };
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .ok_or_else(|| missing("AccountEndpoint"))?;
        let key = key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing("AccountKey"))?;
        Ok(ConnectionString {
            endpoint: endpoint.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint)
            .field("key", &"<hidden>")
            .finish()
    }
}
