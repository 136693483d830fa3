//! Vector files: 2-D little-endian f32 arrays in NumPy's `.npy` format (version 1.0).
//!
//! `.npy` is what Python tooling writes with `numpy.save(path, array.astype('<f4'))`, so vectors
//! can be exchanged without a custom format. [`read_npy`] takes C-order `<f4` arrays of shape
//! `(rows, dims)`; [`read_npy_floats`] takes C-order `<f4` or `<f8` arrays of any shape (vectors
//! made outside isovec, `isovec index --vectors`).

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Write};
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
        self.data.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }
}

/// Largest header accepted; NumPy's own reader refuses headers over 10,000 bytes by default.
const MAX_HEADER_LEN: usize = 1 << 16;

/// Writes vectors as a `.npy` file, replacing any file at `path` atomically.
pub fn write_npy(path: &Path, vectors: &Vectors) -> Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", vectors.rows(), vectors.dims);
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple
    // of 64 and ended by a newline, as the format asks.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    crate::atomic_file::write(path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&[1, 0])?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for x in &vectors.data {
            w.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    })
}

/// Reads a `.npy` file of shape `(rows, dims)` and dtype `<f4`.
///
/// Every length in the file is checked against the file's size before memory is reserved for
/// it, and the data is read in chunks straight into the result.
pub fn read_npy(path: &Path) -> Result<Vectors> {
    const EXPECTED: &str =
        "expected a .npy file of dtype '<f4' and shape (rows, dims), e.g. numpy.save(path, x.astype('<f4'))";
    let array = read_array(path, false, EXPECTED)?;
    let [rows, dims] = array.shape[..] else {
        return Err(npy_error(path, format!("shape {} is not 2-D", array.shape_text()), EXPECTED));
    };
    if dims == 0 {
        return Err(npy_error(path, format!("shape ({rows}, {dims}) has rows of 0 dimensions"), EXPECTED));
    }
    Ok(Vectors { dims, data: array.data })
}

/// A `.npy` array of floats of any shape, its values as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatArray {
    /// The shape, as the header gives it (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The values in C order, float64 ones rounded to f32 (those beyond f32's range become infinite).
    pub data: Vec<f32>,
    /// Whether the file held float64 (`<f8`) values.
    pub float64: bool,
}

