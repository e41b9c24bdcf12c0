//! Batch registration: many pairs, `jobs` at once with `threads` each, every pair isolated (a
//! bad pair fails alone), a journal that makes `--resume` redo only unfinished pairs, and
//! reports (summary.csv, summary.json, report.html with before/after thumbnails).

pub mod journal;
pub mod manifest;
pub mod network;
pub mod report;
pub mod schedule;

pub use manifest::BatchJob;
pub use schedule::Plan;

use crate::job::{CancelToken, Progress, Reporter};
use crate::raster::{AnyImage, GrayF32, SampleDepth};
use crate::register::{Mode, RegisterOptions, RegisterRequest, Settings, StageSeconds};
use crate::{Error, Result, io};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Registered; outputs complete.
    Done,
    /// Failed; `error` says why.
    Failed,
    /// Cancelled by the user on its own (the batch went on); a resume redoes it.
    Cancelled,
}

impl JobStatus {
    /// The word shown in reports and tables.
    pub fn label(self) -> &'static str {
        match self {
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// Stops a running batch, or one of its pairs, from another thread (the GUI's Cancel buttons;
/// the terminal's Ctrl+C).
#[derive(Debug, Default)]
pub struct BatchControl {
    all: CancelToken,
    running: Mutex<std::collections::HashMap<usize, CancelToken>>,
}

impl BatchControl {
    /// A control whose whole batch stops when `all` is cancelled.
    pub fn new(all: CancelToken) -> Self {
        Self {
            all,
            running: Mutex::default(),
        }
    }

    /// Stops starting pairs and cancels the running ones; the batch ends with
    /// [`Error::Cancelled`].
    pub fn cancel_all(&self) {
        self.all.cancel();
    }

    /// Cancels the pair with this index if it is running; the batch goes on. Returns whether
    /// it was running.
    pub fn cancel_job(&self, index: usize) -> bool {
        match self.running.lock().unwrap().get(&index) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// True once the whole batch was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.all.is_cancelled()
    }

    fn start(&self, index: usize) -> CancelToken {
        let token = self.all.child();
        self.running.lock().unwrap().insert(index, token.clone());
        token
    }

    fn end(&self, index: usize) {
        self.running.lock().unwrap().remove(&index);
    }
}

/// What one job did: a row of the summaries and the journal's `finished` entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    /// Position in the batch.
    pub index: usize,
    /// Job name (its folder under the batch folder).
    pub name: String,
    /// The reference image.
    pub fixed: PathBuf,
    /// The aligned image.
    pub moving: PathBuf,
    /// The mode it ran.
    pub mode: Mode,
    /// Done or failed.
    pub status: JobStatus,
    /// The failure, in one line.
    pub error: Option<String>,
    /// Seconds per stage (done jobs).
    pub seconds: Option<StageSeconds>,
    /// Wall time of the whole job, thumbnails included.
    pub wall_seconds: f64,
    /// NCC of fixed and moving before registration.
    pub ncc_before: Option<f64>,
    /// NCC of fixed and warped moving after.
    pub ncc_after: Option<f64>,
    /// The finest level's metric at its end.
    pub metric_end: Option<f64>,
    /// `cpu` or `gpu`.
    pub backend: Option<String>,
    /// The QC maps' median local correlation (report.json's `qc`).
    #[serde(default)]
    pub qc_corr_median: Option<f64>,
    /// Their 5th percentile.
    #[serde(default)]
    pub qc_corr_p5: Option<f64>,
    /// Share of the transform's Jacobian samples with det ≤ 0.
    #[serde(default)]
    pub folded_fraction: Option<f64>,
    /// Regions the QC flagged (poor regions, folds, discontinuities).
    #[serde(default)]
    pub qc_regions: Option<usize>,
    /// Quality warnings: `ncc_dropped` (worse after than before), `low_ncc` (below
    /// [`LOW_NCC`] after), and the QC's `folding`, `discontinuity`, `poor_region`.
    pub flags: Vec<String>,
}

/// NCC after registration below which a job is flagged for a look.
pub const LOW_NCC: f64 = 0.5;

/// Settings of a batch run.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// The batch folder: one sub-folder per job, the journal and the reports.
    pub out_dir: PathBuf,
    /// Settings for every pair (a job's own mode and preset are applied on top).
    pub options: RegisterOptions,
    /// Pairs at once and threads per pair.
    pub plan: Plan,
    /// Skip jobs the journal records as finished.
    pub resume: bool,
    /// How the pairs were chosen, for the reports (the MI network's reference or order).
    pub choice: Option<String>,
}

