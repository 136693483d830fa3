//! The scalar SQL functions: embed, cosine, dims, upsert, delete, collection, close.

use std::path::Path;

use isovec::store::{Collection, Doc, Store, TextDoc};
use isovec::Embedder;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;
use serde_json::Value as Json;

use crate::blob::{from_blob, to_blob};
use crate::cache;
use crate::guard::{guarded, isovec_error, sql_error};
use crate::pipeline_name::PipelineName;

/// Registers the scalar functions on `db`.
pub fn register(db: &Connection) -> rusqlite::Result<()> {
    // Only functions of their arguments alone are deterministic (SQLite may then reuse a result
    // within a statement and allows them in indexes and generated columns).
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // isovec_embed reads model and transform files, which can change between calls; writes and
    // store access have side effects: never deterministic.
    let effects = FunctionFlags::SQLITE_UTF8;
    for n in [1, 2] {
        db.create_scalar_function("isovec_embed", n, effects, |ctx| guarded("isovec_embed", || embed(ctx)))?;
    }
    db.create_scalar_function("isovec_cosine", 2, pure, |ctx| guarded("isovec_cosine", || cosine(ctx)))?;
    db.create_scalar_function("isovec_dims", 1, pure, |ctx| guarded("isovec_dims", || dims(ctx)))?;
    for n in [4, 5, 6] {
        db.create_scalar_function("isovec_upsert", n, effects, |ctx| guarded("isovec_upsert", || upsert(ctx)))?;
    }
    db.create_scalar_function("isovec_delete", 3, effects, |ctx| guarded("isovec_delete", || delete(ctx)))?;
    for n in [2, 3] {
        db.create_scalar_function("isovec_collection", n, effects, |ctx| {
            guarded("isovec_collection", || collection_info(ctx))
        })?;
    }
    db.create_scalar_function("isovec_close", 1, effects, |ctx| guarded("isovec_close", || close(ctx)))?;
    Ok(())
}

/// Argument `i` as text; SQL NULL is `None`, numbers are written out, a BLOB is an error.
pub fn text_arg(v: ValueRef<'_>, function: &str, what: &str) -> rusqlite::Result<Option<String>> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(|s| Some(s.to_string()))
            .map_err(|_| sql_error(format!("{function}: {what} is not valid UTF-8"))),
        ValueRef::Integer(i) => Ok(Some(i.to_string())),
        ValueRef::Real(r) => Ok(Some(r.to_string())),
        ValueRef::Blob(_) => Err(sql_error(format!("{function}: {what} must be TEXT, not a BLOB"))),
    }
}

/// Like [`text_arg`], but NULL is an error too.
pub fn required_text(v: ValueRef<'_>, function: &str, what: &str) -> rusqlite::Result<String> {
    text_arg(v, function, what)?.ok_or_else(|| sql_error(format!("{function}: {what} is NULL; give a value")))
}

fn embed(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    const F: &str = "isovec_embed";
    let Some(text) = text_arg(ctx.get_raw(0), F, "the text")? else {
        return Ok(Value::Null);
    };
    let spec = if ctx.len() > 1 { text_arg(ctx.get_raw(1), F, "the pipeline")? } else { None };
    let pipeline = PipelineName::parse(spec.as_deref()).and_then(|s| s.resolve()).map_err(|e| isovec_error(F, e))?;
    let vector = pipeline
        .embed(&[text.as_str()])
        .map_err(|e| isovec_error(F, e))?
        .pop()
        .ok_or_else(|| sql_error(format!("{F}: the pipeline returned no vector")))?;
    Ok(Value::Blob(to_blob(&vector)))
}

/// A vector argument: a BLOB of little-endian f32, or NULL (`None`).
pub fn vector_arg(v: ValueRef<'_>, function: &str, what: &str) -> rusqlite::Result<Option<Vec<f32>>> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => from_blob(b, what).map(Some).map_err(|m| sql_error(format!("{function}: {m}"))),
        _ => Err(sql_error(format!(
            "{function}: {what} must be a BLOB of little-endian f32, from isovec_embed() or another model's vector"
        ))),
    }
}

