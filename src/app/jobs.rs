//! The app's background work: the one task at a time (loading, adding layers, registering,
//! exporting) and the warmup, their events (taken with [`JobHandle::drain`]) and cancel.

use super::analysis::AnalysisOutcome;
use super::layers::{ExtraLayer, Layers};
use super::{AlinifyApp, View};
use crate::Error;
use crate::analysis::features::ImageMatches;
use crate::compose::WarpGrid;
use crate::job::{Event, JobHandle, Progress};
use crate::register::RegisterSummary;
use crate::warmup::WarmupReport;
use std::time::Instant;

/// What the app is doing in the background.
pub enum Task {
    /// Nothing.
    Idle,
    /// Loading a pair.
    Loading(JobHandle<Layers>, Option<Progress>),
    /// Loading extra layers.
    AddingLayers(JobHandle<Vec<ExtraLayer>>),
    /// Exporting the composite and the results.
    Exporting {
        /// The job: a summary line.
        job: JobHandle<String>,
        /// Fraction done.
        fraction: f32,
    },
    /// Computing the Analysis panel's maps.
    Analyzing {
        /// The job.
        job: JobHandle<AnalysisOutcome>,
        /// Fraction done.
        fraction: f32,
    },
    /// Matching the pair's features (the Analysis panel's matches view).
    Matching(JobHandle<ImageMatches>),
    /// Registering the pair.
    Registering {
        /// The job: its summary and the transform on the viewer's grid.
        job: JobHandle<(RegisterSummary, WarpGrid)>,
        /// Latest progress.
        progress: Option<Progress>,
    },
}

impl Task {
    /// A short name for the status line and tests.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Idle => "idle",
            Task::Loading(..) => "loading",
            Task::AddingLayers(_) => "adding layers",
            Task::Exporting { .. } => "exporting",
            Task::Registering { .. } => "registering",
            Task::Analyzing { .. } => "analyzing",
            Task::Matching(_) => "matching",
        }
    }

    /// Cancels the task's job and waits until it has ended or until `deadline`; whether it
    /// ended (nothing running counts as ended).
    pub fn cancel_and_wait_until(&self, deadline: Instant) -> bool {
        match self {
            Task::Idle => true,
            Task::Loading(job, _) => job.cancel_and_wait_until(deadline),
            Task::AddingLayers(job) => job.cancel_and_wait_until(deadline),
            Task::Exporting { job, .. } => job.cancel_and_wait_until(deadline),
            Task::Analyzing { job, .. } => job.cancel_and_wait_until(deadline),
            Task::Matching(job) => job.cancel_and_wait_until(deadline),
            Task::Registering { job, .. } => job.cancel_and_wait_until(deadline),
        }
    }
}

/// Where the warmup stands (docs/ARCHITECTURE.md, "The application").
pub enum WarmupState {
    /// Not started (tests start it when they want it).
    NotStarted,
    /// Running: the step it is on.
    Running {
        /// The warmup thread.
        job: JobHandle<WarmupReport>,
        /// The step being run.
        step: String,
        /// When it started.
        started: Instant,
    },
    /// Finished.
    Done(WarmupReport),
    /// Failed; the app works without it (runs pay the first-use cost).
    Failed(String),
}

impl AlinifyApp {
    /// Cancels the background task, if any.
    pub fn cancel(&mut self) {
        match &self.task {
            Task::Idle => {}
            Task::Loading(job, _) => job.cancel.cancel(),
            Task::AddingLayers(job) => job.cancel.cancel(),
            Task::Exporting { job, .. } => job.cancel.cancel(),
            Task::Registering { job, .. } => job.cancel.cancel(),
            Task::Analyzing { job, .. } => job.cancel.cancel(),
            Task::Matching(job) => job.cancel.cancel(),
        }
    }

