//! Request extractors that answer bad input with the JSON error shape: bodies, query strings,
//! path ids, bearer tokens, `If-Match`, the client's language and address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tasklane_core::AppContext;
use tasklane_core::auth::{Principal, authenticate};

use crate::error::{ApiError, error_response};

/// A JSON body. Unlike axum's `Json`, the `Content-Type` label is not required to say JSON
/// (the seed's `GET /api/sign_in` clients rarely set it), and every failure is a JSON error.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = req.headers().get(header::CONTENT_TYPE).is_none_or(|content_type| {
            content_type.to_str().is_ok_and(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
        });
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is larger than 64 KiB")
            } else {
                error_response(StatusCode::BAD_REQUEST, "unreadable_body", rejection.body_text())
            }
        })?;
        // Clients of the seed's `GET /api/sign_in` often send JSON under a form content type;
        // accept JSON whatever the label, and blame the label only when the body is not JSON.
        if !declared_json && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
            return Err(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

#[expect(clippy::result_large_err, reason = "axum rejections are responses; this is their one constructor")]
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(error_response(StatusCode::BAD_REQUEST, "missing_body", "a JSON body is required"));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        let (code, message) = match err.classify() {
            serde_json::error::Category::Data => ("invalid_body", format!("the body does not fit: {err}")),
            _ => ("malformed_json", format!("the body is not valid JSON: {err}")),
        };
        error_response(StatusCode::BAD_REQUEST, code, message)
    })
}

/// An optional JSON body: absent or empty means `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| error_response(rejection.status(), "unreadable_body", rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// Query parameters; unknown or ill-typed ones are a 400 naming the problem.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| error_response(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text()))
    }
}

/// A numeric id from the path (`/api/tasks/{id}`).
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        raw.parse::<i64>()
            .map(PathId)
            .map_err(|_| error_response(StatusCode::NOT_FOUND, "not_found", format!("'{raw}' is not a task id")))
    }
}

/// The signed-in user, from `Authorization: Bearer <access token>`.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth
where
    AppContext: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = AppContext::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                tasklane_core::Error::unauthorized("missing_token", "sign in and send Authorization: Bearer <token>")
            })?;
        Ok(Self(authenticate(&ctx, token).await?))
    }
}

/// The version in `If-Match` (`"3"`, `3` or `W/"3"`), if the header was sent.
pub struct IfMatch(pub Option<i32>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        text.parse::<i32>().map(|v| Self(Some(v))).map_err(|_| {
            error_response(
                StatusCode::BAD_REQUEST,
                "invalid_if_match",
                "If-Match must be the task's version, e.g. If-Match: \"3\"",
            )
        })
    }
}

/// The response language: Korean when `Accept-Language` prefers `ko`, English otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Korean (the seed's messages).
    Ko,
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let preferred = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|tag| tag.trim().to_ascii_lowercase());
        Ok(match preferred {
            Some(tag) if tag == "ko" || tag.starts_with("ko-") || tag.starts_with("ko;") => Self::Ko,
            _ => Self::En,
        })
    }
}

/// The client's address: the socket's peer, or with trusted proxies in front
/// (`TASKLANE_TRUSTED_PROXIES`) the first `X-Forwarded-For` hop from the right that is not
/// one of them.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr
where
    AppContext: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = AppContext::from_ref(state);
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self(None));
        };
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect();
        Ok(Self(Some(ctx.config.http.trusted_proxies.client(peer.ip(), &forwarded))))
    }
}
