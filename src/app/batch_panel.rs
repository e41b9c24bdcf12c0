//! The Batch panel: many pairs on the engine's batch runner, with a table of jobs (status,
//! progress, NCC, time), cancel one or all, and a button that opens a result in the viewer.
//!
//! The batch runs with the registration panel's preset and settings (one [`Parameters`] for
//! the pair and the batch). The runner works on its own thread and reports through a channel
//! whose sender wakes the window; the panel never blocks it.

use super::file_chooser::{self, IMAGES, Request};
use super::parameters::{Parameters, mode_toggle};
use crate::batch::{
    self, BatchControl, BatchEvent, BatchJob, BatchOptions, BatchSummary, JobRecord, JobStatus,
    Plan, manifest,
};
use crate::job::{CancelToken, JobHandle, Progress, Waker};
use crate::register::{Mode, RegisterOptions};
use crate::{Error, Result};
use crossbeam_channel::Receiver;
use eframe::egui;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Where a batch's pairs come from (the three inputs of `alinify batch`).
#[derive(Debug, Clone, PartialEq)]
pub enum BatchSource {
    /// A manifest CSV: `fixed,moving[,name][,mode][,preset]`.
    Manifest(PathBuf),
    /// Every image of a folder against one reference.
    Reference {
        /// The reference image.
        fixed: PathBuf,
        /// The folder of images to align to it.
        moving_dir: PathBuf,
    },
    /// Each image of a folder against its predecessor, composed back to the first.
    Chain(PathBuf),
    /// A chain in a given order (the MI network's series order).
    Series(Vec<PathBuf>),
}

impl BatchSource {
    fn jobs(&self) -> Result<Vec<BatchJob>> {
        match self {
            BatchSource::Manifest(path) => manifest::read_manifest(path),
            BatchSource::Reference { fixed, moving_dir } => {
                manifest::against_reference(fixed, moving_dir)
            }
            BatchSource::Chain(dir) => manifest::chain(dir),
            BatchSource::Series(images) => manifest::chain_of(images.clone()),
        }
    }

    fn describe(&self) -> String {
        match self {
            BatchSource::Manifest(path) => format!("manifest {}", path.display()),
            BatchSource::Reference { fixed, moving_dir } => format!(
                "{} against every image of {}",
                fixed.display(),
                moving_dir.display()
            ),
            BatchSource::Chain(dir) => format!("chain of {}", dir.display()),
            BatchSource::Series(images) => {
                format!("chain of {} images in the MI network's order", images.len())
            }
        }
    }
}

/// Where one job of the table stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// Waiting for a worker.
    Queued,
    /// Being registered.
    Running,
    /// Ended: done, failed or cancelled.
    Ended(JobStatus),
}

/// One line of the jobs table.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// The pair.
    pub job: BatchJob,
    /// Where it stands.
    pub state: RowState,
    /// Its latest progress while running.
    pub progress: Option<Progress>,
    /// Its record once ended.
    pub record: Option<JobRecord>,
    /// Finished in an earlier run of this batch folder (resume).
    pub resumed: bool,
    started: Option<Instant>,
}

impl JobRow {
    fn queued(job: BatchJob) -> Self {
        Self {
            job,
            state: RowState::Queued,
            progress: None,
            record: None,
            resumed: false,
            started: None,
        }
    }
}

/// What the panel asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchAction {
    /// Show a finished pair in the viewer: fixed, moving and the transform found.
    Open {
        /// Reference image.
        fixed: PathBuf,
        /// Moving image.
        moving: PathBuf,
        /// The job's transform.json.
        transform: PathBuf,
    },
}

struct BatchRun {
    control: Arc<BatchControl>,
    events: Receiver<BatchEvent>,
    handle: JobHandle<BatchSummary>,
    plan: Plan,
    started: Instant,
}

