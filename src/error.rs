//! The one error type of the isovec library.

use std::path::PathBuf;

/// Everything that can go wrong in isovec; each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A model folder is missing a file or tensor, or holds one of the wrong shape.
    #[error("model: {0}")]
    Model(String),
    /// A data file (benchmark, corpus, documents) has a line that cannot be parsed.
    #[error("{path}:{line}: {message}")]
    Data {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The caller passed something isovec cannot use (the message names the valid choices).
    #[error("{0}")]
    InvalidInput(String),
    /// A vector has the wrong number of dimensions.
    #[error("wrong dimension: expected {expected}, got {found}")]
    Dimension { expected: usize, found: usize },
    /// Vectors from one pipeline were used where another pipeline's are expected.
    #[error("pipeline mismatch: expected {expected}, got {found}")]
    PipelineMismatch { expected: String, found: String },
    /// A transform file (whitening, flow) is damaged or does not fit.
    #[error("transform: {0}")]
    Transform(String),
    /// The store or its index is damaged, locked or misused.
    #[error("store: {0}")]
    Store(String),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    /// JSON could not be read or written.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result with isovec's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
