//! The file-to-file registration pipeline shared by the CLI, the GUI and the batch runner.

use super::turn_back::{Oriented, orient_and_initialise};
use super::{Backend, Mode, RegisterOptions};
use crate::io::{self, TransformFile, TransformSpec, flo, warp_to_tiff};
use crate::job::{Progress, Reporter, Stage};
use crate::optimize::LevelReport;
use crate::raster::{PreparedImage, SampleDepth};
use crate::transform::Transform;
use crate::transform::warp::Interpolation;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What to register and where to put the results.
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    /// The reference image: defines the output grid.
    pub fixed: PathBuf,
    /// The image to align to it.
    pub moving: PathBuf,
    /// Folder for `warped.tif`, `transform.json` and `report.json`.
    pub out_dir: PathBuf,
    /// Also write the dense displacement field here (`.flo`).
    pub field: Option<PathBuf>,
    /// Also write the transform as elastix `TransformParameters` files.
    pub export_elastix: Option<PathBuf>,
    /// Only sample the fixed image where this mask is non-zero.
    pub fixed_mask: Option<PathBuf>,
    /// Ignore samples that map where this mask of the moving image is zero.
    pub moving_mask: Option<PathBuf>,
    /// Landmark files `[fixed, moving]` (ANHIR, BigWarp or `x,y` CSV), paired by order: what
    /// the landmarks mode fits its thin-plate spline to.
    pub landmarks: Option<[PathBuf; 2]>,
    /// Registration settings.
    pub options: RegisterOptions,
}

/// Seconds spent per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageSeconds {
    /// Reading inputs.
    pub load: f64,
    /// Building pyramids.
    pub pyramid: f64,
    /// Optimising.
    pub register: f64,
    /// NCC before and after, and the quality control (maps and Jacobian).
    #[serde(default)]
    pub qc: f64,
    /// Resampling (computation only).
    pub warp: f64,
    /// Writing outputs (encoding and disk).
    pub write: f64,
    /// Everything.
    pub total: f64,
}

/// An input as the report describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageReport {
    /// Path as given.
    pub path: PathBuf,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Channels.
    pub channels: usize,
    /// Sample depth.
    pub depth: SampleDepth,
}

/// `report.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Alinify's version.
    pub alinify_version: String,
    /// The pipeline.
    pub mode: Mode,
    /// Where it ran (`cpu` or `gpu`).
    pub backend: String,
    /// GPU adapter name when the GPU was used.
    pub adapter: Option<String>,
    /// The settings used.
    pub options: RegisterOptions,
    /// The fixed image.
    pub fixed: ImageReport,
    /// The moving image.
    pub moving: ImageReport,
    /// Rayon worker threads.
    pub threads: usize,
    /// Seconds per stage.
    pub seconds: StageSeconds,
    /// Per level: iterations and metric at start and end.
    pub levels: Vec<LevelReport>,
    /// Pyramid level at which NCC before/after was measured.
    pub ncc_level: usize,
    /// NCC of fixed and moving before registration (identity).
    pub ncc_before: f64,
    /// NCC of fixed and warped moving after registration.
    pub ncc_after: f64,
    /// Quality control: regional maps and the Jacobian, with their flags.
    pub qc: super::qc::QcSummary,
    /// Fast mode: how the automatic choice between the smooth-deformation and the scene
    /// settings went (absent when a search radius was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_choice: Option<crate::flow::SearchChoice>,
    /// How the affine stage was initialised (absent in the landmarks mode).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub init: Option<super::init::InitChoice>,
    /// With `--landmarks`: their errors under the result (the landmarks the result was fitted
    /// or guided by, so a training error, not a held-out one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<crate::analysis::landmarks::TreReport>,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Files written.
    pub outputs: Vec<PathBuf>,
}

/// What a finished registration returns to its caller.
#[derive(Debug, Clone)]
pub struct RegisterSummary {
    /// The report (also written as `report.json`).
    pub report: Report,
    /// The transform found, as `transform.json` describes it.
    pub transform: TransformSpec,
    /// The same transform, evaluated (the fast mode's field in memory): callers such as the
    /// viewer and the export use it instead of reading the files back.
    pub mapping: Arc<dyn Transform>,
    /// Why a fast run's flow was on the CPU, when it was.
    pub cpu_reason: Option<String>,
}

