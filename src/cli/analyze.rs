//! `alinify analyze quality|jacobian|landmarks`: regional quality maps of a registered pair,
//! the Jacobian QC of a transform, as TIFF maps, PNG pictures with legends, and JSON summaries;
//! landmark errors (in `points`).

use super::progress::Ui;
use alinify::analysis::jacobian::{self, JacobianReport};
use alinify::analysis::quality::{
    Definition, MapSink, PairSource, QualityMap, QualityOptions, QualityReport, compute_quality,
};
use alinify::analysis::render::{self, Colormap, MapPicture};
use alinify::io::{self, RowStreamTiff, TransformFile};
use alinify::job::JobHandle;
use alinify::register::Backend;
use alinify::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to analyse.
#[derive(clap::Subcommand, Debug)]
pub enum AnalyzeCommand {
    /// Regional quality maps between FIXED and MOVING (warped by --transform, or already on the
    /// fixed grid): DIR/<map>.tif (f32), DIR/<map>.png, DIR/quality.json.
    Quality(QualityArgs),
    /// The Jacobian determinant of a transform, with folding and discontinuity checks:
    /// DIR/jacobian.tif (f32), DIR/jacobian.png, DIR/jacobian.json.
    Jacobian(JacobianArgs),
    /// Target registration error of a transform on landmark pairs (ANHIR's rTRE and
    /// robustness): DIR/tre.csv, DIR/tre.json.
    Landmarks(super::points::LandmarksArgs),
    /// The mutual-information network of many images (ARACNe-AP's adaptive partitioning and
    /// DPI): the reference (graph centre) and the order of a series: DIR/mi.csv,
    /// DIR/network.json, DIR/network.png.
    Network(super::network::NetworkArgs),
    /// Keypoints, matches and a robust similarity or affine fit (any rotation, scale, a
    /// mirror): DIR/matches.csv, DIR/matches.png, DIR/transform.json, DIR/features.json.
    Features(super::features::FeaturesArgs),
}