fn cosine(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    const F: &str = "isovec_cosine";
    let (Some(a), Some(b)) =
        (vector_arg(ctx.get_raw(0), F, "the first vector")?, vector_arg(ctx.get_raw(1), F, "the second vector")?)
    else {
        return Ok(Value::Null);
    };
    if a.len() != b.len() {
        return Err(sql_error(format!(
            "{F}: wrong dimension: the first vector has {} dimensions, the second {}; compare vectors of one pipeline",
            a.len(),
            b.len()
        )));
    }
    if a.is_empty() {
        return Err(sql_error(format!("{F}: the vectors are empty")));
    }
    Ok(Value::Real(isovec::vector::cosine(&a, &b)))
}

fn dims(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    match vector_arg(ctx.get_raw(0), "isovec_dims", "the vector")? {
        None => Ok(Value::Null),
        Some(v) => Ok(Value::Integer(v.len() as i64)),
    }
}

/// The collection `name` of `store`, which encodes texts with its recorded pipeline. Given a
/// pipeline, an existing collection must hold its vectors (one without a record of its pipeline
/// records it), and a missing one is created for it; without, a missing collection is created for
/// the default pipeline.
pub fn writable_collection(store: &Store, name: &str, pipeline: Option<&PipelineName>) -> isovec::Result<Collection> {
    match pipeline {
        Some(PipelineName::External { model, dims }) => store.get_or_create_external_collection(name, model, *dims),
        Some(p) => store.get_or_create_collection_for(name, p.resolve()?.as_ref()),
        None if store.list_collections()?.iter().any(|(n, _)| n == name) => store.collection(name),
        None => store.get_or_create_collection_for(name, PipelineName::Default.resolve()?.as_ref()),
    }
}

/// The collection rows with their own vectors go to: it must exist (a missing one cannot be
/// created from a vector alone, whose model isovec does not know).
pub fn collection_for_vectors(store: &Store, name: &str, function: &str) -> rusqlite::Result<Collection> {
    let exists = store.list_collections().map_err(|e| isovec_error(function, e))?.iter().any(|(n, _)| n == name);
    if !exists {
        return Err(sql_error(format!(
            "{function}: collection {name:?} does not exist; create it for the vectors first, naming their model and \
             dimensions: SELECT isovec_collection(store, '{name}', 'external:MODEL#DIMS')"
        )));
    }
    store.collection(name).map_err(|e| isovec_error(function, e))
}

/// Checks a row's vector (`None`: the text is to be encoded) against `collection`; `usage` shows
/// where the vector goes.
pub fn check_row_vector(
    collection: &Collection,
    vector: Option<&[f32]>,
    function: &str,
    usage: &str,
) -> rusqlite::Result<()> {
    let config = collection.config();
    match vector {
        None if config.pipeline.is_external() => Err(sql_error(format!(
            "{function}: collection {:?} holds vectors made outside isovec (model {:?}, {} dimensions), which \
             isovec cannot encode texts into: give each row's vector as a BLOB: {usage}",
            collection.name(),
            config.pipeline.encoder.model,
            config.dims
        ))),
        Some(v) if v.len() != config.dims => Err(sql_error(format!(
            "{function}: wrong dimension: the vector has {} dimensions, collection {:?} holds vectors of {}; give \
             the vector {} makes",
            v.len(),
            collection.name(),
            config.dims,
            model_of(collection)
        ))),
        _ => Ok(()),
    }
}

/// The model that makes a collection's vectors, as messages name it.
pub fn model_of(collection: &Collection) -> String {
    let pipeline = &collection.config().pipeline;
    if pipeline.is_external() {
        format!("the model {:?}", pipeline.encoder.model)
    } else {
        format!("its pipeline ({pipeline})")
    }
}

/// How `isovec_upsert` takes a vector.
const UPSERT_USAGE: &str = "isovec_upsert(store, collection, id, text, metadata, vector)";