/// The fast mode's field, at its pyramid level, beside transform.json.
pub const FLOW_FILE: &str = "flow.flo";

/// The demons mode's velocity field, at its pyramid level, beside transform.json.
pub const VELOCITY_FILE: &str = "velocity.flo";

impl RegisterRequest {
    /// The files the registration reads, labelled as error messages name them.
    pub fn input_files(&self) -> Vec<io::Labelled<'_>> {
        let mut inputs: Vec<io::Labelled> =
            vec![("fixed image", &self.fixed), ("moving image", &self.moving)];
        inputs.extend(self.fixed_mask.as_deref().map(|m| ("--fixed-mask", m)));
        inputs.extend(self.moving_mask.as_deref().map(|m| ("--moving-mask", m)));
        if let Some([fixed, moving]) = &self.landmarks {
            inputs.push(("fixed landmarks", fixed));
            inputs.push(("moving landmarks", moving));
        }
        inputs
    }

    /// Every file the registration writes: the output folder's files and the extra outputs.
    pub fn output_files(&self) -> Vec<(&'static str, PathBuf)> {
        let mut outputs = vec![
            ("output", self.out_dir.join("warped.tif")),
            ("output", self.out_dir.join("transform.json")),
            ("output", self.out_dir.join("report.json")),
        ];
        match self.options.mode {
            Mode::Fast => outputs.push(("output", self.out_dir.join(FLOW_FILE))),
            Mode::Demons => outputs.push(("output", self.out_dir.join(VELOCITY_FILE))),
            _ => {}
        }
        outputs.extend(self.field.iter().map(|f| ("--field", f.clone())));
        if let Some(path) = &self.export_elastix {
            outputs.push(("--export-elastix", path.clone()));
            outputs.push(("--export-elastix", io::elastix::companion_path(path)));
        }
        outputs
    }

    /// Refuses a request whose outputs would replace one of its inputs or each other.
    pub fn check_paths(&self) -> Result<()> {
        let outputs = self.output_files();
        let outputs: Vec<io::Labelled> = outputs.iter().map(|(l, p)| (*l, p.as_path())).collect();
        io::check_outputs(&self.input_files(), &outputs)
    }
}

/// Shortest side of the coarsest automatic level, where the initialisation runs (all modes;
/// measured: a brick texture under a stain-like intensity change locked 15 px off from a
/// 64 px start, EPE 62 px, and 0.04 px from 16 px).
const COARSEST_INIT_SIDE: usize = 16;

/// The same for mutual information, whose joint histogram needs more pixels than a 16 px level
/// has (measured on the real cross-stain landmark pairs: a 16 px start took the lung Cc10 pair
/// from median rTRE 0.0078 to 0.0141; from 64 px it is 0.0082).
const MI_COARSEST_INIT_SIDE: usize = 64;

/// Longest side of the level at which NCC before/after is measured.
const NCC_MAX_SIDE: usize = 1024;

/// Fixed and moving landmarks, paired by position.
type LandmarkPairs = (Vec<[f64; 2]>, Vec<[f64; 2]>);

/// The request's landmark pairs (`None` without `--landmarks`), paired by order.
fn landmark_pairs<T>(
    request: &RegisterRequest,
    reporter: &Reporter<T>,
) -> Result<Option<LandmarkPairs>> {
    use crate::io::landmarks::{Side, read_landmarks};
    let Some([fixed_path, moving_path]) = &request.landmarks else {
        return Ok(None);
    };
    let mut fixed = read_landmarks(fixed_path, Side::Fixed)?.points;
    let mut moving = read_landmarks(moving_path, Side::Moving)?.points;
    let n = fixed.len().min(moving.len());
    if fixed.len() != moving.len() {
        reporter.log(format!(
            "{} fixed and {} moving landmarks: the first {n} of each are paired",
            fixed.len(),
            moving.len(),
        ));
    }
    fixed.truncate(n);
    moving.truncate(n);
    Ok(Some((fixed, moving)))
}

