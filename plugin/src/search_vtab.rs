//! `isovec_search(store, collection, query [, k [, filter [, mode [, vector]]]])`: an eponymous
//! table-valued function with columns `id, score, text, metadata`, so that search results join
//! with the host's tables. `mode` is `dense` (the default), `lexical` (BM25; loads no model),
//! `hybrid` (both rankings fused, the store's default fusion), `hybrid:rrf`, `hybrid:convex=A` or
//! `hybrid:auto` (the fusion `isovec advise` chose for the collection).
//!
//! The query is a text, encoded by the collection's recorded pipeline, or a vector (a BLOB of
//! little-endian f32) for a dense search by it. `vector` is the query text's vector, given beside
//! the text: dense and hybrid searches use it instead of encoding the text. A collection of
//! vectors made outside isovec (`external:NAME#DIMS`) is searched this way, or lexically.

use std::ffi::c_int;
use std::marker::PhantomData;
use std::path::Path;

use isovec::store::{Fusion, Hit, SearchMode, SearchParams};
use rusqlite::types::{Value, ValueRef};
use rusqlite::vtab::{
    eponymous_only_module, Context, IndexConstraintOp, IndexInfo, VTab, VTabConnection, VTabCursor, Values,
};
use rusqlite::{ffi, Connection};

use crate::blob::from_blob;
use crate::cache;
use crate::functions::{model_of, required_text, text_arg};
use crate::guard::{guarded, isovec_error, sql_error};

const NAME: &str = "isovec_search";
/// Results when `k` is not given.
const DEFAULT_K: i64 = 10;
/// Largest `k` accepted (a bigger one is a mistake, and would build a huge candidate list).
const MAX_K: i64 = 10_000;

// Visible columns, then the hidden ones that take the function's arguments in order.
const COL_ID: c_int = 0;
const COL_SCORE: c_int = 1;
const COL_TEXT: c_int = 2;
const COL_METADATA: c_int = 3;
const COL_STORE: c_int = 4;
const COL_VECTOR: c_int = 10;
/// The arguments that must be given: store, collection, query.
const REQUIRED: usize = 3;
const ARG_NAMES: [&str; 7] = ["store", "collection", "query", "k", "filter", "mode", "vector"];
const USAGE: &str = "isovec_search(store, collection, query [, k [, filter [, mode [, vector]]]])";

/// Registers the module on `db` (eponymous: usable as `isovec_search(...)` without CREATE).
pub fn register(db: &Connection) -> rusqlite::Result<()> {
    db.create_module(NAME, eponymous_only_module::<SearchTab>(), None)
}

/// The table (one per connection; it holds no state).
#[repr(C)]
struct SearchTab {
    /// SQLite's part; must come first.
    base: ffi::sqlite3_vtab,
}

// SAFETY: `SearchTab` is `repr(C)` with `sqlite3_vtab` first, as rusqlite requires.
unsafe impl<'vtab> VTab<'vtab> for SearchTab {
    type Aux = ();
    type Cursor = SearchCursor<'vtab>;

    fn connect(_db: &mut VTabConnection, _aux: Option<&()>, _args: &[&[u8]]) -> rusqlite::Result<(String, Self)> {
        // `id TEXT`: compared with an INTEGER column, SQLite converts it to a number, so the
        // join works whether the host's ids are integers or text.
        let schema = "CREATE TABLE x(id TEXT, score REAL, text TEXT, metadata TEXT, \
                      store HIDDEN, collection HIDDEN, query HIDDEN, k HIDDEN, filter HIDDEN, mode HIDDEN, \
                      vector HIDDEN)";
        Ok((schema.to_string(), SearchTab { base: ffi::sqlite3_vtab::default() }))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<()> {
        guarded(NAME, || plan(info))
    }

    fn open(&'vtab mut self) -> rusqlite::Result<SearchCursor<'vtab>> {
        Ok(SearchCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            hits: Vec::new(),
            row: 0,
            args: Vec::new(),
            phantom: PhantomData,
        })
    }
}

/// Chooses the plan: every argument given as `hidden = value` goes to `filter` in argument order;
/// `idx_num` has bit `i` set when argument `i` is present.
fn plan(info: &mut IndexInfo) -> rusqlite::Result<()> {
    let mut slot: [Option<usize>; ARG_NAMES.len()] = [None; ARG_NAMES.len()];
    let mut unusable = [false; ARG_NAMES.len()];
    for (i, c) in info.constraints().enumerate() {
        let col = c.column();
        if !(COL_STORE..=COL_VECTOR).contains(&col) || c.operator() != IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ {
            continue;
        }
        let arg = (col - COL_STORE) as usize;
        if c.is_usable() {
            slot[arg] = Some(i);
        } else {
            unusable[arg] = true;
        }
    }
    if let Some(missing) = (0..REQUIRED).find(|&a| slot[a].is_none() && !unusable[a]) {
        return Err(sql_error(format!("{NAME}: the {} argument is missing; call it as {USAGE}", ARG_NAMES[missing])));
    }
    if (0..slot.len()).any(|a| slot[a].is_none() && unusable[a]) {
        // This plan would need a value not yet known (e.g. from a table joined later): SQLite
        // then tries another join order.
        return Err(rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_CONSTRAINT), None));
    }
    let mut idx_num = 0;
    let mut argv = 0;
    for (arg, constraint) in slot.iter().enumerate() {
        if let Some(i) = *constraint {
            argv += 1;
            idx_num |= 1 << arg;
            let mut usage = info.constraint_usage(i);
            usage.set_argv_index(argv);
            usage.set_omit(true);
        }
    }
    // Results come best first: an ORDER BY score DESC alone needs no sort.
    let by_score_desc = {
        let mut order = info.order_bys();
        match (order.next(), order.next()) {
            (Some(o), None) => o.column() == COL_SCORE && o.is_order_by_desc(),
            _ => false,
        }
    };
    if by_score_desc {
        info.set_order_by_consumed(true);
    }
    info.set_idx_num(idx_num);
    info.set_estimated_cost(1.0);
    info.set_estimated_rows(DEFAULT_K);
    Ok(())
}

