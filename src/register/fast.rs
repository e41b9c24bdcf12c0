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

/// The flow solver a run uses, and where it runs.
pub struct SolverChoice {
    /// The solver.
    pub solver: Box<dyn FlowSolver>,
    /// `cpu` or `gpu`.
    pub backend: &'static str,
    /// The GPU adapter's name, on the GPU.
    pub adapter: Option<String>,
    /// Why it runs on the CPU, on the CPU.
    pub cpu_reason: Option<String>,
}

/// The solver for `backend`: `auto` takes the GPU when one can be opened and otherwise logs why
/// it runs on the CPU.
pub fn select_solver<T>(backend: Backend, reporter: &Reporter<T>) -> Result<SolverChoice> {
    let limit = max_tile_pixels_override()?;
    let cpu = |reason: String| {
        let solver = CpuSolver {
            max_tile_pixels: limit.unwrap_or(usize::MAX),
        };
        SolverChoice {
            solver: Box::new(solver),
            backend: "cpu",
            adapter: None,
            cpu_reason: Some(reason),
        }
    };
    let gpu = |solver, name| SolverChoice {
        solver,
        backend: "gpu",
        adapter: Some(name),
        cpu_reason: None,
    };
    let logged_cpu = |reason: String| {
        reporter.log(format!("running on the CPU: {reason}"));
        cpu(reason)
    };
    match backend {
        Backend::Cpu => Ok(cpu("the CPU backend was asked for".into())),
        Backend::Gpu => gpu_solver(limit).map(|(s, name, _)| gpu(s, name)),
        Backend::Auto => match gpu_solver(limit) {
            Ok((_, name, true)) => Ok(logged_cpu(format!(
                "the only adapter, {name}, is a software renderer (slower than the CPU path); --backend gpu uses it anyway"
            ))),
            Ok((s, name, false)) => Ok(gpu(s, name)),
            Err(reason) => Ok(logged_cpu(reason.to_string())),
        },
    }
}

/// Environment variable capping the flow's tile size in pixels (both backends): forces tiling
/// on small images, for tests and for devices that report limits larger than they can serve.
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

/// The GPU solver, its adapter's name, and whether that adapter is a software renderer (such
/// as Mesa's llvmpipe, slower than the CPU path).
#[cfg(feature = "gpu")]
fn gpu_solver(limit: Option<usize>) -> Result<(Box<dyn FlowSolver>, String, bool)> {
    let context = crate::gpu::GpuContext::shared()?;
    let software = context.info.device_type == wgpu::DeviceType::Cpu;
    let solver =
        crate::gpu::GpuFlowSolver::new(context).with_max_tile_pixels(limit.unwrap_or(usize::MAX));
    let name = solver.name();
    Ok((Box::new(solver), name, software))
}

#[cfg(not(feature = "gpu"))]
fn gpu_solver(_limit: Option<usize>) -> Result<(Box<dyn FlowSolver>, String, bool)> {
    Err(Error::Gpu(
        "this build has no GPU support (built without the `gpu` feature)".into(),
    ))
}

/// Registers in fast mode: affine over the coarse levels, then the flow from about
/// [`crate::flow::START_MAX_SIDE`] pixels down to the finest flow level.
pub fn register_fast<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    options: &RegisterOptions,
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
    } = select_solver(options.backend, reporter)?;
    // The affine stage only needs coarse levels: the flow takes over from there.
    let affine_finest = super::affine_finest_level(fixed.width(), fixed.height())
        .max(levels.start.saturating_sub(1))
        .max(levels.finest);
    // The affine stage has the first tenth of the bar, the flow the rest.
    let affine = super::affine::register_affine(
        fixed,
        moving,
        options,
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
            return register_fast(fixed, moving, &again, reporter).map(|outcome| FastOutcome {
                cpu_reason: Some(format!("GPU failed ({reason})")),
                ..outcome
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