/// The landmarks mode: the thin-plate spline through the request's landmark pairs.
fn fit_landmarks<T>(
    request: &RegisterRequest,
    pairs: Option<&LandmarkPairs>,
    reporter: &Reporter<T>,
) -> Result<crate::transform::ThinPlateSpline> {
    let (Some([fixed_path, moving_path]), Some((fixed, moving))) = (&request.landmarks, pairs)
    else {
        return Err(Error::InvalidArgument(
            "--mode landmarks needs --landmarks FIXED.csv MOVING.csv".into(),
        ));
    };
    let smoothing = request.options.landmark_smoothing;
    let tps = crate::transform::ThinPlateSpline::fit(fixed, moving, smoothing).map_err(|e| {
        Error::InvalidData {
            path: fixed_path.clone(),
            detail: format!("with {}: {e}", moving_path.display()),
        }
    })?;
    reporter.log(if tps.centers.is_empty() {
        format!(
            "{} landmark pairs: an affine fit",
            fixed.len().min(moving.len())
        )
    } else {
        format!(
            "thin-plate spline through {} landmark pairs (smoothing {smoothing})",
            tps.centers.len()
        )
    });
    Ok(tps)
}

/// Runs a registration from files to files. Inputs are validated and the output folder proven
/// writable before any heavy work; each output appears atomically.
///
/// The work runs on a thread of rayon's pool. Each of its hundreds of parallel steps, called
/// from a thread outside the pool (a job's or the command's), is queued to the pool while the
/// caller sleeps on a latch; from inside it is a join. That took the two candidates of the flow's
/// automatic choice from 0.13 to 0.07 s of a 1024² fast registration on 2 cores.
pub fn register_files<T: Send>(
    request: &RegisterRequest,
    reporter: &Reporter<T>,
) -> Result<RegisterSummary> {
    rayon::scope(|_| register_files_on_a_worker(request, reporter))
}

