//! The job handle: how long-running work reports progress and is cancelled.
//!
//! A job runs on a named thread and talks through a typed, bounded event channel. Progress events
//! are dropped rather than queued when the receiver falls behind (the next one supersedes them),
//! so a fast worker never floods a UI; log lines and the final result always arrive. The same
//! handle serves the CLI (progress bars), the GUI and the batch runner. A [`Waker`] given at
//! spawn is called after every event, so a window repaints when there is news instead of
//! polling every frame; [`JobHandle::drain`] is the one place events are taken without
//! blocking.

use crate::{Error, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared flag that asks a job to stop at its next natural boundary (pyramid level, iteration,
/// tile). Cloning shares the flag; [`CancelToken::child`] makes a token that also stops when
/// its parent does (one pair of a batch, under the whole batch).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelFlag>);

#[derive(Debug, Default)]
struct CancelFlag {
    cancelled: AtomicBool,
    parent: Option<CancelToken>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// A new token that is cancelled by its own [`CancelToken::cancel`] or by this one's.
    pub fn child(&self) -> Self {
        Self(Arc::new(CancelFlag {
            cancelled: AtomicBool::new(false),
            parent: Some(self.clone()),
        }))
    }
    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }
    /// True once [`CancelToken::cancel`] was called on this token or an ancestor.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
            || self
                .0
                .parent
                .as_ref()
                .is_some_and(CancelToken::is_cancelled)
    }
    /// `Err(Error::Cancelled)` once cancelled: use with `?` at boundaries.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The stages of a registration job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Reading input files.
    Load,
    /// Building Gaussian pyramids.
    Pyramid,
    /// Initial alignment (phase correlation).
    Initialize,
    /// The affine stage: all of the affine mode, the start of the others.
    Affine,
    /// Optimising the transform (the deformable stage: B-spline, flow, thin-plate).
    Register,
    /// Resampling the moving image.
    Warp,
    /// Writing outputs.
    Write,
    /// Computing quality maps or other analyses.
    Analyze,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Stage::Load => "load",
            Stage::Pyramid => "pyramid",
            Stage::Initialize => "initialize",
            Stage::Affine => "affine",
            Stage::Register => "register",
            Stage::Warp => "warp",
            Stage::Write => "write",
            Stage::Analyze => "analyze",
        };
        f.write_str(name)
    }
}

/// One progress report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    /// Current stage.
    pub stage: Stage,
    /// Pyramid level being worked on (0 = full resolution), when the stage has levels.
    pub level: Option<usize>,
    /// Iteration within the level, when the stage iterates.
    pub iteration: Option<usize>,
    /// The metric value at this iteration (lower is better).
    pub metric: Option<f64>,
    /// Fraction of the whole job done, `0.0..=1.0`.
    pub fraction: f32,
}

impl Progress {
    /// A report of `stage` alone (no level, iteration or metric) at `fraction`.
    pub fn at(stage: Stage, fraction: f32) -> Self {
        Self {
            stage,
            level: None,
            iteration: None,
            metric: None,
            fraction,
        }
    }

    /// One line for a status bar: stage, level, iteration and metric where known.
    pub fn describe(&self) -> String {
        let mut s = self.stage.to_string();
        if let Some(l) = self.level {
            s += &format!(" level {l}");
        }
        if let Some(i) = self.iteration {
            s += &format!(" iteration {i}");
        }
        if let Some(m) = self.metric {
            s += &format!(" metric {m:.6}");
        }
        s
    }
}

/// What a job sends to whoever watches it.
#[derive(Debug)]
pub enum Event<T> {
    /// A progress report (may be dropped under back-pressure).
    Progress(Progress),
    /// A human-readable line worth showing or logging.
    Log(String),
    /// The job's end: its output or why it failed.
    Finished(Result<T>),
}

/// A callback run on the worker's thread for every progress report, before it is sent.
pub type ProgressObserver = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Called on the worker's thread after each event is sent (a window's repaint request).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The worker's side: sends events and carries the cancel token.
#[derive(Clone)]
pub struct Reporter<T> {
    sender: Option<Sender<Event<T>>>,
    cancel: CancelToken,
    observer: Option<ProgressObserver>,
    waker: Option<Waker>,
    /// The part of the whole job this reporter's work is: its fractions `0..=1` are reported
    /// as `span[0]..=span[1]` (see [`Reporter::within`]).
    span: [f32; 2],
}

impl<T> std::fmt::Debug for Reporter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("cancel", &self.cancel)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl<T> Reporter<T> {
    /// A reporter that discards every event (for synchronous use and tests).
    pub fn silent(cancel: CancelToken) -> Self {
        Self {
            sender: None,
            cancel,
            observer: None,
            waker: None,
            span: [0.0, 1.0],
        }
    }

