//! Vectors as SQL BLOBs: little-endian f32, 4 bytes per dimension, no header.

/// Encodes a vector as little-endian f32 bytes.
pub fn to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes a BLOB written by [`to_blob`]; `what` names the argument in the error.
pub fn from_blob(bytes: &[u8], what: &str) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{what} is a BLOB of {} bytes, not a vector of little-endian f32 (4 bytes each); \
             make vectors with isovec_embed(), or pack another model's as little-endian float32 \
             (NumPy: x.astype('<f4').tobytes())",
            bytes.len()
        ));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_little_endian() {
        let v = [1.0f32, -0.5, 3.25e-8, f32::MAX];
        let b = to_blob(&v);
        assert_eq!(b.len(), 16);
        // 1.0f32 is 0x3f800000: little-endian puts the low byte first.
        assert_eq!(&b[..4], &[0x00, 0x00, 0x80, 0x3f]);
        assert_eq!(from_blob(&b, "x").unwrap(), v);
    }

    #[test]
    fn rejects_ragged_blobs() {
        let err = from_blob(&[0u8; 7], "the first argument").unwrap_err();
        assert!(err.contains("7 bytes"), "{err}");
    }
}
