//! isovec's Python extension, `isovec._native`: the pipeline, the store and its collections.
//!
//! The package `isovec` (python/isovec) wraps these classes in Python types (numpy arrays, dicts,
//! lists). Every call releases the GIL while isovec works. Every isovec error becomes the
//! exception of `isovec.errors` its kind maps to ([`Failure`]), with isovec's message; a panic
//! inside isovec is caught here and raised as `isovec.errors.IsovecError`, never unwound into
//! Python; the extension prints nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};

use isovec::api::ApiError;
use pyo3::exceptions::{PyException, PyRuntimeWarning};
use pyo3::prelude::*;
use pyo3::types::PyType;

mod collection;
mod pipeline;
mod store;

/// An error on its way to Python: the name of its class in `isovec.errors`, and the message.
pub(crate) struct Failure {
    class: &'static str,
    message: String,
}

impl Failure {
    pub(crate) fn new(class: &'static str, message: impl Into<String>) -> Failure {
        Failure { class, message: message.into() }
    }

    /// Bad input from the caller (`InvalidInputError`, also a `ValueError`).
    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new("InvalidInputError", message)
    }

    fn into_py(self, py: Python<'_>) -> PyErr {
        let class = py
            .import("isovec.errors")
            .and_then(|m| m.getattr(self.class))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => PyErr::from_type(class, self.message),
            Err(_) => PyException::new_err(self.message),
        }
    }
}

impl From<isovec::Error> for Failure {
    fn from(e: isovec::Error) -> Failure {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::new(e.kind.python_class(), e.message)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::invalid(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::invalid(message)
    }
}

/// What the closures run without the GIL return.
pub(crate) type Outcome<T> = Result<T, Failure>;

/// Runs `f` without the GIL, turning its error, or a panic, into the matching Python exception.
pub(crate) fn call<T: Send>(py: Python<'_>, f: impl FnOnce() -> Outcome<T> + Send) -> PyResult<T> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failure)) => Err(failure.into_py(py)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Failure::new("IsovecError", format!("internal error in isovec ({what}); please report it")).into_py(py))
        }
    }
}

/// Rows of `dims` f32 values from little-endian bytes (numpy's `<f4`, C order).
pub(crate) fn rows_of(bytes: &[u8], rows: usize, dims: usize, what: &str) -> Outcome<Vec<Vec<f32>>> {
    if dims == 0 || bytes.len() != rows * dims * 4 {
        return Err(Failure::invalid(format!(
            "{what}: {} bytes are not {rows} rows of {dims} float32 values; give a 2-D array with one row each",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(dims * 4)
        .map(|row| row.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        .collect())
}

/// Little-endian f32 bytes of `rows`, row after row.
pub(crate) fn bytes_of<'a>(rows: impl IntoIterator<Item = &'a Vec<f32>>) -> Vec<u8> {
    rows.into_iter().flatten().flat_map(|x| x.to_le_bytes()).collect()
}

/// Metadata JSON texts (one per document, None for none) as values.
pub(crate) fn metadata_values(
    ids: &[String],
    metadata: Option<Vec<Option<String>>>,
) -> Outcome<Vec<serde_json::Value>> {
    let Some(metadata) = metadata else {
        return Ok(vec![serde_json::Value::Null; ids.len()]);
    };
    ids.iter()
        .zip(metadata)
        .map(|(id, json)| match json {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| Failure::invalid(format!("metadata of {id:?} is not JSON: {e}"))),
            None => Ok(serde_json::Value::Null),
        })
        .collect()
}

/// Sets what the isovec command line sets for CPU encoding in a process that encodes only (one
/// candle thread per operation, allocator thresholds) and returns True, if the process runs no
/// other thread yet. Otherwise it changes nothing — changing the environment or the allocator
/// while other threads may use them is unsound, and importing numpy alone starts threads — warns
/// (RuntimeWarning) with the variables to set in the environment before Python starts instead
/// (`isovec::encoder::TUNING_ENV`), and returns False.
#[pyfunction]
fn tune_process(py: Python<'_>) -> PyResult<bool> {
    match isovec::encoder::tune_process() {
        Ok(()) => Ok(true),
        Err(e) => {
            let message = std::ffi::CString::new(e.to_string()).unwrap_or_default();
            PyErr::warn(py, py.get_type::<PyRuntimeWarning>().as_any(), &message, 1)?;
            Ok(false)
        }
    }
}

/// The module `isovec._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<pipeline::Pipeline>()?;
    m.add_class::<store::Store>()?;
    m.add_class::<collection::Collection>()?;
    m.add_function(wrap_pyfunction!(tune_process, m)?)?;
    m.add("TUNING_ENV", isovec::encoder::TUNING_ENV)?;
    Ok(())
}
