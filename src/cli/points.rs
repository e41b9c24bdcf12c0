//! Points through transforms: `alinify warp-points`, `alinify invert` and
//! `alinify analyze landmarks`.

use super::progress::Ui;
use alinify::analysis::landmarks::{LandmarkError, TreReport, landmark_errors};
use alinify::io::landmarks::{LandmarkFormat, Side, read_landmarks, write_landmarks};
use alinify::io::{self, TransformFile};
use alinify::transform::Transform;
use alinify::{Error, Result};
use std::path::{Path, PathBuf};

/// `warp-points`.
#[derive(clap::Args, Debug)]
pub struct WarpPointsArgs {
    /// transform.json: maps fixed-image points into the moving image, `q = T(p)`.
    transform: PathBuf,
    /// Fixed-image points: ANHIR (`,X,Y`), BigWarp (its fix-x, fix-y columns) or `x,y` CSV.
    points: PathBuf,
    /// Output CSV, in the input's layout (ANHIR for a BigWarp input).
    #[arg(short, long)]
    out: PathBuf,
}

/// `invert`.
#[derive(clap::Args, Debug)]
pub struct InvertArgs {
    /// transform.json to invert (fixed to moving).
    transform: PathBuf,
    /// The inverse transform file (moving to fixed); a dense inverse is written beside it as
    /// the same name with `.flo`.
    #[arg(short, long)]
    out: PathBuf,
    /// Dense inversion: the largest |T(p) - m| accepted per sample, in pixels.
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f64,
}

/// Samples of a dense inverse at most (16 M: 128 MiB of field); larger moving images are
/// sampled every 2, 4, ... pixels.
const MAX_INVERSE_SAMPLES: u64 = 1 << 24;

/// `analyze landmarks`.
#[derive(clap::Args, Debug)]
pub struct LandmarksArgs {
    /// The fixed image's landmarks (ANHIR, BigWarp or `x,y` CSV).
    fixed: PathBuf,
    /// The moving image's landmarks, paired with the fixed ones by order (the same BigWarp
    /// file as FIXED reads its moving columns).
    moving: PathBuf,
    /// transform.json from a registration of the two images.
    #[arg(long)]
    transform: PathBuf,
    /// The fixed image, for its diagonal (default: the size in the transform file).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Output folder: tre.csv and tre.json.
    #[arg(long)]
    out: PathBuf,
}

fn load_transform(path: &Path) -> Result<(TransformFile, Box<dyn Transform>)> {
    let file = TransformFile::load(path)?;
    let transform = file.build(path.parent().unwrap_or(Path::new(".")))?;
    Ok((file, transform))
}

/// Maps the fixed-frame points of a file into the moving frame.
pub fn warp_points(args: WarpPointsArgs, ui: &Ui) -> anyhow::Result<()> {
    io::check_outputs(
        &[("transform", &args.transform), ("points", &args.points)],
        &[("--out", &args.out)],
    )?;
    let (_, transform) = load_transform(&args.transform)?;
    let points = read_landmarks(&args.points, Side::Fixed)?;
    let mapped: Vec<[f64; 2]> = points
        .points
        .iter()
        .map(|p| transform.map_point(p[0], p[1]))
        .collect();
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        io::ensure_output_dir(parent)?;
    }
    let format = match points.format {
        LandmarkFormat::Plain => LandmarkFormat::Plain,
        _ => LandmarkFormat::Anhir,
    };
    write_landmarks(&args.out, &mapped, format)?;
    ui.say(format!(
        "{} point(s) mapped into the moving image: {}",
        mapped.len(),
        args.out.display()
    ));
    Ok(())
}