    /// A reporter that calls `observer` synchronously, on the worker's thread, for every
    /// progress report: unlike the event channel, nothing is queued or dropped, so the observer
    /// sees exactly where the work is.
    pub fn observed(cancel: CancelToken, observer: ProgressObserver) -> Self {
        Self {
            sender: None,
            cancel,
            observer: Some(observer),
            waker: None,
            span: [0.0, 1.0],
        }
    }

    /// The job's cancel token.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// `Err(Cancelled)` once cancellation was asked for.
    pub fn check(&self) -> Result<()> {
        self.cancel.check()
    }

    /// A reporter for a stage that is `span` of this reporter's work: the stage reports its own
    /// fractions from 0 to 1, and the job's bar moves through `span` (spans nest), so that one
    /// stage's end is the next one's start and the bar never runs back.
    pub fn within(&self, span: [f32; 2]) -> Self {
        let [lo, hi] = self.span;
        // Field by field: the derived Clone would ask for `T: Clone`.
        Self {
            sender: self.sender.clone(),
            cancel: self.cancel.clone(),
            observer: self.observer.clone(),
            waker: self.waker.clone(),
            span: [lo + (hi - lo) * span[0], lo + (hi - lo) * span[1]],
        }
    }

    /// Sends a progress event, dropping it when the channel is full.
    pub fn progress(&self, mut progress: Progress) {
        let [lo, hi] = self.span;
        progress.fraction = lo + (hi - lo) * progress.fraction.clamp(0.0, 1.0);
        if let Some(observer) = &self.observer {
            observer(&progress);
        }
        if let Some(s) = &self.sender {
            match s.try_send(Event::Progress(progress)) {
                Ok(()) => self.wake(),
                // Full: the next report supersedes this one. Disconnected: nobody listens.
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Sends a log line (blocks if the channel is full).
    pub fn log(&self, line: impl Into<String>) {
        if let Some(s) = &self.sender
            && s.send(Event::Log(line.into())).is_ok()
        {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker();
        }
    }
}

/// The watcher's side of a running job.
#[derive(Debug)]
pub struct JobHandle<T> {
    /// Events from the job, ending with [`Event::Finished`].
    pub events: Receiver<Event<T>>,
    /// Cancels the job.
    pub cancel: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Capacity of a job's event channel: enough for bursts of log lines, small enough that stale
/// progress is dropped instead of queued.
const EVENT_CAPACITY: usize = 64;

impl<T: Send + 'static> JobHandle<T> {
    /// Runs `work` on a thread named `name` and returns the handle that watches it.
    pub fn spawn(
        name: &str,
        work: impl FnOnce(&Reporter<T>) -> Result<T> + Send + 'static,
    ) -> std::io::Result<Self> {
        Self::spawn_woken(name, None, work)
    }

    /// As [`JobHandle::spawn`], calling `waker` after every event the job sends, its result
    /// included.
    pub fn spawn_woken(
        name: &str,
        waker: Option<Waker>,
        work: impl FnOnce(&Reporter<T>) -> Result<T> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (sender, events) = crossbeam_channel::bounded(EVENT_CAPACITY);
        let cancel = CancelToken::new();
        let reporter = Reporter {
            sender: Some(sender.clone()),
            cancel: cancel.clone(),
            observer: None,
            waker,
            span: [0.0, 1.0],
        };
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&reporter)))
                        .unwrap_or_else(|panic| {
                            let msg = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "unknown panic".into());
                            Err(Error::Internal(format!("internal error (a bug): {msg}")))
                        });
                let _ = sender.send(Event::Finished(result));
                reporter.wake();
            })?;
        Ok(Self {
            events,
            cancel,
            thread: Some(thread),
        })
    }

    /// Takes the events received so far without blocking, passing each one before the last to
    /// `on_event`; the job's result once it has ended (then the handle is spent).
    pub fn drain(&self, mut on_event: impl FnMut(Event<T>)) -> Option<Result<T>> {
        for event in self.events.try_iter() {
            match event {
                Event::Finished(result) => return Some(result),
                event => on_event(event),
            }
        }
        None
    }

    /// Blocks until the job ends, passing every event before the last to `on_event`.
    pub fn wait(mut self, mut on_event: impl FnMut(&Event<T>)) -> Result<T> {
        let result = loop {
            match self.events.recv() {
                Ok(Event::Finished(result)) => break result,
                Ok(event) => on_event(&event),
                Err(_) => break Err(Error::Internal("job ended without a result".into())),
            }
        };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        result
    }

    /// Cancels the job and waits until it has ended, its clean-up done, or until `deadline`;
    /// whether it ended. For leaving (a window that closes): the events meanwhile are dropped,
    /// its result too.
    pub fn cancel_and_wait_until(&self, deadline: std::time::Instant) -> bool {
        self.cancel.cancel();
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(Event::Finished(_)) => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_token_stops_with_its_parent_but_not_the_reverse() {
        let parent = CancelToken::new();
        let (a, b) = (parent.child(), parent.child());
        a.cancel();
        assert!(a.is_cancelled());
        assert!(!parent.is_cancelled() && !b.is_cancelled());
        parent.cancel();
        assert!(b.is_cancelled() && b.check().is_err());
    }

    #[test]
    fn a_stage_reports_inside_its_span_and_spans_nest() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let reporter = Reporter::<()>::observed(
            CancelToken::new(),
            Arc::new(move |p: &Progress| sink.lock().unwrap().push(p.fraction)),
        );
        let stage = reporter.within([0.1, 0.9]);
        let inner = stage.within([0.5, 1.0]);
        for fraction in [0.0, 0.5, 1.0, 2.0] {
            inner.progress(Progress::at(Stage::Register, fraction));
        }
        stage.progress(Progress::at(Stage::Register, 0.0));
        let seen = seen.lock().unwrap();
        let expected = [0.5, 0.7, 0.9, 0.9, 0.1];
        assert_eq!(seen.len(), expected.len());
        for (got, want) in seen.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{seen:?}");
        }
    }

    #[test]
    fn job_reports_progress_and_result() {
        let job = JobHandle::spawn("test-job", |r: &Reporter<u32>| {
            r.log("hello");
            r.progress(Progress {
                stage: Stage::Register,
                level: Some(1),
                iteration: Some(3),
                metric: Some(0.5),
                fraction: 0.5,
            });
            Ok(42)
        })
        .unwrap();
        let mut logs = 0;
        let result = job.wait(|e| {
            if let Event::Log(_) = e {
                logs += 1
            }
        });
        assert_eq!(result.unwrap(), 42);
        assert_eq!(logs, 1);
    }

    #[test]
    fn cancel_and_wait_ends_a_job_that_checks_and_gives_up_on_one_that_does_not() {
        let checking = JobHandle::spawn("test-checking", |r: &Reporter<()>| {
            loop {
                r.progress(Progress::at(Stage::Register, 0.5));
                r.check()?;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
        .unwrap();
        let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
        assert!(checking.cancel_and_wait_until(far));

        let (gate, release) = crossbeam_channel::bounded::<()>(0);
        let deaf = JobHandle::spawn("test-deaf", move |_: &Reporter<()>| {
            let _ = release.recv();
            Ok(())
        })
        .unwrap();
        assert!(!deaf.cancel_and_wait_until(std::time::Instant::now()));
        gate.send(()).unwrap();
        assert!(deaf.cancel_and_wait_until(far));
    }

    #[test]
    fn drain_passes_every_event_then_returns_the_result_and_the_waker_hears_each() {
        let (gate, release) = crossbeam_channel::bounded::<()>(0);
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = woken.clone();
        let waker: Waker = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let job = JobHandle::spawn_woken("test-drain", Some(waker), move |r: &Reporter<u32>| {
            r.log("one");
            r.progress(Progress::at(Stage::Load, 0.5));
            gate.send(()).unwrap();
            Ok(7)
        })
        .unwrap();
        release.recv().unwrap();
        let mut seen = Vec::new();
        let mut result = None;
        while result.is_none() {
            result = job.drain(|e| seen.push(format!("{e:?}")));
            std::thread::yield_now();
        }
        assert_eq!(result.unwrap().unwrap(), 7);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen[0].contains("one") && seen[1].contains("Load"),
            "{seen:?}"
        );
        // The result is sent before the last wake: wait for the thread to make it.
        let started = std::time::Instant::now();
        while woken.load(Ordering::SeqCst) < 3 {
            assert!(
                started.elapsed().as_secs() < 10,
                "the waker was not called thrice"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn cancelled_job_finishes_with_cancelled() {
        let job = JobHandle::spawn("test-cancel", |r: &Reporter<()>| {
            loop {
                r.check()?;
                std::thread::yield_now();
            }
        })
        .unwrap();
        job.cancel.cancel();
        assert!(matches!(job.wait(|_| {}), Err(Error::Cancelled)));
    }

    #[test]
    fn panicking_job_becomes_an_internal_error() {
        let job = JobHandle::spawn("test-panic", |_: &Reporter<()>| -> Result<()> {
            panic!("boom")
        })
        .unwrap();
        let err = job.wait(|_| {}).unwrap_err();
        assert!(err.to_string().contains("boom"));
    }
}