/// What the runner tells its watcher.
#[derive(Debug, Clone)]
pub enum BatchEvent {
    /// A job began.
    Started {
        /// The job.
        job: BatchJob,
    },
    /// A job's progress.
    Progress {
        /// Job index.
        index: usize,
        /// Its latest progress.
        progress: Progress,
    },
    /// A job ended (or was skipped on resume: `resumed` true).
    Finished {
        /// The record.
        record: Box<JobRecord>,
        /// Finished in an earlier run.
        resumed: bool,
    },
}

/// Where a batch's events go (called from worker threads).
pub type EventSink = Arc<dyn Fn(BatchEvent) + Send + Sync>;

/// The outcome of a batch.
#[derive(Debug, Clone)]
pub struct BatchSummary {
    /// Every job's record, by index.
    pub records: Vec<JobRecord>,
    /// The schedule used.
    pub plan: Plan,
    /// Wall time of this run.
    pub seconds: f64,
}

impl BatchSummary {
    /// Jobs that failed.
    pub fn failed(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.status == JobStatus::Failed)
            .count()
    }
}

/// The automatic schedule for `jobs` on this machine (see [`schedule::plan`]); unreadable
/// headers count as small pairs (the job itself will report them).
pub fn auto_plan(jobs: &[BatchJob], user_jobs: Option<usize>, user_threads: Option<usize>) -> Plan {
    let (mut largest_pixels, mut largest_peak) = (0u64, 0u64);
    for job in jobs {
        let (Ok(f), Ok(m)) = (io::probe(&job.fixed), io::probe(&job.moving)) else {
            continue;
        };
        let bytes = |i: &io::ImageInfo| {
            i.width as u64 * i.height as u64 * i.channels as u64 * i.depth.bytes()
        };
        let pixels = (f.width * f.height).max(m.width * m.height) as u64;
        largest_pixels = largest_pixels.max(pixels);
        largest_peak = largest_peak.max(schedule::pair_peak_bytes(bytes(&f), bytes(&m), pixels));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    schedule::plan(
        jobs.len(),
        largest_pixels,
        largest_peak,
        cores,
        crate::memory::available_bytes(),
        user_jobs,
        user_threads,
    )
}

/// Runs `jobs`, `plan.jobs` at a time, reporting to `on_event` (from worker threads). A job's
/// failure is recorded and the batch goes on, as it does when one job is cancelled through
/// `control`; cancelling the whole batch stops starting new jobs and cancels the running ones.
/// Reports are written at the end, for every job in `jobs`.
pub fn run_batch(
    jobs: Vec<BatchJob>,
    options: &BatchOptions,
    control: &BatchControl,
    on_event: EventSink,
) -> Result<BatchSummary> {
    let started = Instant::now();
    io::ensure_output_dir(&options.out_dir)?;
    let _lock = io::DirLock::acquire(&options.out_dir, "batch")?;
    check_paths(&jobs, options)?;
    for job in &jobs {
        io::sweep_stale_partials(&options.out_dir.join(&job.name));
    }
    let previous = if options.resume {
        journal::finished_jobs(&options.out_dir)?
    } else {
        Default::default()
    };
    let journal = journal::Journal::open(&options.out_dir)?;
    let records: Mutex<Vec<JobRecord>> = Mutex::new(Vec::new());
    let mut queue = VecDeque::new();
    for job in jobs {
        match previous.get(&job.name) {
            Some(record)
                if record.status == JobStatus::Done
                    && options
                        .out_dir
                        .join(&job.name)
                        .join("report.json")
                        .is_file() =>
            {
                on_event(BatchEvent::Finished {
                    record: Box::new(record.clone()),
                    resumed: true,
                });
                records.lock().unwrap().push(record.clone());
            }
            _ => queue.push_back(job),
        }
    }
    let queue = Mutex::new(queue);
    let workers = options.plan.jobs.max(1);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (queue, records, journal, failure) = (&queue, &records, &journal, &failure);
            let on_event = on_event.clone();
            std::thread::Builder::new()
                .name(format!("alinify-batch-{worker}"))
                .spawn_scoped(scope, move || {
                    let pool = match rayon::ThreadPoolBuilder::new()
                        .num_threads(options.plan.threads.max(1))
                        .thread_name(move |i| format!("alinify-batch-{worker}-{i}"))
                        .build()
                    {
                        Ok(pool) => pool,
                        Err(e) => {
                            *failure.lock().unwrap() = Some(Error::Internal(e.to_string()));
                            return;
                        }
                    };
                    loop {
                        if control.is_cancelled() {
                            return;
                        }
                        let Some(job) = queue.lock().unwrap().pop_front() else {
                            return;
                        };
                        if let Err(e) = journal.started(&job.name) {
                            *failure.lock().unwrap() = Some(e);
                            control.cancel_all();
                            return;
                        }
                        on_event(BatchEvent::Started { job: job.clone() });
                        let cancel = control.start(job.index);
                        let record = pool.install(|| run_job(&job, options, &cancel, &on_event));
                        control.end(job.index);
                        if control.is_cancelled() && record.status == JobStatus::Cancelled {
                            return; // not journalled as finished: a resume redoes it
                        }
                        if let Err(e) = journal.finished(&record) {
                            *failure.lock().unwrap() = Some(e);
                            control.cancel_all();
                            return;
                        }
                        on_event(BatchEvent::Finished {
                            record: Box::new(record.clone()),
                            resumed: false,
                        });
                        records.lock().unwrap().push(record);
                    }
                })
                .expect("spawn a batch worker");
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    if control.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let mut records = records.into_inner().unwrap();
    records.sort_by_key(|r| r.index);
    let summary = BatchSummary {
        records,
        plan: options.plan,
        seconds: started.elapsed().as_secs_f64(),
    };
    report::write_reports(
        &options.out_dir,
        &summary.records,
        Path::new(""),
        options.choice.as_deref(),
    )?;
    Ok(summary)
}

/// The files a job writes besides the registration's own.
const JOB_EXTRA_FILES: [&str; 4] = ["qc.png", "before.png", "after.png", TO_FIRST];

/// The registration a job runs, without its pair's own preset applied.
fn job_request(
    job: &BatchJob,
    options: &BatchOptions,
    settings: RegisterOptions,
) -> RegisterRequest {
    RegisterRequest {
        fixed: job.fixed.clone(),
        moving: job.moving.clone(),
        out_dir: options.out_dir.join(&job.name),
        field: None,
        export_elastix: None,
        fixed_mask: None,
        moving_mask: None,
        landmarks: None,
        options: settings,
    }
}

/// Refuses a batch that would write over any of its inputs (a pair's images or preset, in any
/// job's folder or the batch's reports), before any pair runs.
fn check_paths(jobs: &[BatchJob], options: &BatchOptions) -> Result<()> {
    let mut outputs: Vec<(&str, PathBuf)> = report::REPORT_FILES
        .iter()
        .chain([&journal::FILE])
        .map(|f| ("batch report", options.out_dir.join(f)))
        .collect();
    for job in jobs {
        let mut settings = options.options.clone();
        settings.mode = job.mode.unwrap_or(settings.mode);
        let request = job_request(job, options, settings);
        outputs.extend(request.output_files());
        outputs.extend(JOB_EXTRA_FILES.map(|f| ("output", request.out_dir.join(f))));
    }
    let outputs: Vec<io::Labelled> = outputs.iter().map(|(l, p)| (*l, p.as_path())).collect();
    let inputs: Vec<io::Labelled> = jobs
        .iter()
        .flat_map(|j| {
            [
                ("fixed image", j.fixed.as_path()),
                ("moving image", j.moving.as_path()),
            ]
            .into_iter()
            .chain(j.preset.as_deref().map(|p| ("preset", p)))
        })
        .collect();
    io::check_outputs(&inputs, &outputs)
}

/// One pair, isolated: every failure, panics included, becomes a failed record.
fn run_job(
    job: &BatchJob,
    options: &BatchOptions,
    cancel: &CancelToken,
    on_event: &EventSink,
) -> JobRecord {
    let started = Instant::now();
    let mut settings = options.options.clone();
    let mut record = JobRecord {
        index: job.index,
        name: job.name.clone(),
        fixed: job.fixed.clone(),
        moving: job.moving.clone(),
        mode: job.mode.unwrap_or(settings.mode),
        status: JobStatus::Failed,
        error: None,
        seconds: None,
        wall_seconds: 0.0,
        ncc_before: None,
        ncc_after: None,
        metric_end: None,
        backend: None,
        qc_corr_median: None,
        qc_corr_p5: None,
        folded_fraction: None,
        qc_regions: None,
        flags: Vec::new(),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<_> {
        if let Some(preset) = &job.preset {
            Settings::named(&preset.to_string_lossy())?.apply(&mut settings)?;
        }
        if let Some(mode) = job.mode {
            settings.mode = mode;
        }
        let request = job_request(job, options, settings.clone());
        let out_dir = request.out_dir.clone();
        let index = job.index;
        let on_event = on_event.clone();
        let observer: crate::job::ProgressObserver = Arc::new(move |p: &Progress| {
            on_event(BatchEvent::Progress {
                index,
                progress: p.clone(),
            })
        });
        let reporter = Reporter::<()>::observed(cancel.clone(), observer);
        let summary = crate::register::register_files(&request, &reporter)?;
        summary.report.qc.write_picture(&out_dir.join("qc.png"))?;
        write_thumbnails(
            &job.fixed,
            &job.moving,
            &out_dir.join("warped.tif"),
            &out_dir,
        )?;
        Ok(summary.report)
    }));
    record.mode = settings.mode;
    match outcome {
        Ok(Ok(report)) => {
            record.status = JobStatus::Done;
            record.seconds = Some(report.seconds);
            record.ncc_before = Some(report.ncc_before);
            record.ncc_after = Some(report.ncc_after);
            record.metric_end = report.levels.last().map(|l| l.metric_end);
            record.backend = Some(report.backend.clone());
            if report.ncc_after < report.ncc_before {
                record.flags.push("ncc_dropped".into());
            }
            if report.ncc_after < LOW_NCC {
                record.flags.push("low_ncc".into());
            }
            let qc = &report.qc;
            let corr = qc.quality.maps.get("corr");
            record.qc_corr_median = corr.map(|c| c.median);
            record.qc_corr_p5 = corr.map(|c| c.p5);
            record.folded_fraction = Some(qc.jacobian.folded_fraction);
            record.qc_regions = Some(qc.quality.flags.len() + qc.jacobian.flags.len());
            record.flags.extend(qc.flags.iter().cloned());
        }
        Ok(Err(Error::Cancelled)) => {
            record.status = JobStatus::Cancelled;
            record.error = Some("cancelled".into());
        }
        Ok(Err(e)) => record.error = Some(e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            record.error = Some(format!("internal error (a bug): {what}"));
        }
    }
    if record.status != JobStatus::Done {
        // A pair that failed before writing anything leaves no empty folder behind;
        // `remove_dir` refuses a folder with anything in it, so nothing written is lost.
        let _ = std::fs::remove_dir(options.out_dir.join(&job.name));
    }
    record.wall_seconds = started.elapsed().as_secs_f64();
    record
}