fn register_files_on_a_worker<T>(
    request: &RegisterRequest,
    reporter: &Reporter<T>,
) -> Result<RegisterSummary> {
    let started = Instant::now();
    let options = &request.options;
    let mut seconds = StageSeconds::default();
    let stage = |stage: Stage, fraction: f32| reporter.progress(Progress::at(stage, fraction));
    request.check_paths()?;
    // A missing or unreadable input fails before the output folder is made.
    for (_, path) in request.input_files() {
        io::check_regular(path)?;
    }
    io::ensure_output_dir(&request.out_dir)?;
    if let Some(field) = &request.field
        && let Some(parent) = field.parent().filter(|p| !p.as_os_str().is_empty())
    {
        io::ensure_output_dir(parent)?;
    }
    if options.backend == Backend::Gpu && !matches!(options.mode, Mode::Fast | Mode::Demons) {
        return Err(Error::InvalidArgument(format!(
            "--backend gpu: {} mode runs on the CPU; use --backend cpu or auto",
            options.mode
        )));
    }
    options.flow.validate()?;
    options.demons.validate()?;
    let mut backend = "cpu";
    let mut adapter = None;
    let mut cpu_reason = None;
    let mut in_memory: Option<Box<dyn Transform>> = None;
    let mut flow_choice = None;
    let mut init_choice = None;

    stage(Stage::Load, 0.0);
    let t = Instant::now();
    let (fixed, moving) = rayon::join(
        || io::load_image(&request.fixed),
        || io::load_image(&request.moving),
    );
    let (fixed, moving) = (fixed?, moving?);
    let mut constraints = super::bspline::Constraints {
        fixed: load_mask_sized(request.fixed_mask.as_deref(), fixed.width(), fixed.height())?,
        moving: load_mask_sized(
            request.moving_mask.as_deref(),
            moving.width(),
            moving.height(),
        )?,
        landmarks: None,
    };
    seconds.load = t.elapsed().as_secs_f64();
    reporter.check()?;
    let describe = |path: &Path, im: &crate::raster::AnyImage| ImageReport {
        path: path.into(),
        width: im.width(),
        height: im.height(),
        channels: im.channels(),
        depth: im.depth(),
    };
    let fixed_report = describe(&request.fixed, &fixed);
    let moving_report = describe(&request.moving, &moving);
    reporter.log(format!(
        "fixed {} x {} x {}, moving {} x {} x {}",
        fixed.width(),
        fixed.height(),
        fixed.channels(),
        moving.width(),
        moving.height(),
        moving.channels()
    ));

    stage(Stage::Pyramid, 0.05);
    let t = Instant::now();
    let levels = options
        .levels
        // Every mode starts on tiny levels: a repeating pattern (bricks, a woven or printed
        // motif) is averaged out there while its envelope is not, so the initial translation
        // and the coarse deformation cannot lock one period off.
        .unwrap_or_else(|| {
            let side = match options.metric {
                crate::metric::MetricKind::Mi => MI_COARSEST_INIT_SIDE,
                _ => COARSEST_INIT_SIDE,
            };
            super::auto_levels_down_to(&fixed, &moving, side)
        })
        .max(1);
    let cancel = reporter.cancel_token();
    let (fixed, moving) = rayon::join(
        || PreparedImage::with_channel(fixed, options.channel, levels, cancel),
        || PreparedImage::with_channel(moving, options.channel, levels, cancel),
    );
    let (fixed, moving) = (fixed?, moving?);
    seconds.pyramid = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (fw, fh) = (fixed.width(), fixed.height());
    let coarsest = fixed.levels().min(moving.levels()) - 1;
    let finest = options
        .finest_level
        .unwrap_or_else(|| super::default_finest_level(fw, fh))
        .min(coarsest);
    if request.landmarks.is_some()
        && matches!(options.mode, Mode::Affine | Mode::Fast | Mode::Demons)
    {
        reporter.log(format!(
            "--landmarks: the {} mode does not use landmarks (the accurate and landmarks modes do); report.json scores them",
            options.mode
        ));
    }
    let landmarks = landmark_pairs(request, reporter)?;
    // The registration itself runs from 10 % to 90 % of the bar (the warp and the writing
    // follow).
    let registering = reporter.within([0.1, 0.9]);
    // Every mode with an affine stage starts from the initialisation, which turns a moving
    // image found turned through a multiple of 90° or mirrored back first.
    let (oriented, start) = if options.mode == Mode::Landmarks {
        (Oriented::unturned(moving), None)
    } else {
        let (oriented, start) = orient_and_initialise(&fixed, moving, options, &registering)?;
        (oriented, Some(start))
    };
    let moving = &oriented.moving;
    if !oriented.turn.is_identity() {
        constraints.moving = constraints
            .moving
            .map(|mask| oriented.turn.canonical_mask(&mask));
    }
    let start = || {
        start
            .clone()
            .expect("every mode but the landmarks' was initialised")
    };
    let (spec, levels_report): (TransformSpec, Vec<LevelReport>) = match options.mode {
        Mode::Affine => {
            let affine_finest = super::affine_finest_level(fw, fh).max(finest);
            let outcome = super::affine::register_affine(
                &fixed,
                moving,
                options,
                start(),
                affine_finest,
                &registering,
            )?;
            init_choice = Some(outcome.init);
            (TransformSpec::Affine(outcome.affine), outcome.levels)
        }
        Mode::Accurate => {
            let spacing = options
                .grid_spacing
                .unwrap_or_else(|| super::default_grid_spacing(fw, fh))
                .max(4.0);
            let steps = super::bspline::schedule(
                fw,
                fh,
                finest,
                coarsest,
                spacing,
                options.grid_levels,
                options.metric != crate::metric::MetricKind::Mi,
            );
            constraints.landmarks = landmarks.clone().map(|(fixed, moving)| {
                reporter.log(format!(
                    "{} landmark pairs guide the B-spline (weight {})",
                    fixed.len(),
                    options.landmark_weight
                ));
                super::bspline::LandmarkGuide {
                    fixed,
                    moving: moving
                        .into_iter()
                        .map(|p| oriented.to_canonical(p))
                        .collect(),
                    weight: options.landmark_weight,
                }
            });
            // The affine stage runs down to where the B-spline stage starts, and at least to
            // the level of ACCURATE_AFFINE_SIDE pixels: an affine left a little off (a scale
            // 0.3 % short is 2 px at a 1200 px section's corners) is mended by the grid only
            // where there is content, and the slide around it keeps the error.
            let affine_finest = steps
                .first()
                .map_or(finest, |s| s.level)
                .min(super::level_of_side(fw, fh, super::ACCURATE_AFFINE_SIDE).max(finest));
            // The affine stage has the first fifth of the registration's bar.
            let affine = super::affine::register_affine(
                &fixed,
                moving,
                options,
                start(),
                affine_finest,
                &registering.within([0.0, 0.2]),
            )?;
            init_choice = Some(affine.init.clone());
            let outcome = super::bspline::register_bspline(
                &fixed,
                moving,
                affine.affine,
                &steps,
                options,
                &constraints,
                &registering.within([0.2, 1.0]),
            )?;
            let mut levels = affine.levels;
            levels.extend(outcome.levels);
            (TransformSpec::AffineBspline(outcome.transform), levels)
        }
        Mode::Landmarks => {
            let tps = fit_landmarks(request, landmarks.as_ref(), reporter)?;
            (TransformSpec::ThinPlate(tps), Vec::new())
        }
        Mode::Fast => {
            let outcome =
                super::fast::register_fast(&fixed, moving, options, start(), &registering)?;
            backend = outcome.backend;
            adapter = outcome.adapter;
            cpu_reason = outcome.cpu_reason;
            flow_choice = outcome.flow.search_choice;
            init_choice = Some(outcome.init.clone());
            // The field is stored at its own level; transform.json refers to it.
            let flow_path = request.out_dir.join(FLOW_FILE);
            crate::io::flo::write_flo(&flow_path, &outcome.flow.field)?;
            let scale = (1u64 << outcome.flow.level) as f64;
            // The field is in memory already: no need to read flow.flo back.
            in_memory = Some(crate::transform::dense_transform(outcome.flow.field, scale));
            (
                TransformSpec::Dense {
                    field: FLOW_FILE.into(),
                    scale,
                },
                outcome.levels,
            )
        }
        Mode::Demons => {
            let outcome =
                super::demons::register_demons(&fixed, moving, options, start(), &registering)?;
            backend = outcome.backend;
            adapter = outcome.adapter.clone();
            cpu_reason = outcome.cpu_reason.clone();
            init_choice = Some(outcome.init.clone());
            let velocity_path = request.out_dir.join(VELOCITY_FILE);
            let velocity = crate::transform::velocity::to_dense(&outcome.demons.velocity);
            crate::io::flo::write_flo(&velocity_path, &velocity)?;
            let scale = (1u64 << outcome.demons.level) as f64;
            // The warp and the QC read the whole transform as one field on the velocity's grid.
            in_memory = Some(crate::transform::dense_transform(
                outcome.total_displacement(),
                scale,
            ));
            let steps = vec![
                TransformSpec::Velocity {
                    field: VELOCITY_FILE.into(),
                    scale,
                },
                TransformSpec::Affine(outcome.affine),
            ];
            (TransformSpec::Composed { steps }, outcome.levels)
        }
    };
    seconds.register = t.elapsed().as_secs_f64();
    let transform: Arc<dyn Transform> = match in_memory {
        Some(transform) => transform.into(),
        None => spec.build(&request.out_dir)?.into(),
    };

    // Similarity before and after, on a level small enough to be cheap.
    let t = Instant::now();
    let ncc_level = super::shared_level_of_side(&fixed, moving, NCC_MAX_SIDE);
    let (fl, ml) = (fixed.level(ncc_level), moving.level(ncc_level));
    // Before: the images as stored (a turned-back moving image read through its turn). The
    // similarities and the QC run side by side: each leaves a core idle in its serial parts.
    let stored = oriented.as_stored();
    let ncc = |t: &dyn Transform| crate::analysis::ncc_after_transform(&fl, &ml, t, ncc_level);
    let ((ncc_before, ncc_after), qc) = rayon::join(
        || rayon::join(|| ncc(&*stored), || ncc(transform.as_ref())),
        || {
            super::qc::registration_qc(
                &fl,
                &ml,
                transform.as_ref(),
                options.metric,
                ncc_level,
                (fw, fh),
                cancel,
            )
        },
    );
    reporter.log(format!("NCC before {ncc_before:.4}, after {ncc_after:.4}"));
    // The QC judges the registration; when it cannot (an image under 3 px across), the
    // registration still stands and the report says why.
    let qc = match qc {
        Ok(qc) => qc,
        Err(crate::Error::Cancelled) => return Err(crate::Error::Cancelled),
        Err(e) => {
            reporter.log(format!("QC skipped: {e}"));
            super::qc::QcSummary {
                skipped: Some(e.to_string()),
                ..Default::default()
            }
        }
    };
    drop((fl, ml));
    seconds.qc = t.elapsed().as_secs_f64();
    if qc.flagged() {
        reporter.log(format!("QC flags: {}", qc.flags.join(", ")));
    }

    stage(Stage::Warp, 0.9);
    let mut outputs = Vec::new();
    let t = Instant::now();
    let warped_path = request.out_dir.join("warped.tif");
    seconds.warp = warp_to_tiff(
        &warped_path,
        &moving.image,
        transform.as_ref(),
        fw,
        fh,
        Interpolation::Linear,
        cancel,
    )?;
    outputs.push(warped_path);
    stage(Stage::Write, 0.95);
    // What is saved and returned maps onto the moving image as stored.
    let spec = oriented.onto_stored(spec);
    let transform = oriented.mapping_onto_stored(&transform);
    let transform_path = request.out_dir.join("transform.json");
    TransformFile::new([fw, fh], oriented.stored_size, spec.clone()).save(&transform_path)?;
    outputs.push(transform_path);
    outputs.extend(spec.field_files(&request.out_dir));
    if let Some(path) = &request.export_elastix {
        crate::io::elastix::export(path, &spec, [fw, fh])?;
        outputs.push(path.clone());
    }
    if let Some(field_path) = &request.field {
        write_field(field_path, transform.as_ref(), fw, fh)?;
        outputs.push(field_path.clone());
    }
    seconds.write = t.elapsed().as_secs_f64() - seconds.warp;
    seconds.total = started.elapsed().as_secs_f64();
    let report_path = request.out_dir.join("report.json");
    outputs.push(report_path.clone());
    let report = Report {
        alinify_version: env!("CARGO_PKG_VERSION").into(),
        mode: options.mode,
        backend: backend.into(),
        adapter,
        options: options.clone(),
        fixed: fixed_report,
        moving: moving_report,
        threads: rayon::current_num_threads(),
        seconds,
        levels: levels_report,
        ncc_level,
        ncc_before,
        ncc_after,
        qc,
        flow_choice,
        init: init_choice,
        landmarks: landmarks.and_then(|(fixed, moving)| {
            let diagonal = (fw as f64).hypot(fh as f64);
            crate::analysis::landmarks::landmark_errors(&fixed, &moving, &*transform, diagonal)
                .map(|(_, report)| report)
        }),
        peak_rss_mib: crate::memory::peak_rss_bytes().map(|b| b as f64 / (1 << 20) as f64),
        outputs,
    };
    io::write_atomic(&report_path, |w| {
        serde_json::to_writer_pretty(&mut *w, &report).map_err(|e| Error::write(&report_path, e))
    })?;
    Ok(RegisterSummary {
        report,
        transform: spec,
        mapping: transform,
        cpu_reason,
    })
}

