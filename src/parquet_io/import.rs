//! Parquet files loaded into a collection: checked whole first, then written batch by batch.
//!
//! A file is read twice. [`ParquetImport::verify`] decodes every row group and checks every row
//! (types, nulls, UTF-8, metadata JSON, passage order, finite non-zero vectors, the row count and
//! isovec's digest when present) without touching a store; only a file that passes is written by
//! [`Store::import_parquet`]. So a damaged or truncated file is an error that leaves the store as
//! it was. Both passes hold one batch of rows at a time.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Float32Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use serde_json::Value;

use super::{
    FileInfo, RowDigest, BATCH_ROWS, DIGEST_KEY, DIMS_KEY, METRIC_KEY, PIPELINE_KEY, PIPELINE_SPEC_KEY, ROWS_KEY,
};
use super::{ID_COLUMN, METADATA_COLUMN, PASSAGE_COLUMN, TEXT_COLUMN, VECTOR_COLUMN};
use crate::store::{CollectionConfig, PassagesDoc, Store, TextDoc};
use crate::{Embedder, Error, PipelineId, Result};

/// A Parquet file that [`ParquetImport::verify`] read whole and found sound, ready to import.
#[derive(Clone, Debug)]
pub struct ParquetImport {
    path: PathBuf,
    info: FileInfo,
    /// Size when verified: a file that changed since is refused.
    len: u64,
}

/// What an import wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Documents whose id was new in the collection.
    pub inserted: u64,
    /// Documents that replaced one with the same id.
    pub replaced: u64,
    /// Rows read (vectors, or texts in a file without vectors).
    pub rows: u64,
    /// Whether the texts were encoded (a file without vectors) rather than their vectors taken.
    pub encoded: bool,
}

/// One row as read.
struct Row {
    id: String,
    text: String,
    metadata: Option<String>,
    passage: u32,
    vector: Option<Vec<f32>>,
}

/// The error for a file that cannot be read as isovec rows.
fn damaged(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!(
        "{} cannot be imported: {what}; the store was not changed (export the file again, or fix the tool that wrote it)",
        path.display()
    ))
}

