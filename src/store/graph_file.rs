//! The graph's snapshot file: the arrays of [`Graph`] as they lie in memory, so a reopen reads
//! them straight into place (no rebuild, no conversion), checksummed as they are read.
//!
//! Layout (little-endian; each section starts at a multiple of 64 bytes, zero padding between,
//! so the file could also be memory-mapped in place):
//!
//! | bytes | content |
//! |---|---|
//! | 64 | header: magic `ISOVECHG`, format 1, byte-order mark, dims, m, ef_construction, entry node, top level, node count, upper-layer slot count |
//! | dims × f32 | scales |
//! | n × u64 | internal ids |
//! | n × u8 | levels |
//! | (n + 1) × u64 | start of each node's upper-layer blocks |
//! | n × (1 + 2m) × u32 | layer-0 blocks (count, links) |
//! | upper × u32 | upper-layer blocks |
//! | n × dims × i8 | codes |
//! | n × dims × f32 | exact vectors |
//!
//! The manifest in sled records the file's length and CRC32; [`read`] returns both for the
//! caller to compare before it uses the graph, and checks every count and link, so a damaged
//! file that slipped past the checksum still cannot lead a search out of bounds.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::graph::{Graph, MAX_LEVEL};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"ISOVECHG";
/// Version of the layout above.
pub const FORMAT: u32 = 1;
/// Written as a native u32: reads back as this value only on a machine of the same byte order.
const BYTE_ORDER: u32 = 0x0A0B_0C0D;
const HEADER: usize = 64;
const ALIGN: u64 = 64;
/// `entry` in the header of an empty graph.
const NO_ENTRY: u32 = u32::MAX;

/// Length and CRC32 of a file written or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sum {
    /// Bytes.
    pub len: u64,
    /// CRC32 (IEEE).
    pub crc32: u32,
}

/// Writes `graph` to a new file at `path`, fsynced; returns its length and checksum.
pub fn write(graph: &Graph, path: &Path) -> Result<Sum> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = Checked::new(BufWriter::with_capacity(1 << 20, file));
    let (entry, top) = graph.entry().map_or((NO_ENTRY, 0), |(e, t)| (e, t as u32));
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    for v in [FORMAT, BYTE_ORDER, graph.dims as u32, graph.m as u32, graph.ef_construction as u32, entry, top, 0] {
        header.extend_from_slice(&v.to_ne_bytes());
    }
    for v in [graph.len() as u64, graph.upper.len() as u64] {
        header.extend_from_slice(&v.to_ne_bytes());
    }
    header.resize(HEADER, 0);
    let io = |e| Error::io(path, e);
    out.write(&header).map_err(io)?;
    out.section(bytemuck::cast_slice(&graph.scales)).map_err(io)?;
    out.section(bytemuck::cast_slice(&graph.ids)).map_err(io)?;
    out.section(&graph.levels).map_err(io)?;
    out.section(bytemuck::cast_slice(&graph.upper_start)).map_err(io)?;
    out.atomics(&graph.layer0).map_err(io)?;
    out.atomics(&graph.upper).map_err(io)?;
    out.section(bytemuck::cast_slice(&graph.codes)).map_err(io)?;
    out.section(bytemuck::cast_slice(&graph.vectors)).map_err(io)?;
    let sum = Sum { len: out.len, crc32: out.hasher.clone().finalize() };
    let file = out.inner.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(sum)
}

