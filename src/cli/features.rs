//! `alinify analyze features`: keypoints on a coarse level of both images, their matches and
//! the robust similarity (or affine) fit, with the mirror case tried: matches.csv,
//! matches.png, transform.json, features.json.

use super::progress::Ui;
use alinify::analysis::features::{Model, feature_init};
use alinify::io::{self, TransformFile, TransformSpec};
use alinify::raster::{AnyImage, GrayF32, area_mean};
use alinify::transform::Affine;
use std::io::Write;
use std::path::PathBuf;

/// `analyze features`.
#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    /// The fixed image.
    fixed: PathBuf,
    /// The moving image.
    moving: PathBuf,
    /// The model fitted: similarity (rotation, scale, translation) or affine.
    #[arg(long, default_value = "similarity", value_parser = parse_model)]
    model: Model,
    /// Longest side of the coarse level the keypoints are found on, pixels.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(64..=4096))]
    side: u32,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

fn parse_model(text: &str) -> Result<Model, String> {
    match text {
        "similarity" => Ok(Model::Similarity),
        "affine" => Ok(Model::Affine),
        _ => Err("similarity or affine".into()),
    }
}

const OUTPUTS: [&str; 4] = [
    "matches.csv",
    "matches.png",
    "transform.json",
    "features.json",
];

/// An image's luminance on a grid of at most `side` pixels a side (its aspect kept), and the
/// full-resolution pixels per grid pixel.
fn coarse(image: &AnyImage, side: usize) -> (GrayF32, f64) {
    let (w, h) = (image.width(), image.height());
    let factor = (w.max(h) as f64 / side as f64).max(1.0);
    let size = [
        ((w as f64 / factor).round() as usize).max(1),
        ((h as f64 / factor).round() as usize).max(1),
    ];
    (area_mean(image, size), factor)
}

/// `features.json`.
#[derive(serde::Serialize)]
struct FeaturesFile {
    keypoints_fixed: usize,
    keypoints_moving: usize,
    matches: usize,
    inliers: usize,
    rms_px: f64,
    model: Model,
    mirrored: bool,
    level_factor: [f64; 2],
    seconds: f64,
}

pub fn run(args: FeaturesArgs, ui: &Ui) -> anyhow::Result<()> {
    io::check_folder_outputs(
        &[("fixed", &args.fixed), ("moving", &args.moving)],
        &args.out,
        &OUTPUTS,
    )?;
    let (fixed, moving) = (io::load_image(&args.fixed)?, io::load_image(&args.moving)?);
    let started = std::time::Instant::now();
    let (cf, sf) = coarse(&fixed, args.side as usize);
    let (cm, sm) = coarse(&moving, args.side as usize);
    let init = feature_init(&cf, &cm, args.model, 1).map_err(|why| {
        anyhow::anyhow!(alinify::Error::InvalidArgument(format!(
            "{} and {}: no feature fit: {why}",
            args.fixed.display(),
            args.moving.display()
        )))
    })?;
    let seconds = started.elapsed().as_secs_f64();
    // Coarse to full resolution: q = sm · T(p / sf).
    let t = &init.transform;
    let ratio = sm / sf;
    let full = Affine::from_matrix(
        t.matrix.map(|v| v * ratio),
        [t.translation[0] * sm, t.translation[1] * sm],
        [0.0, 0.0],
    );
    io::ensure_output_dir(&args.out)?;
    // The matches at full resolution, and on the coarse level for the picture.
    let (kf, km) = (&init.fixed_points, &init.moving_points);
    let mut csv = String::from("fx,fy,mx,my,inlier\n");
    let mut lines = Vec::new();
    for (m, inlier) in &init.matches {
        let (f, q) = (kf[m.fixed], km[m.moving]);
        csv.push_str(&format!(
            "{:.2},{:.2},{:.2},{:.2},{}\n",
            (f[0] + 0.5) * sf - 0.5,
            (f[1] + 0.5) * sf - 0.5,
            (q[0] + 0.5) * sm - 0.5,
            (q[1] + 0.5) * sm - 0.5,
            u8::from(*inlier)
        ));
        lines.push((f, q, *inlier));
    }
    let write = |name: &str, bytes: &[u8]| {
        let path = args.out.join(name);
        io::write_atomic(&path, |w| {
            w.write_all(bytes)
                .map_err(|e| alinify::Error::write(&path, e))
        })
    };
    write("matches.csv", csv.as_bytes())?;
    alinify::analysis::render::matches_picture(&cf, &cm, &lines)
        .save_png(&args.out.join("matches.png"))?;
    TransformFile::new(
        [fixed.width(), fixed.height()],
        [moving.width(), moving.height()],
        TransformSpec::Affine(full),
    )
    .save(&args.out.join("transform.json"))?;
    let summary = FeaturesFile {
        keypoints_fixed: init.keypoints[0],
        keypoints_moving: init.keypoints[1],
        matches: init.matches.len(),
        inliers: init.inliers,
        rms_px: init.rms_px * sf,
        model: args.model,
        mirrored: init.mirrored,
        level_factor: [sf, sm],
        seconds,
    };
    write(
        "features.json",
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    ui.say(format!(
        "{} and {} keypoints, {} matches, {} inliers (rms {:.2} px){} in {seconds:.2} s; outputs in {}",
        init.keypoints[0],
        init.keypoints[1],
        init.matches.len(),
        init.inliers,
        init.rms_px * sf,
        if init.mirrored { ", mirrored" } else { "" },
        args.out.display()
    ));
    Ok(())
}
