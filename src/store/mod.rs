//! The embedded store: collections of documents in sled, each with an HNSW index that survives
//! restarts.
//!
//! sled is the source of truth; the index is derived state, snapshotted to files and rebuilt
//! from sled when a snapshot is missing or damaged. A [`Store`] is `Send + Sync`: many threads
//! may search while one writes.
//!
//! ```no_run
//! # fn main() -> isovec::Result<()> {
//! # let pipeline: isovec::PipelineId = unimplemented!();
//! use isovec::store::{CollectionConfig, Doc, SearchParams, Store};
//! let store = Store::open("my-store")?;
//! let docs = store.create_collection("notes", CollectionConfig::new(3, pipeline))?;
//! docs.upsert(&[Doc { id: "a".into(), text: "hello".into(), metadata: serde_json::json!({"lang": "en"}), vector: vec![1.0, 0.0, 0.0] }])?;
//! let hits = docs.search(&[1.0, 0.1, 0.0], &SearchParams::k(5))?;
//! # Ok(()) }
//! ```

#[cfg(feature = "async")]
pub mod async_api;
pub mod collection;
mod durable;
pub mod filter;
pub mod fusion;
mod graph;
mod graph_file;
pub(crate) mod index;
// The keys and records in sled: public only to isovec's own tests (the `test-support` feature),
// which read and damage them on purpose.
#[cfg(feature = "test-support")]
pub mod layout;
#[cfg(not(feature = "test-support"))]
pub(crate) mod layout;
mod metadata_index;
#[cfg(feature = "async")]
pub(crate) mod query_batcher;
mod reembed;
pub(crate) mod snapshot;
pub mod text_index;
pub(crate) mod vecfile;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Text as passages, lifted into the pipeline layer; kept here for the paths that name it.
pub use crate::pipeline::passages;
#[cfg(feature = "async")]
pub use async_api::AsyncStore;
pub use collection::{
    check_query_text, AdvisedSearch, Collection, CollectionStats, Doc, DocUpdate, Hit, ListParams, PassagesDoc,
    SearchParams, TextDoc, UpsertReport, MAX_QUERY_BYTES, MAX_TEXT_BYTES,
};
pub use durable::Durability;
pub use filter::{Filter, MAX_FILTER_DEPTH};
pub use fusion::{Fusion, SearchMode};
pub use layout::{CollectionConfig, HnswParams, LexicalParams, Metric};
pub use passages::Passages;
pub use reembed::ReembedReport;
pub use text_index::TextIndexStats;

use layout::{db_error, Marker, COLLECTIONS_TREE, FORMAT_VERSION, INDEX_DIR, LOCK_FILE, MARKER_FILE, SLED_DIR};

use crate::encoder::EncoderOptions;
use crate::progress::{Progress, Silent};
use crate::{Embedder, Error, PipelineId, PipelineSpec, Result};

/// An open store directory; close it with [`Store::close`] (or drop it) to snapshot the indexes.
///
/// The directory stays locked until the store and every [`Collection`] handle taken from it
/// are dropped.
pub struct Store {
    root: PathBuf,
    db: sled::Db,
    configs: sled::Tree,
    open: Mutex<HashMap<String, Collection>>,
    /// The advisory lock that keeps other processes out; collection handles share it, so the
    /// store stays locked until the last handle is dropped (sled's own lock lasts as long).
    lock: Arc<File>,
    /// Told about index rebuilds of the collections opened.
    progress: Arc<dyn Progress>,
    /// fsyncs sled's files after each write (shared with the collections).
    durable: Arc<durable::Durable>,
    /// How the collections' recorded pipelines run when opened (device, precision, batch size).
    encoder_options: EncoderOptions,
}