/// Loads a mask and checks it matches its image's size.
fn load_mask_sized(
    path: Option<&Path>,
    width: usize,
    height: usize,
) -> Result<Option<ndarray::Array2<bool>>> {
    let Some(path) = path else { return Ok(None) };
    let mask = io::load_mask(path)?;
    if mask.dim() != (height, width) {
        return Err(Error::InvalidData {
            path: path.into(),
            detail: format!(
                "mask is {} x {} but its image is {width} x {height}",
                mask.ncols(),
                mask.nrows()
            ),
        });
    }
    if !mask.iter().any(|&m| m) {
        return Err(Error::InvalidData {
            path: path.into(),
            detail: "mask is empty (all zero)".into(),
        });
    }
    Ok(Some(mask))
}

/// Streams the displacement `T(p) - p` over the fixed grid into a `.flo`, row by row.
pub fn write_field(
    path: &Path,
    transform: &dyn Transform,
    width: usize,
    height: usize,
) -> Result<()> {
    let mapper = transform.row_mapper(0, width);
    flo::write_flo_rows(path, width, height, &|y, u, v| {
        let (mut xs, mut ys) = (vec![0f64; width], vec![0f64; width]);
        mapper.map_row(y, &mut xs, &mut ys);
        for x in 0..width {
            u[x] = (xs[x] - x as f64) as f32;
            v[x] = (ys[x] - y as f64) as f32;
        }
        Ok(())
    })
}
