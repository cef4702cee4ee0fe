//! Byte layouts of keys and values in each keyspace (documented in `docs/storage-format.md`).
//!
//! Keys are big-endian so that byte order is numeric order. Values start with a format
//! version byte so a later release can read old records.

use crate::error::{Result, StoreError};

/// Format version written as the first byte of every binary value.
const RECORD_VERSION: u8 = 1;

/// Key of an item's pointer: `cid | epk | 0x00 | id`. EPKs are uppercase hex, so the
/// separator sorts below every EPK byte and keys order by `(epk, id)`.
pub(crate) fn doc_key(cid: u32, epk: &str, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + epk.len() + 1 + id.len());
    key.extend_from_slice(&cid.to_be_bytes());
    key.extend_from_slice(epk.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The smallest doc key with this EPK or a larger one.
pub(crate) fn doc_key_epk_bound(cid: u32, epk: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + epk.len());
    key.extend_from_slice(&cid.to_be_bytes());
    key.extend_from_slice(epk.as_bytes());
    key
}

/// Splits a doc key into `(epk, id)`.
pub(crate) fn parse_doc_key(key: &[u8]) -> Result<(&str, &str)> {
    let rest = key
        .get(4..)
        .ok_or_else(|| StoreError::Corrupt("doc key shorter than its container id".into()))?;
    let separator = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| StoreError::Corrupt("doc key without separator".into()))?;
    let epk = std::str::from_utf8(&rest[..separator])
        .map_err(|_| StoreError::Corrupt("doc key epk is not UTF-8".into()))?;
    let id = std::str::from_utf8(&rest[separator + 1..])
        .map_err(|_| StoreError::Corrupt("doc key id is not UTF-8".into()))?;
    Ok((epk, id))
}

/// Key of a feed or change-log entry: `cid | segment | lsn`.
pub(crate) fn log_key(cid: u32, segment: u32, lsn: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&cid.to_be_bytes());
    key.extend_from_slice(&segment.to_be_bytes());
    key.extend_from_slice(&lsn.to_be_bytes());
    key
}

