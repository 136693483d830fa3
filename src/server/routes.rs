//! The HTTP routes: each maps one call of the collection API ([`crate::api`]) to a JSON request
//! and response. The store's work runs on blocking threads (searches in parallel, writes through
//! each collection's one writer, which never blocks readers); text queries are encoded together
//! by the [`QueryBatcher`](crate::store::query_batcher::QueryBatcher).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error_body::ErrorBody;
use super::state::AppState;
use super::{auth, limits, Limits};
use crate::api::{
    ApiCollection, ApiError, ApiResult, DeleteCounts, DeleteRequest, ErrorKind, GetRequest, GetResult, OpenCollection,
    QueryRequest, QueryResult, WriteCounts, WriteMode, WriteRequest,
};

/// The OpenAPI document of these routes (checked against the router by a test).
pub const OPENAPI: &str = include_str!("openapi.json");

/// The version of the HTTP API (the paths and bodies below).
pub const API_VERSION: u32 = 1;

/// The routes, with the token check outermost and the request bounds inside it.
pub fn router(state: AppState, token: Option<String>, limits: Limits) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/version", get(version))
        .route("/openapi.json", get(openapi))
        .route("/collections", get(list_collections).post(create_collection))
        .route("/collections/{name}", get(collection_info).delete(delete_collection))
        .route("/collections/{name}/add", post(add))
        .route("/collections/{name}/upsert", post(upsert))
        .route("/collections/{name}/update", post(update))
        .route("/collections/{name}/get", post(get_documents))
        .route("/collections/{name}/delete", post(delete_documents))
        .route("/collections/{name}/query", post(query))
        .route("/collections/{name}/embed", post(embed))
        .route("/collections/{name}/count", get(count))
        .route("/collections/{name}/stats", get(stats))
        .route("/collections/{name}/snapshot", post(snapshot))
        .route("/collections/{name}/export", get(export))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
        .layer(middleware::from_fn_with_state(limits, limits::bound))
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(token.map(Arc::<str>::from), auth::require_token))
}

type Answer<T> = Result<Json<T>, ErrorBody>;

/// A JSON body, read whole (the bounds have already been applied); a body that is not the
/// request's JSON is a 400 that says what is wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ErrorBody;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ErrorBody::from(ApiError::invalid(format!("the request body could not be read: {e}"))))?;
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        serde_json::from_slice(bytes).map(ApiJson).map_err(|e| {
            ErrorBody::from(ApiError::invalid(format!(
                "the request body is not this request's JSON: {e}; see /openapi.json for its fields"
            )))
        })
    }
}

/// Runs the store's work `f` on a blocking thread; a panic inside it becomes a 500.
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> impl Future<Output = Result<T, ErrorBody>> {
    let task = tokio::task::spawn_blocking(move || catch_unwind(AssertUnwindSafe(f)));
    async move {
        match task.await {
            Ok(Ok(result)) => result.map_err(ErrorBody::from),
            _ => Err(ErrorBody::from(ApiError::new(
                ErrorKind::Internal,
                "internal error in isovec while answering this request; please report it",
            ))),
        }
    }
}