impl ParquetImport {
    /// Reads and checks every row of the file at `path`, calling `progress(rows, total)` after
    /// each batch; the error of a damaged, truncated or malformed file says what is wrong.
    pub fn verify(path: &Path, progress: &dyn Fn(u64, u64)) -> Result<ParquetImport> {
        let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        let (mut reader, mut info, header) = open(path)?;
        let digest = header.digest;
        let mut computed = RowDigest::new(&header.pipeline, &header.dims, &header.metric);
        let mut rows = 0u64;
        let mut previous: Option<(String, u32)> = None;
        while let Some(batch) = next_rows(path, &mut reader, &info, rows)? {
            for row in &batch {
                rows += 1;
                check_row(path, &info, rows, row, previous.as_ref())?;
                if let Some(v) = &row.vector {
                    match info.dims {
                        None => info.dims = Some(v.len()),
                        Some(d) if d != v.len() => {
                            return Err(damaged(
                                path,
                                format!("row {rows} has a vector of {} values where the rows before have {d}", v.len()),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                if digest.is_some() {
                    let vector = row.vector.as_deref().unwrap_or(&[]);
                    computed.row(&row.id, &row.text, row.metadata.as_deref(), row.passage, vector);
                }
                previous = Some((row.id.clone(), row.passage));
            }
            progress(rows, info.rows);
        }
        if rows != info.rows {
            return Err(damaged(path, format!("it holds {rows} rows where its metadata says {}", info.rows)));
        }
        if let Some(expected) = digest {
            if computed.finish() != expected {
                return Err(damaged(
                    path,
                    format!("its rows do not match the digest written at export ({DIGEST_KEY}); the file is damaged"),
                ));
            }
        }
        Ok(ParquetImport { path: path.to_path_buf(), info, len })
    }

    /// What the file holds.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The key-values a file's digest covers, as written (empty when absent), and the digest.
struct Header {
    pipeline: String,
    dims: String,
    metric: String,
    digest: Option<String>,
}

/// Opens `path` for reading its isovec columns: the reader, what the file says, its header.
fn open(path: &Path) -> Result<(ParquetRecordBatchReader, FileInfo, Header)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| damaged(path, format!("it is not a readable Parquet file, perhaps truncated ({e})")))?;
    let schema = builder.schema().clone();
    let mut roots = Vec::new();
    for name in [ID_COLUMN, TEXT_COLUMN, METADATA_COLUMN, PASSAGE_COLUMN, VECTOR_COLUMN] {
        if let Ok(i) = schema.index_of(name) {
            roots.push(i);
        } else if name == ID_COLUMN || name == TEXT_COLUMN {
            return Err(damaged(path, format!("it has no {name:?} column (columns: {})", column_names(&schema))));
        }
    }
    let kv: Vec<(String, String)> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| kv.iter().filter_map(|e| Some((e.key.clone(), e.value.clone()?))).collect())
        .unwrap_or_default();
    let value = |key: &str| kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let pipeline = match value(PIPELINE_KEY) {
        Some(json) => Some(
            serde_json::from_str::<PipelineId>(&json)
                .map_err(|e| damaged(path, format!("its {PIPELINE_KEY} metadata is not a pipeline id ({e})")))?,
        ),
        None => None,
    };
    let spec = match value(PIPELINE_SPEC_KEY) {
        Some(json) => {
            let spec = crate::PipelineSpec::from_json(json.as_bytes(), &path.display().to_string())?;
            let recorded = spec.encoded().ok().map(|e| &e.id);
            if recorded.is_some() && recorded != pipeline.as_ref() {
                return Err(damaged(
                    path,
                    format!("its {PIPELINE_SPEC_KEY} is not the pipeline of its {PIPELINE_KEY}"),
                ));
            }
            Some(spec)
        }
        None => None,
    };
    if let Some(metric) = value(METRIC_KEY) {
        if metric != "cosine" {
            return Err(damaged(
                path,
                format!("its vectors are compared by {metric:?}; isovec collections use cosine"),
            ));
        }
    }
    let has_vectors = schema.index_of(VECTOR_COLUMN).is_ok();
    let dims = match value(DIMS_KEY) {
        Some(d) => Some(
            d.parse::<usize>().map_err(|_| damaged(path, format!("its {DIMS_KEY} metadata {d:?} is not a number")))?,
        ),
        None => None,
    };
    let rows = builder.metadata().file_metadata().num_rows();
    let rows = u64::try_from(rows).map_err(|_| damaged(path, format!("its footer gives {rows} rows")))?;
    if let Some(r) = value(ROWS_KEY) {
        if r != rows.to_string() {
            return Err(damaged(path, format!("its footer gives {rows} rows where its {ROWS_KEY} metadata says {r}")));
        }
    }
    let info = FileInfo {
        pipeline,
        spec,
        dims: if has_vectors { dims } else { None },
        rows,
        has_vectors,
        has_digest: value(DIGEST_KEY).is_some(),
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| damaged(path, format!("its row groups cannot be read ({e})")))?;
    let header = Header {
        pipeline: value(PIPELINE_KEY).unwrap_or_default(),
        dims: value(DIMS_KEY).unwrap_or_default(),
        metric: value(METRIC_KEY).unwrap_or_default(),
        digest: value(DIGEST_KEY),
    };
    Ok((reader, info, header))
}

fn column_names(schema: &arrow_schema::Schema) -> String {
    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

/// The next batch of rows (`None` at the end); `before` rows were read already.
fn next_rows(
    path: &Path,
    reader: &mut ParquetRecordBatchReader,
    info: &FileInfo,
    before: u64,
) -> Result<Option<Vec<Row>>> {
    let Some(batch) = reader.next() else {
        return Ok(None);
    };
    let batch = batch.map_err(|e| damaged(path, format!("the rows after row {before} cannot be decoded ({e})")))?;
    decode(&batch, info.dims).map(Some).map_err(|e| damaged(path, format!("after row {before}: {e}")))
}

/// The rows of one batch; `dims` is the dimension the file's metadata gives, if any.
fn decode(batch: &RecordBatch, dims: Option<usize>) -> std::result::Result<Vec<Row>, String> {
    let n = batch.num_rows();
    let column = |name: &str| batch.column_by_name(name);
    let ids = strings(column(ID_COLUMN).ok_or("no id column")?, ID_COLUMN, false)?;
    let texts = strings(column(TEXT_COLUMN).ok_or("no text column")?, TEXT_COLUMN, false)?;
    let metadata = match column(METADATA_COLUMN) {
        Some(c) => strings(c, METADATA_COLUMN, true)?,
        None => vec![None; n],
    };
    let passages = match column(PASSAGE_COLUMN) {
        Some(c) => passage_numbers(c)?,
        None => vec![0; n],
    };
    let mut vectors: Vec<Option<Vec<f32>>> = match column(VECTOR_COLUMN) {
        Some(c) => vector_rows(c, dims)?.into_iter().map(Some).collect(),
        None => vec![None; n],
    };
    let mut rows = Vec::with_capacity(n);
    for (i, (((id, text), metadata), passage)) in ids.into_iter().zip(texts).zip(metadata).zip(passages).enumerate() {
        rows.push(Row {
            id: id.unwrap_or_default(),
            text: text.unwrap_or_default(),
            metadata,
            passage,
            vector: vectors[i].take(),
        });
    }
    Ok(rows)
}

/// A column of UTF-8 strings (any of Arrow's three layouts); nulls only if `nullable`.
fn strings(array: &ArrayRef, name: &str, nullable: bool) -> std::result::Result<Vec<Option<String>>, String> {
    if !nullable && array.null_count() > 0 {
        return Err(format!("the {name:?} column has nulls; every row needs one"));
    }
    let values: Vec<Option<String>> = match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().map(|s| s.map(str::to_string)).collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().map(|s| s.map(str::to_string)).collect(),
        DataType::Utf8View => array.as_string_view().iter().map(|s| s.map(str::to_string)).collect(),
        other => return Err(format!("the {name:?} column holds {other}; it must hold UTF-8 strings")),
    };
    Ok(values)
}

/// A column of passage numbers (any integer type, each in 0..2³²).
fn passage_numbers(array: &ArrayRef) -> std::result::Result<Vec<u32>, String> {
    if array.null_count() > 0 {
        return Err(format!("the {PASSAGE_COLUMN:?} column has nulls"));
    }
    let wide: Vec<i128> = match array.data_type() {
        DataType::UInt32 => array.as_primitive::<UInt32Type>().values().iter().map(|v| *v as i128).collect(),
        DataType::Int32 => array.as_primitive::<Int32Type>().values().iter().map(|v| *v as i128).collect(),
        DataType::Int64 => array.as_primitive::<Int64Type>().values().iter().map(|v| *v as i128).collect(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().values().iter().map(|v| *v as i128).collect(),
        other => return Err(format!("the {PASSAGE_COLUMN:?} column holds {other}; it must hold integers")),
    };
    wide.into_iter().map(|v| u32::try_from(v).map_err(|_| format!("passage number {v} is out of range"))).collect()
}

/// A column of Float32 lists (fixed-size or not), one vector a row, each of `dims` values.
fn vector_rows(array: &ArrayRef, dims: Option<usize>) -> std::result::Result<Vec<Vec<f32>>, String> {
    if array.null_count() > 0 {
        return Err(format!("the {VECTOR_COLUMN:?} column has nulls; every row needs a vector"));
    }
    let (values, offsets): (&ArrayRef, Vec<usize>) = match array.data_type() {
        DataType::FixedSizeList(_, size) => {
            let list = array.as_fixed_size_list();
            let size = *size as usize;
            (list.values(), (0..=list.len()).map(|i| list.value_offset_at(0) + i * size).collect())
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            (list.values(), list.value_offsets().iter().map(|o| *o as usize).collect())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            (list.values(), list.value_offsets().iter().map(|o| *o as usize).collect())
        }
        other => return Err(format!("the {VECTOR_COLUMN:?} column holds {other}; it must hold lists of float32")),
    };
    let floats = values.as_any().downcast_ref::<Float32Array>().ok_or_else(|| {
        format!("the {VECTOR_COLUMN:?} column holds lists of {}; it must hold float32", values.data_type())
    })?;
    if floats.null_count() > 0 {
        // Nulls may sit in the values of null rows only, and there are none.
        let any_used = offsets.windows(2).any(|w| (w[0]..w[1]).any(|j| floats.is_null(j)));
        if any_used {
            return Err(format!("a vector in the {VECTOR_COLUMN:?} column has a null value"));
        }
    }
    let raw = floats.values();
    offsets
        .windows(2)
        .map(|w| {
            let v = raw.get(w[0]..w[1]).ok_or("a vector's values lie outside the column")?.to_vec();
            match dims {
                Some(d) if d != v.len() => {
                    Err(format!("a vector has {} values where the file's {DIMS_KEY} is {d}", v.len()))
                }
                _ => Ok(v),
            }
        })
        .collect()
}

/// Checks row number `n` (1-based) against what import needs; `previous` is the row before.
fn check_row(path: &Path, info: &FileInfo, n: u64, row: &Row, previous: Option<&(String, u32)>) -> Result<()> {
    let bad = |what: String| damaged(path, format!("row {n} (id {:?}): {what}", row.id));
    if row.id.is_empty() {
        return Err(bad("the id is empty; give every row an id".into()));
    }
    if row.text.trim().is_empty() && !info.has_vectors {
        return Err(bad("the text is blank and there is no vector; give it a text to encode".into()));
    }
    if let Some(m) = &row.metadata {
        match serde_json::from_str::<Value>(m) {
            Ok(v) if v.is_object() || v.is_null() => {}
            Ok(_) => return Err(bad("metadata must be a JSON object or null".into())),
            Err(e) => return Err(bad(format!("metadata is not JSON ({e})"))),
        }
    }
    if row.passage > 0 {
        let follows = previous.is_some_and(|(id, p)| *id == row.id && p + 1 == row.passage);
        if !follows {
            return Err(bad(format!(
                "passage {} does not follow passage {} of the same id; a document's passages are consecutive rows numbered from 0",
                row.passage,
                row.passage - 1
            )));
        }
    }
    if let Some(v) = &row.vector {
        if crate::vector::normalized(v).is_err() {
            return Err(bad("the vector is zero or has NaN/infinity; cosine needs a non-zero finite vector".into()));
        }
    }
    Ok(())
}

impl Store {
    /// Loads a verified Parquet file into collection `name`, creating it if needed; calls
    /// `progress(rows, total)` after each batch.
    ///
    /// A file with vectors is taken as it is: its pipeline (`isovec.pipeline`) must be the
    /// collection's (an error names both), or becomes that of the new collection. A file without
    /// vectors is encoded by `embedder` (which must be the collection's pipeline), or else by
    /// the existing collection's recorded pipeline. A new collection records the file's
    /// pipeline record (`isovec.pipeline_spec`), or `embedder`'s. Rows are upserted in batches, so an I/O error midway leaves the batches before
    /// it written; importing the file again completes it.
    pub fn import_parquet(
        &self,
        name: &str,
        file: &ParquetImport,
        embedder: Option<&dyn Embedder>,
        progress: &dyn Fn(u64, u64),
    ) -> Result<ImportReport> {
        let path = file.path();
        let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        if len != file.len {
            return Err(damaged(path, "it changed after it was verified; verify it again"));
        }
        let info = file.info();
        let existing = self.list_collections()?.into_iter().find(|(n, _)| n == name).map(|(_, c)| c);
        // A file without vectors into an existing collection: its recorded pipeline, if not given.
        let recorded;
        let embedder = match (embedder, &existing, info.has_vectors) {
            (None, Some(_), false) => {
                recorded = self.collection(name)?.pipeline()?;
                Some(recorded.as_ref() as &dyn Embedder)
            }
            (e, _, _) => e,
        };
        let config = if info.has_vectors {
            let Some(pipeline) = info.pipeline.clone() else {
                return Err(Error::InvalidInput(format!(
                    "{} has vectors but no {PIPELINE_KEY} metadata, so isovec cannot know which pipeline made them; \
                     write that key (the `id` of an isovec.Pipeline), or leave out the vector column to have isovec encode the texts",
                    path.display()
                )));
            };
            // Verification found the dimension in the rows, if the metadata did not give it.
            let Some(dims) = info.dims else {
                return Err(damaged(path, "it has no rows, so the dimension of its vectors is unknown"));
            };
            CollectionConfig::new(dims, pipeline)
        } else {
            let Some(embedder) = embedder else {
                return Err(Error::InvalidInput(format!(
                    "{} has no {VECTOR_COLUMN:?} column; give a pipeline to encode its texts",
                    path.display()
                )));
            };
            CollectionConfig::new(embedder.dims(), embedder.id().clone())
        };
        if let Some(existing) = &existing {
            if existing.pipeline != config.pipeline {
                let source = if info.has_vectors {
                    format!("the vectors in {}", path.display())
                } else {
                    "the pipeline given".to_string()
                };
                return Err(Error::PipelineMismatch {
                    expected: format!("{} (collection {name})", existing.pipeline),
                    found: format!("{} ({source})", config.pipeline),
                });
            }
            if existing.dims != config.dims {
                return Err(Error::Dimension { expected: existing.dims, found: config.dims });
            }
        }
        let collection = match (&existing, info.has_vectors, embedder) {
            (Some(_), _, _) => self.collection(name)?,
            (None, true, _) => self.create_collection_with(name, config, info.spec.as_ref())?,
            (None, false, Some(embedder)) => self.create_collection_for(name, embedder)?,
            (None, false, None) => return Err(Error::InvalidInput("a file without vectors needs a pipeline".into())),
        };
        let (mut reader, _, _) = open(path)?;
        let mut report = ImportReport { encoded: !info.has_vectors, ..Default::default() };
        let mut pending: Vec<PassagesDoc> = Vec::new();
        let add = |docs: &[PassagesDoc], report: &mut ImportReport| -> Result<()> {
            let written = match (info.has_vectors, embedder) {
                (true, _) => collection.upsert_passages(docs)?,
                (false, Some(embedder)) => {
                    let texts: Vec<TextDoc> = docs
                        .iter()
                        .map(|d| TextDoc { id: d.id.clone(), text: d.text.clone(), metadata: d.metadata.clone() })
                        .collect();
                    collection.add_texts_with(embedder, &texts)?
                }
                (false, None) => return Err(Error::InvalidInput("a file without vectors needs a pipeline".into())),
            };
            report.inserted += written.inserted as u64;
            report.replaced += written.replaced as u64;
            Ok(())
        };
        while let Some(batch) = next_rows(path, &mut reader, info, report.rows)? {
            for row in batch {
                report.rows += 1;
                // Verification checked that a passage after the first follows its document's.
                if row.passage > 0 {
                    if let Some(doc) = pending.last_mut() {
                        doc.vectors.extend(row.vector);
                        continue;
                    }
                }
                let metadata = match &row.metadata {
                    Some(m) => serde_json::from_str(m)?,
                    None => Value::Null,
                };
                pending.push(PassagesDoc {
                    id: row.id,
                    text: row.text,
                    metadata,
                    vectors: row.vector.into_iter().collect(),
                });
            }
            // The last document may go on in the next batch.
            if pending.len() > 1 {
                let last = pending.pop();
                add(&pending, &mut report)?;
                pending.clear();
                pending.extend(last);
            }
            progress(report.rows, info.rows);
        }
        if !pending.is_empty() {
            add(&pending, &mut report)?;
        }
        Ok(report)
    }
}