/// One search's results, walked row by row.
#[repr(C)]
struct SearchCursor<'vtab> {
    /// SQLite's part; must come first.
    base: ffi::sqlite3_vtab_cursor,
    hits: Vec<Hit>,
    row: usize,
    /// The arguments, by position (store, collection, query, k, filter, mode, vector), for the
    /// hidden columns.
    args: Vec<Value>,
    phantom: PhantomData<&'vtab SearchTab>,
}

// SAFETY: `SearchCursor` is `repr(C)` with `sqlite3_vtab_cursor` first, as rusqlite requires.
unsafe impl VTabCursor for SearchCursor<'_> {
    fn filter(&mut self, idx_num: c_int, _idx_str: Option<&str>, args: &Values<'_>) -> rusqlite::Result<()> {
        guarded(NAME, || {
            let mut given = Vec::with_capacity(ARG_NAMES.len());
            let mut next = 0;
            for arg in 0..ARG_NAMES.len() {
                if idx_num & (1 << arg) != 0 {
                    given.push(args.get::<Value>(next)?);
                    next += 1;
                } else {
                    given.push(Value::Null);
                }
            }
            self.hits = search(&given)?;
            self.args = given;
            self.row = 0;
            Ok(())
        })
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.row += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.row >= self.hits.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let Some(hit) = self.hits.get(self.row) else {
            return ctx.set_result(&Value::Null);
        };
        match i {
            COL_ID => ctx.set_result(&hit.id),
            COL_SCORE => ctx.set_result(&(hit.score as f64)),
            COL_TEXT => ctx.set_result(&hit.text),
            COL_METADATA => {
                if hit.metadata.is_null() {
                    ctx.set_result(&Value::Null)
                } else {
                    ctx.set_result(&hit.metadata.to_string())
                }
            }
            _ => {
                let arg = (i - COL_STORE) as usize;
                ctx.set_result(self.args.get(arg).unwrap_or(&Value::Null))
            }
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.row as i64 + 1)
    }
}

fn value_ref(v: &Value) -> ValueRef<'_> {
    ValueRef::from(v)
}