    /// Takes the background task's events; called every frame.
    pub fn poll(&mut self) {
        let task = std::mem::replace(&mut self.task, Task::Idle);
        self.task = match task {
            Task::Idle => Task::Idle,
            Task::Loading(job, mut progress) => {
                match job.drain(|e| keep_progress(e, &mut progress)) {
                    None => Task::Loading(job, progress),
                    Some(Ok(layers)) => {
                        // The sample and generated pairs live in the session folder, which
                        // goes with the session: only the person's own files are remembered.
                        let session = self.out_dir.path();
                        if !layers.fixed_path.starts_with(session)
                            && !layers.moving_path.starts_with(session)
                        {
                            self.settings.remember_pair([
                                layers.fixed_path.clone(),
                                layers.moving_path.clone(),
                            ]);
                        }
                        self.layers = Some(layers);
                        self.layer_history = Default::default();
                        self.analysis.outcome = None;
                        self.matches = super::matches_view::MatchesView {
                            model: self.matches.model,
                            ..Default::default()
                        };
                        self.viewer.camera = None;
                        Task::Idle
                    }
                    Some(Err(e)) => {
                        self.error = Some(e.to_string());
                        Task::Idle
                    }
                }
            }
            Task::AddingLayers(job) => match job.drain(|_| {}) {
                None => Task::AddingLayers(job),
                Some(Ok(extras)) => {
                    if let Some(layers) = &mut self.layers {
                        layers.extras.extend(extras);
                    }
                    Task::Idle
                }
                Some(Err(e)) => {
                    self.error = Some(e.to_string());
                    Task::Idle
                }
            },
            Task::Exporting { job, mut fraction } => {
                match drain_with_fraction(&job, &mut fraction, &mut self.notice) {
                    None => Task::Exporting { job, fraction },
                    Some(Ok(message)) => {
                        self.notice = Some(message);
                        Task::Idle
                    }
                    Some(Err(e)) => {
                        self.error = Some(format!("export failed: {e}"));
                        Task::Idle
                    }
                }
            }
            Task::Analyzing { job, mut fraction } => {
                match drain_with_fraction(&job, &mut fraction, &mut self.notice) {
                    None => Task::Analyzing { job, fraction },
                    Some(Ok(outcome)) => {
                        self.analysis.outcome = Some(outcome);
                        Task::Idle
                    }
                    Some(Err(Error::Cancelled)) => {
                        self.notice = Some("analysis cancelled".into());
                        Task::Idle
                    }
                    Some(Err(e)) => {
                        self.error = Some(format!("analysis failed: {e}"));
                        Task::Idle
                    }
                }
            }
            Task::Matching(job) => match job.drain(|_| {}) {
                None => Task::Matching(job),
                Some(Ok(found)) => {
                    self.finish_matching(found);
                    Task::Idle
                }
                Some(Err(Error::Cancelled)) => {
                    self.notice = Some("matching cancelled".into());
                    Task::Idle
                }
                Some(Err(e)) => {
                    self.error = Some(format!("matching failed: {e}"));
                    Task::Idle
                }
            },
            Task::Registering { job, mut progress } => {
                let history = &mut self.metric_history;
                let finished = job.drain(|event| {
                    if let Event::Progress(p) = &event {
                        history.push(p);
                    }
                    keep_progress(event, &mut progress);
                });
                match finished {
                    None => Task::Registering { job, progress },
                    Some(Ok((summary, grid))) => {
                        self.finish_registration(summary, grid);
                        self.view = View::After;
                        Task::Idle
                    }
                    Some(Err(Error::Cancelled)) => {
                        self.notice = Some("registration cancelled".into());
                        Task::Idle
                    }
                    Some(Err(e)) => {
                        self.error = Some(e.to_string());
                        Task::Idle
                    }
                }
            }
        };
        // The maps follow the registration: a new result recomputes the ones shown.
        if self.analysis.follow && matches!(self.task, Task::Idle) {
            self.analysis.follow = false;
            self.start_analysis();
        }
    }

    /// Starts the warmup thread; the window stays interactive.
    pub fn start_warmup(&mut self) {
        self.warmup = match crate::warmup::spawn(self.waker.clone()) {
            Ok(job) => WarmupState::Running {
                job,
                step: "starting".into(),
                started: Instant::now(),
            },
            Err(e) => WarmupState::Failed(e.to_string()),
        };
    }

    /// Takes the warmup's events: its current step, then its report.
    pub(super) fn poll_warmup(&mut self) {
        let WarmupState::Running { job, step, .. } = &mut self.warmup else {
            return;
        };
        let finished = job.drain(|event| {
            if let Event::Log(line) = event {
                *step = line;
            }
        });
        match finished {
            None => {}
            Some(Ok(report)) => {
                let steps: Vec<String> = report
                    .steps
                    .iter()
                    .map(|s| format!("{} {:.3} s", s.name, s.seconds))
                    .collect();
                eprintln!(
                    "alinify: warmed up in {:.3} s ({})",
                    report.seconds,
                    steps.join(", ")
                );
                self.warmup = WarmupState::Done(report);
            }
            Some(Err(e)) => self.warmup = WarmupState::Failed(e.to_string()),
        }
    }

    /// The status bar's warmup text and its tooltip (the steps and their times).
    pub fn warmup_status(&self) -> (String, String) {
        match &self.warmup {
            WarmupState::NotStarted => (String::new(), String::new()),
            WarmupState::Running { step, started, .. } => (
                format!(
                    "warming up: {step} ({:.1} s)",
                    started.elapsed().as_secs_f64()
                ),
                "The first run will pay no first-use cost once this ends.".into(),
            ),
            WarmupState::Done(report) => {
                let gpu = match &report.gpu {
                    Ok(name) => format!("GPU {name}"),
                    Err(why) => format!("no GPU ({why}): fast mode on the CPU"),
                };
                let steps = report
                    .steps
                    .iter()
                    .map(|s| format!("{}: {:.2} s", s.name, s.seconds))
                    .collect::<Vec<_>>()
                    .join("\n");
                (
                    format!("warmed up in {:.1} s · {gpu}", report.seconds),
                    steps,
                )
            }
            WarmupState::Failed(e) => (format!("warmup failed: {e}"), String::new()),
        }
    }
}

/// Takes a job's events: its progress as a fraction, its log lines as the notice; the result
/// once it finished.
fn drain_with_fraction<T: Send + 'static>(
    job: &JobHandle<T>,
    fraction: &mut f32,
    notice: &mut Option<String>,
) -> Option<crate::Result<T>> {
    job.drain(|event| match event {
        Event::Progress(p) => *fraction = p.fraction,
        Event::Log(line) => *notice = Some(line),
        Event::Finished(_) => {}
    })
}

/// Keeps the latest progress report of a job's events.
fn keep_progress<T>(event: Event<T>, progress: &mut Option<Progress>) {
    if let Event::Progress(p) = event {
        *progress = Some(p);
    }
}
