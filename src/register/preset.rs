//! Presets: registration settings in a TOML file, for `--preset FILE` and the GUI.
//!
//! Every key is optional; unknown keys are errors (a typo must not be ignored silently).
//! Example:
//!
//! ```toml
//! mode = "accurate"
//! metric = "mi"
//! grid_spacing = 64.0      # final control-point spacing, full-resolution pixels
//! grid_levels = 4
//! bending_weight = 0.0
//! samples = 20000
//! iterations = 100
//! ```

use super::{Mode, RegisterOptions};
use crate::metric::MetricKind;
use crate::{Error, Result};
use std::path::Path;

/// Settings that override [`RegisterOptions`]' defaults; `None` leaves a setting alone.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Registration mode.
    pub mode: Option<Mode>,
    /// Metric.
    pub metric: Option<MetricKind>,
    /// Pyramid levels.
    pub levels: Option<usize>,
    /// Samples per metric evaluation.
    pub samples: Option<usize>,
    /// Samples at the finest level.
    pub final_samples: Option<usize>,
    /// Iterations per level at most.
    pub iterations: Option<usize>,
    /// Relative metric tolerance that ends a level.
    pub relative_tolerance: Option<f64>,
    /// Final B-spline control-point spacing (pixels).
    pub grid_spacing: Option<f64>,
    /// Control-grid resolutions.
    pub grid_levels: Option<usize>,
    /// Bending-energy weight.
    pub bending_weight: Option<f64>,
    /// Finest pyramid level.
    pub finest_level: Option<usize>,
    /// Channel to register instead of the luminance.
    pub channel: Option<usize>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Fast mode: smoothness weight of the flow.
    pub smoothness: Option<f32>,
    /// Fast mode: linearisations per level.
    pub warps: Option<u32>,
    /// Fast mode: solver sweeps per linearisation.
    pub sweeps: Option<u32>,
    /// Fast mode: radius of the coarse-level discrete search (0: off).
    pub search: Option<u32>,
}

impl Preset {
    /// Reads a preset file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses preset `text` (errors name `origin`).
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Corrupt {
            path: origin.into(),
            detail: format!("not a valid preset: {}", e.message()),
        })
    }

    /// Writes the settings that are set onto `options`, checking their ranges.
    pub fn apply(&self, options: &mut RegisterOptions) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(Error::InvalidArgument(format!(
                    "{name} must be a positive number, not {v}"
                )))
            }
        };
        let at_least_one = |name: &str, v: usize| {
            if v >= 1 {
                Ok(v)
            } else {
                Err(Error::InvalidArgument(format!("{name} must be at least 1")))
            }
        };
        if let Some(v) = self.mode {
            options.mode = v;
        }
        if let Some(v) = self.metric {
            options.metric = v;
        }
        if let Some(v) = self.levels {
            options.levels = Some(at_least_one("levels", v)?);
        }
        if let Some(v) = self.samples {
            options.samples = at_least_one("samples", v)?.max(100);
        }
        if let Some(v) = self.final_samples {
            options.final_samples = Some(at_least_one("final_samples", v)?.max(100));
        }
        if let Some(v) = self.iterations {
            options.max_iterations = at_least_one("iterations", v)?;
        }
        if let Some(v) = self.relative_tolerance {
            options.relative_tolerance = positive("relative_tolerance", v)?;
        }
        if let Some(v) = self.grid_spacing {
            options.grid_spacing = Some(positive("grid_spacing", v)?);
        }
        if let Some(v) = self.grid_levels {
            options.grid_levels = at_least_one("grid_levels", v)?;
        }
        if let Some(v) = self.bending_weight {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "bending_weight must be zero or positive, not {v}"
                )));
            }
            options.bending_weight = v;
        }
        if let Some(v) = self.finest_level {
            options.finest_level = Some(v);
        }
        if let Some(v) = self.channel {
            options.channel = Some(v);
        }
        if let Some(v) = self.seed {
            options.seed = v;
        }
        if let Some(v) = self.smoothness {
            options.flow.smoothness = positive("smoothness", v as f64)? as f32;
        }
        if let Some(v) = self.warps {
            options.flow.warps = at_least_one("warps", v as usize)? as u32;
        }
        if let Some(v) = self.sweeps {
            options.flow.iterations = at_least_one("sweeps", v as usize)? as u32;
        }
        if let Some(v) = self.search {
            options.flow.search_radius = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_files_override_defaults_and_reject_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(
            &p,
            "mode = \"accurate\"\nmetric = \"mi\"\ngrid_spacing = 48.0\n",
        )
        .unwrap();
        let mut o = RegisterOptions::default();
        Preset::load(&p).unwrap().apply(&mut o).unwrap();
        assert_eq!(
            (o.mode, o.metric, o.grid_spacing),
            (Mode::Accurate, MetricKind::Mi, Some(48.0))
        );
        std::fs::write(&p, "grid_spacnig = 48.0\n").unwrap();
        let e = Preset::load(&p).unwrap_err();
        assert!(e.to_string().contains("grid_spacnig"), "{e}");
        let bad = Preset {
            grid_spacing: Some(-1.0),
            ..Preset::default()
        };
        assert!(bad.apply(&mut o).is_err());
    }

    #[test]
    fn shipped_presets_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let mut o = RegisterOptions::default();
            Preset::load(&path).unwrap().apply(&mut o).unwrap();
            n += 1;
        }
        assert!(n >= 2);
    }
}