/// `analyze quality`.
#[derive(clap::Args, Debug)]
pub struct QualityArgs {
    /// The fixed image.
    fixed: PathBuf,
    /// The moving image, or its warped.tif (on the fixed grid) when no --transform is given
    /// (then the area outside the moving image, filled with 0, is scored unless --mask leaves
    /// it out; with --transform only the overlap is).
    moving: PathBuf,
    /// transform.json: the moving image is warped through it first.
    #[arg(long)]
    transform: Option<PathBuf>,
    /// Maps: a comma-separated list of mse, corr, mi, dm_mse, dm_corr, dm_mi, or all.
    #[arg(long, default_value = "all", value_parser = parse_maps)]
    maps: MapList,
    /// Window radius r: windows of (2r + 1)² pixels, clipped at the border.
    #[arg(long, default_value_t = 3)]
    radius: usize,
    /// MI histogram bins (default: 32 with --r2m2, 8 otherwise).
    #[arg(long)]
    bins: Option<usize>,
    /// R2M2's exact definitions (f64, window by window, MI at full resolution) instead of the
    /// faster QC maps.
    #[arg(long)]
    r2m2: bool,
    /// The map the flagged regions are found on (default corr; mi for different stains or
    /// modalities, whose intensities need not correlate).
    #[arg(long, value_parser = parse_map)]
    flag_map: Option<QualityMap>,
    /// Score only pixels where this mask (on the fixed grid) is non-zero.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Where the QC box maps run: auto (a hardware GPU, else the CPU), cpu or gpu.
    #[arg(long, default_value = "auto", env = "ALINIFY_BACKEND")]
    backend: Backend,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

/// `analyze jacobian`.
#[derive(clap::Args, Debug)]
pub struct JacobianArgs {
    /// transform.json from a registration.
    transform: PathBuf,
    /// The fixed image (its size); default: the size in the transform file.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Fixed-image pixels between samples for analytic transforms (default: at most 4096
    /// samples on the longer side); dense fields use their own grid.
    #[arg(long)]
    step: Option<usize>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

/// The maps named on the command line.
#[derive(Debug, Clone)]
struct MapList(Vec<QualityMap>);

fn parse_maps(text: &str) -> std::result::Result<MapList, String> {
    QualityMap::parse_list(text).map(MapList)
}

fn parse_map(text: &str) -> std::result::Result<QualityMap, String> {
    match QualityMap::parse_list(text)?.as_slice() {
        [one] if text != "all" => Ok(*one),
        _ => Err("name one map".into()),
    }
}

pub fn run(command: AnalyzeCommand, ui: &Ui) -> anyhow::Result<()> {
    match command {
        AnalyzeCommand::Quality(args) => quality(args, ui),
        AnalyzeCommand::Jacobian(args) => jacobian(args, ui),
        AnalyzeCommand::Landmarks(args) => super::points::analyze_landmarks(args, ui),
        AnalyzeCommand::Network(args) => super::network::run(args, ui),
        AnalyzeCommand::Features(args) => super::features::run(args, ui),
    }
}

/// Streams every map to its TIFF as the bands come.
struct TiffMaps {
    writers: BTreeMap<QualityMap, RowStreamTiff>,
}

impl MapSink for TiffMaps {
    fn rows(&mut self, map: QualityMap, _y: usize, values: Vec<f32>) -> Result<()> {
        match self.writers.get_mut(&map) {
            Some(w) => w.push(values),
            None => Ok(()),
        }
    }
}

fn quality(args: QualityArgs, ui: &Ui) -> anyhow::Result<()> {
    let mut inputs: Vec<io::Labelled> = vec![("fixed", &args.fixed), ("moving", &args.moving)];
    inputs.extend(args.transform.as_deref().map(|t| ("--transform", t)));
    inputs.extend(args.mask.as_deref().map(|m| ("--mask", m)));
    let mut outputs = vec!["quality.json".to_string()];
    for map in &args.maps.0 {
        outputs.extend(["tif", "png"].map(|ext| format!("{}.{ext}", map.name())));
    }
    io::check_folder_outputs(&inputs, &args.out, &outputs)?;
    io::ensure_output_dir(&args.out)?;
    let job = JobHandle::spawn("alinify-analyze", move |reporter| {
        let (fixed, moving) = rayon::join(
            || io::load_image(&args.fixed),
            || io::load_image(&args.moving),
        );
        let (fixed, moving) = (fixed?, moving?);
        let transform = match &args.transform {
            Some(path) => {
                let base = path.parent().unwrap_or(Path::new("."));
                Some(TransformFile::load(path)?.build(base)?)
            }
            None => None,
        };
        let mask = args.mask.as_deref().map(io::load_mask).transpose()?;
        let source = PairSource {
            fixed: &fixed,
            moving: &moving,
            transform: transform.as_deref(),
            mask: mask.as_ref(),
        };
        source.validate().map_err(|e| name_inputs(e, &args))?;
        let options = QualityOptions {
            maps: args.maps.0.clone(),
            radius: args.radius,
            bins: args.bins,
            definition: if args.r2m2 {
                Definition::R2m2
            } else {
                Definition::Qc
            },
            flag_map: args.flag_map,
        };
        let kernel = alinify::register::qc::box_map_kernel(args.backend, &|l| reporter.log(l))?;
        let (w, h) = source.size();
        let mut sink = TiffMaps {
            writers: BTreeMap::new(),
        };
        for &map in &options.maps {
            let path = args.out.join(format!("{}.tif", map.name()));
            sink.writers.insert(map, RowStreamTiff::spawn(&path, w, h)?);
        }
        let result = compute_quality(&source, &options, kernel.as_ref(), &mut sink, reporter)?;
        for (_, writer) in std::mem::take(&mut sink.writers) {
            writer.finish()?;
        }
        for (map, preview) in &result.previews {
            let stats = &result.report.maps[map.name()];
            let colormap = quality_colormap(*map, stats.p5, stats.p95);
            let blocks = if preview.cell > 1 {
                format!(", means of {} px blocks", preview.cell)
            } else {
                String::new()
            };
            let title = format!(
                "{} ({}, r = {}{blocks})",
                map.name(),
                definition_name(result.report.definition),
                result.report.radius,
            );
            render::picture(&MapPicture {
                values: &preview.values,
                width: preview.width,
                height: preview.height,
                cell: preview.cell as f64,
                colormap,
                title: &title,
                unit: map.unit(),
                flags: &result.report.flags,
            })
            .save_png(&args.out.join(format!("{}.png", map.name())))?;
        }
        write_json(&args.out.join("quality.json"), &result.report)?;
        Ok(result.report)
    })?;
    let report: QualityReport = ui.watch(job)?;
    ui.say(format!(
        "{} map(s) in {:.2} s on the {}; {} flagged region(s){}",
        report.maps.len(),
        report.seconds,
        report.backend,
        report.flags.len(),
        summary_line(&report)
    ));
    for f in &report.flags {
        ui.say(format!(
            "  {} x {} at ({}, {}): {}",
            f.width, f.height, f.x, f.y, f.reason
        ));
    }
    Ok(())
}

fn summary_line(report: &QualityReport) -> String {
    report
        .maps
        .get(&report.flagged_map)
        .map(|s| {
            format!(
                "; {} median {:.3}, p5 {:.3}",
                report.flagged_map, s.median, s.p5
            )
        })
        .unwrap_or_default()
}

fn name_inputs(e: Error, args: &QualityArgs) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!(
            "{} and {}: {m}",
            args.fixed.display(),
            args.moving.display()
        )),
        other => other,
    }
}