/// Reads a graph written by [`write`] with its length and checksum; errors on a file that is not
/// one, is cut short or holds links outside the graph.
pub fn read(path: &Path) -> Result<(Graph, Sum)> {
    let damaged = |what: &str| Error::Damaged {
        what: format!("the index snapshot {} is damaged ({what}); it will be rebuilt", path.display()),
        path: Some(path.to_path_buf()),
    };
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut input = Reader { file: &mut file, hasher: crc32fast::Hasher::new(), pos: 0 };
    let mut header = [0u8; HEADER];
    input.fill(&mut header).map_err(|_| damaged("shorter than its header"))?;
    if &header[..8] != MAGIC {
        return Err(damaged("not an isovec graph file"));
    }
    let u32_at = |i: usize| u32::from_ne_bytes(header[8 + 4 * i..12 + 4 * i].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_ne_bytes(header[40 + 8 * i..48 + 8 * i].try_into().unwrap_or_default());
    let [format, order, dims, m, ef_construction, entry, top] = [0, 1, 2, 3, 4, 5, 6].map(u32_at);
    let (n, upper_len) = (u64_at(0), u64_at(1));
    if order != BYTE_ORDER || format != FORMAT {
        return Err(damaged(&format!("format {format}, byte order {order:#x}; this isovec reads format {FORMAT}")));
    }
    let (dims, m, n_nodes) = (dims as u64, m as u64, n);
    if dims == 0
        || !(2..=255).contains(&m)
        || ef_construction == 0
        || top as usize > MAX_LEVEL
        || n >= u64::from(u32::MAX)
    {
        return Err(damaged("impossible parameters in the header"));
    }
    // The length the header implies must be the file's: that bounds every allocation below.
    let (wn, wd, wm, wu) = (u128::from(n), u128::from(dims), u128::from(m), u128::from(upper_len));
    let sections = [wd * 4, wn * 8, wn, (wn + 1) * 8, wn * (1 + 2 * wm) * 4, wu * 4, wn * wd, wn * wd * 4];
    let align = u128::from(ALIGN);
    let expected = sections.iter().fold(HEADER as u128, |end, s| end.div_ceil(align) * align + s);
    if expected != u128::from(file_len) {
        return Err(damaged(&format!("{file_len} bytes, its header implies {expected}")));
    }
    let (n, dims, m) = (n as usize, dims as usize, m as usize);
    let mut graph = Graph::from_parts(dims, m, ef_construction as usize);
    let cut = |_| damaged("cut short");
    graph.scales = input.section(dims).map_err(cut)?;
    graph.ids = input.section(n).map_err(cut)?;
    graph.levels = input.section(n).map_err(cut)?;
    graph.upper_start = input.section(n + 1).map_err(cut)?;
    let layer0: Vec<u32> = input.section(n * (1 + 2 * m)).map_err(cut)?;
    let upper: Vec<u32> = input.section(upper_len as usize).map_err(cut)?;
    graph.codes = input.section(n * dims).map_err(cut)?;
    graph.vectors = input.section(n * dims).map_err(cut)?;
    let sum = Sum { len: input.pos, crc32: input.hasher.finalize() };

    // Structure: levels, upper blocks, counts and links all within the graph.
    if graph.levels.iter().any(|&l| l as usize > MAX_LEVEL) || graph.upper_start[0] != 0 {
        return Err(damaged("a node level is out of range"));
    }
    for (i, w) in graph.upper_start.windows(2).enumerate() {
        if w[1].checked_sub(w[0]) != Some(graph.levels[i] as u64 * (1 + m) as u64) {
            return Err(damaged("upper-layer blocks do not match the levels"));
        }
    }
    if graph.upper_start[n] != upper_len {
        return Err(damaged("upper-layer blocks do not match the levels"));
    }
    for (blocks, cap) in [(&layer0, 2 * m), (&upper, m)] {
        for block in blocks.chunks_exact(cap + 1) {
            if block[0] as usize > cap || block[1..=block[0] as usize].iter().any(|&l| l as u64 >= n_nodes) {
                return Err(damaged("a link leads outside the graph"));
            }
        }
    }
    if entry != NO_ENTRY {
        if entry as usize >= n || graph.levels[entry as usize] as u32 != top {
            return Err(damaged("the entry node is wrong"));
        }
        graph.top = AtomicU64::new(u64::from(entry) | u64::from(top) << 32);
    } else if n > 0 {
        return Err(damaged("a graph with nodes has no entry node"));
    }
    graph.layer0 = layer0.into_iter().map(AtomicU32::new).collect();
    graph.upper = upper.into_iter().map(AtomicU32::new).collect();
    graph.finish_loading();
    Ok((graph, sum))
}

/// A writer that counts and checksums what passes through it and aligns sections.
struct Checked<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Checked<W> {
    fn new(inner: W) -> Self {
        Checked { inner, hasher: crc32fast::Hasher::new(), len: 0 }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let padding = (self.len.div_ceil(ALIGN) * ALIGN - self.len) as usize;
        self.write(&[0u8; ALIGN as usize][..padding])
    }

    fn section(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pad()?;
        self.write(bytes)
    }

    fn atomics(&mut self, slots: &[AtomicU32]) -> std::io::Result<()> {
        self.pad()?;
        let mut buf: Vec<u32> = Vec::with_capacity(1 << 16);
        for chunk in slots.chunks(1 << 16) {
            buf.clear();
            buf.extend(chunk.iter().map(|a| a.load(Ordering::Acquire)));
            self.write(bytemuck::cast_slice(&buf))?;
        }
        Ok(())
    }
}

/// A reader that checksums what it reads and skips section padding.
struct Reader<'a> {
    file: &'a mut File,
    hasher: crc32fast::Hasher,
    pos: u64,
}

impl Reader<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_exact(buf)?;
        self.hasher.update(buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// The next section: `count` values after the padding.
    fn section<T: bytemuck::Pod + Default>(&mut self, count: usize) -> std::io::Result<Vec<T>> {
        let padding = (self.pos.div_ceil(ALIGN) * ALIGN - self.pos) as usize;
        self.fill(&mut [0u8; ALIGN as usize][..padding])?;
        let mut values = vec![T::default(); count];
        self.fill(bytemuck::cast_slice_mut(&mut values))?;
        Ok(values)
    }
}
