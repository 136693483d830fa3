//! A second thread that shares the matrix products of one forward pass, waiting for each by
//! spinning rather than sleeping.
//!
//! A short query's product takes tens of microseconds; handing half of it to a pool thread
//! that has gone to sleep costs as much again in wake-ups (with rayon, splitting a query's
//! products over two cores made it slower than one core). The partner lives only as long as
//! one forward pass ([`with_partner`]) and spins on an atomic between products, so each hand-off
//! costs a cache line's round trip. A job the partner has not claimed by the time this thread is
//! done with its own half runs here too: a partner that has not started yet, or whose core the
//! hypervisor has taken away for a while, never holds a product up.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};

/// No job: the partner waits.
const IDLE: u8 = 0;
/// A job is in [`Partner::job`]: whichever thread claims it first runs it.
const READY: u8 = 1;
/// The partner claimed the job and runs it.
const RUNNING: u8 = 2;
/// The partner finished the job.
const DONE: u8 = 3;
/// The partner's job panicked.
const PANICKED: u8 = 4;
/// The forward pass is over: the partner returns.
const QUIT: u8 = 5;

/// The job handed over, its lifetime erased: valid from `READY` until the partner sets `DONE`,
/// while [`Partner::join`] waits.
type Job = *const (dyn Fn() + Sync);

/// The handle through which a forward pass gives half of a product to the second thread.
pub struct Partner {
    state: AtomicU8,
    job: UnsafeCell<Option<Job>>,
}

// SAFETY: `job` is written by `join` only while the state is IDLE (the partner does not read
// it then) and read by the partner only after it claimed the job, READY → RUNNING (Acquire,
// after join's Release), so the two threads never touch it at once; the job itself is `Sync`.
unsafe impl Sync for Partner {}

impl Partner {
    /// Runs `here` on this thread and `there` on the partner (or here too, after `here`, if the
    /// partner has not claimed it by then), returning when both are done. A panic in either is
    /// raised here, after both have stopped.
    pub fn join(&self, here: impl FnOnce(), there: impl Fn() + Sync) {
        let job: &(dyn Fn() + Sync) = &there;
        // SAFETY: the partner only dereferences the pointer after claiming the job (READY →
        // RUNNING) and before DONE, and this function does not return (nor unwind: `here` runs
        // under catch_unwind) before DONE or taking the unclaimed job back, so `there` outlives
        // every use. Only the lifetime is erased.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
        // SAFETY: state is IDLE, so the partner does not read `job` now (see `impl Sync`).
        unsafe { *self.job.get() = Some(job) };
        self.state.store(READY, Ordering::Release);
        let mine = catch_unwind(AssertUnwindSafe(here));
        let theirs = if self.state.compare_exchange(READY, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // Unclaimed: the partner will not touch it now, so it runs here.
            catch_unwind(AssertUnwindSafe(&there)).map_err(|_| ())
        } else {
            let theirs = loop {
                match self.state.load(Ordering::Acquire) {
                    DONE => break Ok(()),
                    PANICKED => break Err(()),
                    _ => std::hint::spin_loop(),
                }
            };
            self.state.store(IDLE, Ordering::Release);
            theirs
        };
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        if theirs.is_err() {
            panic!("the second half of a matrix product panicked");
        }
    }

    /// The partner's loop: runs each job handed over until told to quit.
    fn serve(&self) {
        loop {
            match self.state.load(Ordering::Acquire) {
                READY => {
                    if self.state.compare_exchange(READY, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                        // `join` ran it itself.
                        continue;
                    }
                    // SAFETY: READY was stored after `job` was written (see `join`).
                    let job = unsafe { (*self.job.get()).expect("a job comes with READY") };
                    // SAFETY: `join` keeps the job alive until it sees DONE or PANICKED.
                    let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
                    self.state.store(if ran.is_ok() { DONE } else { PANICKED }, Ordering::Release);
                }
                QUIT => return,
                _ => std::hint::spin_loop(),
            }
        }
    }
}

/// Runs `f` with a partner thread when `wanted` and the machine has a second core (rayon's
/// thread count, so `RAYON_NUM_THREADS=1` turns it off), else with none.
pub fn with_partner<R>(wanted: bool, f: impl FnOnce(Option<&Partner>) -> R) -> R {
    if !wanted || rayon::current_num_threads() < 2 {
        return f(None);
    }
    let partner = Partner { state: AtomicU8::new(IDLE), job: UnsafeCell::new(None) };
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new().name("isovec-partner".into()).spawn_scoped(scope, || partner.serve());
        // No thread to be had: the pass runs on this one alone.
        let Ok(_thread) = spawned else { return f(None) };
        struct Quit<'a>(&'a Partner);
        impl Drop for Quit<'_> {
            fn drop(&mut self) {
                self.0.state.store(QUIT, Ordering::Release);
            }
        }
        // The partner is told to quit however `f` ends, so the scope's join returns.
        let _quit = Quit(&partner);
        f(Some(&partner))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn both_halves_run_once_per_join_and_their_writes_are_seen() {
        let count = AtomicUsize::new(0);
        let mut left = vec![0u64; 1000];
        let right = std::sync::Mutex::new(vec![0u64; 1000]);
        with_partner(true, |partner| {
            let Some(partner) = partner else {
                assert!(rayon::current_num_threads() < 2, "two cores and no partner");
                return;
            };
            for round in 1..=200u64 {
                partner.join(
                    || left.iter_mut().for_each(|v| *v += round),
                    || {
                        right.lock().unwrap().iter_mut().for_each(|v| *v += round);
                        count.fetch_add(1, Ordering::Relaxed);
                    },
                );
            }
        });
        let total: u64 = (1..=200).sum();
        assert_eq!(count.load(Ordering::Relaxed), 200);
        assert!(left.iter().all(|&v| v == total));
        assert!(right.lock().unwrap().iter().all(|&v| v == total));
    }

    /// A partner that never comes (no thread serves it): every join still returns, with both
    /// halves run on the caller's thread, once each; and a panic in the second half still reaches
    /// the caller.
    #[test]
    fn a_job_the_partner_does_not_claim_runs_on_the_caller() {
        let absent = Partner { state: AtomicU8::new(IDLE), job: UnsafeCell::new(None) };
        let caller = std::thread::current().id();
        let (here, there) = (AtomicUsize::new(0), AtomicUsize::new(0));
        for _ in 0..3 {
            absent.join(
                || {
                    here.fetch_add(1, Ordering::Relaxed);
                },
                || {
                    assert_eq!(std::thread::current().id(), caller);
                    there.fetch_add(1, Ordering::Relaxed);
                },
            );
        }
        assert_eq!((here.into_inner(), there.into_inner()), (3, 3));
        assert_eq!(absent.state.load(Ordering::Relaxed), IDLE);
        let caught = catch_unwind(AssertUnwindSafe(|| absent.join(|| {}, || panic!("boom there"))));
        assert!(caught.is_err(), "the unclaimed half's panic was lost");
    }

    #[test]
    fn a_panic_on_either_side_reaches_the_caller_and_the_partner_stops() {
        for side in ["here", "there"] {
            let caught = catch_unwind(|| {
                with_partner(true, |partner| {
                    let Some(partner) = partner else { panic!("one core: no partner to panic in") };
                    partner.join(|| assert!(side != "here", "boom here"), || assert!(side != "there", "boom there"));
                })
            });
            assert!(caught.is_err(), "{side}: the panic was lost");
        }
        // Not wanted: no thread.
        assert!(with_partner(false, |p| p.is_none()));
    }
}
