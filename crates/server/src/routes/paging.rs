//! Pages of a container's items for queries and read feeds, and their continuation tokens.
//!
//! A page that can be answered item by item (a read feed; a query with no `ORDER BY`,
//! aggregate, `GROUP BY`, `DISTINCT`, `TOP` or `OFFSET`) reads the scope from where the last
//! page ended ([`ItemPosition`]) and stops once it is full, so paging through N items reads
//! each once. A query across feed ranges reads one range's span at a time, as the Cosmos DB
//! gateway pages it (a range's items end a page; an empty range gives an empty page). A query
//! with `TOP` or `OFFSET ... LIMIT` that is otherwise answered item by item streams the same
//! way, its token also counting the results seen so far, and reads only as far as its window
//! reaches. A query whose filter the container's range index answers reads the items the
//! index selects instead of its whole scope, and its token holds a position in the index
//! ([`Resume::Index`]). A query that needs its whole input runs whole on every page and pages
//! its result by offset. The kinds of token are told apart, and any other text is a 400.

use std::ops::ControlFlow;

use base64::Engine as _;
use serde_json::{Value, json};
use tributary_index::Lookup;
use tributary_partition_key::{Epk, EpkRange};
use tributary_query::RowWindow;
use tributary_store::{FeedScope, ItemPosition, Store};

use crate::error::ApiError;

/// Where a page read item by item ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// After this item, in the order a scan of the scope reads items.
    Item(ItemPosition),
    /// After this position in the container's range index (a query the index answers).
    Index(Vec<u8>),
}

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PageToken {
    /// After this many results of a query run whole.
    Offset(usize),
    /// After this item of the scope, `seen` results of a [`RowWindow`] query counted.
    After { after: Resume, seen: u64 },
    /// In this span of effective partition keys (a feed range when the page began), after
    /// this item of it or from its start: a query across ranges paged one range at a time.
    InSpan {
        span: EpkRange,
        after: Option<Resume>,
        seen: u64,
    },
}

impl PageToken {
    /// The token's text: base64 of `{"offset": n}`, `{"after": position}` or
    /// `{"span": [min, max], "after": position or null}`, the last two with `"seen": n`
    /// when results were counted. A position is `[segment, lsn]` for a scan's item, and the
    /// index position in base64 for a read through the index.
    pub(crate) fn encode(&self) -> String {
        let position = |resume: &Resume| match resume {
            Resume::Item(p) => json!([p.segment, p.lsn]),
            Resume::Index(bytes) => json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
        };
        let (mut value, seen) = match self {
            PageToken::Offset(offset) => (json!({ "offset": offset }), 0),
            PageToken::After { after, seen } => (json!({ "after": position(after) }), *seen),
            PageToken::InSpan { span, after, seen } => (
                json!({
                    "span": [span.min.as_str(), span.max.as_str()],
                    "after": after.as_ref().map(position),
                }),
                *seen,
            ),
        };
        if seen > 0 {
            value["seen"] = json!(seen);
        }
        base64::engine::general_purpose::STANDARD.encode(value.to_string())
    }

    /// Reads a token made by [`PageToken::encode`] (quoted or not, as the SDKs send it).
    ///
    /// # Errors
    /// 400 for anything else.
    pub(crate) fn decode(token: &str) -> Result<PageToken, ApiError> {
        let invalid =
            || ApiError::bad_request(format!("the continuation token '{token}' is invalid"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token.trim().trim_matches('"'))
            .map_err(|_| invalid())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if let Some(offset) = value.get("offset").and_then(Value::as_u64) {
            return usize::try_from(offset)
                .map(PageToken::Offset)
                .map_err(|_| invalid());
        }
        let position = |value: &Value| {
            if let Some(text) = value.as_str() {
                return base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(Resume::Index)
                    .map_err(|_| invalid());
            }
            match value.as_array().map(Vec::as_slice) {
                Some([segment, lsn]) => {
                    let segment = segment.as_u64().and_then(|n| u32::try_from(n).ok());
                    match (segment, lsn.as_u64()) {
                        (Some(segment), Some(lsn)) => {
                            Ok(Resume::Item(ItemPosition { segment, lsn }))
                        }
                        _ => Err(invalid()),
                    }
                }
                _ => Err(invalid()),
            }
        };
        let seen = match value.get("seen") {
            None => 0,
            Some(seen) => seen.as_u64().ok_or_else(invalid)?,
        };
        if let Some(span) = value.get("span") {
            let bound = |index: usize| {
                span.get(index)
                    .and_then(Value::as_str)
                    .and_then(|hex| Epk::parse(hex).ok())
                    .ok_or_else(invalid)
            };
            let span = EpkRange::new(bound(0)?, bound(1)?).map_err(|_| invalid())?;
            let after = match value.get("after") {
                None | Some(Value::Null) => None,
                Some(after) => Some(position(after)?),
            };
            return Ok(PageToken::InSpan { span, after, seen });
        }
        value
            .get("after")
            .ok_or_else(invalid)
            .and_then(position)
            .map(|after| PageToken::After { after, seen })
    }

    /// The offset of a token for a query run whole.
    ///
    /// # Errors
    /// 400 for a token that resumes a scan: it belongs to another query.
    pub(crate) fn offset(token: Option<&str>) -> Result<usize, ApiError> {
        match token.map(PageToken::decode).transpose()? {
            None => Ok(0),
            Some(PageToken::Offset(offset)) => Ok(offset),
            Some(_) => Err(foreign_token()),
        }
    }

    /// The span, position and results seen of a token for a query paged one range at a
    /// time; `None` without a token.
    ///
    /// # Errors
    /// 400 for a token of another kind: it belongs to another query.
    pub(crate) fn in_span(
        token: Option<&str>,
    ) -> Result<Option<(EpkRange, Option<Resume>, u64)>, ApiError> {
        match token.map(PageToken::decode).transpose()? {
            None => Ok(None),
            Some(PageToken::InSpan { span, after, seen }) => Ok(Some((span, after, seen))),
            Some(_) => Err(foreign_token()),
        }
    }

    /// The position and results seen of a token for a page read item by item (none and 0
    /// without a token).
    ///
    /// # Errors
    /// 400 for an offset token: it belongs to a query run whole.
    pub(crate) fn position(token: Option<&str>) -> Result<(Option<Resume>, u64), ApiError> {
        match token.map(PageToken::decode).transpose()? {
            None => Ok((None, 0)),
            Some(PageToken::After { after, seen }) => Ok((Some(after), seen)),
            Some(_) => Err(foreign_token()),
        }
    }
}

fn foreign_token() -> ApiError {
    ApiError::bad_request(
        "the continuation token belongs to another query: send the query it came with",
    )
}

/// How far a query with a [`RowWindow`] has read: its results counted so far, pages before
/// this one included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WindowProgress {
    pub(crate) window: RowWindow,
    pub(crate) seen: u64,
}

