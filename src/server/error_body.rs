//! How the server answers an error: `{"error": {"kind", "class", "message"}}` with the status
//! code its kind maps to, never a stack trace.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::api::{ApiError, ErrorKind};

/// An error as the server answers it: `{"error": {"kind", "class", "message"}}` with a status.
pub struct ErrorBody {
    status: StatusCode,
    error: ApiError,
}

impl ErrorBody {
    /// `error` answered with `status`.
    pub fn new(status: StatusCode, error: ApiError) -> ErrorBody {
        ErrorBody { status, error }
    }

    /// The response for `error` with `status`.
    pub fn response(status: StatusCode, error: ApiError) -> Response {
        ErrorBody { status, error }.into_response()
    }
}

impl From<ApiError> for ErrorBody {
    fn from(error: ApiError) -> ErrorBody {
        let status = match error.kind {
            ErrorKind::InvalidInput | ErrorKind::Dimension => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::DuplicateId | ErrorKind::PipelineMismatch => StatusCode::CONFLICT,
            ErrorKind::StoreLocked => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Model | ErrorKind::Store | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ErrorBody { status, error }
    }
}

impl IntoResponse for ErrorBody {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "kind": self.error.kind,
            "class": self.error.kind.python_class(),
            "message": self.error.message,
        }});
        (self.status, Json(body)).into_response()
    }
}
