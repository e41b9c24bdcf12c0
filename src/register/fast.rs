//! Fast mode: affine pre-alignment, then the coarse-to-fine dense flow of [`crate::flow`] on the
//! CPU or the GPU.

use super::{Backend, RegisterOptions};
use crate::flow::{FlowLevels, FlowOutcome, FlowSolver, cpu::CpuSolver};
use crate::job::Reporter;
use crate::optimize::LevelReport;
use crate::raster::PreparedImage;
use crate::transform::Affine;
use crate::{Error, Result};

/// What a fast registration found.
#[derive(Debug)]
pub struct FastOutcome {
    /// The affine pre-alignment (full resolution).
    pub affine: Affine,
    /// The flow (total displacement at its level).
    pub flow: FlowOutcome,
    /// Affine then flow levels, coarsest first.
    pub levels: Vec<LevelReport>,
    /// `cpu` or `gpu`.
    pub backend: &'static str,
    /// The GPU adapter's name, when the GPU ran.
    pub adapter: Option<String>,
    /// Why the flow ran on the CPU, when it did.
    pub cpu_reason: Option<String>,
    /// How the affine pre-alignment was initialised.
    pub init: super::init::InitChoice,
}

/// The solver a run uses (a flow or a demons solver), and where it runs.
pub struct SolverChoice<S: ?Sized> {
    /// The solver.
    pub solver: Box<S>,
    /// `cpu` or `gpu`.
    pub backend: &'static str,
    /// The GPU adapter's name, on the GPU.
    pub adapter: Option<String>,
    /// Why it runs on the CPU, on the CPU.
    pub cpu_reason: Option<String>,
}

/// A GPU solver, its adapter's name, and whether that adapter is a software renderer (such as
/// Mesa's llvmpipe, slower than the CPU path).
pub type GpuSolver<S> = (Box<S>, String, bool);

/// The solver for `backend`, built by `cpu` or `gpu` with the tile limit of
/// [`MAX_TILE_PIXELS_ENV`]: `auto` takes the GPU when one can be opened and is not a software
/// renderer, and otherwise logs why it runs on the CPU.
pub fn select_solver<S: ?Sized, T>(
    backend: Backend,
    reporter: &Reporter<T>,
    cpu: impl Fn(usize) -> Box<S>,
    gpu: impl Fn(usize) -> Result<GpuSolver<S>>,
) -> Result<SolverChoice<S>> {
    let limit = max_tile_pixels_override()?.unwrap_or(usize::MAX);
    let on_cpu = |reason: String| SolverChoice {
        solver: cpu(limit),
        backend: "cpu",
        adapter: None,
        cpu_reason: Some(reason),
    };
    let on_gpu = |solver, name| SolverChoice {
        solver,
        backend: "gpu",
        adapter: Some(name),
        cpu_reason: None,
    };
    let logged_cpu = |reason: String| {
        reporter.log(format!("running on the CPU: {reason}"));
        on_cpu(reason)
    };
    match backend {
        Backend::Cpu => Ok(on_cpu("the CPU backend was asked for".into())),
        Backend::Gpu => gpu(limit).map(|(s, name, _)| on_gpu(s, name)),
        Backend::Auto => match gpu(limit) {
            Ok((_, name, true)) => Ok(logged_cpu(format!(
                "the only adapter, {name}, is a software renderer (slower than the CPU path); --backend gpu uses it anyway"
            ))),
            Ok((s, name, false)) => Ok(on_gpu(s, name)),
            Err(reason) => Ok(logged_cpu(reason.to_string())),
        },
    }
}

/// Environment variable capping the flow's and the demons' tile size in pixels (both
/// backends): forces tiling on small images, for tests and for devices that report limits
/// larger than they can serve.
pub const MAX_TILE_PIXELS_ENV: &str = "ALINIFY_MAX_TILE_PIXELS";

fn max_tile_pixels_override() -> Result<Option<usize>> {
    match std::env::var(MAX_TILE_PIXELS_ENV) {
        Err(_) => Ok(None),
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            Error::InvalidArgument(format!(
                "{MAX_TILE_PIXELS_ENV}={text:?} is not a pixel count"
            ))
        }),
    }
}

/// The flow solver for `backend`.
pub fn select_flow_solver<T>(
    backend: Backend,
    reporter: &Reporter<T>,
) -> Result<SolverChoice<dyn FlowSolver>> {
    select_solver(
        backend,
        reporter,
        |max_tile_pixels| Box::new(CpuSolver { max_tile_pixels }) as Box<dyn FlowSolver>,
        gpu_flow_solver,
    )
}

#[cfg(feature = "gpu")]
fn gpu_flow_solver(limit: usize) -> Result<GpuSolver<dyn FlowSolver>> {
    let context = crate::gpu::GpuContext::shared()?;
    let software = context.info.device_type == wgpu::DeviceType::Cpu;
    let solver = crate::gpu::GpuFlowSolver::new(context).with_max_tile_pixels(limit);
    let name = solver.name();
    Ok((Box::new(solver), name, software))
}

#[cfg(not(feature = "gpu"))]
fn gpu_flow_solver(_limit: usize) -> Result<GpuSolver<dyn FlowSolver>> {
    Err(no_gpu_support())
}

/// The error of a build without the `gpu` feature.
#[cfg(not(feature = "gpu"))]
pub(crate) fn no_gpu_support() -> Error {
    Error::Gpu("this build has no GPU support (built without the `gpu` feature)".into())
}

/// Registers in fast mode: affine over the coarse levels, then the flow from about
/// [`crate::flow::START_MAX_SIDE`] pixels down to the finest flow level.
pub fn register_fast<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    options: &RegisterOptions,
    start: super::affine::Start,
    reporter: &Reporter<T>,
) -> Result<FastOutcome> {
    let coarsest = fixed.levels().min(moving.levels()) - 1;
    let levels = FlowLevels::for_size(
        fixed.width(),
        fixed.height(),
        coarsest,
        options.finest_level,
    );
    let SolverChoice {
        solver,
        backend,
        adapter,
        cpu_reason,
    } = select_flow_solver(options.backend, reporter)?;
    // The affine stage only needs coarse levels: the flow takes over from there.
    let affine_finest = super::affine_finest_level(fixed.width(), fixed.height())
        .max(levels.start.saturating_sub(1))
        .max(levels.finest);
    // The affine stage has the first tenth of the bar, the flow the rest.
    let affine = super::affine::register_affine(
        fixed,
        moving,
        options,
        start.clone(),
        affine_finest,
        &reporter.within([0.0, 0.1]),
    )?;
    let flow = match crate::flow::estimate_flow(
        fixed,
        moving,
        &affine.affine,
        levels,
        &options.flow,
        solver.as_ref(),
        &reporter.within([0.1, 1.0]),
    ) {
        Err(Error::Gpu(reason)) if options.backend == Backend::Auto => {
            reporter.log(format!("GPU failed ({reason}); running again on the CPU"));
            let again = RegisterOptions {
                backend: Backend::Cpu,
                ..options.clone()
            };
            return register_fast(fixed, moving, &again, start, reporter).map(|outcome| {
                FastOutcome {
                    cpu_reason: Some(format!("GPU failed ({reason})")),
                    ..outcome
                }
            });
        }
        other => other?,
    };
    let mut all = affine.levels;
    all.extend(flow.levels.iter().cloned());
    Ok(FastOutcome {
        affine: affine.affine,
        flow,
        levels: all,
        backend,
        adapter,
        cpu_reason,
        init: affine.init,
    })
}