impl WindowProgress {
    /// Whether every result the window keeps has been seen: nothing more needs reading.
    pub(crate) fn is_full(&self) -> bool {
        self.seen >= self.window.skip.saturating_add(self.window.take)
    }

    /// Counts an item's results in order and keeps those inside the window.
    fn admit(&mut self, entries: Vec<String>) -> Vec<String> {
        let mut kept = Vec::new();
        for entry in entries {
            if self.is_full() {
                break;
            }
            if self.seen >= self.window.skip {
                kept.push(entry);
            }
            self.seen += 1;
        }
        kept
    }
}

/// One page read item by item.
pub(crate) struct ItemPage {
    /// What the page answers, in order.
    pub(crate) entries: Vec<String>,
    /// Items read from the store for it, and their bytes.
    pub(crate) n_read: usize,
    pub(crate) n_read_bytes: usize,
    /// Where the next page starts; `None` when the scope has nothing after this page.
    pub(crate) next: Option<Resume>,
}

/// Reads the scope's items after `after`, turning each into the page's entries with
/// `produce` (none when it does not match), until `page_size` entries are gathered. With a
/// `lookup` (one that never meets an item twice) and no token from a scan, the items are
/// those the container's range index selects for it, in index order. One
/// item's entries never straddle two pages: a page ends before an item whose entries would
/// not fit, unless it is the page's first item (a `JOIN` can make more than a page of one).
/// With a `window`, only the entries inside it are kept (and counted in it), and reading
/// stops for good once it is full.
///
/// # Errors
/// The store's errors, and `produce`'s first error; 400 for a token from a read through the
/// index when the index can no longer answer (its policy was replaced since).
pub(crate) fn read_items_page(
    store: &Store,
    (database, container): (&str, &str),
    (scope, after): (&FeedScope, Option<Resume>),
    lookup: Option<&Lookup>,
    page_size: usize,
    mut window: Option<&mut WindowProgress>,
    mut produce: impl FnMut(&str) -> Result<Vec<String>, ApiError>,
) -> Result<ItemPage, ApiError> {
    let mut page = ItemPage {
        entries: Vec::new(),
        n_read: 0,
        n_read_bytes: 0,
        next: None,
    };
    let mut last = None;
    let mut more = false;
    let mut failure = None;
    let mut take = |position: &dyn Fn() -> Resume, body: &str| {
        if window.as_deref().is_some_and(WindowProgress::is_full) {
            return ControlFlow::Break(());
        }
        if page.entries.len() >= page_size {
            more = true;
            return ControlFlow::Break(());
        }
        page.n_read += 1;
        page.n_read_bytes += body.len();
        match produce(body) {
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
            Ok(entries) => {
                let mut progress = window.as_deref().copied();
                let entries = match &mut progress {
                    Some(progress) => progress.admit(entries),
                    None => entries,
                };
                if !page.entries.is_empty() && page.entries.len() + entries.len() > page_size {
                    more = true;
                    return ControlFlow::Break(());
                }
                if let (Some(window), Some(progress)) = (window.as_deref_mut(), progress) {
                    *window = progress;
                }
                page.entries.extend(entries);
                last = Some(position());
                ControlFlow::Continue(())
            }
        }
    };
    match (lookup, after) {
        (_, Some(Resume::Item(after))) => {
            store.visit_items(database, container, scope, Some(after), |position, body| {
                take(&|| Resume::Item(position), body)
            })?
        }
        (None, None) => store.visit_items(database, container, scope, None, |position, body| {
            take(&|| Resume::Item(position), body)
        })?,
        (Some(lookup), after) => {
            let after = match &after {
                Some(Resume::Index(bytes)) => Some(bytes.as_slice()),
                _ => None,
            };
            store.visit_indexed_items(
                database,
                container,
                scope,
                (lookup, after),
                |position, body| take(&|| Resume::Index(position.to_vec()), body),
            )?
        }
        (None, Some(Resume::Index(_))) => {
            return Err(ApiError::bad_request(
                "the continuation token was made reading the container's index, which the \
                 container's indexing policy no longer offers: run the query again from the \
                 start",
            ));
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if more {
        page.next = last;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bad_tokens_are_refused_with_400() {
        for token in [
            "",
            "not base64!",
            "e30=",
            "eyJvZmZzZXQiOi0xfQ==",
            "bnVsbA==",
            // {"after": [1]}, {"after": [-1, 2]}, {"after": [4294967296, 2]}
            "eyJhZnRlciI6IFsxXX0=",
            "eyJhZnRlciI6IFstMSwgMl19",
            "eyJhZnRlciI6IFs0Mjk0OTY3Mjk2LCAyXX0=",
        ] {
            let error = PageToken::decode(token).expect_err(token);
            assert_eq!(error.status, 400, "{token}: {error}");
        }
        assert_eq!(
            PageToken::decode(&format!("\"{}\"", PageToken::Offset(7).encode())).ok(),
            Some(PageToken::Offset(7))
        );
    }

    #[test]
    fn a_token_of_the_other_kind_is_refused_with_400() {
        let offset = PageToken::Offset(3).encode();
        let after = PageToken::After {
            after: Resume::Item(ItemPosition { segment: 1, lsn: 9 }),
            seen: 0,
        }
        .encode();
        assert_eq!(PageToken::offset(Some(&offset)).ok(), Some(3));
        assert_eq!(
            PageToken::offset(Some(&after)).map_err(|e| e.status).err(),
            Some(400)
        );
        assert_eq!(
            PageToken::position(Some(&after)).ok(),
            Some((Some(Resume::Item(ItemPosition { segment: 1, lsn: 9 })), 0))
        );
        assert_eq!(
            PageToken::position(Some(&offset))
                .map_err(|e| e.status)
                .err(),
            Some(400)
        );
        assert_eq!(PageToken::position(None).ok(), Some((None, 0)));
        let in_span = PageToken::InSpan {
            span: EpkRange::full(),
            after: None,
            seen: 4,
        }
        .encode();
        assert_eq!(
            PageToken::in_span(Some(&in_span)).ok(),
            Some(Some((EpkRange::full(), None, 4)))
        );
        assert_eq!(
            PageToken::position(Some(&in_span))
                .map_err(|e| e.status)
                .err(),
            Some(400)
        );
        assert_eq!(
            PageToken::in_span(Some(&after)).map_err(|e| e.status).err(),
            Some(400)
        );
    }

    fn any_token() -> impl Strategy<Value = PageToken> {
        let position = prop_oneof![
            (any::<u32>(), any::<u64>())
                .prop_map(|(segment, lsn)| Resume::Item(ItemPosition { segment, lsn })),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Resume::Index),
        ];
        let span = (any::<u64>(), any::<u64>()).prop_map(|(a, b)| {
            let (low, high) = (a.min(b), a.max(b).max(1));
            let epk = |n: u64| Epk::parse(&format!("{n:016X}")).expect("hex is an EPK");
            EpkRange::new(if low == high { Epk::min() } else { epk(low) }, epk(high))
                .expect("low is below high")
        });
        prop_oneof![
            any::<usize>().prop_map(PageToken::Offset),
            (position.clone(), any::<u64>())
                .prop_map(|(after, seen)| PageToken::After { after, seen }),
            (span, proptest::option::of(position), any::<u64>())
                .prop_map(|(span, after, seen)| PageToken::InSpan { span, after, seen }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn every_token_round_trips(token in any_token()) {
            prop_assert_eq!(PageToken::decode(&token.encode()).ok(), Some(token));
        }

        /// A query or read-feed continuation from a client is a token or a 400, never a
        /// panic: any text, and valid tokens with characters changed, cut or inserted.
        #[test]
        fn any_continuation_text_is_a_token_or_a_400(
            text in "\\PC{0,40}",
            token in any_token(),
            at in any::<usize>(),
            cut in any::<bool>(),
            inserted in "[A-Za-z0-9+/=\"]{0,3}",
        ) {
            let valid = token.encode();
            let at = at % (valid.len() + 1);
            let edited = if cut {
                valid[..at].to_owned()
            } else {
                format!("{}{inserted}{}", &valid[..at], &valid[at..])
            };
            for text in [text.as_str(), edited.as_str()] {
                if let Err(error) = PageToken::decode(text) {
                    prop_assert_eq!(error.status, 400);
                }
            }
        }
    }
}
