//! Re-embedding: a collection's stored texts encoded again by another pipeline, into a new
//! collection built beside the old one and swapped in under the same name once complete.
//!
//! Crash safety: the new generation's tree and index folder (see `layout`) are named by no
//! configuration until the swap, which is one durable write of the collection's configuration.
//! A crash before it leaves the old collection whole, a crash after it the new one; either way
//! the other generation's leftovers are removed when the store opens again.

use std::fs;

use super::collection::{check_spec, Collection};
use super::layout::{self, db_error, CollectionConfig, PIPELINE_KEY};
use super::{Passages, Store, TextDoc};
use crate::progress::Progress;
use crate::{Embedder, Error, PipelineId, Result};

/// Documents re-encoded per call to the embedder.
const REEMBED_BATCH: usize = 256;

/// What [`Store::reembed`] did.
#[derive(Clone, Debug)]
pub struct ReembedReport {
    /// Documents re-encoded.
    pub documents: usize,
    /// Vectors written (a document split into passages has several).
    pub vectors: usize,
    /// Texts longer than the new encoder's limit, which lost their tail in the dense index.
    pub truncated: usize,
    /// The pipeline of the vectors replaced.
    pub from: PipelineId,
    /// The pipeline of the vectors now in the collection.
    pub to: PipelineId,
}

impl Store {
    /// Encodes the stored texts of collection `name` again with `embedder`, into a new
    /// collection that replaces the old one under the same name once it is complete, with the
    /// same ids, texts, metadata and index parameters, and `embedder`'s pipeline recorded.
    /// A document stored as several passages is split again, into passages of the new
    /// encoder's limit.
    ///
    /// Writes to the collection wait until the re-embedding is over; searches go on in the old
    /// vectors until the swap. Handles to the collection taken before the swap are then stale
    /// (their writes get [`Error::Dropped`]): take the collection again.
    pub fn reembed(&self, name: &str, embedder: &dyn Embedder, progress: &dyn Progress) -> Result<ReembedReport> {
        let old = self.collection(name)?;
        // Lock order: the collection's writer lock, then the map of open collections.
        let writer = old.hold_writes()?;
        let old_config = old.config().clone();
        let config = CollectionConfig {
            dims: embedder.dims(),
            pipeline: embedder.id().clone(),
            generation: old_config.generation.checked_add(1).ok_or_else(|| {
                Error::InvalidInput(format!("collection {name:?} was re-embedded too often; export and import it"))
            })?,
            ..old_config.clone()
        };
        config.validate()?;
        // The new generation, after any leftovers of an interrupted re-embedding.
        let tree_name = layout::collection_tree(name, config.generation);
        self.db.drop_tree(&tree_name).map_err(db_error)?;
        let index_dir = self.index_dir(name, config.generation)?;
        if index_dir.exists() {
            fs::remove_dir_all(&index_dir).map_err(|e| Error::io(&index_dir, e))?;
        }
        let tree = self.db.open_tree(&tree_name).map_err(db_error)?;
        if let Some(spec) = embedder.spec()? {
            check_spec(&spec, &config)?;
            tree.insert(PIPELINE_KEY, spec.to_json()?).map_err(db_error)?;
        }
        let new = Collection::open(name, config.clone(), self.shared(), tree, index_dir)?;
        let mut report = ReembedReport {
            documents: 0,
            vectors: 0,
            truncated: 0,
            from: old_config.pipeline.clone(),
            to: config.pipeline.clone(),
        };
        progress.start(&format!("re-embedding {name}"), old.count()? as usize);
        let mut whole: Vec<TextDoc> = Vec::new();
        let mut split: Vec<TextDoc> = Vec::new();
        let mut write = |whole: &mut Vec<TextDoc>, split: &mut Vec<TextDoc>| -> Result<()> {
            for (docs, passages) in [(whole, false), (split, true)] {
                if docs.is_empty() {
                    continue;
                }
                let written = if passages {
                    new.add_texts_in_passages_with(embedder, docs, Passages::default())?
                } else {
                    new.add_texts_with(embedder, docs)?
                };
                report.documents += docs.len();
                report.vectors += written.passages;
                report.truncated += written.truncated;
                progress.advance(docs.len());
                docs.clear();
            }
            Ok(())
        };
        old.for_each_document_locked(&writer, &mut |doc| {
            let text = TextDoc { id: doc.id, text: doc.text, metadata: doc.metadata };
            if doc.vectors.len() > 1 {
                split.push(text);
            } else {
                whole.push(text);
            }
            if whole.len() + split.len() >= REEMBED_BATCH {
                write(&mut whole, &mut split)?;
            }
            Ok(())
        })?;
        write(&mut whole, &mut split)?;
        new.snapshot()?;
        // The swap: one durable write names the new generation.
        {
            let mut open = self.lock_open()?;
            self.configs.insert(name, serde_json::to_vec(&config)?).map_err(db_error)?;
            self.durable.flush(&self.db)?;
            old.mark_dropped(&writer);
            open.insert(name.to_string(), new);
        }
        drop(writer);
        self.remove_leftovers(Some(name))?;
        progress.finish();
        Ok(report)
    }
}