/// The panel's state.
#[derive(Default)]
pub struct BatchPanel {
    /// The pairs to register.
    pub source: Option<BatchSource>,
    /// The batch folder.
    pub out_dir: Option<PathBuf>,
    /// Pairs at once; `None` lets the engine choose from cores, memory and image sizes.
    pub jobs_at_once: Option<usize>,
    /// Skip pairs this batch folder's journal records as done.
    pub resume: bool,
    /// The jobs of the current (or last) batch.
    pub rows: Vec<JobRow>,
    /// The outcome of the last batch, or why it could not start.
    pub message: Option<String>,
    /// The mode of pairs that do not set their own: the running batch's, else the one chosen.
    pub batch_mode: Option<Mode>,
    run: Option<BatchRun>,
    listed: Option<BatchSource>,
    /// A reference image chosen whose folder of moving images is still to be chosen.
    pending_reference: Option<PathBuf>,
    /// The MI network of a folder: reference and order for the batch.
    pub network: super::network_view::NetworkView,
}

impl BatchPanel {
    /// True while a batch runs.
    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// Starts the batch with `options` for every pair (a pair's own mode and preset columns
    /// win); a problem with the inputs goes to [`BatchPanel::message`]. `waker` is called
    /// whenever the batch has news.
    pub fn start(&mut self, options: Result<RegisterOptions>, waker: Option<Waker>) {
        if self.run.is_some() {
            return;
        }
        match options.and_then(|options| self.try_start(options, waker)) {
            Ok(()) => self.message = None,
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    fn try_start(&mut self, options: RegisterOptions, waker: Option<Waker>) -> Result<()> {
        let source = self.source.clone().ok_or_else(|| {
            Error::InvalidArgument("choose a manifest, a reference and folder, or a chain".into())
        })?;
        let out_dir = self
            .out_dir
            .clone()
            .ok_or_else(|| Error::InvalidArgument("choose an output folder".into()))?;
        let jobs = source.jobs()?;
        let plan = batch::auto_plan(&jobs, self.jobs_at_once, None);
        self.rows = jobs.iter().cloned().map(JobRow::queued).collect();
        self.listed = Some(source.clone());
        self.batch_mode = Some(options.mode);
        let options = BatchOptions {
            out_dir: out_dir.clone(),
            options,
            plan,
            resume: self.resume,
            choice: match &source {
                BatchSource::Series(_) => {
                    Some("pairs chained in the order recovered from the images' MI network".into())
                }
                _ => None,
            },
        };
        let control = Arc::new(BatchControl::new(CancelToken::new()));
        let (sender, events) = crossbeam_channel::unbounded();
        let is_chain = matches!(source, BatchSource::Chain(_) | BatchSource::Series(_));
        let worker_control = control.clone();
        let sink_waker = waker.clone();
        let handle = JobHandle::spawn_woken("alinify-batch", waker, move |_reporter| {
            let sink: batch::EventSink = Arc::new(move |event| {
                if sender.send(event).is_ok()
                    && let Some(wake) = &sink_waker
                {
                    wake();
                }
            });
            let summary = batch::run_batch(jobs, &options, &worker_control, sink)?;
            if is_chain {
                batch::compose_chain(&options.out_dir, &summary.records)?;
            }
            Ok(summary)
        })
        .map_err(|e| Error::Internal(format!("cannot start the batch: {e}")))?;
        self.run = Some(BatchRun {
            control,
            events,
            handle,
            plan,
            started: Instant::now(),
        });
        Ok(())
    }

    /// Cancels every pair; the batch stops.
    pub fn cancel_all(&self) {
        if let Some(run) = &self.run {
            run.control.cancel_all();
        }
    }

    /// Cancels every pair and waits until the batch has ended (its journal and lock settled) or
    /// until `deadline`; whether it ended.
    pub fn cancel_and_wait_until(&self, deadline: Instant) -> bool {
        self.cancel_all();
        self.run
            .as_ref()
            .is_none_or(|run| run.handle.cancel_and_wait_until(deadline))
    }

    /// Cancels the pair in `row` if it is running.
    pub fn cancel_row(&self, row: usize) {
        if let (Some(run), Some(r)) = (&self.run, self.rows.get(row)) {
            run.control.cancel_job(r.job.index);
        }
    }

    /// Takes the runner's events; called every frame.
    pub fn poll(&mut self) {
        let Some(run) = &self.run else { return };
        for event in run.events.try_iter() {
            let index = match &event {
                BatchEvent::Started { job } => job.index,
                BatchEvent::Progress { index, .. } => *index,
                BatchEvent::Finished { record, .. } => record.index,
            };
            let Some(row) = self.rows.iter_mut().find(|r| r.job.index == index) else {
                continue;
            };
            match event {
                BatchEvent::Started { .. } => {
                    row.state = RowState::Running;
                    row.started = Some(Instant::now());
                }
                BatchEvent::Progress { progress, .. } => row.progress = Some(progress),
                BatchEvent::Finished { record, resumed } => {
                    row.state = RowState::Ended(record.status);
                    row.record = Some(*record);
                    row.resumed = resumed;
                }
            }
        }
        let Some(result) = run.handle.drain(|_| {}) else {
            return;
        };
        let seconds = run.started.elapsed().as_secs_f64();
        for row in &mut self.rows {
            if row.state == RowState::Running {
                row.state = RowState::Ended(JobStatus::Cancelled);
            }
        }
        self.message = Some(match result {
            Ok(summary) => {
                let failed = summary.failed();
                let done = summary
                    .records
                    .iter()
                    .filter(|r| r.status == JobStatus::Done)
                    .count();
                format!(
                    "{} pairs in {seconds:.1} s: {done} done, {failed} failed, {} cancelled",
                    summary.records.len(),
                    summary.records.len() - done - failed
                )
            }
            Err(Error::Cancelled) => "batch cancelled; Resume redoes the unfinished pairs".into(),
            Err(e) => format!("the batch stopped: {e}"),
        });
        self.run = None;
    }

    /// Pairs ended so far, and the total.
    pub fn counts(&self) -> (usize, usize) {
        let ended = self
            .rows
            .iter()
            .filter(|r| matches!(r.state, RowState::Ended(_)))
            .count();
        (ended, self.rows.len())
    }

    /// Lists the chosen source's pairs as queued rows before a batch starts (once per source).
    fn list_source(&mut self) {
        if self.run.is_some() || self.listed == self.source {
            return;
        }
        self.listed = self.source.clone();
        let Some(source) = &self.source else { return };
        match source.jobs() {
            Ok(jobs) => {
                self.rows = jobs.into_iter().map(JobRow::queued).collect();
                self.message = None;
            }
            Err(e) => {
                self.rows.clear();
                self.message = Some(e.to_string());
            }
        }
    }

    /// The panel, whose batch runs with `parameters` in `mode` (the registration panel's,
    /// edited here too); returns what the app should do (open a result).
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        parameters: &mut Parameters,
        mode: &mut Mode,
        waker: Option<Waker>,
    ) -> Option<BatchAction> {
        self.poll();
        self.list_source();
        if self.run.is_none() {
            // Listed pairs show the mode they would run in; a running batch keeps its own.
            self.batch_mode = Some(*mode);
        }
        self.inputs(ui, parameters, mode, waker.clone());
        if let Some(source) = self.network.show(ui, self.run.is_none(), waker) {
            self.source = Some(source);
        }
        ui.separator();
        self.overall(ui);
        self.table(ui)
    }

    fn inputs(
        &mut self,
        ui: &mut egui::Ui,
        parameters: &mut Parameters,
        mode: &mut Mode,
        waker: Option<Waker>,
    ) {
        let idle = self.run.is_none();
        ui.add_enabled_ui(idle, |ui| {
            ui.horizontal(|ui| {
                ui.label("Pairs:");
                let ctx = ui.ctx().clone();
                let clicked = ui.button("Manifest…").clicked();
                if let Some(path) =
                    file_chooser::choose_one(&ctx, clicked, "batch manifest", || {
                        Request::file("Batch manifest (fixed,moving[,name][,mode][,preset])")
                            .filter("CSV", &["csv"])
                    })
                {
                    self.source = Some(BatchSource::Manifest(path));
                }
                // The reference image, then the folder of moving images.
                let clicked = ui.button("Reference and folder…").clicked();
                if let Some(fixed) =
                    file_chooser::choose_one(&ctx, clicked, "batch reference", || {
                        Request::file("Reference (fixed) image").filter("images", IMAGES)
                    })
                {
                    self.pending_reference = Some(fixed);
                    file_chooser::open(
                        &ctx,
                        "batch moving folder",
                        Request::folder("Folder of moving images"),
                    );
                }
                if let Some(moving_dir) = file_chooser::chosen_one(&ctx, "batch moving folder")
                    && let Some(fixed) = self.pending_reference.take()
                {
                    self.source = Some(BatchSource::Reference { fixed, moving_dir });
                }
                let clicked = ui.button("Chain folder…").clicked();
                if let Some(dir) = file_chooser::choose_one(&ctx, clicked, "batch chain", || {
                    Request::folder("Folder of a series (each against its predecessor)")
                }) {
                    self.source = Some(BatchSource::Chain(dir));
                }
                ui.label(
                    self.source
                        .as_ref()
                        .map_or("none chosen".into(), BatchSource::describe),
                );
            });
            ui.horizontal(|ui| {
                ui.label("Output:");
                let clicked = ui.button("Folder…").clicked();
                if let Some(dir) =
                    file_chooser::choose_one(ui.ctx(), clicked, "batch output", || {
                        Request::folder("Batch output folder")
                    })
                {
                    self.out_dir = Some(dir);
                }
                ui.label(
                    self.out_dir
                        .as_ref()
                        .map_or("none chosen".into(), |d| d.display().to_string()),
                );
            });
            egui::CollapsingHeader::new("Registration settings (shared with the Pair tab)")
                .default_open(true)
                .show(ui, |ui| {
                    mode_toggle(ui, mode);
                    if let Some(e) = parameters.show(ui, mode) {
                        self.message = Some(e);
                    }
                });
            ui.horizontal(|ui| {
                let mut auto = self.jobs_at_once.is_none();
                if ui.checkbox(&mut auto, "pairs at once: auto").changed() {
                    self.jobs_at_once = if auto { None } else { Some(1) };
                }
                if let Some(jobs) = &mut self.jobs_at_once {
                    ui.add(egui::DragValue::new(jobs).range(1..=64));
                }
                ui.separator();
                ui.checkbox(&mut self.resume, "Resume (skip pairs already done)");
            });
        });
        ui.horizontal(|ui| {
            let ready = self.source.is_some() && self.out_dir.is_some();
            ui.label(format!("{} mode, preset {}", mode, parameters.preset));
            if ui
                .add_enabled(idle && ready, egui::Button::new("Start batch"))
                .clicked()
            {
                self.start(parameters.options(*mode), waker);
            }
            if ui
                .add_enabled(!idle, egui::Button::new("Cancel all"))
                .clicked()
            {
                self.cancel_all();
            }
            if let Some(out) = &self.out_dir
                && out.join("report.html").is_file()
                && idle
            {
                ui.label(format!("report: {}", out.join("report.html").display()));
            }
        });
    }

    fn overall(&self, ui: &mut egui::Ui) {
        let (ended, total) = self.counts();
        if let Some(run) = &self.run {
            let elapsed = run.started.elapsed().as_secs_f64();
            let rate = ended as f64 / elapsed.max(1e-9) * 60.0;
            // The running pairs' fractions count too, so the ETA shows from the first progress.
            let running: f64 = self
                .rows
                .iter()
                .filter(|r| r.state == RowState::Running)
                .filter_map(|r| r.progress.as_ref())
                .map(|p| p.fraction.clamp(0.0, 1.0) as f64)
                .sum();
            let eta = remaining_seconds(elapsed, ended as f64 + running, total)
                .map_or(String::new(), |s| format!(", ETA {s:.0} s"));
            ui.add(
                egui::ProgressBar::new(ended as f32 / total.max(1) as f32).text(format!(
                    "{ended}/{total} pairs, {rate:.1} pairs/min{eta}; {} at once x {} threads",
                    run.plan.jobs, run.plan.threads
                )),
            );
        }
        if let Some(message) = &self.message {
            ui.label(message);
        }
    }

    /// The mode a row runs (or ran) in: its record's, its own column's, or the batch's.
    pub fn row_mode(&self, row: &JobRow) -> Option<Mode> {
        row.record
            .as_ref()
            .map(|r| r.mode)
            .or(row.job.mode)
            .or(self.batch_mode)
    }

    fn table(&mut self, ui: &mut egui::Ui) -> Option<BatchAction> {
        let mut action = None;
        let mut cancel = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("batch-jobs")
                .striped(true)
                .num_columns(8)
                .show(ui, |ui| {
                    for heading in ["#", "pair", "mode", "status", "progress", "NCC", "time", ""] {
                        ui.strong(heading);
                    }
                    ui.end_row();
                    for (i, row) in self.rows.iter().enumerate() {
                        ui.label(format!("{}", row.job.index + 1));
                        ui.label(&row.job.name).on_hover_text(format!(
                            "fixed {}\nmoving {}",
                            row.job.fixed.display(),
                            row.job.moving.display()
                        ));
                        ui.label(self.row_mode(row).map_or(String::new(), |m| m.to_string()));
                        status_cell(ui, row);
                        progress_cell(ui, row);
                        match &row.record {
                            Some(JobRecord {
                                ncc_before: Some(before),
                                ncc_after: Some(after),
                                ..
                            }) => ui.label(format!("{before:.3} -> {after:.3}")),
                            _ => ui.label(""),
                        };
                        ui.label(match (&row.record, row.started) {
                            (Some(r), _) => format!("{:.1} s", r.wall_seconds),
                            (None, Some(t)) => format!("{:.1} s", t.elapsed().as_secs_f64()),
                            _ => String::new(),
                        });
                        ui.horizontal(|ui| {
                            if row.state == RowState::Running && ui.small_button("Cancel").clicked()
                            {
                                cancel = Some(i);
                            }
                            if row.state == RowState::Ended(JobStatus::Done)
                                && ui.small_button("Open").clicked()
                                && let Some(out) = &self.out_dir
                            {
                                action = Some(BatchAction::Open {
                                    fixed: row.job.fixed.clone(),
                                    moving: row.job.moving.clone(),
                                    transform: out.join(&row.job.name).join("transform.json"),
                                });
                            }
                        });
                        ui.end_row();
                    }
                });
        });
        if let Some(i) = cancel {
            self.cancel_row(i);
        }
        action
    }
}

