//! Reading a store collection's documents as a fitting corpus (`--from store:DIR[#COLLECTION]`).

use anyhow::Context;

use crate::store::Store;

/// The texts of every live document of `DIR[#COLLECTION]` (collection `default` if not named),
/// and its recorded pipeline if any.
pub fn read_collection(spec: &str) -> anyhow::Result<(Vec<String>, Option<crate::PipelineSpec>)> {
    let (dir, collection) = spec.split_once('#').unwrap_or((spec, "default"));
    let store = Store::open_existing(dir).with_context(|| format!("opening the store {dir}"))?;
    let collection = store.collection(collection)?;
    let recorded = collection.spec()?;
    let mut texts = Vec::new();
    for id in collection.ids()? {
        if let Some(doc) = collection.get(&id)? {
            texts.push(doc.text);
        }
    }
    Ok((texts, recorded))
}
