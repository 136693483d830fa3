//! Progress of long operations (index rebuilds, flow fitting, training, evaluation runs), told to
//! a [`Progress`] the caller supplies: the library never draws a bar itself.

/// Told what a long operation is doing; a command line draws it as a progress bar.
///
/// Calls come in stages: [`start`](Progress::start), any number of
/// [`advance`](Progress::advance) and [`message`](Progress::message), then
/// [`finish`](Progress::finish) (a new `start` also ends the stage before it).
pub trait Progress: Send + Sync {
    /// A stage starts; `total` items are to be done (0 when not counted).
    fn start(&self, stage: &str, total: usize);
    /// `n` more items of the current stage are done.
    fn advance(&self, n: usize);
    /// A short status of the current stage, e.g. the running loss.
    fn message(&self, _message: &str) {}
    /// The current stage is over.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: usize) {}
    fn advance(&self, _: usize) {}
}