/// The existing collection `name`.
async fn existing(state: &AppState, name: String) -> Result<ApiCollection, ErrorBody> {
    let state = state.clone();
    blocking(move || state.collection(&name, &OpenCollection::default())).await
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn version() -> Json<Value> {
    Json(json!({"version": env!("CARGO_PKG_VERSION"), "api": API_VERSION}))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn unknown_route(request: Request) -> ErrorBody {
    ErrorBody::new(
        StatusCode::NOT_FOUND,
        ApiError::new(
            ErrorKind::NotFound,
            format!("no route {} {}; see /openapi.json for the routes", request.method(), request.uri().path()),
        ),
    )
}

async fn wrong_method(request: Request) -> ErrorBody {
    ErrorBody::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ApiError::invalid(format!(
            "{} is not a method of {}; see /openapi.json for the routes",
            request.method(),
            request.uri().path()
        )),
    )
}

/// A collection as the API describes it.
#[derive(Serialize)]
struct CollectionInfo {
    name: String,
    dims: usize,
    external: bool,
    count: u64,
    /// The record of the pipeline that makes its vectors (null without one).
    pipeline: Option<Value>,
}

fn info_of(c: &ApiCollection) -> ApiResult<CollectionInfo> {
    let config = c.collection.config();
    let pipeline = match c.collection.spec()? {
        Some(spec) => Some(serde_json::from_slice(&spec.to_json()?).map_err(crate::Error::from)?),
        None => None,
    };
    Ok(CollectionInfo {
        name: c.collection.name().to_string(),
        dims: config.dims,
        external: config.pipeline.is_external(),
        count: c.collection.count()?,
        pipeline,
    })
}

async fn list_collections(State(state): State<AppState>) -> Answer<Value> {
    let names = blocking(move || {
        let list = state.store().list_collections()?;
        Ok(list
            .into_iter()
            .map(|(name, config)| json!({"name": name, "dims": config.dims, "external": config.pipeline.is_external()}))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "collections": names })))
}

/// `POST /collections`: a new collection (or the existing one with `get_or_create`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCollection {
    name: String,
    #[serde(default)]
    dims: Option<usize>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    get_or_create: bool,
}

