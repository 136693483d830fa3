//! Process-wide settings that make CPU encoding fast, for programs that own their process.
//!
//! They are the program's choice, never a side effect of loading a model: inside a host such
//! as SQLite the process belongs to someone else.

use super::MMAP_THRESHOLD;
use crate::error::{Error, Result};

/// What to set in the environment, before the program starts, for the effect of
/// [`tune_process`] where it cannot run (glibc reads the two `MALLOC_` variables at start-up).
pub const TUNING_ENV: &str = "CANDLE_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824";

/// Sets what the isovec CLI sets for encoding on the CPU: one candle thread per operation
/// (unless `CANDLE_NUM_THREADS` is already set) and glibc's allocator thresholds.
///
/// [`Encoder`](super::Encoder) encodes batches in parallel, one per core; candle's own
/// per-operation threads would compete with that and spin while they wait. Each forward pass
/// allocates and frees tensors of up to ~100 MB (attention scores of long documents); served by
/// mmap, every one is zero-filled page by page again, which took ~20% of the time encoding
/// 256-token documents, so blocks up to 32 MB stay in the heap instead.
///
/// Call it at the start of `main`: it changes the environment and the allocator of the whole
/// process, which is only sound while no other thread can read the one or allocate from the
/// other. So it changes nothing, and returns an error that says what to set instead
/// ([`TUNING_ENV`]), unless the calling thread is the process's only one (read from
/// `/proc/self/task`; elsewhere than on Linux that cannot be told, and it always declines).
pub fn tune_process() -> Result<()> {
    match thread_count() {
        Some(1) => {}
        Some(threads) => {
            return Err(Error::InvalidInput(format!(
                "tune_process: the process already runs {threads} threads, which may read the environment or allocate while it \
                 changes them; call it first thing in main, or set {TUNING_ENV} in the environment before the program starts"
            )))
        }
        None => {
            return Err(Error::InvalidInput(format!(
                "tune_process: cannot tell on this system whether other threads run; set {TUNING_ENV} in the environment \
                 before the program starts"
            )))
        }
    }
    // This thread is the only one, and only it could start another: nothing reads the
    // environment or allocates while it changes.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds, and no other thread allocates now
    // (glibc documents mallopt as unsafe to call while other threads use the allocator).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as i32);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = MMAP_THRESHOLD;
    Ok(())
}

/// How many threads the process runs, where the system tells (Linux).
fn thread_count() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_dir("/proc/self/task").ok().map(|tasks| tasks.count())
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a second thread alive the process is left as it was: the environment too.
    #[test]
    fn with_other_threads_it_changes_nothing_and_says_what_to_set() {
        let before = std::env::var_os("CANDLE_NUM_THREADS");
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || stopped.recv());
        let tuned = tune_process();
        stop.send(()).unwrap();
        other.join().unwrap().unwrap();
        let message = tuned.expect_err("tuned a process with two threads").to_string();
        assert!(message.contains(TUNING_ENV), "{message}");
        assert_eq!(std::env::var_os("CANDLE_NUM_THREADS"), before);
    }
}