/// The LSN of a feed or change-log key.
pub(crate) fn log_key_lsn(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("log key is not 16 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The segment of a feed or change-log key.
pub(crate) fn log_key_segment(key: &[u8]) -> Result<u32> {
    let bytes: [u8; 4] = key
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("log key is not 16 bytes".into()))?;
    Ok(u32::from_be_bytes(bytes))
}

/// A prefix covering every key of one container (in any keyspace).
pub(crate) fn container_prefix(cid: u32) -> Vec<u8> {
    cid.to_be_bytes().to_vec()
}

/// Key of an expiry entry: `cid | expiry second | lsn`.
pub(crate) fn ttl_key(cid: u32, expiry_s: u64, lsn: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(20);
    key.extend_from_slice(&cid.to_be_bytes());
    key.extend_from_slice(&expiry_s.to_be_bytes());
    key.extend_from_slice(&lsn.to_be_bytes());
    key
}

/// The LSN of an expiry key.
pub(crate) fn ttl_key_lsn(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .get(12..20)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("expiry key is not 20 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Key of a time index entry: `cid | second`.
pub(crate) fn time_key(cid: u32, second: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(12);
    key.extend_from_slice(&cid.to_be_bytes());
    key.extend_from_slice(&second.to_be_bytes());
    key
}

/// The second of a time index key.
///
/// # Errors
/// [`StoreError::Corrupt`] if the key is not 12 bytes.
pub(crate) fn time_key_second(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .get(4..12)
        .filter(|_| key.len() == 12)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("time index key is not 12 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The prefix of every key of one generation of a container's range index: `cid | generation`.
pub(crate) fn index_prefix(cid: u32, generation: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(48);
    key.extend_from_slice(&cid.to_be_bytes());
    key.extend_from_slice(&generation.to_be_bytes());
    key
}

/// Key of a range index entry: `cid | generation | term | segment | lsn`, the term as
/// `tributary_index` encodes it (self-delimiting), then the feed key of the item version
/// that holds it.
pub(crate) fn index_key(cid: u32, generation: u32, term: &[u8], segment: u32, lsn: u64) -> Vec<u8> {
    let mut key = index_prefix(cid, generation);
    key.extend_from_slice(term);
    key.extend_from_slice(&segment.to_be_bytes());
    key.extend_from_slice(&lsn.to_be_bytes());
    key
}

/// The item version (`segment`, `lsn`) a range index key points to.
///
/// # Errors
/// [`StoreError::Corrupt`] for a key too short to be an index key.
pub(crate) fn index_key_version(key: &[u8]) -> Result<(u32, u64)> {
    let suffix = key
        .len()
        .checked_sub(12)
        .filter(|&start| start >= 8)
        .map(|start| &key[start..])
        .ok_or_else(|| StoreError::Corrupt("index key shorter than its item suffix".into()))?;
    let segment = u32::from_be_bytes(suffix[..4].try_into().expect("4 bytes"));
    let lsn = u64::from_be_bytes(suffix[4..].try_into().expect("8 bytes"));
    Ok((segment, lsn))
}

/// Key of a catalog record for a database.
pub(crate) fn database_meta_key(id: &str) -> Vec<u8> {
    let mut key = b"db\0".to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// Key of a catalog record for a container.
pub(crate) fn container_meta_key(cid: u32) -> Vec<u8> {
    let mut key = b"co\0".to_vec();
    key.extend_from_slice(&cid.to_be_bytes());
    key
}

/// Key of a catalog record for a user (with its permissions): the database's sequence
/// number, then the user id.
pub(crate) fn user_meta_key(database_seq: u32, id: &str) -> Vec<u8> {
    let mut key = USER_META_PREFIX.to_vec();
    key.extend_from_slice(&database_seq.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every user record's key.
pub(crate) const USER_META_PREFIX: &[u8] = b"us\0";

/// Key of the catalog's counters record.
pub(crate) const COUNTERS_META_KEY: &[u8] = b"counters";

/// Where an item's latest version lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DocPointer {
    /// Segment (feed range id) whose feed holds the latest version.
    pub segment: u32,
    /// LSN of the latest version.
    pub lsn: u64,
    /// LSN at which the item was created; it names the item in its `_rid`.
    pub created_lsn: u64,
}

impl DocPointer {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(21);
        value.push(RECORD_VERSION);
        value.extend_from_slice(&self.segment.to_be_bytes());
        value.extend_from_slice(&self.lsn.to_be_bytes());
        value.extend_from_slice(&self.created_lsn.to_be_bytes());
        value
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes, "doc pointer")?;
        Ok(DocPointer {
            segment: reader.u32()?,
            lsn: reader.u64()?,
            created_lsn: reader.u64()?,
        })
    }
}

/// The latest version of an item, as stored in the feed keyspace.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FeedRecord {
    /// `_ts` of this version, in seconds.
    pub ts: u64,
    /// The item's own `ttl` property, if it has one.
    pub ttl: Option<i64>,
    /// The item's effective partition key.
    pub epk: String,
    /// The item's id.
    pub id: String,
    /// LSN at which the item was created.
    pub created_lsn: u64,
    /// The full item JSON, system properties included.
    pub body: String,
}

impl FeedRecord {
    /// The stored bytes of the record; the committer encodes a borrowed
    /// [`FeedRecordView`] instead, so only the round-trip test needs this.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        FeedRecordView {
            ts: self.ts,
            ttl: self.ttl,
            created_lsn: self.created_lsn,
            epk: &self.epk,
            id: &self.id,
            body: &self.body,
        }
        .encode()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let view = FeedRecordView::decode(bytes)?;
        Ok(FeedRecord {
            ts: view.ts,
            ttl: view.ttl,
            created_lsn: view.created_lsn,
            epk: view.epk.to_owned(),
            id: view.id.to_owned(),
            body: view.body.to_owned(),
        })
    }
}

/// A [`FeedRecord`] borrowed from the stored bytes, for scans that skip most records or
/// copy only the body.
pub(crate) struct FeedRecordView<'a> {
    pub ts: u64,
    pub ttl: Option<i64>,
    pub created_lsn: u64,
    pub epk: &'a str,
    pub id: &'a str,
    pub body: &'a str,
}

impl<'a> FeedRecordView<'a> {
    /// The stored bytes of the record (what [`FeedRecordView::decode`] reads back).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(
            1 + 8 + 9 + 8 + 4 + self.epk.len() + self.id.len() + self.body.len(),
        );
        value.push(RECORD_VERSION);
        value.extend_from_slice(&self.ts.to_be_bytes());
        put_optional_i64(&mut value, self.ttl);
        value.extend_from_slice(&self.created_lsn.to_be_bytes());
        put_str16(&mut value, self.epk);
        put_str16(&mut value, self.id);
        value.extend_from_slice(self.body.as_bytes());
        value
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes, "feed record")?;
        Ok(FeedRecordView {
            ts: reader.u64()?,
            ttl: reader.optional_i64()?,
            created_lsn: reader.u64()?,
            epk: reader.str16()?,
            id: reader.str16()?,
            body: reader.rest_str()?,
        })
    }
}

