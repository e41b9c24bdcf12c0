//! `alinify bench`: engine benchmarks on generated data, reporting wall time and peak memory.
//! Run one benchmark per process so that each peak-memory figure is its own.

use super::progress::Ui;
use alinify::io::warp_to_tiff;
use alinify::job::CancelToken;
use alinify::raster::{AnyImage, Pyramid, PyramidParams, Raster};
use alinify::transform::warp::{Interpolation, warp_image};
use alinify::transform::{Affine, BSplineTransform, Composed};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure: pyramid, warp, or network (the all-pairs MI of --count slices of a
    /// smooth volume, --size a side; default 32 of 256²).
    #[arg(value_parser = ["pyramid", "warp", "network"])]
    what: String,
    /// Images in the network benchmark.
    #[arg(long, default_value_t = 32)]
    count: usize,
    /// Image side in pixels (the image is square, 8-bit gray).
    #[arg(long, default_value_t = 17320)]
    size: usize,
    /// Timed repetitions (the best is reported, with all of them).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// For `warp`: stream the result into this TIFF instead of memory. For `network`: also
    /// save the slices into this folder (PNG, named so that their order is shuffled).
    #[arg(long)]
    write: Option<PathBuf>,
}

/// An 8-bit test image: cheap hash texture with structure at several scales.
fn test_image(side: usize) -> AnyImage {
    let mut data = vec![0u8; side * side];
    use rayon::prelude::*;
    data.par_chunks_mut(side).enumerate().for_each(|(y, row)| {
        for (x, v) in row.iter_mut().enumerate() {
            let h = alinify::rng::hash64(((x / 8) as u64) << 32 | (y / 8) as u64) as u8;
            *v = h / 2 + ((x ^ y) & 0x3F) as u8;
        }
    });
    AnyImage::U8(Raster::from_interleaved(side, side, 1, data).expect("sizes match"))
}

/// `bench network`: the all-pairs adaptive MI of `count` volume slices, best of `repeat`.
fn network(args: &BenchArgs, ui: &Ui) -> anyhow::Result<()> {
    use alinify::analysis::network::{Estimator, Variable, mi_matrix};
    let side = if args.size == 17320 {
        256
    } else {
        args.size.clamp(16, 4096)
    };
    let slices = alinify::synth::volume_slices(side, args.count.max(3), 1);
    if let Some(dir) = &args.write {
        alinify::io::ensure_output_dir(dir)?;
        for (z, slice) in slices.iter().enumerate() {
            // A name from a hash of the position: file-name order is not the series order.
            let name = format!(
                "s{:04x}-z{z:02}.png",
                alinify::rng::hash64(z as u64) & 0xFFFF
            );
            let image = AnyImage::from_gray_units(slice, alinify::raster::SampleDepth::U8);
            alinify::io::save_image(&dir.join(name), &image)?;
        }
    }
    let variables: Vec<Variable> = slices
        .iter()
        .enumerate()
        .map(|(k, s)| Variable::new(s.iter().copied().collect(), k as u64))
        .collect();
    let pairs = variables.len() * (variables.len() - 1) / 2;
    let mut times = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        std::hint::black_box(mi_matrix(&variables, Estimator::Adaptive));
        times.push(t.elapsed().as_secs_f64());
    }
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    super::print_json(&serde_json::json!({
        "bench": "network",
        "images": variables.len(),
        "size": [side, side],
        "pairs": pairs,
        "threads": rayon::current_num_threads(),
        "seconds_best": best,
        "seconds_all": times,
    }))?;
    ui.say(format!(
        "network: {} images of {side}², {pairs} pairs: best {best:.3} s",
        variables.len()
    ));
    Ok(())
}

pub fn run(args: BenchArgs, ui: &Ui) -> anyhow::Result<()> {
    if args.what == "network" {
        return network(&args, ui);
    }
    let side = args.size.max(64);
    // The image and its pyramid or warped copy, before anything is allocated.
    alinify::io::check_dimensions(
        std::path::Path::new("--size"),
        side as u64,
        side as u64,
        2,
        1,
    )?;
    if let Some(path) = &args.write {
        alinify::io::check_outputs(&[], &[("--write", path)])?;
    }
    let image = test_image(side);
    let input_bytes = image.byte_len();
    let cancel = CancelToken::new();
    let mut times = Vec::new();
    let output_bytes;
    match args.what.as_str() {
        "pyramid" => {
            let params = PyramidParams {
                levels: PyramidParams::levels_for(side, side, 64, 16),
                ..PyramidParams::default()
            };
            let mut pyramid_bytes = 0;
            for _ in 0..args.repeat.max(1) {
                let t = Instant::now();
                let p = Pyramid::build(&image, &params, &cancel)?;
                times.push(t.elapsed().as_secs_f64());
                pyramid_bytes = p.byte_len() as u64;
            }
            output_bytes = pyramid_bytes;
        }
        _ => {
            // A realistic transform: an affine composed with a smooth B-spline deformation.
            let c = (side as f64 - 1.0) / 2.0;
            let mut bspline = BSplineTransform::new(side, side, [side as f64 / 8.0; 2]);
            let mut rng = alinify::rng::SplitMix64::new(1);
            bspline
                .u
                .iter_mut()
                .for_each(|v| *v = rng.uniform(-5.0, 5.0));
            bspline
                .v
                .iter_mut()
                .for_each(|v| *v = rng.uniform(-5.0, 5.0));
            let transform = Composed {
                steps: vec![
                    Box::new(bspline),
                    Box::new(Affine::similarity(0.01, 1.01, [3.0, -2.0], [c, c])),
                ],
            };
            output_bytes = input_bytes;
            for _ in 0..args.repeat.max(1) {
                let t = Instant::now();
                match &args.write {
                    Some(path) => {
                        warp_to_tiff(
                            path,
                            &image,
                            &transform,
                            side,
                            side,
                            Interpolation::Linear,
                            &cancel,
                        )?;
                    }
                    None => {
                        let out = warp_image(
                            &image,
                            &transform,
                            side,
                            side,
                            Interpolation::Linear,
                            &cancel,
                        )?;
                        std::hint::black_box(&out);
                    }
                }
                times.push(t.elapsed().as_secs_f64());
            }
        }
    }
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    let peak = alinify::memory::peak_rss_bytes().unwrap_or(0);
    let result = serde_json::json!({
        "bench": args.what,
        "size": [side, side],
        "threads": rayon::current_num_threads(),
        "seconds_best": best,
        "seconds_all": times,
        "input_mib": input_bytes as f64 / 1048576.0,
        "output_mib": output_bytes as f64 / 1048576.0,
        "peak_rss_mib": peak as f64 / 1048576.0,
        "peak_over_input_plus_output": peak as f64 / (input_bytes + output_bytes) as f64,
    });
    super::print_json(&result)?;
    ui.say(format!(
        "{} {side}x{side}: best {best:.3} s, peak memory {:.0} MiB",
        args.what,
        peak as f64 / 1048576.0
    ));
    Ok(())
}
