//! The one error type of the isovec library.

use std::path::PathBuf;

/// Everything that can go wrong in isovec; each message says what to do next.
///
/// New variants may be added, so a `match` needs a catch-all arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A model folder is missing a file or tensor, or holds one of the wrong shape.
    #[error("model: {0}")]
    Model(String),
    /// A data file (benchmark, corpus, documents) has a line that cannot be parsed.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The caller passed something isovec cannot use (the message names the valid choices).
    #[error("{0}")]
    InvalidInput(String),
    /// A vector has the wrong number of dimensions.
    #[error("wrong dimension: expected {expected}, got {found}")]
    Dimension {
        /// The collection's or pipeline's number of dimensions.
        expected: usize,
        /// The vector's.
        found: usize,
    },
    /// Vectors from one pipeline were used where another pipeline's are expected.
    #[error("pipeline mismatch: expected {expected}, got {found}")]
    PipelineMismatch {
        /// The pipeline the collection holds vectors of.
        expected: String,
        /// The pipeline that was given.
        found: String,
    },
    /// A transform file (whitening, flow) is damaged or does not fit.
    #[error("transform: {0}")]
    Transform(String),
    /// Another process (or another handle in this one) has the store open.
    #[error(
        "store: store {} is already open{}; {}",
        path.display(),
        holder.as_ref().map_or(String::new(), |h| format!(" by process {h}")),
        server.as_ref().map_or_else(
            || "close the other process (or handle) first, or use another directory".to_string(),
            |url| format!(
                "that process is a server (isovec serve) at {url}: reach the store through it \
                 (Python: isovec.connect(\"{url}\"); CLI: --server {url}), or stop it first"
            )
        )
    )]
    Locked {
        /// The store directory.
        path: PathBuf,
        /// The process id recorded in the lock file, when one is.
        holder: Option<String>,
        /// The address of the server (`isovec serve`) that holds it, when one does.
        server: Option<String>,
    },
    /// A directory that is neither empty nor an isovec store.
    #[error(
        "store: {} is not an isovec store (it has no {} and is not empty); give a new or empty directory",
        path.display(),
        // `store::layout::MARKER_FILE`, written out so that errors depend on no module (a test
        // there checks that the two agree).
        "isovec-store.json"
    )]
    NotAStore {
        /// The directory.
        path: PathBuf,
    },
    /// An existing store was asked for where there is none.
    #[error("store: no store in {}; create one first (e.g. with `isovec index --store {}`)", path.display(), path.display())]
    NoStore {
        /// The directory.
        path: PathBuf,
    },
    /// A store written in a format (or by a program) this isovec does not read.
    #[error("store: {} has format {found} of kind {kind:?}; this isovec reads format {supported}", path.display())]
    VersionMismatch {
        /// The store directory.
        path: PathBuf,
        /// The format the store's marker names.
        found: u32,
        /// The kind the store's marker names (`isovec` for an isovec store).
        kind: String,
        /// The format this isovec reads.
        supported: u32,
    },
    /// Stored data is damaged: a database record, a collection's configuration, the store's
    /// marker, an index snapshot or the text index.
    #[error("store: {what}")]
    Damaged {
        /// What is damaged, and what to do about it.
        what: String,
        /// The damaged file or folder, when it is one.
        path: Option<PathBuf>,
    },
    /// The collection was dropped, or replaced by a re-embedding, while this handle was held.
    #[error(
        "store: collection {collection} was dropped or re-embedded while this handle was held; take the collection \
         from the store again (or create it again)"
    )]
    Dropped {
        /// The collection's name.
        collection: String,
    },
    /// The database (sled) failed to read or write.
    #[error("store: {0}")]
    Database(String),
    /// An index (HNSW or full-text) could not be built, written or read.
    #[error("store: {0}")]
    Index(String),
    /// A thread panicked while it held a lock; the handle cannot be trusted any more.
    #[error("store: a thread panicked while {0}; reopen the store")]
    Poisoned(&'static str),
    /// A background task of the store stopped or failed.
    #[error("store: {0}")]
    Background(String),
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
        Error::Io { path: path.into(), source }
    }
}
