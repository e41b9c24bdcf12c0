//! Demons mode: affine pre-alignment, then the coarse-to-fine diffeomorphic demons of
//! [`crate::demons`] on the CPU or the GPU.

use super::fast::{GpuSolver, SolverChoice, select_solver};
use super::{Backend, RegisterOptions};
use crate::demons::{DemonsLevels, DemonsOutcome, DemonsSolver, cpu::CpuDemonsSolver};
use crate::job::Reporter;
use crate::optimize::LevelReport;
use crate::raster::PreparedImage;
use crate::transform::{Affine, DenseField};
use crate::{Error, Result};

/// Longest side of the finest level the demons refine by default: finer levels cost time for
/// detail that the bilinear upsampling of a smooth velocity rarely misses.
pub const FINEST_MAX_SIDE: usize = 4096;

/// What a demons registration found.
#[derive(Debug)]
pub struct DemonsRegistration {
    /// The affine pre-alignment (full resolution).
    pub affine: Affine,
    /// The demons' velocity field and levels.
    pub demons: DemonsOutcome,
    /// Affine then demons levels, coarsest first.
    pub levels: Vec<LevelReport>,
    /// `cpu` or `gpu`.
    pub backend: &'static str,
    /// The GPU adapter's name, when the GPU ran.
    pub adapter: Option<String>,
    /// Why the demons ran on the CPU, when they did.
    pub cpu_reason: Option<String>,
    /// How the affine pre-alignment was initialised.
    pub init: super::init::InitChoice,
}

impl DemonsRegistration {
    /// The whole transform `A(x + u(x))` as a displacement on the velocity's level grid, in
    /// level pixels (to be scaled by `2^level`): what the warp and the QC evaluate. It equals
    /// the stored `exp(v)` then affine wherever the images are.
    pub fn total_displacement(&self) -> DenseField {
        let u = crate::transform::velocity::exp(&self.demons.velocity);
        let [m00, m01, m10, m11, ox, oy] =
            crate::flow::affine_at_level(&self.affine, self.demons.level);
        let (h, w) = u.dim();
        let mut field = DenseField::zeros(w, h);
        for ((j, i), d) in u.indexed_iter() {
            let (x, y) = (i as f32 + d[0], j as f32 + d[1]);
            field.u[[j, i]] = m00 * x + m01 * y + ox - i as f32;
            field.v[[j, i]] = m10 * x + m11 * y + oy - j as f32;
        }
        field
    }
}

/// The demons solver for `backend`.
pub fn select_demons_solver<T>(
    backend: Backend,
    reporter: &Reporter<T>,
) -> Result<SolverChoice<dyn DemonsSolver>> {
    select_solver(
        backend,
        reporter,
        |max_tile_pixels| Box::new(CpuDemonsSolver { max_tile_pixels }) as Box<dyn DemonsSolver>,
        gpu_demons_solver,
    )
}

#[cfg(feature = "gpu")]
fn gpu_demons_solver(limit: usize) -> Result<GpuSolver<dyn DemonsSolver>> {
    let context = crate::gpu::GpuContext::shared()?;
    let software = context.info.device_type == wgpu::DeviceType::Cpu;
    let solver = crate::gpu::GpuDemonsSolver::new(context).with_max_tile_pixels(limit);
    let name = solver.name();
    Ok((Box::new(solver), name, software))
}

#[cfg(not(feature = "gpu"))]
fn gpu_demons_solver(_limit: usize) -> Result<GpuSolver<dyn DemonsSolver>> {
    Err(super::fast::no_gpu_support())
}

/// Registers in demons mode: affine over the coarse levels, then the demons from about
/// [`crate::demons::START_MAX_SIDE`] pixels down to the finest level (`finest_level`, else the
/// first of at most [`FINEST_MAX_SIDE`] pixels).
pub fn register_demons<T>(
    fixed: &PreparedImage,
    moving: &PreparedImage,
    options: &RegisterOptions,
    start: super::affine::Start,
    reporter: &Reporter<T>,
) -> Result<DemonsRegistration> {
    let coarsest = fixed.levels().min(moving.levels()) - 1;
    let side = fixed.width().max(fixed.height());
    let finest = options.finest_level.unwrap_or_else(|| {
        (0..=coarsest)
            .find(|&l| side >> l <= FINEST_MAX_SIDE)
            .unwrap_or(coarsest)
    });
    let levels = DemonsLevels::for_size(fixed.width(), fixed.height(), coarsest, finest);
    let SolverChoice {
        solver,
        backend,
        adapter,
        cpu_reason,
    } = select_demons_solver(options.backend, reporter)?;
    let affine_finest = super::affine_finest_level(fixed.width(), fixed.height())
        .max(levels.start.saturating_sub(1))
        .max(levels.finest);
    // The affine stage has the first tenth of the bar, the demons the rest.
    let affine = super::affine::register_affine(
        fixed,
        moving,
        options,
        start.clone(),
        affine_finest,
        &reporter.within([0.0, 0.1]),
    )?;
    let demons = match crate::demons::estimate_demons(
        fixed,
        moving,
        &affine.affine,
        levels,
        &options.demons,
        solver.as_ref(),
        &reporter.within([0.1, 1.0]),
    ) {
        Err(Error::Gpu(reason)) if options.backend == Backend::Auto => {
            reporter.log(format!("GPU failed ({reason}); running again on the CPU"));
            let again = RegisterOptions {
                backend: Backend::Cpu,
                ..options.clone()
            };
            return register_demons(fixed, moving, &again, start, reporter).map(|outcome| {
                DemonsRegistration {
                    cpu_reason: Some(format!("GPU failed ({reason})")),
                    ..outcome
                }
            });
        }
        other => other?,
    };
    let mut all = affine.levels;
    all.extend(demons.levels.iter().cloned());
    Ok(DemonsRegistration {
        affine: affine.affine,
        demons,
        levels: all,
        backend,
        adapter,
        cpu_reason,
        init: affine.init,
    })
}
