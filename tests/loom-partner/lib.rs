//! Model checks of the encoder partner's hand-off protocol (src/encoder/cpu/partner.rs) with loom:
//! each model runs every interleaving of its threads' atomic operations (preemptions bounded, see
//! [`models::check`]) and fails on a data race on the job's cell or on what the halves write, a
//! deadlock, a partner that never returns, or a wrong count.
//!
//! `RUSTFLAGS="--cfg loom" cargo test --release --locked --manifest-path tests/loom-partner/Cargo.toml`

#[cfg(loom)]
#[path = "../../src/encoder/cpu/partner.rs"]
mod partner;

#[cfg(all(test, loom))]
mod models {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::AtomicBool;

    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    use super::partner::Partner;

    /// The partner, to be moved into the thread that serves it (`with_partner` lends it to a
    /// scoped thread instead, which loom does not have).
    struct Shared(Partner);
    // SAFETY: a `Partner` holds a raw pointer to the job only while a join borrows it; between
    // joins, which is when it is created and moved here, the pointer is never dereferenced.
    unsafe impl Send for Shared {}

    /// A number written by one half and read after the join with plain (non-atomic) accesses,
    /// which loom checks: a write the join's return does not happen after is a data race.
    struct Plain(UnsafeCell<u32>);
    // SAFETY: loom checks every access for races; that is what the models test.
    unsafe impl Sync for Plain {}

    impl Plain {
        fn new() -> Self {
            Plain(UnsafeCell::new(0))
        }

        fn add_one(&self) {
            // SAFETY: loom reports any access that races with this one.
            self.0.with_mut(|p| unsafe { *p += 1 });
        }

        fn get(&self) -> u32 {
            // SAFETY: as in `add_one`.
            self.0.with(|p| unsafe { *p })
        }
    }

    /// Runs `model` under loom with at most three preemptions per execution (or
    /// `LOOM_MAX_PREEMPTIONS`): enough for the protocol's races, which are between two or three
    /// threads' few atomic steps, and seconds per model.
    fn check(model: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        quiet_expected_panics();
        builder.check(model);
    }

    /// The panics the models cause on purpose print nothing; any other prints as usual.
    fn quiet_expected_panics() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let payload = info.payload();
                let text = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
                if !matches!(text, Some("boom there" | "the second half of a matrix product panicked")) {
                    default(info);
                }
            }));
        });
    }

    /// `f` with a partner served by a second thread, which is told to quit afterwards and must
    /// return.
    fn serving(f: impl FnOnce(&Partner)) {
        let shared = Arc::new(Shared(Partner::new()));
        let server = {
            let shared = shared.clone();
            thread::spawn(move || shared.0.serve())
        };
        f(&shared.0);
        shared.0.quit();
        server.join().expect("the partner's loop panicked");
    }

    static CLAIMED: AtomicBool = AtomicBool::new(false);
    static TAKEN_BACK: AtomicBool = AtomicBool::new(false);

    /// One join: `there` runs once, on the partner when it claims the job and on the caller when
    /// it takes the job back first (both happen among the executions), and both halves' plain
    /// writes are seen after the join returns.
    #[test]
    fn a_job_runs_once_on_whichever_thread_claims_it() {
        check(|| {
            serving(|partner| {
                let caller = thread::current().id();
                let (left, right) = (Plain::new(), Plain::new());
                partner.join(
                    || left.add_one(),
                    || {
                        right.add_one();
                        let flag = if thread::current().id() == caller { &TAKEN_BACK } else { &CLAIMED };
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    },
                );
                assert_eq!((left.get(), right.get()), (1, 1));
            })
        });
        assert!(CLAIMED.load(std::sync::atomic::Ordering::Relaxed), "no execution where the partner ran the job");
        assert!(
            TAKEN_BACK.load(std::sync::atomic::Ordering::Relaxed),
            "no execution where the caller took the job back"
        );
    }

    /// Two joins in a row reuse the job's cell: the second join's write must come after the
    /// partner's read of the first job (loom reports the race otherwise).
    #[test]
    fn consecutive_joins_reuse_the_job_cell_without_a_race() {
        check(|| {
            serving(|partner| {
                let right = Plain::new();
                for _ in 0..2 {
                    partner.join(|| {}, || right.add_one());
                }
                assert_eq!(right.get(), 2);
            })
        });
    }

    /// A panicking second half reaches the caller (whoever ran it), the partner keeps serving,
    /// and it still quits.
    #[test]
    fn a_panicking_job_reaches_the_caller_and_the_partner_goes_on() {
        check(|| {
            serving(|partner| {
                let caught = catch_unwind(AssertUnwindSafe(|| partner.join(|| {}, || panic!("boom there"))));
                assert!(caught.is_err(), "the second half's panic was lost");
                let right = Plain::new();
                partner.join(|| {}, || right.add_one());
                assert_eq!(right.get(), 1);
            })
        });
    }

    /// A join nested in either half of another (so on the partner's thread too) runs its halves
    /// on its own thread, once each, and nothing deadlocks.
    #[test]
    fn joins_nested_in_either_half_run_once_and_return() {
        check(|| {
            serving(|partner| {
                let runs: [Plain; 4] = std::array::from_fn(|_| Plain::new());
                partner.join(
                    || partner.join(|| runs[0].add_one(), || runs[1].add_one()),
                    || partner.join(|| runs[2].add_one(), || runs[3].add_one()),
                );
                assert_eq!(runs.map(|r| r.get()), [1; 4]);
            })
        });
    }

    /// Joins from two threads at once on one partner: each half of each runs once.
    #[test]
    fn joins_from_two_threads_at_once_run_each_half_once() {
        check(|| {
            serving(|partner| {
                // The second joining thread needs the partner too: borrowed through a pointer,
                // as `thread::spawn` wants 'static, and joined before `serving` returns.
                struct Borrowed(*const Partner);
                // SAFETY: the pointee is `Sync` and outlives the thread (joined below).
                unsafe impl Send for Borrowed {}
                let counts =
                    Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]);
                let other = {
                    let (borrowed, counts) = (Borrowed(partner), counts.clone());
                    thread::spawn(move || {
                        let borrowed = borrowed;
                        // SAFETY: see `Borrowed`.
                        let partner = unsafe { &*borrowed.0 };
                        partner.join(
                            || _ = counts[2].fetch_add(1, Ordering::Relaxed),
                            || _ = counts[3].fetch_add(1, Ordering::Relaxed),
                        );
                    })
                };
                partner.join(
                    || _ = counts[0].fetch_add(1, Ordering::Relaxed),
                    || _ = counts[1].fetch_add(1, Ordering::Relaxed),
                );
                other.join().expect("the other joining thread panicked");
                assert_eq!(counts.each_ref().map(|c| c.load(Ordering::Relaxed)), [1; 4]);
            })
        });
    }
}
