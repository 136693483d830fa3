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

use std::panic::{catch_unwind, AssertUnwindSafe};

use sync::{spin_loop, AtomicU8, JobSlot, Ordering};

/// The atomics, the job's cell and the wait hint: std's, or loom's when the hand-off is
/// model-checked (`tests/loom-partner`, built with `--cfg loom`), so that loom sees every access
/// the protocol makes.
mod sync {
    #[cfg(loom)]
    use loom::cell::UnsafeCell;
    #[cfg(loom)]
    pub(super) use loom::{
        hint::spin_loop,
        sync::atomic::{AtomicU8, Ordering},
    };
    #[cfg(not(loom))]
    use std::cell::UnsafeCell;
    #[cfg(not(loom))]
    pub(super) use std::{
        hint::spin_loop,
        sync::atomic::{AtomicU8, Ordering},
    };

    /// A value that two threads take turns to use, as the protocol of [`super::Partner`] says.
    pub(super) struct JobSlot<T>(UnsafeCell<T>);

    impl<T: Copy> JobSlot<T> {
        pub(super) fn new(value: T) -> Self {
            JobSlot(UnsafeCell::new(value))
        }

        /// Replaces the value.
        ///
        /// # Safety
        /// No other thread reads or writes the slot at the same time.
        pub(super) unsafe fn write(&self, value: T) {
            #[cfg(not(loom))]
            // SAFETY: no other access at the same time (this function's contract).
            unsafe {
                *self.0.get() = value;
            }
            #[cfg(loom)]
            // SAFETY: no other access at the same time (this function's contract; loom checks it).
            self.0.with_mut(|p| unsafe { *p = value });
        }

        /// A copy of the value.
        ///
        /// # Safety
        /// No other thread writes the slot at the same time.
        pub(super) unsafe fn read(&self) -> T {
            #[cfg(not(loom))]
            // SAFETY: no write at the same time (this function's contract).
            let value = unsafe { *self.0.get() };
            #[cfg(loom)]
            // SAFETY: no write at the same time (this function's contract; loom checks it).
            let value = self.0.with(|p| unsafe { *p });
            value
        }
    }
}

/// No job: the next [`Partner::join`] may hand one over.
const IDLE: u8 = 0;
/// A join is writing its job into [`Partner::job`]; any other join runs both of its halves on its
/// own thread meanwhile.
const FILLING: u8 = 1;
/// A job is in [`Partner::job`]: whichever thread claims it first runs it.
const READY: u8 = 2;
/// The partner claimed the job and runs it.
const RUNNING: u8 = 3;
/// The partner finished the job.
const DONE: u8 = 4;
/// The partner's job panicked.
const PANICKED: u8 = 5;
/// The forward pass is over: the partner returns.
const QUIT: u8 = 6;

/// The job handed over, its lifetime erased: valid from `READY` until the partner sets `DONE`,
/// while [`Partner::join`] waits.
type Job = *const (dyn Fn() + Sync);

/// The handle through which a forward pass gives half of a product to the second thread.
///
/// One join at a time hands its second half over: the state moves IDLE → FILLING (taken by one
/// join with a compare-exchange, so by one thread at a time) → READY → RUNNING → DONE or PANICKED
/// → IDLE, or READY → IDLE when the joining thread takes its job back. A join that finds the
/// state other than IDLE — nested in a half of another join, on either thread, or made from
/// another thread at the same time — runs both of its halves on its own thread instead: it
/// neither waits for the partner (which may be the thread running it) nor touches the job.
pub struct Partner {
    state: AtomicU8,
    job: JobSlot<Option<Job>>,
}

// SAFETY: `job` is written only by the join that moved the state IDLE → FILLING (one thread at a
// time: a compare-exchange), before it stores READY (Release); the partner reads it only after
// claiming the job, READY → RUNNING (Acquire), and the next write comes only after the state has
// gone back to IDLE through DONE or PANICKED (the partner's Release store, read with Acquire by
// the join that stores IDLE) or through the joining thread taking the job back. So no two
// threads touch `job` at once; the job itself is `Sync`.
unsafe impl Sync for Partner {}

