//! A collection written as one Parquet file (layout: [`crate::parquet_io`]).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::{
    RowDigest, BATCH_ROWS, DIGEST_KEY, DIMS_KEY, METRIC_KEY, PIPELINE_KEY, PIPELINE_SPEC_KEY, ROWS_KEY, ROW_GROUP_ROWS,
};
use super::{ID_COLUMN, METADATA_COLUMN, PASSAGE_COLUMN, TEXT_COLUMN, VECTOR_COLUMN};
use crate::store::{Collection, Metric, PassagesDoc};
use crate::{Error, Result};

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// Documents written.
    pub documents: u64,
    /// Rows written: one per vector (documents indexed as passages have several).
    pub rows: u64,
}

/// The columns export writes, for vectors of `dims` dimensions.
fn schema(dims: usize) -> Result<SchemaRef> {
    let size = i32::try_from(dims)
        .map_err(|_| Error::InvalidInput(format!("{dims} dimensions do not fit in a Parquet list")))?;
    Ok(Arc::new(Schema::new(vec![
        Field::new(ID_COLUMN, DataType::Utf8, false),
        Field::new(TEXT_COLUMN, DataType::Utf8, false),
        Field::new(METADATA_COLUMN, DataType::Utf8, true),
        Field::new(PASSAGE_COLUMN, DataType::UInt32, false),
        Field::new(
            VECTOR_COLUMN,
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), size),
            false,
        ),
    ])))
}

/// Rows waiting to be written as one Arrow batch.
#[derive(Default)]
struct Rows {
    ids: Vec<String>,
    texts: Vec<String>,
    metadata: Vec<Option<String>>,
    passages: Vec<u32>,
    vectors: Vec<f32>,
}

impl Rows {
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// The rows as a batch of `schema`; leaves `self` empty.
    fn take_batch(&mut self, schema: &SchemaRef, dims: usize) -> Result<RecordBatch> {
        let rows = std::mem::take(self);
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let vectors = FixedSizeListArray::try_new(item, dims as i32, Arc::new(Float32Array::from(rows.vectors)), None)
            .map_err(arrow_error)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(rows.ids)),
            Arc::new(StringArray::from(rows.texts)),
            Arc::new(StringArray::from(rows.metadata)),
            Arc::new(UInt32Array::from(rows.passages)),
            Arc::new(vectors),
        ];
        RecordBatch::try_new(schema.clone(), columns).map_err(arrow_error)
    }
}

fn arrow_error(e: arrow_schema::ArrowError) -> Error {
    Error::InvalidInput(format!("building the Parquet rows: {e}"))
}

fn write_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::InvalidInput(format!("writing {}: {e}", path.display()))
}

impl Collection {
    /// Writes every document of the collection to a Parquet file at `path` (replaced
    /// atomically: a failed export leaves no partial file), one row per vector, row group by row
    /// group; `progress(documents, total)` is called after each batch. Writes to the collection
    /// wait until the export ends, so the file is one state of it.
    pub fn export_parquet(&self, path: &Path, progress: &dyn Fn(u64, u64)) -> Result<ExportReport> {
        let config = self.config();
        let dims = config.dims;
        let schema = schema(dims)?;
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
        let result = (|| {
            let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let props = WriterProperties::builder()
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| write_error(path, e))?))
                .build();
            let mut writer =
                ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| write_error(path, e))?;
            let total = self.count()?;
            let pipeline = serde_json::to_string(&config.pipeline)?;
            let spec = self.spec()?;
            let metric = match config.metric {
                Metric::Cosine => "cosine".to_string(),
            };
            let mut digest = RowDigest::new(&pipeline, &dims.to_string(), &metric);
            let mut rows = Rows::default();
            let mut report = ExportReport { documents: 0, rows: 0 };
            self.for_each_document(&mut |doc: PassagesDoc| {
                let metadata = if doc.metadata.is_null() { None } else { Some(serde_json::to_string(&doc.metadata)?) };
                for (passage, vector) in doc.vectors.iter().enumerate() {
                    digest.row(&doc.id, &doc.text, metadata.as_deref(), passage as u32, vector);
                    rows.ids.push(doc.id.clone());
                    rows.texts.push(doc.text.clone());
                    rows.metadata.push(metadata.clone());
                    rows.passages.push(passage as u32);
                    rows.vectors.extend_from_slice(vector);
                    report.rows += 1;
                }
                report.documents += 1;
                if rows.len() >= BATCH_ROWS {
                    writer.write(&rows.take_batch(&schema, dims)?).map_err(|e| write_error(path, e))?;
                    progress(report.documents, total);
                }
                Ok(())
            })?;
            if rows.len() > 0 {
                writer.write(&rows.take_batch(&schema, dims)?).map_err(|e| write_error(path, e))?;
            }
            for (key, value) in [
                (PIPELINE_KEY, pipeline),
                (DIMS_KEY, dims.to_string()),
                (METRIC_KEY, metric),
                (ROWS_KEY, report.rows.to_string()),
                (DIGEST_KEY, digest.finish()),
            ] {
                writer.append_key_value_metadata(KeyValue::new(key.to_string(), value));
            }
            if let Some(spec) = spec {
                let json = String::from_utf8(spec.to_json()?).map_err(|e| Error::Database(e.to_string()))?;
                writer.append_key_value_metadata(KeyValue::new(PIPELINE_SPEC_KEY.to_string(), json));
            }
            let file = writer.into_inner().map_err(|e| write_error(path, e))?;
            file.sync_all().map_err(|e| Error::io(&tmp, e))?;
            progress(report.documents, total);
            Ok(report)
        })();
        match result {
            Ok(report) => {
                std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    crate::atomic_file::sync_dir(dir)?;
                }
                Ok(report)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}
