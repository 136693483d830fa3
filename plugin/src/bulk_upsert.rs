//! `isovec_upsert_all(store, collection, id, text [, metadata [, batch [, vector]]])`: the
//! aggregate that indexes the rows of a query in durable batches, as `isovec index` indexes the
//! lines of a file.
//!
//! With `vector` (a BLOB of little-endian f32), each row's vector is taken as it is, as
//! `isovec index --vectors` takes them, and its text may be NULL: the way to fill a collection of
//! vectors made outside isovec (`isovec_collection(store, name, 'external:NAME#DIMS')`, which
//! must exist first). One statement gives every row a vector, or none.
//!
//! # When a row is durable
//! Rows are buffered in the order SQLite hands them over and written `batch` at a time (256 by
//! default, as `isovec index --batch`): each full batch is encoded together and committed as one
//! durable write before the next row is read, and the last, partial batch is written when the
//! statement ends. So a row is durable once its batch is written, and every row is durable when
//! the statement returns its result.
//!
//! # When a row is bad
//! A bad row (NULL id or text, a BLOB, metadata that is not a JSON object, an empty text) or a
//! failed write stops the statement with an error that names the row and says which rows were
//! written: the batches written before are kept; the batch in progress and the rows after it are
//! not written. Upserts replace by id, so fixing the row and running the statement again is safe.
//! If SQLite stops the statement for a reason of its own (an interrupt, another function's error),
//! it still ends the aggregate, and the rows buffered so far are written then.
//!
//! The writes are isovec's, not SQLite's: a ROLLBACK of the host's transaction does not undo them.
//! The result is a JSON report: `{"rows", "inserted", "replaced", "duplicate_ids", "truncated",
//! "batches"}`. One statement fills one collection; with `GROUP BY`, each group is its own
//! aggregate with its own batches.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use isovec::store::{Collection, Doc, TextDoc};
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::Value;
use rusqlite::Connection;
use serde_json::{json, Value as Json};

use crate::cache;
use crate::functions::{
    check_row_vector, collection_for_vectors, metadata_arg, required_text, text_arg, vector_arg, writable_collection,
};
use crate::guard::{guarded, isovec_error, sql_error};

const NAME: &str = "isovec_upsert_all";
/// Rows per durable batch when `batch` is not given (`isovec index`'s default).
const DEFAULT_BATCH: i64 = 256;
/// Largest batch accepted: every row of a batch is held in memory until it is written.
const MAX_BATCH: i64 = 100_000;

/// How the aggregate takes vectors.
const USAGE: &str = "isovec_upsert_all(store, collection, id, text, metadata, batch, vector) (batch may be NULL)";

/// Registers the aggregate on `db` with 4 to 7 arguments.
pub fn register(db: &Connection) -> rusqlite::Result<()> {
    // Writes have side effects: never deterministic.
    for n in [4, 5, 6, 7] {
        db.create_aggregate_function(NAME, n, FunctionFlags::SQLITE_UTF8, BulkUpsert)?;
    }
    Ok(())
}

/// The aggregate (it holds no state; each statement's state is a [`Bulk`]).
struct BulkUpsert;

/// Where the rows go: opened at the first row, the same for every row after it.
struct Target {
    store_dir: String,
    name: String,
    collection: Collection,
    /// Whether the rows give their vectors (set by the first row).
    with_vectors: bool,
}

/// One aggregate's rows and what has been written of them.
#[derive(Default)]
struct Bulk {
    target: Option<Target>,
    batch: usize,
    /// Rows read but not yet written, in order.
    pending: Vec<TextDoc>,
    /// Their vectors, when the rows give them.
    pending_vectors: Vec<Vec<f32>>,
    /// Rows read (the last one's number, from 1).
    rows: u64,
    /// Rows written, all in batches before the pending ones.
    written: u64,
    batches: u64,
    inserted: usize,
    replaced: usize,
    duplicate_ids: Vec<String>,
    truncated: usize,
    /// Set by the error that stopped the statement: SQLite still ends the aggregate, which must
    /// then write nothing more.
    failed: bool,
}

// The state is only touched by SQLite's calls on one statement; a panic inside them marks it
// failed (see `step`), so nothing half-updated is written afterwards.
impl Aggregate<AssertUnwindSafe<Bulk>, Value> for BulkUpsert {
    fn init(&self, _ctx: &mut Context<'_>) -> rusqlite::Result<AssertUnwindSafe<Bulk>> {
        Ok(AssertUnwindSafe(Bulk::default()))
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut AssertUnwindSafe<Bulk>) -> rusqlite::Result<()> {
        let bulk = &mut acc.0;
        let result = guarded(NAME, || bulk.add_row(ctx));
        if result.is_err() {
            bulk.failed = true;
        }
        result
    }

    fn finalize(&self, _ctx: &mut Context<'_>, acc: Option<AssertUnwindSafe<Bulk>>) -> rusqlite::Result<Value> {
        let Some(AssertUnwindSafe(mut bulk)) = acc else {
            return Ok(Value::Text(Bulk::default().report().to_string()));
        };
        if bulk.failed {
            return Ok(Value::Null);
        }
        guarded(NAME, || {
            bulk.flush()?;
            Ok(Value::Text(bulk.report().to_string()))
        })
    }
}

impl Bulk {
    /// Reads one row; writes the batch when it is full.
    fn add_row(&mut self, ctx: &Context<'_>) -> rusqlite::Result<()> {
        self.rows += 1;
        if let Err(e) = self.read_row(ctx) {
            return Err(self.stopped_at(self.rows, &e.to_string()));
        }
        if self.pending.len() >= self.batch {
            self.flush()?;
        }
        Ok(())
    }