async fn create_collection(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateCollection>,
) -> Result<(StatusCode, Json<CollectionInfo>), ErrorBody> {
    let info = blocking(move || {
        let how = OpenCollection { create: true, new_only: !req.get_or_create, dims: req.dims, model: req.model };
        info_of(&state.collection(&req.name, &how)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn collection_info(State(state): State<AppState>, Path(name): Path<String>) -> Answer<CollectionInfo> {
    let c = existing(&state, name).await?;
    Ok(Json(blocking(move || info_of(&c)).await?))
}

async fn delete_collection(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Value> {
    blocking(move || state.delete_collection(&name)).await?;
    Ok(Json(json!({"deleted": true})))
}

async fn write(state: AppState, name: String, mode: WriteMode, req: WriteRequest) -> Answer<WriteCounts> {
    state.limits().check_batch("ids", req.ids.len())?;
    let c = existing(&state, name).await?;
    Ok(Json(blocking(move || c.write(mode, req)).await?))
}

async fn add(
    State(s): State<AppState>,
    Path(n): Path<String>,
    ApiJson(r): ApiJson<WriteRequest>,
) -> Answer<WriteCounts> {
    write(s, n, WriteMode::Add, r).await
}

async fn upsert(
    State(s): State<AppState>,
    Path(n): Path<String>,
    ApiJson(r): ApiJson<WriteRequest>,
) -> Answer<WriteCounts> {
    write(s, n, WriteMode::Upsert, r).await
}

async fn update(
    State(s): State<AppState>,
    Path(n): Path<String>,
    ApiJson(r): ApiJson<WriteRequest>,
) -> Answer<WriteCounts> {
    write(s, n, WriteMode::Update, r).await
}

async fn get_documents(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(mut req): ApiJson<GetRequest>,
) -> Answer<GetResult> {
    if let Some(ids) = &req.ids {
        state.limits().check_batch("ids", ids.len())?;
    }
    // A listing is paged: at most a batch per request.
    let max = state.limits().max_batch;
    req.limit = Some(req.limit.map_or(max, |l| l.min(max)));
    let c = existing(&state, name).await?;
    Ok(Json(blocking(move || c.get(&req)).await?))
}

async fn delete_documents(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DeleteRequest>,
) -> Answer<DeleteCounts> {
    if let Some(ids) = &req.ids {
        state.limits().check_batch("ids", ids.len())?;
    }
    let c = existing(&state, name).await?;
    Ok(Json(blocking(move || c.delete(&req)).await?))
}

async fn query(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Answer<QueryResult> {
    let n = req.query_texts.as_ref().map_or(0, Vec::len).max(req.query_embeddings.as_ref().map_or(0, Vec::len));
    state.limits().check_batch("queries", n)?;
    let c = existing(&state, name).await?;
    let params = c.plan_query(&req)?;
    let encoded = if ApiCollection::needs_encoding(&req, &params) {
        let pipeline = {
            let c = c.clone();
            blocking(move || c.encoder()).await?
        };
        let texts = req.query_texts.clone().unwrap_or_default();
        Some(state.batcher().embed_queries(pipeline, texts).await.map_err(ApiError::from)?)
    } else {
        None
    };
    Ok(Json(blocking(move || c.query_planned(&req, params, encoded)).await?))
}

/// `POST /collections/{name}/embed`: the vectors the collection's pipeline makes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedRequest {
    texts: Vec<String>,
    #[serde(default)]
    queries: bool,
}

async fn embed(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<EmbedRequest>,
) -> Answer<Value> {
    state.limits().check_batch("texts", req.texts.len())?;
    let c = existing(&state, name).await?;
    let vectors = blocking(move || {
        let refs: Vec<&str> = req.texts.iter().map(String::as_str).collect();
        c.embed(&refs, req.queries)
    })
    .await?;
    Ok(Json(json!({ "embeddings": vectors })))
}

async fn count(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Value> {
    let c = existing(&state, name).await?;
    let n = blocking(move || Ok(c.collection.count()?)).await?;
    Ok(Json(json!({ "count": n })))
}

async fn stats(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Value> {
    let c = existing(&state, name).await?;
    let stats = blocking(move || Ok(c.collection.stats()?)).await?;
    Ok(Json(serde_json::to_value(stats).map_err(|e| ErrorBody::from(ApiError::from(crate::Error::from(e))))?))
}

async fn snapshot(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Value> {
    let c = existing(&state, name).await?;
    blocking(move || Ok(c.collection.snapshot()?)).await?;
    Ok(Json(json!({"snapshot": true})))
}

/// `GET /collections/{name}/export`: the collection as a Parquet file (`isovec export`'s),
/// written to a temporary file in the store's folder and streamed from it.
async fn export(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ErrorBody> {
    let c = existing(&state, name).await?;
    let dir = state.store().path().to_path_buf();
    let (file, rows) = blocking(move || {
        let path = dir.join(format!(".export-{}-{}.parquet", std::process::id(), unique()));
        let written = c.collection.export_parquet(&path, &|_, _| {});
        let opened = written
            .and_then(|report| Ok((std::fs::File::open(&path).map_err(|e| crate::Error::io(&path, e))?, report.rows)));
        // The open file stays readable once its name is gone; nothing is left behind.
        let _ = std::fs::remove_file(&path);
        Ok(opened?)
    })
    .await?;
    let file = tokio::fs::File::from_std(file);
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 16];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let headers =
        [(header::CONTENT_TYPE, "application/vnd.apache.parquet".to_string()), (ROWS_HEADER, rows.to_string())];
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// The header of an export that gives its rows (one per vector).
const ROWS_HEADER: header::HeaderName = header::HeaderName::from_static("x-isovec-rows");

/// A number no other export of this process uses.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    /// The routes the router serves, as `METHOD /path` (the OpenAPI test compares them).
    const ROUTES: &[&str] = &[
        "GET /healthz",
        "GET /version",
        "GET /openapi.json",
        "GET /collections",
        "POST /collections",
        "GET /collections/{name}",
        "DELETE /collections/{name}",
        "POST /collections/{name}/add",
        "POST /collections/{name}/upsert",
        "POST /collections/{name}/update",
        "POST /collections/{name}/get",
        "POST /collections/{name}/delete",
        "POST /collections/{name}/query",
        "POST /collections/{name}/embed",
        "GET /collections/{name}/count",
        "GET /collections/{name}/stats",
        "POST /collections/{name}/snapshot",
        "GET /collections/{name}/export",
    ];

    /// Every route is in the OpenAPI document, and the document names no other.
    #[test]
    fn openapi_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        documented.sort();
        let mut served: Vec<String> = ROUTES.iter().map(|r| r.to_string()).collect();
        served.sort();
        assert_eq!(documented, served);
    }
}
