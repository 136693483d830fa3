//! isovec as a SQLite loadable extension: semantic search over the host's own tables.
//!
//! Loading the library (`.load libisovec_sqlite` in the sqlite3 shell, `load_extension` elsewhere)
//! registers:
//! - `isovec_embed(text [, pipeline])` → BLOB of little-endian f32;
//! - `isovec_cosine(blob, blob)` → REAL, `isovec_dims(blob)` → INTEGER;
//! - `isovec_upsert(store, collection, id, text [, metadata_json [, vector]])` → 1 if new, 0 if
//!   replaced; each call is one durable write (the row is durable when the call returns). With
//!   `vector` (a BLOB), the row's vector is taken as it is (the text may then be NULL);
//! - the aggregate `isovec_upsert_all(store, collection, id, text [, metadata_json [, batch [, vector]]])`
//!   → a JSON report; the bulk form, as fast as `isovec index`: rows are encoded (or taken with
//!   their vectors) and written in durable batches of `batch` (256), all durable when the
//!   statement returns ([`bulk_upsert`]);
//! - `isovec_delete(store, collection, id)` → 1 if it existed, 0 if not;
//! - `isovec_collection(store, collection [, pipeline])` → the collection's description (JSON),
//!   creating it for that pipeline if it is missing (an existing one must hold its vectors);
//!   `external:NAME#DIMS` names vectors made outside isovec ([`pipeline_name`]);
//! - `isovec_close(store)` → snapshots the store and lets other processes open it;
//! - the table-valued function `isovec_search(store, collection, query [, k [, filter [, mode [, vector]]]])`
//!   with columns `id, score, text, metadata`; the query is a text or a vector BLOB, and `vector`
//!   the text's vector for a dense or hybrid search that encodes nothing ([`search_vtab`]).
//!
//! A collection records the pipeline that made its vectors ([`pipeline_name`] names one; without,
//! the default): upserts and searches encode with it, in any later session, with nothing to load
//! first.
//!
//! With `ISOVEC_SQLITE_ROOT` set when the extension is loaded, stores open and are created only
//! inside that directory ([`store_root`]). `ISOVEC_DTYPE` (`f32`, `f16`, `bf16`, `int8`) sets the
//! precision models encode in, for the whole process ([`precision`]).
//!
//! Everything is the isovec library's own code (store, encoder, transforms); opened stores and
//! loaded models are cached per process ([`cache`]), so only the first call pays for loading.

mod blob;
mod bulk_upsert;
mod cache;
mod functions;
mod guard;
mod pipeline_name;
mod precision;
mod search_vtab;
mod store_root;

use std::os::raw::{c_char, c_int};

use rusqlite::{ffi, Connection};

/// Entry point SQLite calls when the extension is loaded (the name SQLite derives from the file name).
///
/// # Safety
/// Called by SQLite with a valid connection handle and API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_isovecsqlite_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: forwarded unchanged from SQLite, which guarantees the pointers are valid.
    unsafe { sqlite3_extension_init(db, pz_err_msg, p_api) }
}

/// The generic entry point (`load_extension(path, 'sqlite3_extension_init')`, and the fallback
/// name SQLite tries).
///
/// # Safety
/// Called by SQLite with a valid connection handle and API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_extension_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    // A panic must not unwind into SQLite's C frames.
    let result = std::panic::catch_unwind(|| {
        // SAFETY: forwarded unchanged from SQLite, which guarantees the pointers are valid.
        unsafe { Connection::extension_init2(db, pz_err_msg, p_api, register) }
    });
    result.unwrap_or(ffi::SQLITE_ERROR)
}

/// Reads the store root ([`store_root`]) and the precision ([`precision`]), then registers every
/// function and the search module on one connection.
fn register(db: Connection) -> rusqlite::Result<bool> {
    store_root::configure_from_env().map_err(|e| guard::sql_error(format!("isovec: {e}")))?;
    precision::configure_from_env().map_err(|e| guard::sql_error(format!("isovec: {e}")))?;
    functions::register(&db)?;
    bulk_upsert::register(&db)?;
    search_vtab::register(&db)?;
    Ok(false)
}
