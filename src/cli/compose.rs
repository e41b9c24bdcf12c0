//! `alinify compose`: the viewer's composite of a pair at full resolution, as an RGB TIFF.

use super::progress::Ui;
use alinify::compose::{self, Blend, Composite, OverlaySettings, Pyramid, SharedScene, WarpGrid};
use alinify::job::CancelToken;
use alinify::register::Backend;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Compose FIXED and MOVING (warped by --transform), and up to six extra layers, at full
/// resolution, as in the viewer.
#[derive(clap::Args, Debug)]
pub struct ComposeArgs {
    /// The reference image: defines the output size.
    fixed: PathBuf,
    /// The layer blended over it.
    moving: PathBuf,
    /// transform.json from a registration: the moving layer is warped through it.
    #[arg(long)]
    transform: Option<PathBuf>,
    /// alpha, difference, checkerboard or red-cyan.
    #[arg(long, default_value = "checkerboard", value_parser = parse_blend)]
    blend: Blend,
    /// Checkerboard square side, pixels.
    #[arg(long, default_value_t = 64, value_parser = super::parse_count)]
    square: usize,
    /// Opacity of the moving layer (alpha), 0 to 1.
    #[arg(long, default_value_t = 0.5, value_parser = super::parse_fraction)]
    opacity: f32,
    /// Extra layers (in the fixed frame) mixed over the pair in order, at most six: e.g. the
    /// colour separations of a design.
    #[arg(long)]
    overlay: Vec<PathBuf>,
    /// Opacity of the extra layers, 0 to 1.
    #[arg(long, default_value_t = 0.5, value_parser = super::parse_fraction)]
    overlay_opacity: f32,
    /// Where the composite is drawn: auto (a hardware GPU, else the CPU), cpu or gpu.
    #[arg(long, default_value = "auto")]
    backend: Backend,
    /// Output TIFF (8-bit RGB).
    #[arg(short, long)]
    out: PathBuf,
}

/// Refuses an output that would replace an input: the pair, the transform (and its dense
/// field) or an overlay.
fn check_paths(args: &ComposeArgs) -> alinify::Result<()> {
    let fields = match &args.transform {
        Some(t) => {
            let base = t.parent().unwrap_or(std::path::Path::new("."));
            alinify::io::TransformFile::load(t)?
                .transform
                .field_files(base)
        }
        None => Vec::new(),
    };
    let mut inputs: Vec<alinify::io::Labelled> =
        vec![("fixed image", &args.fixed), ("moving image", &args.moving)];
    inputs.extend(args.transform.as_deref().map(|t| ("--transform", t)));
    inputs.extend(fields.iter().map(|f| ("dense field", f.as_path())));
    inputs.extend(args.overlay.iter().map(|o| ("--overlay", o.as_path())));
    alinify::io::check_outputs(&inputs, &[("--out", &args.out)])
}

fn parse_blend(s: &str) -> Result<Blend, String> {
    match s {
        "alpha" => Ok(Blend::Alpha),
        "difference" => Ok(Blend::Difference),
        "checkerboard" => Ok(Blend::Checkerboard),
        "red-cyan" => Ok(Blend::FalseColor),
        other => Err(format!(
            "unknown blend {other:?} (alpha, difference, checkerboard or red-cyan)"
        )),
    }
}

pub fn run(args: ComposeArgs, ui: &Ui) -> anyhow::Result<()> {
    let started = Instant::now();
    check_paths(&args)?;
    let (fixed, moving) = rayon::join(
        || alinify::io::load_image(&args.fixed),
        || alinify::io::load_image(&args.moving),
    );
    let (fixed, moving) = (fixed?, moving?);
    let (bottom, top) = rayon::join(
        || Arc::new(Pyramid::of(&fixed)),
        || Arc::new(Pyramid::of(&moving)),
    );
    drop((fixed, moving));
    if args.overlay.len() > compose::MAX_OVERLAYS {
        anyhow::bail!(alinify::Error::InvalidArgument(format!(
            "at most {} --overlay layers",
            compose::MAX_OVERLAYS
        )));
    }
    let overlay_pyramids = args
        .overlay
        .iter()
        .map(|p| alinify::io::load_image(p).map(|image| Arc::new(Pyramid::of(&image))))
        .collect::<alinify::Result<Vec<_>>>()?;
    let warp = args
        .transform
        .as_deref()
        .map(WarpGrid::from_transform_file)
        .transpose()?;
    let loaded = started.elapsed().as_secs_f64();
    let shared = SharedScene {
        bottom,
        top,
        warp: warp.map(Arc::new),
        overlays: overlay_pyramids
            .into_iter()
            .map(|pyramid| {
                let settings = OverlaySettings {
                    opacity: args.overlay_opacity,
                    warped: false,
                    heatmap: false,
                    ..OverlaySettings::default()
                };
                (pyramid, settings)
            })
            .collect(),
    };
    let overlays = shared.borrowed_overlays();
    let scene = shared.scene(&overlays);
    let composite = Composite {
        blend: args.blend,
        opacity: args.opacity,
        square: args.square,
        ..Composite::default()
    };
    let cpu = || {
        (
            compose::cpu_renderer(scene, composite),
            usize::MAX,
            "cpu".to_string(),
        )
    };
    let (mut render, max_width, backend) = match args.backend {
        Backend::Cpu => cpu(),
        Backend::Gpu => gpu(&shared, composite, true)?,
        Backend::Auto => match gpu(&shared, composite, false) {
            Ok(gpu) => gpu,
            Err(why) => {
                ui.say(format!("composing on the CPU: {why}"));
                cpu()
            }
        },
    };
    let compute = compose::export_composite(
        &args.out,
        scene,
        max_width,
        render.as_mut(),
        &|_| {},
        &CancelToken::new(),
    )?;
    ui.say(format!(
        "{}: {:.2} s in all ({loaded:.2} s loading and pyramids, {compute:.2} s composing on {backend})",
        args.out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The GPU renderer; with `allow_software`, a software adapter is accepted (`--backend gpu`).
#[cfg(feature = "gpu")]
fn gpu(
    shared: &SharedScene,
    composite: Composite,
    allow_software: bool,
) -> anyhow::Result<(Box<compose::RenderFn<'static>>, usize, String)> {
    alinify::gpu::export_renderer(shared, composite, allow_software)
        .map_err(|why| anyhow::anyhow!(alinify::Error::Gpu(why)))
}

#[cfg(not(feature = "gpu"))]
fn gpu(
    _shared: &SharedScene,
    _composite: Composite,
    _allow_software: bool,
) -> anyhow::Result<(Box<compose::RenderFn<'static>>, usize, String)> {
    anyhow::bail!(alinify::Error::Gpu("built without the gpu feature".into()))
}