/// The kind of change an all-versions record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationType {
    /// The item was created (including an upsert that created it).
    Create,
    /// The item was replaced, upserted over, or patched.
    Replace,
    /// The item was deleted, by a request or by TTL expiry.
    Delete,
}

impl OperationType {
    fn to_byte(self) -> u8 {
        match self {
            OperationType::Create => 1,
            OperationType::Replace => 2,
            OperationType::Delete => 3,
        }
    }

    fn from_byte(byte: u8) -> Result<Self> {
        match byte {
            1 => Ok(OperationType::Create),
            2 => Ok(OperationType::Replace),
            3 => Ok(OperationType::Delete),
            other => Err(StoreError::Corrupt(format!(
                "unknown operation type {other}"
            ))),
        }
    }

    /// The name used on the wire (`create`, `replace`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Create => "create",
            OperationType::Replace => "replace",
            OperationType::Delete => "delete",
        }
    }
}

/// One entry of the all-versions-and-deletes log.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChangeLogRecord {
    pub operation: OperationType,
    /// Commit time in seconds.
    pub crts: u64,
    pub ttl_expired: bool,
    /// Where the previous image is logged, if there was one: `(segment, lsn)`.
    pub previous: Option<(u32, u64)>,
    pub id: String,
    pub epk: String,
    /// The partition key value as JSON (`{"/path": value}` form is built on read).
    pub partition_key: String,
    /// The item after the change; empty for deletes.
    pub current: String,
}

impl ChangeLogRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(64 + self.id.len() + self.current.len());
        value.push(RECORD_VERSION);
        value.push(self.operation.to_byte());
        value.extend_from_slice(&self.crts.to_be_bytes());
        value.push(u8::from(self.ttl_expired));
        match self.previous {
            Some((segment, lsn)) => {
                value.push(1);
                value.extend_from_slice(&segment.to_be_bytes());
                value.extend_from_slice(&lsn.to_be_bytes());
            }
            None => value.push(0),
        }
        put_str16(&mut value, &self.id);
        put_str16(&mut value, &self.epk);
        put_str32(&mut value, &self.partition_key);
        value.extend_from_slice(self.current.as_bytes());
        value
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes, "change log record")?;
        let operation = OperationType::from_byte(reader.u8()?)?;
        let crts = reader.u64()?;
        let ttl_expired = reader.u8()? != 0;
        let previous = match reader.u8()? {
            0 => None,
            _ => Some((reader.u32()?, reader.u64()?)),
        };
        Ok(ChangeLogRecord {
            operation,
            crts,
            ttl_expired,
            previous,
            id: reader.str16()?.to_owned(),
            epk: reader.str16()?.to_owned(),
            partition_key: reader.str32()?.to_owned(),
            current: reader.rest_str()?.to_owned(),
        })
    }
}

/// Value of an expiry entry: the segment and doc key of the item.
pub(crate) fn encode_ttl_value(segment: u32, doc_key: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(5 + doc_key.len());
    value.push(RECORD_VERSION);
    value.extend_from_slice(&segment.to_be_bytes());
    value.extend_from_slice(doc_key);
    value
}

/// Decodes an expiry entry's value into `(segment, doc key)`.
pub(crate) fn decode_ttl_value(bytes: &[u8]) -> Result<(u32, Vec<u8>)> {
    let mut reader = Reader::new(bytes, "expiry entry")?;
    let segment = reader.u32()?;
    Ok((segment, reader.rest().to_vec()))
}

fn put_optional_i64(out: &mut Vec<u8>, value: Option<i64>) {
    match value {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_be_bytes());
        }
        None => {
            out.push(0);
            out.extend_from_slice(&0i64.to_be_bytes());
        }
    }
}

