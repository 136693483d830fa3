//! Reading line-oriented data files (plain or gzip) with errors that name the file and line.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Reads a whole file as lines: `\n`-separated, a trailing `\r` stripped, gunzipped first if the
/// name ends in `.gz`. A final empty line after the last `\n` is not a line; blank lines inside
/// are kept (STS gold files use them for unscored pairs).
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = read_bytes(path)?;
    split_lines(path, &bytes)
}

/// Reads a file's bytes, gunzipping them if the name ends in `.gz`.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = read_raw(path)?;
    if path.extension().is_some_and(|ext| ext == "gz") {
        gunzip(path, &raw)
    } else {
        Ok(raw)
    }
}

/// Reads a file's bytes as stored; a missing file gets an error that says where the data
/// folder should be.
pub fn read_raw(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| missing_or_io(path, e))
}

/// Decompresses a gzip stream read from `path` (named in the error).
pub fn gunzip(path: &Path, raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        line: 0,
        message: format!("not a valid gzip file ({e}); re-download it or pass the plain file"),
    })?;
    Ok(out)
}

/// Splits bytes into UTF-8 lines; invalid UTF-8 is an error naming the 1-based line.
pub fn split_lines(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            String::from_utf8(line.to_vec()).map_err(|e| Error::Data {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!(
                    "invalid UTF-8 at byte {} of the line; the file must be UTF-8 text",
                    e.utf8_error().valid_up_to()
                ),
            })
        })
        .collect()
}

/// A file that does not exist is almost always a wrong `--data` folder: say so.
fn missing_or_io(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::InvalidInput(format!(
            "{}: file not found; --data (or ISOVEC_DATA) should point at the benchmark data \
             folder, the one holding senteval/, retrieval/ and ann/",
            path.display()
        ))
    } else {
        Error::io(path, e)
    }
}

/// A CSV record: the line it starts on, and its fields.
pub type CsvRecord = (usize, Vec<String>);

/// Splits CSV text into records of fields (RFC 4180, by the `csv` crate: quoted fields may hold
/// commas, doubled quotes and line breaks); each record comes with the line it starts on.
///
/// The `csv` crate reads a quote that is never closed as running to the end of the file, and a
/// quote inside an unquoted field as a plain character; both leave an odd number of quotes, which
/// is refused here (a silently swallowed rest of the file would train on one giant "sentence").
pub fn parse_csv(text: &str) -> std::result::Result<Vec<CsvRecord>, (usize, String)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = Vec::new();
    // The line a record starts on, counted here: the reader's own count puts a record after a
    // CRLF on the line before.
    let bytes = text.as_bytes();
    let (mut counted_to, mut line) = (0usize, 1usize);
    for record in reader.records() {
        let record = record.map_err(|e| (e.position().map_or(line, |p| p.line() as usize), e.to_string()))?;
        let mut start = record.position().map_or(counted_to, |p| p.byte() as usize);
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        line += bytes[counted_to..start.max(counted_to)].iter().filter(|&&b| b == b'\n').count();
        counted_to = counted_to.max(start);
        records.push((line, record.iter().map(str::to_string).collect()));
    }
    if text.bytes().filter(|&b| b == b'"').count() % 2 == 1 {
        let line = records.last().map_or(1, |(line, _)| *line);
        return Err((
            line,
            "an odd number of quotes: a quoted field is never closed, or a quote sits inside an unquoted \
             field (quote the whole field and double the quotes inside it)"
                .into(),
        ));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_inner_blanks_and_strip_cr() {
        let p = Path::new("x.txt");
        let lines = split_lines(p, b"a\r\n\r\nb\n").unwrap();
        assert_eq!(lines, vec!["a", "", "b"]);
        let no_final_newline = split_lines(p, b"a\nb").unwrap();
        assert_eq!(no_final_newline, vec!["a", "b"]);
        assert!(split_lines(p, b"").unwrap().is_empty());
        assert_eq!(split_lines(p, b"\n\n").unwrap(), vec!["", ""]);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = split_lines(Path::new("f.txt"), b"ok\nbad \xff here\n").unwrap_err();
        match err {
            Error::Data { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn gzip_files_are_decompressed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.txt.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"one\ntwo\n").unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        assert_eq!(read_lines(&path).unwrap(), vec!["one", "two"]);
    }

    #[test]
    fn missing_file_points_at_the_data_flag() {
        let err = read_lines(Path::new("/nonexistent/isovec/x.txt")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/isovec/x.txt") && msg.contains("--data"), "{msg}");
    }
}