impl Partner {
    /// A partner in the IDLE state, whose loop ([`Partner::serve`]) is not running yet.
    pub(super) fn new() -> Self {
        Partner { state: AtomicU8::new(IDLE), job: JobSlot::new(None) }
    }

    /// Runs `here` on this thread and `there` on the partner (or here too, after `here`, if the
    /// partner has not claimed it by then), returning when both are done. A panic in either is
    /// raised here, after both have stopped.
    ///
    /// A join made while another is under way on this partner — from inside one of its halves,
    /// or from another thread — runs `here` and then `there` on its own thread.
    pub fn join(&self, here: impl FnOnce(), there: impl Fn() + Sync) {
        if self.state.compare_exchange(IDLE, FILLING, Ordering::Acquire, Ordering::Relaxed).is_err() {
            // Another join holds the partner (or it has quit): waiting for it could deadlock,
            // and writing the job would race with it.
            let mine = catch_unwind(AssertUnwindSafe(here));
            let theirs = catch_unwind(AssertUnwindSafe(&there)).map_err(|_| ());
            return raise(mine, theirs);
        }
        let job: &(dyn Fn() + Sync) = &there;
        // SAFETY: the partner only dereferences the pointer after claiming the job (READY →
        // RUNNING) and before DONE, and this function does not return (nor unwind: `here` runs
        // under catch_unwind) before DONE or taking the unclaimed job back, so `there` outlives
        // every use. Only the lifetime is erased.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
        // SAFETY: this join moved the state to FILLING, so no other thread reads or writes `job`
        // now (see `impl Sync`).
        unsafe { self.job.write(Some(job)) };
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
                    _ => spin_loop(),
                }
            };
            self.state.store(IDLE, Ordering::Release);
            theirs
        };
        raise(mine, theirs)
    }

    /// The partner's loop: runs each job handed over until told to quit.
    pub(super) fn serve(&self) {
        loop {
            match self.state.load(Ordering::Acquire) {
                READY => {
                    if self.state.compare_exchange(READY, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                        // `join` ran it itself.
                        continue;
                    }
                    // SAFETY: the state is RUNNING: the join that stored READY wrote `job` before
                    // (Release, read here with Acquire) and writes nothing until DONE or PANICKED.
                    let job = unsafe { self.job.read() }.expect("a job comes with READY");
                    // SAFETY: `join` keeps the job alive until it sees DONE or PANICKED.
                    let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
                    self.state.store(if ran.is_ok() { DONE } else { PANICKED }, Ordering::Release);
                }
                QUIT => return,
                _ => spin_loop(),
            }
        }
    }

    /// Tells the partner's loop to return; no join is under way (see [`with_partner`]).
    pub(super) fn quit(&self) {
        self.state.store(QUIT, Ordering::Release);
    }
}

/// Raises the panic of `here`, else one for `there`'s.
fn raise(mine: std::thread::Result<()>, theirs: Result<(), ()>) {
    if let Err(payload) = mine {
        std::panic::resume_unwind(payload);
    }
    if theirs.is_err() {
        panic!("the second half of a matrix product panicked");
    }
}

/// Runs `f` with a partner thread when `wanted` and the machine has a second core (rayon's
/// thread count, so `RAYON_NUM_THREADS=1` turns it off), else with none.
#[cfg(not(loom))]
pub fn with_partner<R>(wanted: bool, f: impl FnOnce(Option<&Partner>) -> R) -> R {
    if !wanted || rayon::current_num_threads() < 2 {
        return f(None);
    }
    let partner = Partner::new();
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new().name("isovec-partner".into()).spawn_scoped(scope, || partner.serve());
        // No thread to be had: the pass runs on this one alone.
        let Ok(_thread) = spawned else { return f(None) };
        struct Quit<'a>(&'a Partner);
        impl Drop for Quit<'_> {
            fn drop(&mut self) {
                self.0.quit();
            }
        }
        // The partner is told to quit however `f` ends, so the scope's join returns.
        let _quit = Quit(&partner);
        f(Some(&partner))
    })
}

