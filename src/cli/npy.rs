//! The `.npy` files of `isovec index --vectors` and `isovec search --query-vector`: vectors made
//! outside isovec, read by [`crate::store::vecfile::read_npy_floats`] (float32 or float64, C order,
//! little-endian) and checked whole (shape, NaN, infinity, zero rows) before anything is written.

use std::path::Path;

use anyhow::bail;

use crate::store::vecfile::{read_npy_floats, FloatArray, Vectors};

/// The documents' vectors: a 2-D array, one non-zero finite row per document.
pub fn document_vectors(path: &Path) -> anyhow::Result<Vectors> {
    let array = read_npy_floats(path)?;
    let [rows, dims] = array.shape[..] else {
        bail!(
            "{}: the array has shape {}; give a 2-D array of shape (documents, dims), one row per document of \
             the corpus in its order (e.g. numpy.save(path, x.reshape(len(x), -1)))",
            path.display(),
            array.shape_text()
        );
    };
    if dims == 0 || rows == 0 {
        bail!(
            "{}: the array has shape ({rows}, {dims}), no vectors; give one row of the model's vector per document",
            path.display()
        );
    }
    check_rows(path, &array, dims)?;
    Ok(Vectors { dims, data: array.data })
}

/// The query's vector: an array of shape `(dims,)` or `(1, dims)`.
pub fn query_vector(path: &Path) -> anyhow::Result<Vec<f32>> {
    let array = read_npy_floats(path)?;
    let dims = match array.shape[..] {
        [dims] | [1, dims] if dims > 0 => dims,
        _ => bail!(
            "{}: the array has shape {}; --query-vector takes one vector, of shape (dims,) or (1, dims) \
             (e.g. numpy.save(path, q.reshape(-1)))",
            path.display(),
            array.shape_text()
        ),
    };
    check_rows(path, &array, dims)?;
    Ok(array.data)
}

/// Every row of `dims` values must be finite and not all zero (cosine needs a direction).
fn check_rows(path: &Path, array: &FloatArray, dims: usize) -> anyhow::Result<()> {
    for (i, row) in array.data.chunks_exact(dims).enumerate() {
        if let Some(x) = row.iter().find(|x| !x.is_finite()) {
            let beyond = if array.float64 && !x.is_nan() { " (a float64 value beyond float32's range)" } else { "" };
            bail!(
                "{}: row {i} (x[{i}] in NumPy) holds {x}{beyond}; every vector must be finite: fix or drop that \
                 row and its document, nothing was written",
                path.display()
            );
        }
        if row.iter().all(|x| *x == 0.0) {
            bail!(
                "{}: row {i} (x[{i}] in NumPy) is all zeros, which has no direction to compare by cosine: fix or \
                 drop that row and its document, nothing was written",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn rows_are_checked_and_query_shapes_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        std::fs::write(&p, npy("<f4", "(2, 2)", &f32s(&[1.0, 0.0, 0.0, 2.0]))).unwrap();
        assert_eq!(document_vectors(&p).unwrap(), Vectors { dims: 2, data: vec![1.0, 0.0, 0.0, 2.0] });
        // A (1, d) matrix is a query; a (2, d) one is not.
        std::fs::write(&p, npy("<f4", "(1, 2)", &f32s(&[1.0, 0.0]))).unwrap();
        assert_eq!(query_vector(&p).unwrap(), vec![1.0, 0.0]);
        std::fs::write(&p, npy("<f4", "(2, 2)", &f32s(&[1.0, 0.0, 0.0, 2.0]))).unwrap();
        assert!(query_vector(&p).unwrap_err().to_string().contains("one vector"));
        let f8: Vec<u8> = [0.5f64, 1.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&p, npy("<f8", "(2,)", &f8)).unwrap();
        assert_eq!(query_vector(&p).unwrap(), vec![0.5, 1.5]);
        assert!(document_vectors(&p).unwrap_err().to_string().contains("shape (2,)"));
        std::fs::write(&p, npy("<f4", "(2, 2)", &f32s(&[1.0, 0.0, f32::NAN, 2.0]))).unwrap();
        let e = document_vectors(&p).unwrap_err().to_string();
        assert!(e.contains("row 1 ") && e.contains("NaN"), "{e}");
        std::fs::write(&p, npy("<f4", "(2, 2)", &f32s(&[1.0, 0.0, 0.0, 0.0]))).unwrap();
        assert!(document_vectors(&p).unwrap_err().to_string().contains("row 1 (x[1] in NumPy) is all zeros"));
        let huge: Vec<u8> = [1e300f64, 1.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&p, npy("<f8", "(1, 2)", &huge)).unwrap();
        assert!(document_vectors(&p).unwrap_err().to_string().contains("beyond float32's range"));
        std::fs::write(&p, npy("<f4", "(0, 3)", &[])).unwrap();
        assert!(document_vectors(&p).unwrap_err().to_string().contains("no vectors"));
    }
}