/// Runs the search the arguments ask for.
fn search(args: &[Value]) -> rusqlite::Result<Vec<Hit>> {
    let store_dir = required_text(value_ref(&args[0]), NAME, "the store")?;
    let name = required_text(value_ref(&args[1]), NAME, "the collection")?;
    let blob = |b: &[u8], what: &str| from_blob(b, what).map_err(|m| sql_error(format!("{NAME}: {m}")));
    // The query: a text, or a vector for a dense search.
    let (query, query_vector) = match &args[2] {
        Value::Blob(b) => (None, Some(blob(b, "the query")?)),
        other => (Some(required_text(value_ref(other), NAME, "the query")?), None),
    };
    let vector = match &args[6] {
        Value::Null => None,
        Value::Blob(b) => Some(blob(b, "the vector")?),
        _ => {
            return Err(sql_error(format!(
                "{NAME}: the vector must be a BLOB of little-endian f32, from isovec_embed() or another model's vector"
            )))
        }
    };
    if query_vector.is_some() && vector.is_some() {
        return Err(sql_error(format!(
            "{NAME}: the query is a vector, and a vector is given beside it; give it once: as the query (a dense \
             search), or the query text with the vector beside it (dense or hybrid)"
        )));
    }
    let vector = query_vector.or(vector);
    let k = match &args[3] {
        Value::Null => DEFAULT_K,
        Value::Integer(k) => *k,
        Value::Real(r) if r.fract() == 0.0 && r.abs() < 1e15 => *r as i64,
        other => return Err(sql_error(format!("{NAME}: k must be an integer, got {other:?}"))),
    };
    if !(1..=MAX_K).contains(&k) {
        return Err(sql_error(format!("{NAME}: k must be between 1 and {MAX_K}, got {k}")));
    }
    let filter = match text_arg(value_ref(&args[4]), NAME, "the filter")? {
        None => None,
        Some(f) if f.trim().is_empty() => None,
        Some(f) => Some(f.parse::<isovec::store::Filter>().map_err(|e| isovec_error(NAME, e))?),
    };
    let (mode, fusion) = match text_arg(value_ref(&args[5]), NAME, "the mode")? {
        None => (SearchMode::Dense, Fusion::default()),
        Some(m) => parse_mode(&m)?,
    };
    let store = cache::store(Path::new(&store_dir), false).map_err(|e| isovec_error(NAME, e))?;
    let collection = store.collection(&name).map_err(|e| isovec_error(NAME, e))?;
    let params = SearchParams { filter, mode, fusion, ..SearchParams::k(k as usize) };
    let config = collection.config();
    if let Some(v) = &vector {
        if v.len() != config.dims && mode != SearchMode::Lexical {
            return Err(sql_error(format!(
                "{NAME}: wrong dimension: the query vector has {} dimensions, collection {name:?} holds vectors of {}; \
                 search with a vector {} makes",
                v.len(),
                config.dims,
                model_of(&collection)
            )));
        }
    }
    let hits = match (mode, query, vector) {
        (SearchMode::Lexical, Some(text), _) => collection.search_lexical(&text, &params),
        (SearchMode::Dense, _, Some(v)) => collection.search(&v, &params),
        (SearchMode::Hybrid, Some(text), Some(v)) => collection.search_hybrid(&v, &text, &params),
        (_, None, _) => {
            return Err(sql_error(format!(
                "{NAME}: a {} search needs the query text, and the query is a vector: give the text as the query \
                 and the vector beside it: isovec_search(store, collection, text, k, filter, 'hybrid', vector)",
                mode.name()
            )))
        }
        (_, Some(_), None) if config.pipeline.is_external() => {
            return Err(sql_error(format!(
                "{NAME}: collection {name:?} holds vectors made outside isovec (model {:?}, {} dimensions), so isovec \
                 cannot encode the query: give that model's vector of it as the query (a BLOB of little-endian f32), \
                 or beside the text for a hybrid search: isovec_search(store, collection, text, k, filter, 'hybrid', \
                 vector); or search with mode 'lexical'",
                config.pipeline.encoder.model, config.dims
            )))
        }
        // The query is encoded by the collection's recorded pipeline (a lexical search encodes nothing).
        (_, Some(text), None) => collection.search_text(&text, &params),
    };
    hits.map_err(|e| isovec_error(NAME, e))
}

/// `dense`, `lexical`, `hybrid`, `hybrid:rrf`, `hybrid:convex=A` or `hybrid:auto`.
fn parse_mode(text: &str) -> rusqlite::Result<(SearchMode, Fusion)> {
    let bad = |e: isovec::Error| {
        sql_error(format!(
            "{NAME}: mode {text:?}: {e}; use 'dense', 'lexical', 'hybrid', 'hybrid:rrf', 'hybrid:convex=0.5' or 'hybrid:auto'"
        ))
    };
    let (mode, fusion) = match text.trim().split_once(':') {
        None => (text, None),
        Some((mode, fusion)) => (mode, Some(fusion)),
    };
    let mode: SearchMode = mode.parse().map_err(bad)?;
    let fusion = match fusion {
        None => Fusion::default(),
        Some(_) if mode != SearchMode::Hybrid => {
            return Err(bad(isovec::Error::InvalidInput("only a hybrid search takes a fusion".into())))
        }
        Some(f) => match f.split_once('=') {
            Some(("convex", a)) => {
                let alpha = a
                    .trim()
                    .parse::<f32>()
                    .map_err(|_| bad(isovec::Error::InvalidInput(format!("{a:?} is not a number"))))?;
                Fusion::parse("convex", Some(alpha)).map_err(bad)?
            }
            Some(_) => return Err(bad(isovec::Error::InvalidInput(format!("unknown fusion {f:?}")))),
            None => Fusion::parse(f, None).map_err(bad)?,
        },
    };
    Ok((mode, fusion))
}