impl Store {
    /// Opens the store in `path`, creating it if the directory is missing or empty.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path.as_ref(), true)
    }

    /// Opens the store in `path`, which must already be a store.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path.as_ref(), false)
    }

    fn open_with(root: &Path, create: bool) -> Result<Store> {
        let marker_path = root.join(MARKER_FILE);
        if marker_path.exists() {
            let bytes = fs::read(&marker_path).map_err(|e| Error::io(&marker_path, e))?;
            let marker: Marker = serde_json::from_slice(&bytes).map_err(|_| Error::Damaged {
                what: format!("{} is damaged; this is not a readable isovec store", marker_path.display()),
                path: Some(marker_path.clone()),
            })?;
            if marker.kind != "isovec" || marker.format != FORMAT_VERSION {
                return Err(Error::VersionMismatch {
                    path: root.to_path_buf(),
                    found: marker.format,
                    kind: marker.kind,
                    supported: FORMAT_VERSION,
                });
            }
        } else {
            let empty = match fs::read_dir(root) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(Error::io(root, e)),
            };
            if !empty {
                return Err(Error::NotAStore { path: root.to_path_buf() });
            }
            if !create {
                return Err(Error::NoStore { path: root.to_path_buf() });
            }
            durable::create_dir_all(root)?;
        }
        let lock = lock_store(root)?;
        if !marker_path.exists() {
            let marker = Marker { kind: "isovec".into(), format: FORMAT_VERSION };
            crate::atomic_file::write_bytes(&marker_path, &serde_json::to_vec_pretty(&marker)?)?;
        }
        let db = open_sled(&root.join(SLED_DIR))?;
        let durable = Arc::new(durable::Durable::open(&root.join(SLED_DIR), Durability::default())?);
        let configs = db.open_tree(COLLECTIONS_TREE).map_err(db_error)?;
        let store = Store {
            root: root.to_path_buf(),
            db,
            configs,
            open: Mutex::new(HashMap::new()),
            lock: Arc::new(lock),
            progress: Arc::new(Silent),
            durable,
            encoder_options: EncoderOptions::default(),
        };
        store.remove_leftovers(None)?;
        Ok(store)
    }

    /// Removes the trees and index folders that no collection's configuration names (of
    /// collection `only`, if given): what a drop, or an interrupted creation, drop or
    /// re-embedding, left behind.
    fn remove_leftovers(&self, only: Option<&str>) -> Result<()> {
        let mut live = std::collections::HashSet::new();
        for kv in self.configs.iter() {
            let (k, v) = kv.map_err(db_error)?;
            let name = String::from_utf8_lossy(&k).into_owned();
            // A damaged configuration keeps every generation of its collection.
            let generation = serde_json::from_slice::<CollectionConfig>(&v).map(|c| c.generation).ok();
            live.insert((name, generation));
        }
        let is_live = |storage: &str| {
            let (name, generation) = layout::parse_storage_name(storage);
            if only.is_some_and(|only| only != name) {
                return true;
            }
            live.contains(&(name.to_string(), Some(generation))) || live.contains(&(name.to_string(), None))
        };
        for tree in self.db.tree_names() {
            let Some(storage) = tree.strip_prefix(b"col/") else { continue };
            if !is_live(&String::from_utf8_lossy(storage)) {
                self.db.drop_tree(&tree).map_err(db_error)?;
            }
        }
        let index = self.root.join(INDEX_DIR);
        if let Ok(entries) = fs::read_dir(&index) {
            for entry in entries.flatten() {
                if !is_live(&entry.file_name().to_string_lossy()) {
                    let path = entry.path();
                    fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        self.durable.flush(&self.db)
    }

    /// Sets how the collections' recorded pipelines run when opened from now on (device,
    /// precision, batch size; the maximum length is always the recorded one). By default: the
    /// CPU, f32, batches of 32.
    pub fn with_encoder_options(mut self, options: EncoderOptions) -> Store {
        self.encoder_options = options;
        self
    }

    /// Sets what the writes acknowledged from now on survive: a power cut
    /// ([`Durability::Fsync`], the default) or a crash of the process only ([`Durability::Flush`]).
    pub fn with_durability(self, durability: Durability) -> Store {
        self.durable.set(durability);
        self
    }

    /// What acknowledged writes survive.
    pub fn durability(&self) -> Durability {
        self.durable.durability()
    }

    /// Tells `progress` about the index rebuilds (of at least 10,000 entries) of the collections
    /// opened from now on; by default nobody is told.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Store {
        self.progress = progress;
        self
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Creates a collection of vectors given as they are (no pipeline recorded: searching it by
    /// text needs the embedder each time); errors if one of that name exists.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        self.create_collection_with(name, config, None)
    }

    /// Creates a collection for `embedder`'s vectors (with the default HNSW and BM25
    /// parameters) that records its pipeline, so that [`Collection::add_texts`] and
    /// [`Collection::search_text`] need nothing else, in any process. Errors if one of that name
    /// exists.
    pub fn create_collection_for(&self, name: &str, embedder: &dyn Embedder) -> Result<Collection> {
        let config = CollectionConfig::new(embedder.dims(), embedder.id().clone());
        self.create_collection_with(name, config, embedder.spec()?.as_ref())
    }

    /// Opens the collection `name` for `embedder`'s vectors, or creates it as
    /// [`Store::create_collection_for`] does. An existing collection must hold that pipeline's
    /// vectors; if it has no record of its pipeline yet (written before isovec recorded them),
    /// `embedder`'s is recorded.
    pub fn get_or_create_collection_for(&self, name: &str, embedder: &dyn Embedder) -> Result<Collection> {
        if self.config_of(name)?.is_none() {
            return self.create_collection_for(name, embedder);
        }
        let collection = self.collection(name)?;
        collection.check_pipeline(embedder)?;
        Ok(collection)
    }

    /// Creates a collection for vectors of `dims` dimensions made outside isovec by the model
    /// `model` (any name that tells them apart): it takes documents with their vectors
    /// ([`Collection::upsert`]) and searches by vector, lexically, or both (a query vector from
    /// that model with its text); isovec encodes no text into it. Errors if one of that name exists.
    pub fn create_external_collection(&self, name: &str, model: &str, dims: usize) -> Result<Collection> {
        let config = CollectionConfig::new(dims, PipelineId::external(model, dims));
        self.create_collection_with(name, config, Some(&PipelineSpec::external(model, dims)))
    }

    /// Opens the collection `name`, which must hold `dims`-dimensional vectors of the outside
    /// model `model`, or creates it as [`Store::create_external_collection`] does.
    pub fn get_or_create_external_collection(&self, name: &str, model: &str, dims: usize) -> Result<Collection> {
        let Some(existing) = self.config_of(name)? else {
            return self.create_external_collection(name, model, dims);
        };
        let wanted = PipelineId::external(model, dims);
        if existing.pipeline != wanted {
            let holds = if existing.pipeline.is_external() {
                format!(
                    "vectors of the outside model {:?} ({} dimensions)",
                    existing.pipeline.encoder.model, existing.dims
                )
            } else {
                format!("vectors isovec encodes with {}", existing.pipeline)
            };
            return Err(Error::InvalidInput(format!(
                "collection {name:?} holds {holds}, not {dims}-dimensional vectors of {model:?}; open it as it is, or \
                 choose another name"
            )));
        }
        self.collection(name)
    }

    /// Creates a collection with `config` that records `spec` (if given) before it exists.
    pub fn create_collection_with(
        &self,
        name: &str,
        config: CollectionConfig,
        spec: Option<&PipelineSpec>,
    ) -> Result<Collection> {
        let index_dir = self.index_dir(name, config.generation)?;
        config.validate()?;
        if let Some(spec) = spec {
            collection::check_spec(spec, &config)?;
        }
        let mut open = self.lock_open()?;
        if self.configs.get(name).map_err(db_error)?.is_some() {
            return Err(Error::InvalidInput(format!("collection {name:?} already exists; open it, or drop it first")));
        }
        // Index folders are named after collections, and file systems that ignore case (macOS,
        // Windows) would give two such names one folder.
        if let Some(other) = self.collection_names()?.into_iter().find(|n| n.eq_ignore_ascii_case(name)) {
            return Err(Error::InvalidInput(format!(
                "collection {name:?} differs from the existing {other:?} only in case, and would share its index folder \
                 on file systems that ignore case; choose another name, or open {other:?}"
            )));
        }
        // A tree or snapshot left by an interrupted drop must not leak into the new collection.
        let tree_name = layout::collection_tree(name, config.generation);
        self.db.drop_tree(&tree_name).map_err(db_error)?;
        if index_dir.exists() {
            fs::remove_dir_all(&index_dir).map_err(|e| Error::io(&index_dir, e))?;
        }
        // The record first, durably: the configuration makes the collection exist.
        if let Some(spec) = spec {
            let tree = self.db.open_tree(&tree_name).map_err(db_error)?;
            tree.insert(layout::PIPELINE_KEY, spec.to_json()?).map_err(db_error)?;
            self.durable.flush(&self.db)?;
        }
        self.configs.insert(name, serde_json::to_vec(&config)?).map_err(db_error)?;
        self.durable.flush(&self.db)?;
        let collection = self.load(name, config)?;
        open.insert(name.to_string(), collection.clone());
        Ok(collection)
    }

    /// Opens the collection `name`, or creates it with `config` if it does not exist; an
    /// existing collection must have the same dimension and pipeline.
    pub fn get_or_create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        match self.config_of(name)? {
            None => self.create_collection(name, config),
            Some(existing) => {
                if existing.pipeline != config.pipeline {
                    return Err(Error::PipelineMismatch {
                        expected: format!("{} (collection {name})", existing.pipeline),
                        found: format!("{} (the encoder given)", config.pipeline),
                    });
                }
                if existing.dims != config.dims {
                    return Err(Error::Dimension { expected: existing.dims, found: config.dims });
                }
                self.collection(name)
            }
        }
    }

    /// The collection `name` (its index is loaded on first use).
    pub fn collection(&self, name: &str) -> Result<Collection> {
        let mut open = self.lock_open()?;
        if let Some(c) = open.get(name) {
            return Ok(c.clone());
        }
        let Some(config) = self.config_of(name)? else {
            let names = self.collection_names()?;
            return Err(Error::InvalidInput(format!(
                "no collection {name:?} in {}; existing collections: [{}]",
                self.root.display(),
                names.join(", ")
            )));
        };
        let collection = self.load(name, config)?;
        open.insert(name.to_string(), collection.clone());
        Ok(collection)
    }

    /// Every collection and its configuration, by name; errors if one is damaged.
    pub fn list_collections(&self) -> Result<Vec<(String, CollectionConfig)>> {
        let mut out = Vec::new();
        for kv in self.configs.iter() {
            let (k, v) = kv.map_err(db_error)?;
            let name = String::from_utf8(k.to_vec()).map_err(|_| layout::damaged("collection name"))?;
            let config = layout::stored_config(&name, &v)?;
            out.push((name, config));
        }
        Ok(out)
    }

    /// The names of every collection (read without their configurations).
    fn collection_names(&self) -> Result<Vec<String>> {
        self.configs.iter().keys().map(|k| Ok(String::from_utf8_lossy(&k.map_err(db_error)?).into_owned())).collect()
    }

    /// Deletes a collection with its documents and index; returns whether it existed.
    ///
    /// A collection whose stored configuration is damaged can still be dropped.
    pub fn drop_collection(&self, name: &str) -> Result<bool> {
        // Validated before anything is touched: the name becomes a folder that is removed.
        layout::validate_collection_name(name)?;
        // Lock order: a collection's writer lock, then the map of open collections (a
        // re-embedding holds its collection's writer lock until it has swapped the map's entry).
        // The writer lock is held until the data is gone: a write in progress on any handle
        // finishes first, later ones get `Error::Dropped`.
        let mut handle = self.lock_open()?.get(name).cloned();
        loop {
            let writer = handle.as_ref().map(Collection::begin_drop).transpose()?;
            let mut open = self.lock_open()?;
            let current = open.get(name).cloned();
            let same = match (&handle, &current) {
                (None, None) => true,
                (Some(h), Some(c)) => h.same_as(c),
                _ => false,
            };
            if same {
                open.remove(name);
                let removed = self.configs.remove(name).map_err(db_error)?;
                self.durable.flush(&self.db)?;
                self.remove_leftovers(Some(name))?;
                drop(writer);
                return Ok(removed.is_some());
            }
            // Re-embedded meanwhile (the handle marked dropped was replaced anyway): again,
            // with the current handle.
            drop(open);
            drop(writer);
            handle = current;
        }
    }

    /// Snapshots the index of every collection opened so far that has unsnapshotted writes.
    pub fn snapshot(&self) -> Result<()> {
        let open: Vec<Collection> = self.lock_open()?.values().cloned().collect();
        for c in open {
            c.snapshot()?;
        }
        Ok(())
    }

    /// Snapshots and closes the store, reporting any error (dropping does the same silently).
    pub fn close(self) -> Result<()> {
        self.snapshot()?;
        self.durable.flush(&self.db)?;
        Ok(())
    }

    /// The stored configuration of `name`, checked (a damaged one must not reach the index).
    fn config_of(&self, name: &str) -> Result<Option<CollectionConfig>> {
        match self.configs.get(name).map_err(db_error)? {
            None => Ok(None),
            Some(v) => Ok(Some(layout::stored_config(name, &v)?)),
        }
    }

    fn load(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        // Every path to an index goes through here: created, opened, or listed then opened.
        layout::check_stored(name, &config)?;
        let index_dir = self.index_dir(name, config.generation)?;
        let tree = self.db.open_tree(layout::collection_tree(name, config.generation)).map_err(db_error)?;
        Collection::open(name, config, self.shared(), tree, index_dir)
    }

    /// What the store's collections share with it.
    fn shared(&self) -> collection::Shared {
        collection::Shared {
            db: self.db.clone(),
            lock: self.lock.clone(),
            progress: self.progress.clone(),
            durable: self.durable.clone(),
            encoder_options: self.encoder_options.clone(),
        }
    }

    /// The index folder of a generation of collection `name`; refuses names that are not plain
    /// folder names.
    fn index_dir(&self, name: &str, generation: u32) -> Result<PathBuf> {
        layout::validate_collection_name(name)?;
        Ok(self.root.join(INDEX_DIR).join(layout::storage_name(name, generation)))
    }

    fn lock_open(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Collection>>> {
        self.open.lock().map_err(|_| Error::Poisoned("opening a collection"))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.snapshot() {
            tracing::warn!(
                "store {}: snapshot on close failed ({e}); the next open replays or rebuilds",
                self.root.display()
            );
        }
        let _ = self.durable.flush(&self.db);
    }
}

/// How long to wait for sled's own file lock once isovec's lock is held.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the sled database. isovec's advisory lock is already held, so no other handle can be
/// open: a busy sled lock means a handle of this process was just dropped and sled's background
/// threads still hold the file for a moment. Wait for them (up to [`SLED_LOCK_WAIT`]).
///
/// sled's periodic flusher thread is off (`flush_every_ms(None)`): it fsyncs the log every 500 ms
/// but never the blob files, so its fsync could make durable a log that points to a blob a power
/// cut then loses, and sled's recovery would replay the rest of that write without it (a torn
/// batch). Only [`durable::Durable::flush`] fsyncs the log, always after the blobs (see there).
fn open_sled(dir: &Path) -> Result<sled::Db> {
    let start = std::time::Instant::now();
    loop {
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return Ok(db),
            // sled reports its lock failure as an `Other` error with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && start.elapsed() < SLED_LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(Error::Database(format!("opening the database in {}: {e}", dir.display()))),
        }
    }
}

/// Takes the store's advisory lock, failing at once if another process holds it.
fn lock_store(root: &Path) -> Result<File> {
    let path = root.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            // A server records its address beside its pid (src/server/mod.rs).
            let server = fs::read_to_string(root.join(layout::SERVER_FILE)).ok().and_then(|s| {
                let (pid, url) = s.trim().split_once(' ')?;
                (pid == holder).then(|| url.to_string())
            });
            return Err(Error::Locked {
                path: root.to_path_buf(),
                holder: (!holder.is_empty()).then(|| holder.to_string()),
                server,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    // Record who holds the lock so the error above can name it.
    let _ = file.set_len(0);
    let _ = (&file).write_all(std::process::id().to_string().as_bytes());
    Ok(file)
}

#[cfg(test)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Store>();
    is::<Collection>();
}