impl FloatArray {
    /// The shape as Python writes it: `(3, 4)`, `(3,)`, `()`.
    pub fn shape_text(&self) -> String {
        shape_text(&self.shape)
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Reads a C-order little-endian `.npy` array of float32 (`<f4`) or float64 (`<f8`) of any
/// shape, versions 1 to 3; sizes are checked as [`read_npy`] checks them.
pub fn read_npy_floats(path: &Path) -> Result<FloatArray> {
    read_array(
        path,
        true,
        "expected a .npy file of little-endian float32 or float64 ('<f4', '<f8') in C order, e.g. \
         numpy.save(path, numpy.ascontiguousarray(x, dtype='<f4'))",
    )
}

fn npy_error(path: &Path, message: String, expected: &str) -> Error {
    Error::Data { path: path.to_path_buf(), line: 0, message: format!("{message}; {expected}") }
}

/// The reader behind [`read_npy`] and [`read_npy_floats`]: `<f4`, and `<f8` if `float64`;
/// `expected` ends every error message.
fn read_array(path: &Path, float64: bool, expected: &str) -> Result<FloatArray> {
    let bad = |message: String| npy_error(path, message, expected);
    let io = |e| Error::io(path, e);
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut r = BufReader::new(file);
    let mut read = |buf: &mut [u8], what: &str| match r.read_exact(buf) {
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            Err(bad(format!("the file ends inside the {what} ({file_len} bytes)")))
        }
        other => other.map_err(io),
    };
    let mut pre = [0u8; 10];
    read(&mut pre, "header")?;
    if &pre[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let (header_len, prefix_len) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10),
        2 | 3 => {
            let mut more = [0u8; 2];
            read(&mut more, "header")?;
            (u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize, 12)
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let after_prefix = file_len.saturating_sub(prefix_len);
    if header_len > MAX_HEADER_LEN || header_len as u64 > after_prefix {
        return Err(bad(format!(
            "header length {header_len} is larger than the file ({file_len} bytes) or than {MAX_HEADER_LEN}; the file is damaged"
        )));
    }
    let mut header = vec![0u8; header_len];
    read(&mut header, "header")?;
    let header = String::from_utf8(header).map_err(|_| bad("the header is not text".into()))?;
    let fields = parse_header(&header).ok_or_else(|| bad(format!("unreadable header {header:?}")))?;
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| bad(format!("the header has no '{key}' ({header:?})")))
    };
    let descr = field("descr")?;
    let width = match descr {
        "<f4" => 4,
        "<f8" if float64 => 8,
        _ => return Err(bad(format!("dtype is {descr:?}, not '<f4'{}", if float64 { " or '<f8'" } else { "" }))),
    };
    if field("fortran_order")? != "False" {
        return Err(bad("Fortran-order arrays are not supported".into()));
    }
    let shape_field = field("shape")?;
    let shape: Vec<usize> = shape_field
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad(format!("bad shape {shape_field}")))?;
    let data_len = after_prefix - header_len as u64;
    let needed =
        shape.iter().try_fold(width, |n: usize, d| n.checked_mul(*d)).filter(|&n| n as u64 == data_len).ok_or_else(
            || {
                let factors: Vec<String> = shape.iter().map(usize::to_string).collect();
                bad(format!(
                    "data holds {data_len} bytes, shape {} needs {} × {width}",
                    shape_text(&shape),
                    if factors.is_empty() { "1".to_string() } else { factors.join(" × ") }
                ))
            },
        )?;
    let mut data = Vec::with_capacity(needed / width);
    let mut chunk = vec![0u8; 1 << 16];
    let mut left = needed;
    while left > 0 {
        let n = left.min(chunk.len());
        read(&mut chunk[..n], "data")?;
        if width == 4 {
            data.extend(chunk[..n].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        } else {
            data.extend(
                chunk[..n]
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
            );
        }
        left -= n;
    }
    Ok(FloatArray { shape, data, float64: width == 8 })
}

/// The `key: value` pairs of a `.npy` header, a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`: strings unquoted, tuples and
/// other values as written. `None` if it is not such a literal.
fn parse_header(header: &str) -> Option<Vec<(String, String)>> {
    let mut rest = header.trim().strip_prefix('{')?.trim_end().strip_suffix('}')?;
    let mut fields = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(fields);
        }
        let (key, after) = quoted(rest)?;
        rest = after.trim_start().strip_prefix(':')?.trim_start();
        let value = if rest.starts_with(['\'', '"']) {
            let (v, after) = quoted(rest)?;
            rest = after;
            v.to_string()
        } else {
            // A tuple ends at its `)`; anything else at the next `,` (or the end).
            let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find(',').unwrap_or(rest.len()) };
            let v = rest[..end].trim().to_string();
            rest = &rest[end..];
            v
        };
        fields.push((key.to_string(), value));
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.is_empty() {
            return None;
        }
    }
}

