//! Command-line parsing and the subcommands. Library errors become one line on stderr and an
//! exit status; a panic is a bug.

mod analyze;
mod batch;
mod bench;
mod compose;
mod demo;
mod features;
mod heap;
mod network;
mod points;
mod progress;
mod settings;

use alinify::io::{TransformFile, warp_to_tiff};
use alinify::job::JobHandle;
use alinify::raster::SampleDepth;
use alinify::register::RegisterRequest;
use alinify::synth::{Deform, SynthParams, Texture};
use alinify::transform::warp::Interpolation;
use alinify::{Error, io};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Exit status for success.
const EXIT_OK: i32 = 0;
/// Exit status for failures that are not the user's input.
const EXIT_FAILURE: i32 = 1;
/// Exit status for bad input or usage.
const EXIT_BAD_INPUT: i32 = 2;
/// Exit status after cancellation (Ctrl-C, SIGTERM, SIGHUP), as shells report SIGINT.
const EXIT_CANCELLED: i32 = 130;
/// `--threads` and `--jobs` above this many per core are capped: more only adds switching,
/// and an absurd count would spend minutes creating threads.
const MAX_THREADS_PER_CORE: usize = 4;

#[derive(Parser, Debug)]
#[command(
    name = "alinify",
    version,
    about = "Register (align) very large 2D images: fast optical flow or accurate B-spline"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// No progress bars or log lines (errors are still printed).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
    /// Open the GUI with these: FIXED MOVING (a pair), then extra layers and up to two
    /// landmark files (.csv: BigWarp's pairs, or fixed then moving); or a batch manifest (.csv).
    files: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register MOVING to FIXED; writes warped.tif, transform.json and report.json.
    Register(Box<RegisterArgs>),
    /// Write the viewer's composite of a pair at full resolution (8-bit RGB TIFF).
    Compose(Box<compose::ComposeArgs>),
    /// Apply a saved transform to any image or layer, on the fixed image's grid.
    Warp {
        /// The image to warp.
        image: PathBuf,
        /// transform.json from a registration.
        transform: PathBuf,
        /// The fixed image (defines the output size); default: the size in the transform file.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Output TIFF.
        #[arg(short, long)]
        out: PathBuf,
        /// Interpolation: linear (images) or nearest (labels, masks).
        #[arg(long, default_value = "linear", value_parser = parse_interpolation)]
        interpolation: Interpolation,
    },
    /// Generate a textured pair with known deformation: fixed.tif, moving.tif, gt.flo, mask.png.
    Synth {
        /// Size as WxH.
        #[arg(long, value_parser = parse_size)]
        size: (usize, usize),
        /// Random seed (same seed, same pair).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Deformation: affine, smooth or both.
        #[arg(long, default_value = "both")]
        deform: Deform,
        /// Use this image's luminance as the texture instead of the procedural one.
        #[arg(long)]
        base: Option<PathBuf>,
        /// Sample depth of the images: u8, u16 or f32.
        #[arg(long, default_value = "u8", value_parser = parse_depth)]
        depth: SampleDepth,
        /// Noise added to the moving image (standard deviation, 0..1 intensity units).
        #[arg(long, default_value_t = 0.01)]
        noise: f64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare an estimated field with ground truth; prints JSON (epe_mean, epe_p95, ...).
    Eval {
        /// Estimated field (.flo).
        #[arg(long)]
        field: PathBuf,
        /// Ground-truth field (.flo).
        #[arg(long)]
        gt: PathBuf,
        /// Only score pixels where this mask image is non-zero.
        #[arg(long)]
        mask: Option<PathBuf>,
    },
    /// Map fixed-image points (a landmark or annotation CSV) into the moving image through a
    /// transform.
    WarpPoints(points::WarpPointsArgs),
    /// Invert a transform file: moving-image points (annotations) back into the fixed image.
    Invert(points::InvertArgs),
    /// Register many pairs (manifest, reference + folder, or chain) with a journal, resume,
    /// reports and shards.
    Batch(Box<batch::BatchArgs>),
    /// Quality control: regional quality maps of a registered pair, the Jacobian of a
    /// transform (folding, discontinuities), with flagged regions, or landmark errors.
    #[command(subcommand)]
    Analyze(analyze::AnalyzeCommand),
    /// Benchmarks of the engine on generated data (wall time and peak memory).
    Bench(bench::BenchArgs),
    /// Generate pairs, register them, print timings and errors against the ground truth.
    Demo(demo::DemoArgs),
}