fn definition_name(d: Definition) -> &'static str {
    match d {
        Definition::Qc => "QC",
        Definition::R2m2 => "R2M2",
    }
}

/// Correlations over 0..1 (negative ones at the dark end); other maps from 0 to their 95th
/// percentile, so that the bulk of the values spreads over the colours.
fn quality_colormap(map: QualityMap, _p5: f64, p95: f64) -> Colormap {
    match map {
        QualityMap::Corr | QualityMap::DmCorr => Colormap::Sequential { lo: 0.0, hi: 1.0 },
        _ => Colormap::Sequential {
            lo: 0.0,
            hi: if p95.is_finite() && p95 > 0.0 {
                p95
            } else {
                1.0
            },
        },
    }
}

fn jacobian(args: JacobianArgs, ui: &Ui) -> anyhow::Result<()> {
    let mut inputs: Vec<io::Labelled> = vec![("transform", &args.transform)];
    inputs.extend(args.reference.as_deref().map(|r| ("--reference", r)));
    let outputs = ["jacobian.tif", "jacobian.png", "jacobian.json"];
    io::check_folder_outputs(&inputs, &args.out, &outputs)?;
    io::ensure_output_dir(&args.out)?;
    let job = JobHandle::spawn("alinify-jacobian", move |reporter| {
        let file = TransformFile::load(&args.transform)?;
        let (width, height) = match &args.reference {
            Some(r) => {
                let info = io::probe(r)?;
                (info.width, info.height)
            }
            None => (file.fixed.width, file.fixed.height),
        };
        let base = args.transform.parent().unwrap_or(Path::new("."));
        let transform = file.build(base)?;
        let result = jacobian::jacobian_qc(
            transform.as_ref(),
            width,
            height,
            args.step,
            reporter.cancel_token(),
        )?;
        let r = &result.report;
        let mut tif = RowStreamTiff::spawn(&args.out.join("jacobian.tif"), r.width, r.height)?;
        tif.push(result.det.clone())?;
        tif.finish()?;
        render::picture(&MapPicture {
            values: &result.det,
            width: r.width,
            height: r.height,
            cell: r.step,
            colormap: Colormap::LogDiverging { span: 4.0 },
            title: "det J (log scale; black: folded, det ≤ 0)",
            unit: "area ratio",
            flags: &r.flags,
        })
        .save_png(&args.out.join("jacobian.png"))?;
        write_json(&args.out.join("jacobian.json"), r)?;
        Ok(result.report)
    })?;
    let r: JacobianReport = ui.watch(job)?;
    ui.say(format!(
        "det J in [{:.3}, {:.3}], folded {:.4} %, std log|J| {:.4}, stretch up to {:.2}; {} flagged region(s)",
        r.min,
        r.max,
        100.0 * r.folded_fraction,
        r.std_log,
        r.stretch_max,
        r.flags.len()
    ));
    for f in &r.flags {
        ui.say(format!(
            "  {} x {} at ({}, {}): {}",
            f.width, f.height, f.x, f.y, f.reason
        ));
    }
    Ok(())
}

/// Writes `value` as pretty JSON with a final newline, atomically.
pub(super) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    io::write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(|e| Error::write(path, e))?;
        std::io::Write::write_all(w, b"\n").map_err(|e| Error::write(path, e))
    })
}