fn put_str16(out: &mut Vec<u8>, text: &str) {
    // Item ids are at most 1023 bytes, database and container ids at most 255 characters
    // (1020 bytes), and EPKs at most 96 characters.
    let len = u16::try_from(text.len()).expect("short string fits in u16");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_str32(out: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).expect("partition key JSON fits in u32");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A bounds-checked cursor over a record's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Result<Self> {
        match bytes.first() {
            Some(&RECORD_VERSION) => Ok(Reader {
                bytes: &bytes[1..],
                what,
            }),
            Some(other) => Err(StoreError::Corrupt(format!(
                "{what}: unknown format version {other}"
            ))),
            None => Err(StoreError::Corrupt(format!("{what}: empty value"))),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(StoreError::Corrupt(format!("{}: truncated", self.what)));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn optional_i64(&mut self) -> Result<Option<i64>> {
        let present = self.u8()? != 0;
        let value = i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
        Ok(present.then_some(value))
    }

    fn utf8(&self, bytes: &'a [u8]) -> Result<&'a str> {
        std::str::from_utf8(bytes)
            .map_err(|_| StoreError::Corrupt(format!("{}: text is not UTF-8", self.what)))
    }

    fn str16(&mut self) -> Result<&'a str> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes"));
        let bytes = self.take(usize::from(len))?;
        self.utf8(bytes)
    }

    fn str32(&mut self) -> Result<&'a str> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        self.utf8(bytes)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn rest_str(&mut self) -> Result<&'a str> {
        let bytes = self.rest();
        self.utf8(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Bytes read from a damaged disk are refused as corrupt, never a panic: every
        /// decoder on arbitrary input, and on each truncation and one-byte change of a valid
        /// record.
        #[test]
        fn decoders_refuse_damaged_bytes_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            value in any::<u8>(),
        ) {
            let decode_all = |bytes: &[u8]| {
                let _ = DocPointer::decode(bytes);
                let _ = FeedRecord::decode(bytes);
                let _ = FeedRecordView::decode(bytes);
                let _ = ChangeLogRecord::decode(bytes);
                let _ = decode_ttl_value(bytes);
                let _ = parse_doc_key(bytes);
            };
            decode_all(&bytes);
            let valid = FeedRecord {
                ts: 5,
                ttl: Some(60),
                epk: "0A1B".into(),
                id: "item".into(),
                created_lsn: 3,
                body: r#"{"id":"item"}"#.into(),
            }
            .encode();
            decode_all(&valid[..cut.index(valid.len() + 1)]);
            let mut changed = valid.clone();
            let at = flip.index(changed.len());
            changed[at] = value;
            decode_all(&changed);
        }
    }

    #[test]
    fn feed_record_round_trips() {
        let record = FeedRecord {
            ts: 1_700_000_000,
            ttl: Some(-1),
            epk: "0A1B".into(),
            id: "item-1".into(),
            created_lsn: 7,
            body: r#"{"id":"item-1"}"#.into(),
        };
        assert_eq!(FeedRecord::decode(&record.encode()).unwrap(), record);
    }

    #[test]
    fn change_log_record_round_trips() {
        let record = ChangeLogRecord {
            operation: OperationType::Delete,
            crts: 5,
            ttl_expired: true,
            previous: Some((3, 9)),
            id: "x".into(),
            epk: "AA".into(),
            partition_key: "[\"p\"]".into(),
            current: String::new(),
        };
        assert_eq!(ChangeLogRecord::decode(&record.encode()).unwrap(), record);
    }

    #[test]
    fn truncated_records_are_corrupt_not_panics() {
        let record = FeedRecord {
            ts: 1,
            ttl: None,
            epk: "AB".into(),
            id: "id".into(),
            created_lsn: 1,
            body: "{}".into(),
        }
        .encode();
        // Cutting anywhere before the body leaves a header that cannot decode.
        for len in 0..record.len() - 2 {
            assert!(FeedRecord::decode(&record[..len]).is_err());
        }
        assert!(DocPointer::decode(&[1, 2, 3]).is_err());
        assert!(ChangeLogRecord::decode(&[9]).is_err());
    }

    #[test]
    fn doc_keys_order_by_epk_then_id() {
        let a = doc_key(1, "AB", "z");
        let b = doc_key(1, "ABC", "a");
        let c = doc_key(1, "AC", "a");
        assert!(a < b && b < c);
        assert_eq!(parse_doc_key(&b).unwrap(), ("ABC", "a"));
    }
}