    /// Checks the row's arguments and adds it to the pending ones (opening the target at the first).
    fn read_row(&mut self, ctx: &Context<'_>) -> rusqlite::Result<()> {
        let store_dir = required_text(ctx.get_raw(0), NAME, "the store")?;
        let name = required_text(ctx.get_raw(1), NAME, "the collection")?;
        let id = required_text(ctx.get_raw(2), NAME, "the id")?;
        let metadata = if ctx.len() > 4 { metadata_arg(ctx.get_raw(4), NAME)? } else { Json::Null };
        let vector = if ctx.len() > 6 { vector_arg(ctx.get_raw(6), NAME, "the vector")? } else { None };
        // A row with its vector may leave the text out (it then has none to search lexically).
        let text = match vector {
            Some(_) => text_arg(ctx.get_raw(3), NAME, "the text")?.unwrap_or_default(),
            None => required_text(ctx.get_raw(3), NAME, "the text")?,
        };
        match &self.target {
            None => {
                self.batch = batch_arg(ctx)?;
                self.target = Some(open_target(store_dir, name, vector.is_some())?);
            }
            Some(t) if t.store_dir != store_dir || t.name != name => {
                return Err(sql_error(format!(
                    "{NAME}: the target changed from store {:?} collection {:?} to store {store_dir:?} collection {name:?}; \
                     one statement fills one collection (add GROUP BY store, collection to fill several)",
                    t.store_dir, t.name
                )));
            }
            Some(t) if t.with_vectors != vector.is_some() => {
                return Err(sql_error(format!(
                    "{NAME}: this row {} and the first row {}; one statement gives every row its vector, \
                     or none: {USAGE}",
                    if vector.is_some() { "has a vector" } else { "has no vector" },
                    if t.with_vectors { "had one" } else { "had none" }
                )));
            }
            Some(_) => {}
        }
        if let (Some(t), Some(v)) = (&self.target, &vector) {
            check_row_vector(&t.collection, Some(v), NAME, USAGE)?;
        }
        self.pending.push(TextDoc { id, text, metadata });
        self.pending_vectors.extend(vector);
        Ok(())
    }

    /// Writes the pending rows as one durable batch.
    fn flush(&mut self) -> rusqlite::Result<()> {
        let Some(target) = &self.target else { return Ok(()) };
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = if target.with_vectors {
            let docs: Vec<Doc> = self
                .pending
                .iter()
                .zip(&self.pending_vectors)
                .map(|(d, v)| Doc {
                    id: d.id.clone(),
                    text: d.text.clone(),
                    metadata: d.metadata.clone(),
                    vector: v.clone(),
                })
                .collect();
            let n = docs.len();
            target.collection.upsert(&docs).map(|report| (report, n))
        } else {
            target.collection.add_texts(&self.pending).map(|report| (report, self.pending.len()))
        };
        let (report, n) = written.map_err(|e| self.stopped_at(self.rows, &isovec_error(NAME, e).to_string()))?;
        self.written += n as u64;
        self.batches += 1;
        self.pending.clear();
        self.pending_vectors.clear();
        self.inserted += report.inserted;
        self.replaced += report.replaced;
        self.duplicate_ids.extend(report.duplicate_ids);
        self.truncated += report.truncated;
        Ok(())
    }

    /// The error that stops the statement at `row`, with what was and was not written.
    fn stopped_at(&self, row: u64, why: &str) -> rusqlite::Error {
        let kept = match self.written {
            0 => "no rows were written".to_string(),
            n => {
                let batches = if self.batches == 1 {
                    "1 durable batch".to_string()
                } else {
                    format!("{} durable batches", self.batches)
                };
                format!("rows 1–{n} were written ({batches}) and are kept")
            }
        };
        let first_lost = self.written + 1;
        let lost = if first_lost >= row { format!("row {row}") } else { format!("rows {first_lost}–{row}") };
        sql_error(format!(
            "{why}\n(stopped at row {row}: {kept}; {lost} and any after were not written; \
             fix the row and run the statement again, upserts replace by id)"
        ))
    }

    /// The JSON the statement returns.
    fn report(&self) -> Json {
        json!({
            "rows": self.written,
            "inserted": self.inserted,
            "replaced": self.replaced,
            "duplicate_ids": self.duplicate_ids,
            "truncated": self.truncated,
            "batches": self.batches,
        })
    }
}

/// The optional `batch` argument (rows per durable batch), read from the first row.
fn batch_arg(ctx: &Context<'_>) -> rusqlite::Result<usize> {
    let batch = if ctx.len() > 5 {
        match ctx.get::<Option<i64>>(5) {
            Ok(Some(b)) => b,
            Ok(None) => DEFAULT_BATCH,
            Err(_) => return Err(sql_error(format!("{NAME}: batch must be an integer (rows per durable batch)"))),
        }
    } else {
        DEFAULT_BATCH
    };
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(sql_error(format!("{NAME}: batch must be between 1 and {MAX_BATCH} rows, got {batch}")));
    }
    Ok(batch as usize)
}

/// Opens the collection the rows go to: for rows with vectors, an existing one; for rows whose
/// texts are encoded, one that can encode them (created with the default pipeline if missing).
fn open_target(store_dir: String, name: String, with_vectors: bool) -> rusqlite::Result<Target> {
    let store = cache::store(Path::new(&store_dir), true).map_err(|e| isovec_error(NAME, e))?;
    let collection = if with_vectors {
        collection_for_vectors(&store, &name, NAME)?
    } else {
        let collection = writable_collection(&store, &name, None).map_err(|e| isovec_error(NAME, e))?;
        check_row_vector(&collection, None, NAME, USAGE)?;
        collection
    };
    Ok(Target { store_dir, name, collection, with_vectors })
}
