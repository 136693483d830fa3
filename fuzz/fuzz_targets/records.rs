//! Decoding what the store reads back from sled: document and vector records, counters, keys and
//! a collection's configuration. Damaged bytes are refused, never a panic; what decodes encodes
//! back to the same bytes.
#![no_main]

use isovec::store::layout::{decode_u64, internal_id_of, DocRecord, VectorRecord};
use isovec::store::CollectionConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = DocRecord::decode(data) {
        assert_eq!(doc.encode(), data);
    }
    if let Ok(record) = VectorRecord::decode(data) {
        assert_eq!(VectorRecord::encode(&record.external_id, &record.vector), data);
        assert_eq!(VectorRecord::decode_external_id(data).unwrap(), record.external_id);
    }
    let _ = VectorRecord::decode_external_id(data);
    if let Ok(n) = decode_u64(Some(data)) {
        assert_eq!(n.to_le_bytes(), data);
    }
    let _ = internal_id_of(data);
    if let Ok(config) = serde_json::from_slice::<CollectionConfig>(data) {
        let _ = config.validate();
    }
});
