//! Bounds on one request: the body's size and the time to receive it, the ids or queries in one
//! call, and the time its work may take. A request over a bound gets a JSON error (413, 408,
//! 400 or 503) that names the bound, and the server goes on.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error_body::ErrorBody;
use crate::api::{ApiError, ErrorKind};

/// Bounds on each request.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a client may take to send its body.
    pub body_timeout: Duration,
    /// Longest time a request's work may take once its body is in.
    pub request_timeout: Duration,
    /// Most ids in one write, get or delete, and most queries in one query.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 << 20,
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_batch: 10_000,
        }
    }
}

impl Limits {
    /// Refuses a batch of `n` ids or queries above the limit.
    pub fn check_batch(&self, what: &str, n: usize) -> Result<(), ApiError> {
        if n > self.max_batch {
            return Err(ApiError::invalid(format!(
                "{n} {what} in one request, more than the server's limit of {}; send them in several requests",
                self.max_batch
            )));
        }
        Ok(())
    }
}

fn too_large(limits: &Limits) -> Response {
    ErrorBody::response(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::invalid(format!(
            "the request body is larger than the server's limit of {} MiB (or was cut off); send fewer documents \
             per request",
            limits.max_body_bytes >> 20
        )),
    )
}

/// Receives the whole body within the limits, then runs the request within its time limit.
pub async fn bound(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large(&limits);
    }
    let (parts, body) = request.into_parts();
    let received = tokio::time::timeout(limits.body_timeout, to_bytes(body, limits.max_body_bytes)).await;
    let bytes = match received {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return too_large(&limits),
        Err(_) => {
            return ErrorBody::response(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                ApiError::invalid(format!(
                    "the request body did not arrive within {} s; send the whole body at once",
                    limits.body_timeout.as_secs()
                )),
            )
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ErrorBody::response(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            ApiError::new(
                ErrorKind::Internal,
                format!(
                    "the request took longer than the server's limit of {} s; ask for less (fewer queries, smaller k)",
                    limits.request_timeout.as_secs()
                ),
            ),
        )
        .into_response(),
    }
}
