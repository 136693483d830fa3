//! A collection's advised search (`#advice` in its tree, see `layout`): the search mode and the
//! hybrid fusion that `isovec advise` chose on the collection's own pseudo-queries, without
//! labels, for the pipeline that made its vectors. A hybrid search given [`Fusion::Auto`] fuses
//! with this record's fusion.
//!
//! Invariant, enforced by [`Collection::resolve_fusion`]: a record is used only with the vectors
//! it was chosen for (its pipeline id is the collection's); a record of other vectors (the
//! collection re-embedded since) or none is an error that says to run `advise` again. Re-embedding
//! starts a new tree, so a record never outlives its vectors silently.

use serde::{Deserialize, Serialize};

use super::Collection;
use crate::store::fusion::{Fusion, RRF_K};
use crate::store::layout::{db_error, ADVICE_KEY};
use crate::{Error, PipelineId, Result};

/// What `advise` chose for a collection, as the collection records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdvisedSearch {
    /// The vectors it was chosen for.
    pub pipeline: PipelineId,
    /// The recommended search mode: `dense`, `lexical` or `hybrid`.
    pub mode: String,
    /// The hybrid fusion chosen: `convex` or `rrf`.
    pub fusion: String,
    /// The dense side's weight of the convex fusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
    /// The recommended pipeline's name in the advice (`hybrid:raw@convex=0.6`, `whiten-256`, …).
    pub recommended: String,
    /// Pseudo-queries it was chosen on.
    pub queries: usize,
    /// Their seed.
    pub seed: u64,
    /// Seconds since the Unix epoch when it was recorded.
    pub recorded_at: u64,
}

impl AdvisedSearch {
    /// The fusion as the search uses it.
    pub fn fusion(&self) -> Result<Fusion> {
        match (self.fusion.as_str(), self.alpha) {
            ("rrf", _) => Ok(Fusion::Rrf { k: RRF_K }),
            ("convex", Some(alpha)) => {
                let f = Fusion::Convex { alpha };
                f.validate()?;
                Ok(f)
            }
            _ => Err(Error::InvalidInput(format!(
                "the advised search records an unknown fusion {:?}; run `isovec advise` again",
                self.fusion
            ))),
        }
    }
}

impl Collection {
    /// The advised search recorded by `advise`, if any (whatever vectors it was chosen for).
    pub fn advised_search(&self) -> Result<Option<AdvisedSearch>> {
        self.check_alive()?;
        match self.inner.tree.get(ADVICE_KEY).map_err(db_error)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::InvalidInput(format!(
                    "collection {:?}: its advised search record is damaged ({e}); run `isovec advise` again",
                    self.inner.name
                ))
            }),
        }
    }

    /// Records `advice` durably; it must be for this collection's vectors.
    pub fn record_advised_search(&self, advice: &AdvisedSearch) -> Result<()> {
        self.check_alive()?;
        if advice.pipeline != self.inner.config.pipeline {
            return Err(Error::PipelineMismatch {
                expected: format!("{} (collection {})", self.inner.config.pipeline, self.inner.name),
                found: format!("{} (the advice's)", advice.pipeline),
            });
        }
        advice.fusion()?;
        self.inner.tree.insert(ADVICE_KEY, serde_json::to_vec(advice)?).map_err(db_error)?;
        self.inner.durable.flush(&self.inner.db)
    }

    /// `fusion` itself, or for [`Fusion::Auto`] the advised one (an error, saying what to do,
    /// where there is none for this collection's vectors).
    pub fn resolve_fusion(&self, fusion: Fusion) -> Result<Fusion> {
        if fusion != Fusion::Auto {
            return Ok(fusion);
        }
        let name = &self.inner.name;
        match self.advised_search()? {
            None => Err(Error::InvalidInput(format!(
                "collection {name:?} has no advised fusion: run `isovec advise --store DIR --collection {name}` once \
                 (it chooses the fusion on the collection's own texts, without labels), or give a fusion (convex \
                 with an alpha, or rrf)"
            ))),
            Some(a) if a.pipeline != self.inner.config.pipeline => Err(Error::InvalidInput(format!(
                "collection {name:?}: its advised fusion was chosen for other vectors ({}), before the collection \
                 was re-embedded into {}; run `isovec advise` again",
                a.pipeline, self.inner.config.pipeline
            ))),
            Some(a) => a.fusion(),
        }
    }
}
