//! Process-wide settings that make CPU encoding fast, for programs that own their process.
//!
//! They are the program's choice, never a side effect of loading a model: inside a host such
//! as SQLite the process belongs to someone else.

use super::MMAP_THRESHOLD;

/// Sets what the isovec CLI sets for encoding on the CPU: one candle thread per operation
/// (unless `CANDLE_NUM_THREADS` is already set) and glibc's allocator thresholds.
///
/// [`Encoder`](super::Encoder) encodes batches in parallel, one per core; candle's own
/// per-operation threads would compete with that and spin while they wait. Each forward pass
/// allocates and frees tensors of up to ~100 MB (attention scores of long documents); served by
/// mmap, every one is zero-filled page by page again, which took ~20% of the time encoding
/// 256-token documents, so blocks up to 32 MB stay in the heap instead.
///
/// Call it at the start of `main`, before other threads exist: it changes the environment and
/// the allocator of the whole process.
pub fn tune_process() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as i32);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