#[derive(clap::Args, Debug)]
struct RegisterArgs {
    /// The reference image (defines the output grid).
    fixed: PathBuf,
    /// The image to align.
    moving: PathBuf,
    /// Registration settings.
    #[command(flatten)]
    settings: settings::SettingsArgs,
    /// Only sample the fixed image where this mask is non-zero.
    #[arg(long)]
    fixed_mask: Option<PathBuf>,
    /// Ignore samples that map where this mask of the moving image is zero.
    #[arg(long)]
    moving_mask: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "alinify-out")]
    out: PathBuf,
    /// Landmark pairs, FIXED.csv MOVING.csv (ANHIR, BigWarp or x,y CSV, paired by order): what
    /// `--mode landmarks` fits a thin-plate spline to.
    #[arg(long, num_args = 2, value_names = ["FIXED_CSV", "MOVING_CSV"])]
    landmarks: Option<Vec<PathBuf>>,
    /// Also write the dense displacement field (Middlebury .flo) here.
    #[arg(long)]
    field: Option<PathBuf>,
    /// Also write the transform as elastix TransformParameters for transformix.
    #[arg(long)]
    export_elastix: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or("expected WxH, e.g. 1024x1024")?;
    let w: usize = w.trim().parse().map_err(|_| format!("bad width {w:?}"))?;
    let h: usize = h.trim().parse().map_err(|_| format!("bad height {h:?}"))?;
    Ok((w, h))
}

fn parse_depth(s: &str) -> Result<SampleDepth, String> {
    match s {
        "u8" => Ok(SampleDepth::U8),
        "u16" => Ok(SampleDepth::U16),
        "f32" => Ok(SampleDepth::F32),
        other => Err(format!("unknown depth {other:?} (u8, u16 or f32)")),
    }
}

fn parse_interpolation(s: &str) -> Result<Interpolation, String> {
    match s {
        "linear" => Ok(Interpolation::Linear),
        "nearest" => Ok(Interpolation::Nearest),
        other => Err(format!(
            "unknown interpolation {other:?} (linear or nearest)"
        )),
    }
}

/// Parses arguments, runs the command, and returns the exit status.
pub fn run() -> i32 {
    let parsed = settings::help_from_engine(Cli::command())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    EXIT_OK
                }
                _ => EXIT_BAD_INPUT,
            };
        }
    };
    if cli.command.is_some() {
        heap::tune_for_headless_work();
    }
    let mut threads = cli.threads;
    if let Some(n) = threads {
        if n == 0 {
            eprintln!("alinify: --threads must be at least 1");
            return EXIT_BAD_INPUT;
        }
        let n = capped_count("--threads", n, cli.quiet);
        threads = Some(n);
        // Only fails if a pool exists already, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let result = match cli.command {
        // The window handles the termination signals itself (`app::run`); the commands' handler
        // (installed by `Ui::new`) would only cancel a token nobody watches there.
        None => open_gui(&cli.files),
        Some(command) => run_command(command, threads, &progress::Ui::new(cli.quiet)),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => report_error(&e),
    }
}

/// Runs a headless command.
fn run_command(command: Command, threads: Option<usize>, ui: &progress::Ui) -> anyhow::Result<()> {
    match command {
        Command::Register(args) => register(*args, ui),
        Command::Compose(args) => compose::run(*args, ui),
        Command::Warp {
            image,
            transform,
            reference,
            out,
            interpolation,
        } => warp(
            &image,
            &transform,
            reference.as_deref(),
            &out,
            interpolation,
            ui,
        ),
        Command::Synth {
            size,
            seed,
            deform,
            base,
            depth,
            noise,
            out,
        } => synth(size, seed, deform, base.as_deref(), depth, noise, &out, ui),
        Command::Eval { field, gt, mask } => eval(&field, &gt, mask.as_deref()),
        Command::Batch(args) => batch::run(*args, threads, ui),
        Command::WarpPoints(args) => points::warp_points(args, ui),
        Command::Invert(args) => points::invert(args, ui),
        Command::Analyze(command) => analyze::run(command, ui),
        Command::Bench(args) => bench::run(args, ui),
        Command::Demo(args) => demo::run(args, ui),
    }
}

/// `n` capped at [`MAX_THREADS_PER_CORE`] per core, saying so on stderr (unless `quiet`).
fn capped_count(flag: &str, n: usize, quiet: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let cap = cores * MAX_THREADS_PER_CORE;
    if n > cap && !quiet {
        eprintln!(
            "alinify: {flag} {n} is more than {MAX_THREADS_PER_CORE} per core; using {cap} ({cores} cores)"
        );
    }
    n.min(cap)
}