/// Longest side of the report's thumbnails.
pub const THUMBNAIL_SIDE: usize = 256;
/// Checkerboard square of the thumbnails, thumbnail pixels.
const SQUARE: usize = 16;

/// `before.png` (fixed against moving) and `after.png` (fixed against warped): checkerboards of
/// decimated luminance, for the HTML report.
pub fn write_thumbnails(fixed: &Path, moving: &Path, warped: &Path, out_dir: &Path) -> Result<()> {
    let fixed = io::load_image(fixed)?;
    let (w, h) = (fixed.width(), fixed.height());
    let step = w.max(h).div_ceil(THUMBNAIL_SIDE).max(1);
    let (tw, th) = (w.div_ceil(step), h.div_ceil(step));
    let decimate = |image: &AnyImage| -> GrayF32 {
        let mut out = GrayF32::zeros((th, tw));
        let mut row = vec![0.0f32; image.width()];
        for ty in 0..th {
            let y = (ty * step).min(image.height().saturating_sub(1));
            image.luminance_row(y, &mut row);
            for tx in 0..tw {
                out[[ty, tx]] = row.get(tx * step).copied().unwrap_or(0.0);
            }
        }
        out
    };
    let f = decimate(&fixed);
    drop(fixed);
    for (name, other) in [("before.png", moving), ("after.png", warped)] {
        let o = decimate(&io::load_image(other)?);
        let board = GrayF32::from_shape_fn((th, tw), |(y, x)| {
            if (x / SQUARE + y / SQUARE).is_multiple_of(2) {
                f[[y, x]]
            } else {
                o[[y, x]]
            }
        });
        io::save_image(
            &out_dir.join(name),
            &AnyImage::from_gray_units(&board, SampleDepth::U8),
        )?;
    }
    Ok(())
}

