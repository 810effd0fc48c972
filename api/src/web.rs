//! The web UI: a page and its script and style, embedded in the binary
//! (`api/web/`, plain files with no build step), served at `/` and
//! `/ui/…`. The page is a client of the documented API (`docs/api.md`)
//! like any other: it logs in with `POST /api/v1/login`, sends the CSRF
//! header on every call, and follows `GET /api/v1/events` for live
//! updates. What it looks like and how it is tested: `docs/web-ui.md`.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bittide_driver::runtime::Runtime;

use crate::error::ApiError;
use crate::App;

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    mime: "text/html; charset=utf-8",
    body: include_bytes!("../web/index.html"),
};

/// What `/ui/{name}` serves.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        name: "style.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../web/style.css"),
    },
    Asset {
        name: "icon.svg",
        mime: "image/svg+xml",
        body: include_bytes!("../web/icon.svg"),
    },
];

/// Only this server's own files run or load; no other site may frame the
/// page (clickjacking) and no inline script runs (injected markup stays
/// inert). Media comes from this server's streams.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; media-src 'self'; connect-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Whether `path` is one of the UI's files, which need no login.
pub(crate) fn is_public(path: &str) -> bool {
    path == "/"
        || path
            .strip_prefix("/ui/")
            .is_some_and(|name| ASSETS.iter().any(|a| a.name == name))
}

/// The routes, for `lib.rs` to merge.
pub(crate) fn routes<R: Runtime>() -> Router<App<R>> {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }),
        )
        .route("/ui/{name}", get(asset))
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => serve(a, &headers),
        None => ApiError::NoRoute.into_response(),
    }
}

/// The file, or `304` when the browser's copy is this build's.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a(asset.body));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.mime)], asset.body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Always asked again (cheap with the ETag), so an upgraded daemon
    // never runs an old script against a new API.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// FNV-1a, 64 bits: an ETag only has to change when the file does.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_and_its_files_are_public() {
        assert!(is_public("/"));
        assert!(is_public("/ui/app.js"));
        assert!(!is_public("/ui/secret"));
        assert!(!is_public("/api/v1/torrents"));
        assert!(!is_public("/ui/"));
    }

    #[test]
    fn the_page_loads_its_own_script_and_style() {
        let page = std::str::from_utf8(INDEX.body).unwrap_or_default();
        for a in ASSETS {
            if a.name != "icon.svg" {
                assert!(page.contains(&format!("/ui/{}", a.name)), "{}", a.name);
            }
        }
        assert!(
            !page.contains("<script>"),
            "inline script would be refused by the CSP"
        );
    }

    #[test]
    fn a_fresh_copy_gets_304() {
        let mut headers = HeaderMap::new();
        let first = serve(&ASSETS[0], &headers);
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        headers.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve(&ASSETS[0], &headers).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