/// Parses an opacity or other fraction: a number from 0 to 1.
fn parse_fraction(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is not between 0 and 1")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Parses a count that must be at least 1.
fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// Prints one line and picks the exit status.
fn report_error(e: &anyhow::Error) -> i32 {
    eprintln!("alinify: {e:#}");
    match e.downcast_ref::<Error>() {
        Some(Error::Cancelled) => EXIT_CANCELLED,
        Some(err) if err.is_bad_input() => EXIT_BAD_INPUT,
        Some(_) => EXIT_FAILURE,
        None => EXIT_FAILURE,
    }
}

#[cfg(feature = "gui")]
fn open_gui(files: &[PathBuf]) -> anyhow::Result<()> {
    alinify::app::Opening::of(files.to_vec())?;
    // A missing or unreadable file fails here, named, before a window opens.
    for file in files {
        alinify::io::check_regular(file)?;
    }
    Ok(alinify::app::run(files.to_vec())?)
}

#[cfg(not(feature = "gui"))]
fn open_gui(_files: &[PathBuf]) -> anyhow::Result<()> {
    Err(Error::InvalidArgument(
        "this build has no desktop application (built without the `gui` feature); see `alinify --help`".into(),
    )
    .into())
}

fn register(args: RegisterArgs, ui: &progress::Ui) -> anyhow::Result<()> {
    let request = RegisterRequest {
        options: args.settings.options()?,
        fixed: args.fixed,
        moving: args.moving,
        out_dir: args.out.clone(),
        field: args.field,
        export_elastix: args.export_elastix,
        fixed_mask: args.fixed_mask,
        moving_mask: args.moving_mask,
        landmarks: args.landmarks.map(|l| [l[0].clone(), l[1].clone()]),
    };
    let job = JobHandle::spawn("alinify-register", move |reporter| {
        alinify::register::register_files(&request, reporter)
    })?;
    let summary = ui.watch(job)?;
    let r = &summary.report;
    ui.say(format!(
        "registered in {:.2} s (load {:.2}, pyramid {:.2}, register {:.2}, qc {:.2}, warp {:.2}, write {:.2}); NCC {:.4} -> {:.4}; outputs in {}",
        r.seconds.total, r.seconds.load, r.seconds.pyramid, r.seconds.register, r.seconds.qc, r.seconds.warp, r.seconds.write,
        r.ncc_before, r.ncc_after, args.out.display()
    ));
    Ok(())
}

fn warp(
    image: &Path,
    transform: &Path,
    reference: Option<&Path>,
    out: &Path,
    interpolation: Interpolation,
    ui: &progress::Ui,
) -> anyhow::Result<()> {
    let file = TransformFile::load(transform)?;
    let base = transform.parent().unwrap_or(Path::new("."));
    let fields = file.transform.field_files(base);
    let mut inputs: Vec<io::Labelled> = vec![("image", image), ("transform", transform)];
    inputs.extend(reference.map(|r| ("--reference", r)));
    inputs.extend(fields.iter().map(|f| ("dense field", f.as_path())));
    io::check_outputs(&inputs, &[("--out", out)])?;
    let (width, height) = match reference {
        Some(r) => {
            let info = io::probe(r)?;
            (info.width, info.height)
        }
        None => (file.fixed.width, file.fixed.height),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        io::ensure_output_dir(parent)?;
    }
    let t = file.build(base)?;
    let started = std::time::Instant::now();
    let moving = io::load_image(image)?;
    let cancel = ui.ctrl_c_token();
    warp_to_tiff(
        out,
        &moving,
        t.as_ref(),
        width,
        height,
        interpolation,
        &cancel,
    )?;
    ui.say(format!(
        "warped {} to {} ({width} x {height}) in {:.2} s",
        image.display(),
        out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn synth(
    (width, height): (usize, usize),
    seed: u64,
    deform: Deform,
    base: Option<&Path>,
    depth: SampleDepth,
    noise: f64,
    out: &Path,
    ui: &progress::Ui,
) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&noise) {
        return Err(
            Error::InvalidArgument(format!("--noise {noise}: must be between 0 and 1")).into(),
        );
    }
    alinify::synth::check_size(width, height)?;
    let inputs: Vec<io::Labelled> = base.map(|b| ("--base", b)).into_iter().collect();
    io::check_folder_outputs(&inputs, out, &alinify::synth::OUTPUT_FILES)?;
    io::ensure_output_dir(out)?;
    let texture = match base {
        Some(path) => Texture::from_image(&io::load_image(path)?.luminance(), width, height),
        None => Texture::procedural(width, height, seed),
    };
    let params = SynthParams {
        width,
        height,
        seed,
        deform,
        depth,
        noise,
    };
    let started = std::time::Instant::now();
    let pair = alinify::synth::generate(&texture, &params, &ui.ctrl_c_token())?;
    alinify::synth::write_pair(&pair, out)?;
    ui.say(format!(
        "generated {width} x {height} pair in {:.2} s: {}",
        started.elapsed().as_secs_f64(),
        pair.description
    ));
    Ok(())
}

fn eval(field: &Path, gt: &Path, mask: Option<&Path>) -> anyhow::Result<()> {
    let estimate = io::flo::read_flo(field)?;
    let truth = io::flo::read_flo(gt)?;
    let mask = mask.map(io::load_mask).transpose()?;
    let stats = alinify::analysis::end_point_error(&estimate, &truth, mask.as_ref())?;
    print_json(&serde_json::to_value(stats)?)
}

/// Prints JSON to stdout; a reader that closed the pipe early (`| head`) is not an error.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", serde_json::to_string_pretty(value)?) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