/// A string in single or double quotes at the start of `s`, and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let end = s[1..].find(quote)? + 1;
    Some((&s[1..end], &s[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file with the given version-1 header and data bytes.
    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    fn error_for(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        std::fs::write(&path, bytes).unwrap();
        read_npy(&path).unwrap_err().to_string()
    }

    #[test]
    fn npy_round_trip_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let v = Vectors { dims: 3, data: (0..12).map(|i| i as f32 * 0.5 - 1.0).collect() };
        write_npy(&path, &v).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // The header is padded so the data starts on a 64-byte boundary.
        assert_eq!((bytes.len() - 48) % 64, 0);
        assert_eq!(read_npy(&path).unwrap(), v);
        // Values read back as their little-endian bytes say, independently decoded here.
        let data = &bytes[bytes.len() - 48..];
        assert_eq!(f32::from_le_bytes(data[4..8].try_into().unwrap()), -0.5);
        assert!(error_for(&bytes[..bytes.len() - 4]).contains("data holds 44 bytes"));
        assert!(error_for(&bytes[..20]).contains("header length"));
        assert!(error_for(&bytes[..7]).contains("ends inside the header"));
        assert!(error_for(b"hello world, not numpy").contains("bad magic"));
        // An empty matrix is a matrix.
        let empty = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }\n", &[]);
        std::fs::write(&path, empty).unwrap();
        assert_eq!(read_npy(&path).unwrap(), Vectors { dims: 5, data: vec![] });
    }

    #[test]
    fn npy_sizes_are_checked_before_anything_is_allocated() {
        // A version-2 header length of 4 GiB in a 12-byte file.
        let mut huge = MAGIC.to_vec();
        huge.extend([2, 0]);
        huge.extend(u32::MAX.to_le_bytes());
        let err = error_for(&huge);
        assert!(err.contains("header length 4294967295 is larger than the file (12 bytes)"), "{err}");
        // rows × dims × 4 overflows usize.
        let overflow =
            npy(&format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, 3), }}", usize::MAX / 2), &[0; 12]);
        let err = error_for(&overflow);
        assert!(err.contains("data holds 12 bytes"), "{err}");
        // A shape far larger than the data (no overflow) is refused the same way.
        let err = error_for(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 384), }", &[0; 8]));
        assert!(err.contains("data holds 8 bytes"), "{err}");
    }

    #[test]
    fn npy_headers_that_are_not_f4_matrices_are_refused() {
        let f8 = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", &[0; 16]);
        assert!(error_for(&f8).contains("dtype is \"<f8\""));
        let fortran = npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", &[0; 8]);
        assert!(error_for(&fortran).contains("Fortran"));
        let one_d = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &[0; 8]);
        assert!(error_for(&one_d).contains("not 2-D"));
        let no_shape = npy("{'descr': '<f4', 'fortran_order': False}", &[]);
        assert!(error_for(&no_shape).contains("no 'shape'"));
        let zero_dims = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", &[]);
        assert!(error_for(&zero_dims).contains("0 dimensions"));
        assert!(error_for(&npy("not a dict", &[])).contains("unreadable header"));
        // Keys in another order and double quotes, as other writers produce, are fine.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&path, npy("{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", &data)).unwrap();
        assert_eq!(read_npy(&path).unwrap(), Vectors { dims: 2, data: vec![1.5, -2.0] });
    }

    #[test]
    fn float_arrays_of_any_shape_and_float64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let f8: Vec<u8> = [0.25f64, -3.0, 1e300].iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&path, npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", &f8)).unwrap();
        let a = read_npy_floats(&path).unwrap();
        assert_eq!((a.shape.clone(), a.float64, a.shape_text()), (vec![3], true, "(3,)".to_string()));
        // 1e300 is beyond f32: infinite, for the caller to refuse.
        assert_eq!(&a.data[..2], &[0.25, -3.0]);
        assert!(a.data[2].is_infinite());
        // read_npy still takes only <f4 matrices.
        assert!(read_npy(&path).unwrap_err().to_string().contains("dtype is \"<f8\""));
        let f4: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
        std::fs::write(&path, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", &f4)).unwrap();
        let a = read_npy_floats(&path).unwrap();
        assert_eq!((a.shape.clone(), a.data[7]), (vec![2, 2, 2], 7.0));
        assert!(read_npy(&path).unwrap_err().to_string().contains("(2, 2, 2) is not 2-D"));
        // Big-endian, integers and short data are refused with what to write instead.
        std::fs::write(&path, npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", &[0; 8])).unwrap();
        let e = read_npy_floats(&path).unwrap_err().to_string();
        assert!(e.contains("dtype is \">f4\"") && e.contains("little-endian"), "{e}");
        std::fs::write(&path, npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", &[0; 16])).unwrap();
        assert!(read_npy_floats(&path).unwrap_err().to_string().contains("\"<i8\""));
        std::fs::write(&path, npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", &[0; 40])).unwrap();
        let e = read_npy_floats(&path).unwrap_err().to_string();
        assert!(e.contains("data holds 40 bytes, shape (2, 3) needs 2 × 3 × 8"), "{e}");
    }
}