fn status_cell(ui: &mut egui::Ui, row: &JobRow) {
    let error = ui.visuals().error_fg_color;
    match row.state {
        RowState::Queued => {
            ui.weak("queued");
        }
        RowState::Running => {
            ui.label("running");
        }
        RowState::Ended(JobStatus::Done) => {
            let flags = row
                .record
                .as_ref()
                .map(|r| r.flags.join(", "))
                .unwrap_or_default();
            let text = match (row.resumed, flags.is_empty()) {
                (true, _) => "done (earlier)".to_string(),
                (false, true) => "done".to_string(),
                (false, false) => format!("done [{flags}]"),
            };
            ui.label(text);
        }
        RowState::Ended(status) => {
            let message = row
                .record
                .as_ref()
                .and_then(|r| r.error.clone())
                .unwrap_or_default();
            ui.colored_label(error, status.label())
                .on_hover_text(message);
        }
    }
}

fn progress_cell(ui: &mut egui::Ui, row: &JobRow) {
    match (row.state, &row.progress) {
        (RowState::Running, Some(p)) => {
            ui.add(
                egui::ProgressBar::new(p.fraction)
                    .desired_width(220.0)
                    .text(p.describe()),
            );
        }
        (RowState::Ended(JobStatus::Failed), _) => {
            let message = row
                .record
                .as_ref()
                .and_then(|r| r.error.clone())
                .unwrap_or_default();
            ui.add(egui::Label::new(message).truncate());
        }
        _ => {
            ui.label("");
        }
    }
}
/// Seconds left when `done` of `total` pairs (fractions of running ones included) took
/// `elapsed` seconds; none before any progress.
fn remaining_seconds(elapsed: f64, done: f64, total: usize) -> Option<f64> {
    (done > 1e-3).then(|| elapsed / done * (total as f64 - done).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::remaining_seconds;

    #[test]
    fn the_eta_counts_running_pairs_before_the_first_one_ends() {
        assert_eq!(remaining_seconds(10.0, 0.0, 8), None);
        // Two pairs half done in 10 s: one pair's worth in 10 s, seven left.
        let eta = remaining_seconds(10.0, 1.0, 8).unwrap();
        assert!((eta - 70.0).abs() < 1e-9, "{eta}");
        assert_eq!(remaining_seconds(10.0, 8.0, 8), Some(0.0));
    }
}