/// Writes the inverse of a transform file: exact for an affine (and the identity), otherwise a
/// dense field on the moving image's grid solved sample by sample.
pub fn invert(args: InvertArgs, ui: &Ui) -> anyhow::Result<()> {
    use alinify::io::TransformSpec;
    if !(args.tolerance.is_finite() && args.tolerance > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "--tolerance {}: must be a positive number of pixels",
            args.tolerance
        ))
        .into());
    }
    let field_path = args.out.with_extension("flo");
    let file = TransformFile::load(&args.transform)?;
    let base = args.transform.parent().unwrap_or(Path::new("."));
    let fields = file.transform.field_files(base);
    let mut inputs: Vec<io::Labelled> = vec![("transform", &args.transform)];
    inputs.extend(fields.iter().map(|f| ("dense field", f.as_path())));
    let dense = !matches!(
        file.transform,
        TransformSpec::Identity | TransformSpec::Affine(_)
    );
    let mut outputs: Vec<io::Labelled> = vec![("--out", &args.out)];
    if dense {
        outputs.push(("--out (its field)", &field_path));
    }
    io::check_outputs(&inputs, &outputs)?;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        io::ensure_output_dir(parent)?;
    }
    let exact = file
        .transform
        .exact_inverse(base, &field_path, &args.transform)?;
    if exact.is_some() {
        ui.say("exact inverse: each affine inverted, each velocity field negated");
    }
    let inverse = match exact {
        Some(inverse) => inverse,
        None => {
            let transform = file.build(base)?;
            let moving = [file.moving.width, file.moving.height];
            let started = std::time::Instant::now();
            let solved = alinify::transform::invert::invert_dense(
                &*transform,
                moving,
                MAX_INVERSE_SAMPLES,
                args.tolerance,
            );
            ui.say(format!(
                "dense inverse on a {} x {} grid (every {} px) in {:.2} s; largest residual {:.2e} px{}",
                solved.field.width(),
                solved.field.height(),
                solved.scale,
                started.elapsed().as_secs_f64(),
                solved.max_residual,
                if solved.unconverged > 0 {
                    format!(
                        "; {} sample(s) above the tolerance {} px (a fold, or points outside the transform's image)",
                        solved.unconverged, args.tolerance
                    )
                } else {
                    String::new()
                }
            ));
            alinify::io::flo::write_flo(&field_path, &solved.field)?;
            let name = field_path.file_name().expect("a file name").into();
            TransformSpec::Dense {
                field: name,
                scale: solved.scale,
            }
        }
    };
    let fixed = [file.fixed.width, file.fixed.height];
    TransformFile::new([file.moving.width, file.moving.height], fixed, inverse).save(&args.out)?;
    ui.say(format!("inverse written to {}", args.out.display()));
    Ok(())
}

/// Scores a transform on landmark pairs: tre.csv and tre.json.
pub fn analyze_landmarks(args: LandmarksArgs, ui: &Ui) -> anyhow::Result<()> {
    let mut inputs: Vec<io::Labelled> = vec![
        ("fixed landmarks", &args.fixed),
        ("moving landmarks", &args.moving),
        ("--transform", &args.transform),
    ];
    inputs.extend(args.reference.as_deref().map(|r| ("--reference", r)));
    io::check_folder_outputs(&inputs, &args.out, &["tre.csv", "tre.json"])?;
    let (file, transform) = load_transform(&args.transform)?;
    let fixed = read_landmarks(&args.fixed, Side::Fixed)?;
    let moving = read_landmarks(&args.moving, Side::Moving)?;
    let (width, height) = match &args.reference {
        Some(r) => {
            let info = io::probe(r)?;
            (info.width, info.height)
        }
        None => (file.fixed.width, file.fixed.height),
    };
    let diagonal = (width as f64).hypot(height as f64);
    let (errors, report) = landmark_errors(&fixed.points, &moving.points, &*transform, diagonal)
        .expect("both files hold points");
    io::ensure_output_dir(&args.out)?;
    write_tre_csv(&args.out.join("tre.csv"), &errors, diagonal)?;
    super::analyze::write_json(&args.out.join("tre.json"), &report)?;
    ui.say(summary(&report));
    Ok(())
}

fn summary(r: &TreReport) -> String {
    let unpaired = if r.unpaired > 0 {
        format!(" ({} unpaired landmark(s) left out)", r.unpaired)
    } else {
        String::new()
    };
    format!(
        "{} pair(s){unpaired}: median rTRE {:.5} (before {:.5}), mean {:.5}, max {:.5}; \
         median TRE {:.2} px; robustness {:.3}",
        r.pairs,
        r.rtre_median,
        r.rtre_before_median,
        r.rtre_mean,
        r.rtre_max,
        r.tre_median_px,
        r.robustness
    )
}

fn write_tre_csv(path: &Path, errors: &[LandmarkError], diagonal: f64) -> Result<()> {
    let mut text = String::from(
        "index,fixed_x,fixed_y,moving_x,moving_y,mapped_x,mapped_y,\
         tre_before_px,tre_after_px,rtre_before,rtre_after\n",
    );
    for e in errors {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            e.index,
            e.fixed[0],
            e.fixed[1],
            e.moving[0],
            e.moving[1],
            e.mapped[0],
            e.mapped[1],
            e.before_px,
            e.after_px,
            e.before_px / diagonal,
            e.after_px / diagonal
        ));
    }
    io::write_text_atomic(path, &text)
}
