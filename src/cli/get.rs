//! `isovec get`: documents by id, or those a filter allows, as JSON lines, from a store
//! directory or through the server that owns it (the same request, [`crate::api::GetRequest`]).

use super::remote;
use super::store_cmds::{self, GetArgs};
use crate::api::{ApiCollection, GetRequest, Where};
use crate::encoder::EncoderOptions;

/// Runs `isovec get` on a store directory, or through a server.
pub fn run(args: &GetArgs) -> anyhow::Result<()> {
    let req = GetRequest {
        ids: (!args.ids.is_empty()).then(|| args.ids.clone()),
        filter: args.filter.clone().map(Where::Expression),
        offset: args.offset,
        limit: args.limit,
        ..GetRequest::default()
    };
    let got = match remote::Remote::of(&args.target)? {
        Some(remote) => remote::get(&remote, &args.target, req)?,
        None => {
            let store = store_cmds::open_store(args.target.dir()?, false, &EncoderOptions::default())?;
            let collection = ApiCollection::new(store.collection(&args.target.collection)?, None);
            collection.get(&req)?
        }
    };
    let texts = got.documents.unwrap_or_default();
    let metadata = got.metadatas.unwrap_or_default();
    for ((id, text), metadata) in got.ids.iter().zip(texts).zip(metadata) {
        println!("{}", serde_json::json!({"id": id, "text": text, "metadata": metadata}));
    }
    Ok(())
}
