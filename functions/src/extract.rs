//! Request parts parsed into domain types. A request that does not parse is refused
//! with 400 (413 for a body over the limit) before anything else is looked at; the
//! Authorization header is only taken here, to be checked after parsing succeeded.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use sensorium_shared::domain::Identifier;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// A JSON object of at most `MAXIMUM_BODY_SIZE` bytes (the limit is a layer of every
/// router), deserialized into `T`: a request that does not say `Content-Type:
/// application/json`, not JSON, not an object, invalid values, unknown fields (`T`
/// denies them) and U+0000 in any string are 400.
///
/// The content type is required because a browser posts a form or `text/plain` to
/// another site without asking it first, but sends `application/json` only after a
/// CORS preflight that this API never grants: a page elsewhere cannot make a
/// visitor's browser create users, log in or change sensors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(Error::bad_request(
                "the body's Content-Type is not application/json",
            ));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
                    _ => Error::bad_request(rejection.body_text()),
                })?;
        // Every body of the API is an object, and serde would also build a struct
        // from an array of its fields.
        let first_byte = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        if first_byte != Some(&b'{') {
            return Err(Error::bad_request("the body is not a JSON object"));
        }
        let body = serde_json::from_slice(&bytes).map_err(Error::bad_request)?;
        if holds_nul(&bytes) {
            return Err(Error::bad_request("a string of the body holds U+0000"));
        }
        Ok(Self(body))
    }
}

/// Whether a string or key of the JSON text `bytes` holds U+0000, which PostgreSQL
/// cannot store in text or jsonb (docs/rest.md: no string anywhere may hold it). JSON holds
/// it only escaped, so only a body with that escape is parsed to tell it from an
/// escaped backslash followed by `u0000`.
fn holds_nul(bytes: &[u8]) -> bool {
    fn value_holds_nul(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains('\0'),
            serde_json::Value::Array(values) => values.iter().any(value_holds_nul),
            serde_json::Value::Object(object) => object
                .iter()
                .any(|(key, value)| key.contains('\0') || value_holds_nul(value)),
            _ => false,
        }
    }
    bytes.windows(6).any(|window| window == b"\\u0000")
        && serde_json::from_slice(bytes).is_ok_and(|value| value_holds_nul(&value))
}

/// Whether a `Content-Type` is `application/json`, with parameters (`; charset=utf-8`)
/// or without; media types are case-insensitive (RFC 9110, section 8.3.1).
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(Ok(value)) = content_type.map(HeaderValue::to_str) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default();
    essence.trim().eq_ignore_ascii_case("application/json")
}

/// Path parameters deserialized into `T`; a malformed identifier is 400.
#[derive(Debug)]
pub struct PathParameters<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParameters<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(parameters)| Self(parameters))
            .map_err(|rejection| Error::bad_request(rejection.body_text()))
    }
}

/// Query parameters deserialized into `T`; invalid values and unknown parameters
/// (`T` denies them) are 400.
#[derive(Debug)]
pub struct QueryParameters<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParameters<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(parameters)| Self(parameters))
            .map_err(|rejection| Error::bad_request(rejection.body_text()))
    }
}

/// The raw `Authorization` header, if any. Taking it never fails, so that a request
/// that is both invalid and unauthenticated gets 400: see `crate::auth`.
#[derive(Debug)]
pub struct Authorization(pub Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for Authorization {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self(parts.headers.get(header::AUTHORIZATION).cloned()))
    }
}

/// `/networks/{network_identifier}`
#[derive(Debug, Deserialize)]
pub struct NetworkPath {
    pub network_identifier: Identifier,
}

/// `/networks/{network_identifier}/sensors/{sensor_identifier}`
#[derive(Debug, Deserialize)]
pub struct SensorPath {
    pub network_identifier: Identifier,
    pub sensor_identifier: Identifier,
}

/// The query of a route that takes no parameters: any parameter is unknown, so 400.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_application_json_is_a_json_content_type() {
        for value in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
        ] {
            assert!(is_json(Some(&HeaderValue::from_static(value))), "{value}");
        }
        for value in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "application/json-seq",
            "",
        ] {
            assert!(!is_json(Some(&HeaderValue::from_static(value))), "{value}");
        }
        assert!(!is_json(None));
    }
}
