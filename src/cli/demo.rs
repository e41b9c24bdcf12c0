//! `alinify demo`: generate pairs, register them with every available mode, and print the
//! timings and errors against the ground truth. A first look at Alinify in one command.

use super::progress::Ui;
use alinify::job::{JobHandle, Reporter};
use alinify::metric::MetricKind;
use alinify::register::{Mode, RegisterOptions, RegisterRequest, register_files};
use alinify::synth::{Deform, SynthParams, Texture};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Side of the generated square pairs.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Keep the pairs and results here (default: a temporary folder, removed afterwards).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: DemoArgs, ui: &Ui) -> anyhow::Result<()> {
    let temp;
    let root = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            temp = alinify::io::ScratchDir::create("alinify-demo-", "a demo folder")?;
            temp.path().to_path_buf()
        }
    };
    let size = args.size.max(64);
    alinify::synth::check_size(size, size)?;
    println!("Alinify demo: {size} x {size} generated pairs with known deformations.\n");
    println!(
        "{:<8} {:<9} {:<7} {:>9} {:>11} {:>10} {:>11} {:>10}",
        "pair", "mode", "metric", "seconds", "EPE mean", "EPE p95", "NCC before", "NCC after"
    );
    let cancel = ui.ctrl_c_token();
    for (name, deform, seed) in [("affine", Deform::Affine, 1u64), ("both", Deform::Both, 2)] {
        let pair_dir = root.join(name);
        let params = SynthParams {
            width: size,
            height: size,
            seed,
            deform,
            depth: alinify::raster::SampleDepth::U8,
            noise: 0.01,
        };
        let pair =
            alinify::synth::generate(&Texture::procedural(size, size, seed), &params, &cancel)?;
        alinify::synth::write_pair(&pair, &pair_dir)?;
        for (mode, metric) in [
            (Mode::Affine, MetricKind::Ncc),
            (Mode::Accurate, MetricKind::Ncc),
            (Mode::Accurate, MetricKind::Mi),
        ] {
            let out = pair_dir.join(format!("{mode}-{metric:?}").to_lowercase());
            let request = RegisterRequest {
                fixed: pair_dir.join("fixed.tif"),
                moving: pair_dir.join("moving.tif"),
                out_dir: out.clone(),
                field: Some(out.join("field.flo")),
                export_elastix: None,
                fixed_mask: None,
                moving_mask: None,
                landmarks: None,
                options: RegisterOptions {
                    mode,
                    metric,
                    ..RegisterOptions::default()
                },
            };
            let job = JobHandle::spawn("alinify-demo", move |r: &Reporter<_>| {
                register_files(&request, r)
            })?;
            let cancel_job = job.cancel.clone();
            let summary = job.wait(|_| {
                if cancel.is_cancelled() {
                    cancel_job.cancel();
                }
            })?;
            let field = alinify::io::flo::read_flo(&out.join("field.flo"))?;
            let epe =
                alinify::analysis::end_point_error(&field, &pair.ground_truth, Some(&pair.mask))?;
            let r = &summary.report;
            println!(
                "{:<8} {:<9} {:<7} {:>9.2} {:>9.3}px {:>8.3}px {:>11.4} {:>10.4}",
                name,
                r.mode.to_string(),
                format!("{metric:?}").to_lowercase(),
                r.seconds.total,
                epe.epe_mean,
                epe.epe_p95,
                r.ncc_before,
                r.ncc_after
            );
        }
    }
    println!(
        "\nThe 'both' pair adds a smooth non-rigid deformation that an affine cannot represent:"
    );
    println!("the accurate mode's B-spline follows it.");
    if args.out.is_some() {
        println!("Pairs and results are in {}.", root.display());
    }
    Ok(())
}
