//! Marathon's error bodies and status codes (`MarathonExceptionMapper`), and reading request
//! bodies with a size bound.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value as Json};

/// Largest request body accepted (Marathon's default `--http_max_request_body_size`... is
/// unbounded; a bound keeps a bad client from exhausting memory).
pub const MAX_BODY: usize = 8 << 20;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Json,
}

impl ApiError {
    /// `{"message": ...}` with `status`.
    pub fn message(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({ "message": message.into() }),
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::message(StatusCode::NOT_FOUND, message)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::message(StatusCode::BAD_REQUEST, message)
    }

    /// 422 with `{"message": ...}` (normalization conflicts and the like).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::message(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 422 with a validation body.
    pub fn invalid(body: Json) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body,
        }
    }

    /// 400 for JSON that does not parse.
    pub fn invalid_json(details: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "Invalid JSON", "details": details.into()}),
        }
    }

    /// 409 for an app locked by deployments.
    pub fn locked(deployments: &[String]) -> Self {
        let first = deployments.first().cloned().unwrap_or_default();
        ApiError {
            status: StatusCode::CONFLICT,
            body: json!({
                "message": format!("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{first}'."),
                "deployments": deployments.iter().map(|d| json!({"id": d})).collect::<Vec<_>>(),
            }),
        }
    }
}

impl From<super::query::BadBool> for ApiError {
    fn from(e: super::query::BadBool) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &Json) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes(status, bytes)
}

/// A JSON response from bytes already rendered.
pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; qs=2"),
    );
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// Reads the whole body (at most [`MAX_BODY`] bytes: 413 beyond; a connection that breaks
/// mid-body: 400).
pub async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body larger than {MAX_BODY} bytes"),
            ))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "Could not read the request body: {e}"
        ))),
    }
}

/// Parses a JSON body: empty → 400 "Please specify data in JSON format", unparseable
/// (truncated included) → 400 "Invalid JSON".
pub fn parse_json(bytes: &[u8]) -> Result<Json, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "Please specify data in JSON format", "details": "The request body is empty"}),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_empty_bodies() {
        let e = parse_json(br#"{"id": "x", "cmd": "#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body["message"], "Invalid JSON");
        let e = parse_json(b"  ").unwrap_err();
        assert_eq!(e.body["message"], "Please specify data in JSON format");
        assert!(parse_json(b"{}").is_ok());
    }

    #[tokio::test]
    async fn oversized_body_is_413() {
        let big = vec![b' '; MAX_BODY + 1];
        let e = read_body(Body::from(big)).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(read_body(Body::from("{}")).await.unwrap(), b"{}");
    }

    #[test]
    fn locked_names_the_deployment() {
        let e = ApiError::locked(&["d1".into()]);
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.body["message"]
            .as_str()
            .unwrap()
            .contains("/v2/deployments/d1"));
        assert_eq!(e.body["deployments"][0]["id"], "d1");
    }
}