/// Name of the transform from a chain's first image to a job's moving image.
pub const TO_FIRST: &str = "to_first.json";

/// For a chain (job `i` registers image `i + 1` to image `i`), writes `<job>/to_first.json`:
/// the composition of the transforms of jobs `0..=i`, mapping the first image's grid into image
/// `i + 1`. `alinify warp IMAGE <job>/to_first.json` then aligns that image to the first one.
/// Stops at the first job that did not finish. Returns how many were written.
pub fn compose_chain(out_dir: &Path, records: &[JobRecord]) -> Result<usize> {
    use crate::io::{TransformFile, TransformSpec};
    let mut records: Vec<&JobRecord> = records.iter().collect();
    records.sort_by_key(|r| r.index);
    let mut steps: Vec<TransformSpec> = Vec::new();
    let mut first_size = None;
    let mut written = 0;
    for (expected, record) in records.iter().enumerate() {
        if record.index != expected || record.status != JobStatus::Done {
            break;
        }
        let file = TransformFile::load(&out_dir.join(&record.name).join("transform.json"))?;
        let first = *first_size.get_or_insert(file.fixed);
        steps.push(relocate(file.transform, &record.name));
        let composed = TransformFile {
            fixed: first,
            transform: TransformSpec::Composed {
                steps: steps.clone(),
            },
            ..file
        };
        composed.save(&out_dir.join(&record.name).join(TO_FIRST))?;
        written += 1;
    }
    Ok(written)
}

