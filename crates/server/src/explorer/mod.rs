//! The Explorer: a web page for looking at and editing an account's data, served at
//! `/_explorer/index.html` as the Cosmos DB emulator serves its Data Explorer.
//!
//! The page and its scripts are plain files embedded in the binary (`assets/`): no build step,
//! nothing fetched from elsewhere. They are public, like the emulator's page, and hold no data:
//! the page is a client of the REST API, which signs every request in the browser with the
//! account key the user types in, as the SDKs sign theirs. Nothing here widens what a request
//! without the key can reach.
//!
//! The one thing the REST API has no shape for is a change feed pushed as it commits; the
//! Explorer's feed stream ([`feed_stream`], `GET /_explorer/feed/dbs/{db}/colls/{coll}`) sends
//! it as Server-Sent Events, to a request signed as a change feed read of that container.
//!
//! The dashboard reads the server's counters from [`metrics`] (`GET /_explorer/metrics`,
//! signed as a read of the account), a JSON snapshot it polls.
//!
//! Also here: a browser that opens `/` (it asks for `text/html`, and sends no
//! `authorization`) is sent to the page; the SDKs' account reads are untouched.
//!
//! The processors view needs nothing here: it reads lease documents and change feeds through
//! the REST API like any client.
//!
//! A functions host running in the server's process is shown through [`functions`]
//! (`/_explorer/functions...`): its functions, counters, lag and dead letters, and replaying
//! a dead letter, which only the host can do.

mod feed_stream;
pub mod functions;
mod metrics;

use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{Method, header};

use crate::AppState;
use crate::error::ApiError;
use crate::request::Reply;

/// Where every path of the Explorer starts.
const PREFIX: &str = "/_explorer";
/// The page a browser is sent to.
const PAGE_PATH: &str = "/_explorer/index.html";

/// What the page may load and where it may connect: itself only. No inline script or style,
/// no frames, no forms posted anywhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// One embedded file of the page.
struct Asset {
    /// Its name under `/_explorer/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file of the page.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/index.html"),
    },
    Asset {
        name: "explorer.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/explorer.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("assets/icon.svg"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/dom.js"),
    },
    Asset {
        name: "items.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/items.js"),
    },
    Asset {
        name: "query.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/query.js"),
    },
    Asset {
        name: "feed.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/feed.js"),
    },
    Asset {
        name: "processors.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/processors.js"),
    },
    Asset {
        name: "functions.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/functions.js"),
    },
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/dashboard.js"),
    },
];

/// Whether `path` is the Explorer's (served by [`serve`], before any signature check).
pub(crate) fn is_explorer_path(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a request is a browser opening the server's root: `GET /` asking for HTML with no
/// `authorization`. The SDKs read the account at `/` with a signature and ask for JSON.
pub(crate) fn is_browser_visit(parts: &Parts) -> bool {
    parts.method == Method::GET
        && parts.uri.path() == "/"
        && !parts.headers.contains_key(header::AUTHORIZATION)
        && parts
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|accept| accept.contains("text/html"))
}

/// The answer to a browser visit: a redirect to the page.
pub(crate) fn redirect_to_page() -> Reply {
    Reply::typed(
        302,
        "text/plain; charset=utf-8",
        "The Explorer is at /_explorer/index.html\n",
    )
    .header("location", PAGE_PATH)
    .header("cache-control", "no-store")
}

/// Serves a path under `/_explorer`: an asset (no key needed), a feed stream, the metrics
/// snapshot or the functions host's view (all signed).
///
/// # Errors
/// 404 for a path that is neither; 405 for an asset asked with a verb other than GET or
/// HEAD; the feed stream's own ([`feed_stream::open`]) and the snapshot's
/// ([`metrics::snapshot`]) and the functions view's ([`functions::serve`]).
pub(crate) async fn serve(state: &Arc<AppState>, parts: &Parts) -> Result<Reply, ApiError> {
    let path = parts.uri.path();
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    if let Some(container_path) = rest.strip_prefix("/feed/") {
        return feed_stream::open(state, parts, container_path).await;
    }
    if rest == "/metrics" {
        return metrics::snapshot(state, parts).await;
    }
    if let Some(functions_path) = rest
        .strip_prefix("/functions")
        .filter(|after| after.is_empty() || after.starts_with('/'))
    {
        return functions::serve(state, parts, functions_path).await;
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(ApiError::new(
            405,
            format!(
                "{} is not supported on {path}: the Explorer's files are read with GET",
                parts.method
            ),
        ));
    }
    let name = match rest {
        "" => return Ok(redirect_to_page()),
        "/" => "index.html",
        other => other.trim_start_matches('/'),
    };
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the Explorer has no file '{name}' (its page is {PAGE_PATH})"
            ))
        })?;
    Ok(Reply::typed(200, asset.content_type, asset.body)
        .header("cache-control", "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("content-security-policy", CONTENT_SECURITY_POLICY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_imports_is_served() {
        for asset in ASSETS {
            for (line_number, line) in asset.body.lines().enumerate() {
                for quoted in line.split(['"', '\'']).skip(1).step_by(2) {
                    let Some(name) = quoted.strip_prefix("./") else {
                        continue;
                    };
                    assert!(
                        ASSETS.iter().any(|served| served.name == name),
                        "{}:{} refers to ./{name}, which is not embedded",
                        asset.name,
                        line_number + 1
                    );
                }
            }
        }
    }

    #[test]
    fn explorer_paths_are_told_apart_from_the_api() {
        for (path, expected) in [
            ("/_explorer", true),
            ("/_explorer/", true),
            ("/_explorer/index.html", true),
            ("/_explorer/feed/dbs/d/colls/c", true),
            ("/_explorer/metrics", true),
            ("/_explorerx", false),
            ("/dbs/_explorer", false),
            ("/", false),
        ] {
            assert_eq!(is_explorer_path(path), expected, "{path}");
        }
    }
}
