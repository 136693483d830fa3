//! Vector files: 2-D little-endian f32 arrays in NumPy's `.npy` format (version 1.0).
//!
//! `.npy` is what Python tooling writes with `numpy.save(path, array.astype('<f4'))`, so vectors
//! can be exchanged without a custom format. Only C-order `<f4` arrays of shape `(rows, dims)`
//! are accepted.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// A dense row-major matrix of f32 vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Vectors {
    /// Number of dimensions of each row.
    pub dims: usize,
    /// `rows * dims` values, row after row.
    pub data: Vec<f32>,
}

impl Vectors {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        if self.dims == 0 {
            0
        } else {
            self.data.len() / self.dims
        }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }
}

/// Writes vectors as a `.npy` file.
pub fn write_npy(path: &Path, vectors: &Vectors) -> Result<()> {
    let io = |e| Error::io(path, e);
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        vectors.rows(),
        vectors.dims
    );
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple
    // of 64 and ended by a newline, as the format asks.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&[1, 0]).map_err(io)?;
    w.write_all(&(header.len() as u16).to_le_bytes()).map_err(io)?;
    w.write_all(header.as_bytes()).map_err(io)?;
    for x in &vectors.data {
        w.write_all(&x.to_le_bytes()).map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(())
}

/// Reads a `.npy` file of shape `(rows, dims)` and dtype `<f4`.
pub fn read_npy(path: &Path) -> Result<Vectors> {
    let bad = |message: String| Error::Data {
        path: path.to_path_buf(),
        line: 0,
        message: format!("{message}; expected a .npy file of dtype '<f4' and shape (rows, dims), e.g. numpy.save(path, x.astype('<f4'))"),
    };
    let mut r = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
    let mut pre = [0u8; 10];
    r.read_exact(&mut pre).map_err(|e| Error::io(path, e))?;
    if &pre[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let (header_len, extra) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 0),
        2 | 3 => {
            let mut more = [0u8; 2];
            r.read_exact(&mut more).map_err(|e| Error::io(path, e))?;
            (u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize, 2)
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let _ = extra;
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    let header = String::from_utf8_lossy(&header);
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("'descr':'<f4'") {
        return Err(bad(format!("dtype is not '<f4' (header {header:?})")));
    }
    if !compact.contains("'fortran_order':False") {
        return Err(bad("Fortran-order arrays are not supported".into()));
    }
    let shape = compact
        .split("'shape':(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(format!("no shape in header {header:?}")))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad(format!("bad shape ({shape})")))?;
    let [rows, dims] = dims[..] else {
        return Err(bad(format!("shape ({shape}) is not 2-D")));
    };
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() != rows * dims * 4 {
        return Err(bad(format!(
            "data holds {} bytes, shape ({rows}, {dims}) needs {}",
            bytes.len(),
            rows * dims * 4
        )));
    }
    let data = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Vectors { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let v = Vectors {
            dims: 3,
            data: (0..12).map(|i| i as f32 * 0.5 - 1.0).collect(),
        };
        write_npy(&path, &v).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // The header is padded so the data starts on a 64-byte boundary.
        assert_eq!((bytes.len() - 48) % 64, 0);
        assert_eq!(read_npy(&path).unwrap(), v);
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        assert!(read_npy(&path).is_err());
        std::fs::write(&path, b"hello world, not numpy").unwrap();
        assert!(read_npy(&path).is_err());
    }
}