#[cfg(all(test, not(loom)))]
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
        let absent = Partner::new();
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

    /// Runs `f` on a thread of its own and waits up to a minute for it: a join that deadlocks
    /// fails the test instead of hanging it (its thread is left spinning).
    fn within_a_minute(what: &str, f: impl FnOnce() + Send + 'static) {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            f();
            let _ = done.send(());
        });
        match finished.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what}: deadlocked"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
        }
    }

    /// A join inside a half of another join, with no thread serving the partner: the inner one
    /// must not wait for the partner (it would wait forever) nor overwrite the outer one's job.
    #[test]
    fn a_join_nested_in_a_join_runs_its_halves_here_and_both_return() {
        within_a_minute("nested join, absent partner", || {
            let absent = Partner::new();
            let runs = [(); 4].map(|_| AtomicUsize::new(0));
            absent.join(
                || {
                    absent.join(
                        || _ = runs[0].fetch_add(1, Ordering::Relaxed),
                        || _ = runs[1].fetch_add(1, Ordering::Relaxed),
                    )
                },
                || _ = runs[2].fetch_add(1, Ordering::Relaxed),
            );
            absent.join(|| {}, || absent.join(|| {}, || _ = runs[3].fetch_add(1, Ordering::Relaxed)));
            assert_eq!(runs.map(AtomicUsize::into_inner), [1; 4]);
            assert_eq!(absent.state.load(Ordering::Relaxed), IDLE);
        });
        within_a_minute("nested join, serving partner", || {
            with_partner(true, |partner| {
                let Some(partner) = partner else { return };
                let runs = [(); 4].map(|_| AtomicUsize::new(0));
                for _ in 0..500 {
                    partner.join(
                        || {
                            partner.join(
                                || _ = runs[0].fetch_add(1, Ordering::Relaxed),
                                || _ = runs[1].fetch_add(1, Ordering::Relaxed),
                            )
                        },
                        // On the partner's thread when it claims this half: a join there must
                        // not wait for the partner, which is itself.
                        || {
                            partner.join(
                                || _ = runs[2].fetch_add(1, Ordering::Relaxed),
                                || _ = runs[3].fetch_add(1, Ordering::Relaxed),
                            )
                        },
                    );
                }
                assert_eq!(runs.map(AtomicUsize::into_inner), [500; 4]);
            });
        });
    }

    /// Joins made from two threads at once on one partner: each half of each join runs once,
    /// and none deadlocks.
    #[test]
    fn joins_from_two_threads_at_once_each_run_both_halves_once() {
        // Deterministic: the second thread joins while the first one's job waits, unclaimed, for
        // a partner that never comes; the first join's `here` returns only after the second
        // join's `here` ran.
        within_a_minute("overlapping joins, absent partner", || {
            let absent = Partner::new();
            let runs = [(); 4].map(|_| AtomicUsize::new(0));
            let (go, gone) = std::sync::mpsc::channel();
            let (joined, second_joined) = std::sync::mpsc::channel();
            std::thread::scope(|scope| {
                let (absent, runs) = (&absent, &runs);
                scope.spawn(move || {
                    gone.recv().unwrap();
                    absent.join(
                        || {
                            runs[2].fetch_add(1, Ordering::Relaxed);
                            joined.send(()).unwrap();
                        },
                        || _ = runs[3].fetch_add(1, Ordering::Relaxed),
                    );
                });
                absent.join(
                    || {
                        runs[0].fetch_add(1, Ordering::Relaxed);
                        go.send(()).unwrap();
                        second_joined.recv().unwrap();
                    },
                    || _ = runs[1].fetch_add(1, Ordering::Relaxed),
                );
            });
            assert_eq!(runs.map(AtomicUsize::into_inner), [1; 4]);
        });
        within_a_minute("concurrent joins", || {
            with_partner(true, |partner| {
                let Some(partner) = partner else { return };
                let runs = [(); 4].map(|_| AtomicUsize::new(0));
                std::thread::scope(|scope| {
                    for side in [0, 2] {
                        let runs = &runs;
                        scope.spawn(move || {
                            for _ in 0..2000 {
                                // The job is a different closure on each side: one run in place
                                // of the other would show in the counts.
                                partner.join(
                                    || _ = runs[side].fetch_add(1, Ordering::Relaxed),
                                    || _ = runs[side + 1].fetch_add(1, Ordering::Relaxed),
                                );
                            }
                        });
                    }
                });
                assert_eq!(runs.map(AtomicUsize::into_inner), [2000; 4]);
            });
        });
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