/// A job's transform as seen from a sibling job folder: stored fields are found through
/// `../<job>/`.
fn relocate(spec: crate::io::TransformSpec, job: &str) -> crate::io::TransformSpec {
    use crate::io::TransformSpec;
    match spec {
        TransformSpec::Dense { field, scale } => TransformSpec::Dense {
            field: Path::new("..").join(job).join(field),
            scale,
        },
        TransformSpec::Velocity { field, scale } => TransformSpec::Velocity {
            field: Path::new("..").join(job).join(field),
            scale,
        },
        TransformSpec::Composed { steps } => TransformSpec::Composed {
            steps: steps.into_iter().map(|s| relocate(s, job)).collect(),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::write_generated_pair;

    fn jobs(dir: &Path, count: usize) -> Vec<BatchJob> {
        (0..count)
            .map(|i| {
                let (fixed, moving) =
                    write_generated_pair(&dir.join(format!("pair{i}")), 96, i as u64).unwrap();
                BatchJob {
                    index: i,
                    name: format!("pair{i}"),
                    fixed,
                    moving,
                    mode: None,
                    preset: None,
                }
            })
            .collect()
    }

    fn options(out_dir: PathBuf) -> BatchOptions {
        BatchOptions {
            out_dir,
            options: RegisterOptions {
                mode: Mode::Affine,
                ..RegisterOptions::default()
            },
            plan: Plan {
                jobs: 1,
                threads: 1,
            },
            resume: false,
            choice: None,
        }
    }

    #[test]
    fn cancelling_one_pair_lets_the_batch_finish_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let control = Arc::new(BatchControl::new(CancelToken::new()));
        let sink: EventSink = {
            let control = control.clone();
            Arc::new(move |event| {
                if let BatchEvent::Progress { index: 1, .. } = event {
                    control.cancel_job(1);
                }
            })
        };
        let options = options(dir.path().join("out"));
        let summary = run_batch(jobs(dir.path(), 3), &options, &control, sink).unwrap();
        let statuses: Vec<JobStatus> = summary.records.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [JobStatus::Done, JobStatus::Cancelled, JobStatus::Done]
        );
        let finished = journal::finished_jobs(&options.out_dir).unwrap();
        assert_eq!(finished["pair1"].status, JobStatus::Cancelled);
        let csv = std::fs::read_to_string(options.out_dir.join("summary.csv")).unwrap();
        assert!(csv.contains("cancelled"), "{csv}");
    }

    #[test]
    fn cancelling_the_whole_batch_stops_it_and_leaves_unfinished_pairs_for_resume() {
        let dir = tempfile::tempdir().unwrap();
        let control = Arc::new(BatchControl::new(CancelToken::new()));
        let sink: EventSink = {
            let control = control.clone();
            Arc::new(move |event| {
                if let BatchEvent::Progress { index: 1, .. } = event {
                    control.cancel_all();
                }
            })
        };
        let options = options(dir.path().join("out"));
        let result = run_batch(jobs(dir.path(), 3), &options, &control, sink);
        assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
        let finished = journal::finished_jobs(&options.out_dir).unwrap();
        assert_eq!(finished.len(), 1, "{finished:?}");
        assert_eq!(finished["pair0"].status, JobStatus::Done);
    }
}