/// The optional metadata argument: NULL or blank is no metadata, else a JSON object.
pub fn metadata_arg(v: ValueRef<'_>, function: &str) -> rusqlite::Result<Json> {
    if let ValueRef::Blob(_) = v {
        let usage = if function == "isovec_upsert" {
            UPSERT_USAGE
        } else {
            "isovec_upsert_all(store, collection, id, text, metadata, batch, vector)"
        };
        return Err(sql_error(format!(
            "{function}: the metadata must be TEXT (a JSON object) or NULL, not a BLOB; a vector is an argument of \
             its own: {usage}"
        )));
    }
    match text_arg(v, function, "the metadata")? {
        None => Ok(Json::Null),
        Some(m) if m.trim().is_empty() => Ok(Json::Null),
        Some(m) => {
            let json: Json = serde_json::from_str(&m).map_err(|e| {
                sql_error(format!(
                    "{function}: the metadata is not valid JSON ({e}); give an object like '{{\"lang\": \"en\"}}'"
                ))
            })?;
            if !(json.is_object() || json.is_null()) {
                return Err(sql_error(format!("{function}: the metadata must be a JSON object, got {json}")));
            }
            Ok(json)
        }
    }
}

fn upsert(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    const F: &str = "isovec_upsert";
    let store_dir = required_text(ctx.get_raw(0), F, "the store")?;
    let name = required_text(ctx.get_raw(1), F, "the collection")?;
    let id = required_text(ctx.get_raw(2), F, "the id")?;
    let metadata = if ctx.len() > 4 { metadata_arg(ctx.get_raw(4), F)? } else { Json::Null };
    let vector = if ctx.len() > 5 { vector_arg(ctx.get_raw(5), F, "the vector")? } else { None };
    // A row with its vector may leave the text out (it then has none to search lexically).
    let text = match vector {
        Some(_) => text_arg(ctx.get_raw(3), F, "the text")?.unwrap_or_default(),
        None => required_text(ctx.get_raw(3), F, "the text")?,
    };
    let store = cache::store(Path::new(&store_dir), true).map_err(|e| isovec_error(F, e))?;
    let report = match vector {
        None => {
            let collection = writable_collection(&store, &name, None).map_err(|e| isovec_error(F, e))?;
            check_row_vector(&collection, None, F, UPSERT_USAGE)?;
            collection.add_texts(&[TextDoc { id, text, metadata }])
        }
        Some(vector) => {
            let collection = collection_for_vectors(&store, &name, F)?;
            check_row_vector(&collection, Some(&vector), F, UPSERT_USAGE)?;
            collection.upsert(&[Doc { id, text, metadata, vector }])
        }
    }
    .map_err(|e| isovec_error(F, e))?;
    Ok(Value::Integer(report.inserted as i64))
}

fn delete(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    const F: &str = "isovec_delete";
    let store_dir = required_text(ctx.get_raw(0), F, "the store")?;
    let name = required_text(ctx.get_raw(1), F, "the collection")?;
    let id = required_text(ctx.get_raw(2), F, "the id")?;
    let store = cache::store(Path::new(&store_dir), false).map_err(|e| isovec_error(F, e))?;
    let collection = store.collection(&name).map_err(|e| isovec_error(F, e))?;
    let n = collection.delete(&[id]).map_err(|e| isovec_error(F, e))?;
    Ok(Value::Integer(n as i64))
}

fn collection_info(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    const F: &str = "isovec_collection";
    let store_dir = required_text(ctx.get_raw(0), F, "the store")?;
    let name = required_text(ctx.get_raw(1), F, "the collection")?;
    let pipeline = if ctx.len() > 2 {
        let text = text_arg(ctx.get_raw(2), F, "the pipeline")?;
        Some(PipelineName::parse(text.as_deref()).map_err(|e| isovec_error(F, e))?)
    } else {
        None
    };
    let store = cache::store(Path::new(&store_dir), true).map_err(|e| isovec_error(F, e))?;
    let collection = writable_collection(&store, &name, pipeline.as_ref()).map_err(|e| isovec_error(F, e))?;
    let stats = collection.stats().map_err(|e| isovec_error(F, e))?;
    let json = serde_json::to_string(&stats).map_err(|e| sql_error(format!("{F}: {e}")))?;
    Ok(Value::Text(json))
}

fn close(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    const F: &str = "isovec_close";
    let store_dir = required_text(ctx.get_raw(0), F, "the store")?;
    let was_open = cache::close_store(Path::new(&store_dir)).map_err(|e| isovec_error(F, e))?;
    Ok(Value::Integer(was_open as i64))
}
