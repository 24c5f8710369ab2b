//! The dashboard's files: every one embedded and served with its type and entity tag,
//! `GET /` sent to it, and the vendored uPlot exactly the files its checksums name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use lambda_http::tower::ServiceExt;
use sensorium_functions::routes::dashboard::{self, ASSETS};
use sha2::{Digest, Sha256};

fn dashboard_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard")
}

/// Every file under `directory`, as paths relative to `root` with `/` between levels.
fn files_under(root: &Path, directory: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(root, &path, found);
        } else {
            let relative = path.strip_prefix(root).unwrap();
            let parts: Vec<_> = relative.iter().map(|part| part.to_str().unwrap()).collect();
            found.insert(parts.join("/"));
        }
    }
}

async fn get(uri: &str, if_none_match: Option<&str>) -> lambda_http::http::Response<Vec<u8>> {
    let mut request = lambda_http::http::Request::builder().method("GET").uri(uri);
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let request = request.body(axum::body::Body::empty()).unwrap();
    let response = dashboard::router::<()>().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    lambda_http::http::Response::from_parts(parts, body)
}

#[test]
fn every_file_of_the_dashboard_directory_is_embedded() {
    let root = dashboard_directory();
    let mut on_disk = BTreeSet::new();
    files_under(&root, &root, &mut on_disk);
    let embedded: BTreeSet<String> = ASSETS.iter().map(|asset| asset.path.to_owned()).collect();
    assert_eq!(embedded, on_disk);
    for asset in ASSETS {
        let file = std::fs::read(root.join(asset.path)).unwrap();
        assert_eq!(asset.body, file.as_slice(), "{}", asset.path);
    }
}

#[test]
fn the_vendored_uplot_matches_its_checksums() {
    let directory = dashboard_directory().join("vendor/uplot");
    let sums = std::fs::read_to_string(directory.join("SHA256SUMS")).unwrap();
    let mut checked = BTreeSet::new();
    for line in sums.lines() {
        let (expected, name) = line.split_once("  ").expect("`<sha256>  <file>` lines");
        let actual = hex::encode(Sha256::digest(std::fs::read(directory.join(name)).unwrap()));
        assert_eq!(actual, expected, "{name}");
        checked.insert(name);
    }
    assert_eq!(
        checked,
        BTreeSet::from(["LICENSE", "uPlot.iife.min.js", "uPlot.min.css"])
    );
    let script = std::fs::read_to_string(directory.join("uPlot.iife.min.js")).unwrap();
    let source = std::fs::read_to_string(directory.join("SOURCE")).unwrap();
    let version = script
        .lines()
        .next()
        .and_then(|line| line.split("(v").nth(1))
        .and_then(|rest| rest.split(')').next())
        .expect("the script's first line names its version");
    assert!(
        source.contains(&format!("uplot@{version}")),
        "SOURCE names the version of the script, {version}"
    );
}

#[tokio::test]
async fn the_root_redirects_to_the_dashboard() {
    for uri in ["/", "/dashboard"] {
        let response = get(uri, None).await;
        assert!(response.status().is_redirection(), "{uri}");
        assert_eq!(response.headers()["location"], "/dashboard/", "{uri}");
    }
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_revalidated_by_its_entity_tag() {
    let index = get("/dashboard/", None).await;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    assert!(String::from_utf8_lossy(index.body()).contains("<!doctype html>"));
    for asset in ASSETS {
        let uri = format!("/dashboard/{}", asset.path);
        let response = get(&uri, None).await;
        assert_eq!(response.status(), 200, "{uri}");
        assert_eq!(response.headers()["content-type"], asset.content_type);
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.body().as_slice(), asset.body, "{uri}");
        let tag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{uri}: {tag}");

        let unchanged = get(&uri, Some(&tag)).await;
        assert_eq!(unchanged.status(), 304, "{uri}");
        assert!(unchanged.body().is_empty());
        assert_eq!(unchanged.headers()["etag"], tag.as_str());

        let stale = get(&uri, Some("\"0123\", \"4567\"")).await;
        assert_eq!(stale.status(), 200, "{uri}");
    }
    let tags: BTreeSet<String> = entity_tags().await;
    assert_eq!(
        tags.len(),
        ASSETS.len(),
        "files that differ have tags that differ"
    );
}

async fn entity_tags() -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    for asset in ASSETS {
        let response = get(&format!("/dashboard/{}", asset.path), None).await;
        tags.insert(response.headers()["etag"].to_str().unwrap().to_owned());
    }
    tags
}

#[tokio::test]
async fn a_path_that_names_no_file_is_the_contracts_404() {
    for uri in [
        "/dashboard/nothing.js",
        "/dashboard/js/",
        "/dashboard/../Cargo.toml",
        "/dashboard/vendor/uplot/../../../Cargo.toml",
    ] {
        let response = get(uri, None).await;
        assert_eq!(response.status(), 404, "{uri}");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["details"], "Not Found", "{uri}");
    }
}
