//! The registration settings that `alinify register` and `alinify batch` share: one set of
//! flags, applied over the defaults and a preset exactly as a preset file would be.

use alinify::metric::MetricKind;
use alinify::register::{Backend, Mode, RegisterOptions, preset::Preset};
use std::path::PathBuf;

/// Mode, backend, preset and the tuning flags.
#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    /// Registration mode: accurate (affine + B-spline, default), affine, fast.
    #[arg(long)]
    mode: Option<Mode>,
    /// Where to compute: auto, cpu or gpu (env ALINIFY_BACKEND).
    #[arg(long, env = "ALINIFY_BACKEND", default_value = "auto")]
    backend: Backend,
    /// Metric: ncc (same modality, robust to exposure changes; default), mse (identical
    /// intensities), mi (different stains or modalities).
    #[arg(long)]
    metric: Option<MetricKind>,
    /// Settings from a TOML preset (see assets/presets); flags given here override it (in a
    /// batch, a pair's own preset column wins over both).
    #[arg(long)]
    preset: Option<PathBuf>,
    /// Pyramid levels (default: down to about 64 px).
    #[arg(long)]
    levels: Option<usize>,
    /// Finest pyramid level registered (default 0; 1 above 100 megapixels).
    #[arg(long)]
    finest_level: Option<usize>,
    /// Samples per metric evaluation (default 20000; more for fine B-spline grids).
    #[arg(long)]
    samples: Option<usize>,
    /// Samples at the finest B-spline level (default: a fifth of its pixels, 20000 to 300000).
    #[arg(long)]
    final_samples: Option<usize>,
    /// Iterations per level at most (default 100).
    #[arg(long)]
    iterations: Option<usize>,
    /// Final B-spline control-point spacing in pixels (default: longer side / 20, at least 32).
    #[arg(long)]
    grid_spacing: Option<f64>,
    /// Control-grid resolutions (default 4: the spacing halves three times).
    #[arg(long)]
    grid_levels: Option<usize>,
    /// Bending-energy penalty weight (default 0; useful values 10 to 1000).
    #[arg(long)]
    bending_weight: Option<f64>,
    /// Fast mode: smoothness of the flow (default 8; larger is smoother).
    #[arg(long)]
    smoothness: Option<f32>,
    /// Fast mode: linearisations per pyramid level (default 3).
    #[arg(long)]
    warps: Option<u32>,
    /// Fast mode: solver sweeps per linearisation (default 12).
    #[arg(long)]
    sweeps: Option<u32>,
    /// Fast mode: radius in pixels of a discrete search on coarse levels, for objects that move
    /// independently (stereo, photo series); 0 (default) for smooth deformations.
    #[arg(long)]
    search: Option<u32>,
    /// Register on this channel (0-based) instead of the luminance.
    #[arg(long)]
    channel: Option<usize>,
}

impl SettingsArgs {
    /// Defaults (accurate mode), then the preset, then the flags given.
    pub fn options(&self) -> anyhow::Result<RegisterOptions> {
        let mut options = RegisterOptions {
            mode: Mode::Accurate,
            ..RegisterOptions::default()
        };
        if let Some(path) = &self.preset {
            Preset::load(path)?.apply(&mut options)?;
        }
        let flags = Preset {
            mode: self.mode,
            metric: self.metric,
            levels: self.levels,
            samples: self.samples,
            final_samples: self.final_samples,
            iterations: self.iterations,
            grid_spacing: self.grid_spacing,
            grid_levels: self.grid_levels,
            bending_weight: self.bending_weight,
            finest_level: self.finest_level,
            channel: self.channel,
            smoothness: self.smoothness,
            warps: self.warps,
            sweeps: self.sweeps,
            search: self.search,
            ..Preset::default()
        };
        flags.apply(&mut options)?;
        options.backend = self.backend;
        Ok(options)
    }
}
