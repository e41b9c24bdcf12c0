//! `alinify analyze features`: keypoints on a coarse level of both images, their matches and
//! the robust similarity (or affine) fit, with the mirror case tried: matches.csv,
//! matches.png, transform.json, features.json.

use super::progress::Ui;
use alinify::analysis::features::{ImageMatches, MATCH_SIDE, Model};
use alinify::io::{self, TransformFile, TransformSpec};
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
    #[arg(long, default_value_t = MATCH_SIDE as u32, value_parser = clap::value_parser!(u32).range(64..=4096))]
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
    let found = ImageMatches::compute(&fixed, &moving, args.side as usize, args.model, 1).map_err(
        |why| {
            anyhow::anyhow!(alinify::Error::InvalidArgument(format!(
                "{} and {}: no feature fit: {why}",
                args.fixed.display(),
                args.moving.display()
            )))
        },
    )?;
    let seconds = started.elapsed().as_secs_f64();
    io::ensure_output_dir(&args.out)?;
    // The matches at full resolution, and on the coarse level for the picture.
    let mut csv = String::from("fx,fy,mx,my,inlier\n");
    let mut lines = Vec::new();
    for (i, m) in found.matches.iter().enumerate() {
        let (f, q) = (found.fixed_point(i), found.moving_point(i));
        csv.push_str(&format!(
            "{:.2},{:.2},{:.2},{:.2},{}\n",
            f[0],
            f[1],
            q[0],
            q[1],
            u8::from(m.inlier)
        ));
        lines.push((m.fixed, m.moving, m.inlier));
    }
    let write = |name: &str, bytes: &[u8]| {
        let path = args.out.join(name);
        io::write_atomic(&path, |w| {
            w.write_all(bytes)
                .map_err(|e| alinify::Error::write(&path, e))
        })
    };
    write("matches.csv", csv.as_bytes())?;
    let [cf, cm] = &found.coarse;
    alinify::analysis::render::matches_picture(cf, cm, &lines)
        .save_png(&args.out.join("matches.png"))?;
    TransformFile::new(
        [fixed.width(), fixed.height()],
        [moving.width(), moving.height()],
        TransformSpec::Affine(found.transform()),
    )
    .save(&args.out.join("transform.json"))?;
    let summary = FeaturesFile {
        keypoints_fixed: found.keypoints[0],
        keypoints_moving: found.keypoints[1],
        matches: found.matches.len(),
        inliers: found.inliers(),
        rms_px: found.rms_px(),
        model: args.model,
        mirrored: found.mirrored,
        level_factor: found.factors,
        seconds,
    };
    write(
        "features.json",
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    ui.say(format!(
        "{} and {} keypoints, {} matches, {} inliers (rms {:.2} px){} in {seconds:.2} s; outputs in {}",
        found.keypoints[0],
        found.keypoints[1],
        found.matches.len(),
        found.inliers(),
        found.rms_px(),
        if found.mirrored { ", mirrored" } else { "" },
        args.out.display()
    ));
    Ok(())
}
