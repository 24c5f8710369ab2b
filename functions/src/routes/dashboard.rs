//! The dashboard: a single-page web app on the REST API, its files (`functions/dashboard/`)
//! embedded in the binary, so that it is served from the API's own origin. `GET /`
//! redirects to it. The `dashboard` function serves it in the cloud; the harness merges
//! it with the API's routes.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// Where the dashboard lives, and where `GET /` sends a browser.
pub const DASHBOARD_PATH: &str = "/dashboard/";

/// The routes of the `dashboard` function as the HTTP API declares them (method, path), beside
/// the REST API's [`super::ROUTES`].
pub const DASHBOARD_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/dashboard/"),
    ("GET", "/dashboard/{proxy+}"),
];

/// Scripts and styles come from the dashboard's own origin only; it talks to the API
/// there and nowhere else, and no other site may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its path under `/dashboard/`, its type and its bytes.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../dashboard/", $path)),
        }
    };
}

/// Every file of `functions/dashboard/` (a test checks that none is left out).
pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("js/api.js", "text/javascript; charset=utf-8"),
    asset!("js/app.js", "text/javascript; charset=utf-8"),
    asset!("js/auth.js", "text/javascript; charset=utf-8"),
    asset!("js/chart.js", "text/javascript; charset=utf-8"),
    asset!("js/networks.js", "text/javascript; charset=utf-8"),
    asset!("js/sensor.js", "text/javascript; charset=utf-8"),
    asset!("js/sensors.js", "text/javascript; charset=utf-8"),
    asset!("js/ui.js", "text/javascript; charset=utf-8"),
    asset!("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
    asset!("vendor/uplot/SHA256SUMS", "text/plain; charset=utf-8"),
    asset!("vendor/uplot/SOURCE", "text/plain; charset=utf-8"),
    asset!(
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
];

/// Each asset's entity tag: its SHA-256, so a new deployment changes only the tags of
/// the files that changed.
static ENTITY_TAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = hex::encode(&Sha256::digest(asset.body)[..16]);
            HeaderValue::from_str(&format!("\"{digest}\"")).expect("hex is a valid header value")
        })
        .collect()
});

/// The dashboard's router; it needs no state, so it merges into any.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary(DASHBOARD_PATH) }))
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent(DASHBOARD_PATH) }),
        )
        .route(
            DASHBOARD_PATH,
            get(|headers: HeaderMap| async move { serve("index.html", &headers) }),
        )
        .route(
            "/dashboard/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move {
                serve(&path, &headers)
            }),
        )
}

/// The asset at `path`, or 304 when the browser's copy is current; the contract's JSON
/// 404 for a path that names none.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.path == path) else {
        return crate::error::error_response(StatusCode::NOT_FOUND);
    };
    let asset = &ASSETS[index];
    let entity_tag = ENTITY_TAGS[index].clone();
    // Revalidated on every use: a deployment takes effect at the next load, and an
    // unchanged file costs a 304.
    let common = [
        (header::ETAG, entity_tag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
    ];
    let current = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == entity_tag || tag.trim() == "*");
    if current {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}
