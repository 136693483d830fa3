//! The on-disk form shared by all transforms: a safetensors file whose metadata names the
//! transform family, the encoder it was fitted on (as JSON) and its configuration (as JSON).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::{EncoderId, Error, Result};

/// Metadata key holding the transform family (`whiten` or `flow`).
const FAMILY_KEY: &str = "isovec.transform";
/// Metadata key holding the encoder id as JSON.
const ENCODER_KEY: &str = "isovec.encoder";
/// Metadata key holding the family-specific configuration as JSON.
const CONFIG_KEY: &str = "isovec.config";
/// Metadata key holding the file format version.
const FORMAT_KEY: &str = "isovec.format";
/// The only format version written and read so far.
const FORMAT_VERSION: &str = "1";

/// The same bytes with the JSON header's keys in sorted order, so that one transform always
/// serialises to the same bytes (safetensors writes its metadata map in hash order, and a
/// collection records its transform by the hash of these bytes). Sorting keeps the compact
/// header's length, hence every data offset; a header that would not fit is left as it was.
fn with_sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(|b| u64::from_le_bytes(b) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes.get(8..8 + len) else { return bytes };
    // serde_json's map is a BTreeMap here (no `preserve_order`): re-serialising sorts every key.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else { return bytes };
    let Ok(sorted) = serde_json::to_vec(&value) else { return bytes };
    if sorted.len() <= len {
        bytes[8..8 + sorted.len()].copy_from_slice(&sorted);
        bytes[8 + sorted.len()..8 + len].fill(b' ');
    }
    bytes
}

/// Element type of a stored parameter array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoredDtype {
    F32,
    F64,
}

/// One named parameter array, little-endian bytes.
#[derive(Clone, Debug)]
pub(crate) struct StoredTensor {
    pub name: String,
    pub dtype: StoredDtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl StoredTensor {
    /// An f64 array.
    pub fn from_f64(name: &str, shape: Vec<usize>, values: &[f64]) -> Self {
        StoredTensor {
            name: name.to_string(),
            dtype: StoredDtype::F64,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An f32 array.
    pub fn from_f32(name: &str, shape: Vec<usize>, values: &[f32]) -> Self {
        StoredTensor {
            name: name.to_string(),
            dtype: StoredDtype::F32,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values as f64 (f32 arrays are widened).
    pub fn to_f64(&self) -> Vec<f64> {
        match self.dtype {
            StoredDtype::F64 => self
                .bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            StoredDtype::F32 => self.to_f32().into_iter().map(f64::from).collect(),
        }
    }

    /// The values as f32 (f64 arrays are rounded).
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            StoredDtype::F32 => {
                self.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            }
            StoredDtype::F64 => self.to_f64().into_iter().map(|v| v as f32).collect(),
        }
    }
}

/// Everything a transform file holds.
#[derive(Clone, Debug)]
pub(crate) struct TransformFile {
    /// `whiten` or `flow`.
    pub family: String,
    /// The encoder + pooling the transform was fitted on.
    pub encoder: EncoderId,
    /// Family-specific configuration, JSON.
    pub config: String,
    /// Parameter arrays, in a fixed order.
    pub tensors: Vec<StoredTensor>,
}

impl TransformFile {
    /// sha256 (hex) of family, configuration and every parameter array (names sorted).
    pub fn parameters_sha256(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.family.as_bytes());
        hasher.update([0]);
        hasher.update(self.config.as_bytes());
        hasher.update([0]);
        let mut sorted: Vec<&StoredTensor> = self.tensors.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for t in sorted {
            hasher.update(t.name.as_bytes());
            hasher.update([0]);
            hasher.update(format!("{:?}{:?}", t.dtype, t.shape).as_bytes());
            hasher.update(&t.bytes);
        }
        hex::encode(hasher.finalize())
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut views = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let dtype = match t.dtype {
                StoredDtype::F32 => Dtype::F32,
                StoredDtype::F64 => Dtype::F64,
            };
            let view = TensorView::new(dtype, t.shape.clone(), &t.bytes)
                .map_err(|e| Error::Transform(format!("cannot store tensor {}: {e}", t.name)))?;
            views.push((t.name.clone(), view));
        }
        let metadata = HashMap::from([
            (FAMILY_KEY.to_string(), self.family.clone()),
            (ENCODER_KEY.to_string(), serde_json::to_string(&self.encoder)?),
            (CONFIG_KEY.to_string(), self.config.clone()),
            (FORMAT_KEY.to_string(), FORMAT_VERSION.to_string()),
        ]);
        let bytes = safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::Transform(format!("cannot serialise transform: {e}")))?;
        Ok(with_sorted_header(bytes))
    }

    /// Parses safetensors bytes; `origin` names the source in error messages.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self> {
        let damaged = |what: String| {
            Error::Transform(format!(
                "{}: not a readable isovec transform file ({what}); \
                 re-create it with `isovec fit whiten` or `isovec fit flow`",
                origin.display()
            ))
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| damaged(e.to_string()))?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| damaged(e.to_string()))?;
        let meta = header.metadata().as_ref().ok_or_else(|| damaged("no isovec metadata".into()))?;
        let get = |key: &str| meta.get(key).cloned().ok_or_else(|| damaged(format!("metadata has no `{key}`")));
        let format = get(FORMAT_KEY)?;
        if format != FORMAT_VERSION {
            return Err(damaged(format!("format version {format}, this isovec reads version {FORMAT_VERSION}")));
        }
        let family = get(FAMILY_KEY)?;
        let encoder: EncoderId =
            serde_json::from_str(&get(ENCODER_KEY)?).map_err(|e| damaged(format!("encoder metadata: {e}")))?;
        let config = get(CONFIG_KEY)?;
        let mut stored = Vec::new();
        for (name, view) in tensors.tensors() {
            let dtype = match view.dtype() {
                Dtype::F32 => StoredDtype::F32,
                Dtype::F64 => StoredDtype::F64,
                other => return Err(damaged(format!("tensor {name} has dtype {other:?}"))),
            };
            stored.push(StoredTensor { name, dtype, shape: view.shape().to_vec(), bytes: view.data().to_vec() });
        }
        Ok(TransformFile { family, encoder, config, tensors: stored })
    }

    /// Writes the file, replacing any file at `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::atomic_file::write_bytes(path, &self.to_bytes()?)
    }

    /// Reads a file written by [`TransformFile::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::user_file::read_regular(path, crate::user_file::MAX_TRANSFORM_BYTES, "transform file")?;
        Self::from_bytes(&bytes, path)
    }

    /// The array called `name`, which must have `shape`; `origin` names the file in errors.
    pub fn tensor(&self, name: &str, shape: &[usize], origin: &Path) -> Result<&StoredTensor> {
        let t = self.tensors.iter().find(|t| t.name == name).ok_or_else(|| {
            Error::Transform(format!(
                "{}: tensor `{name}` is missing; the file is damaged, re-fit the transform",
                origin.display()
            ))
        })?;
        if t.shape != shape {
            return Err(Error::Transform(format!(
                "{}: tensor `{name}` has shape {:?}, its configuration needs {:?}; \
                 the file is damaged, re-fit the transform",
                origin.display(),
                t.shape,
                shape
            )));
        }
        Ok(t)
    }
}
