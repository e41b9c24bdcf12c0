//! The registration settings a person chooses, in one type: [`Settings`] is the preset file
//! format (TOML), the command line's tuning flags (flattened into `alinify register` and
//! `alinify batch`), and what the GUI's registration panel edits. Each field is optional;
//! `None` keeps the default, which is defined once, in [`RegisterOptions::default`].
//!
//! Layering (later wins): the defaults, a preset (bundled by name or a file), the settings
//! given on top (flags, or the GUI's edits). In a batch, a pair's own preset and mode columns
//! win over the batch's settings.
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
//!
//! Unknown keys are errors: a typo must not be ignored silently.

use super::{Mode, RegisterOptions};
use crate::metric::MetricKind;
use crate::{Error, Result};
use std::path::Path;

/// The largest bending weight accepted: 10 already freezes the grid on every pair measured.
pub const MAX_BENDING_WEIGHT: f64 = 10.0;

/// The presets shipped with Alinify (`assets/presets`): (name, TOML text). They are accepted by
/// name wherever a preset file is (`--preset cross-stain`).
pub const BUNDLED: [(&str, &str); 4] = [
    (
        "same-modality",
        include_str!("../../assets/presets/same-modality.toml"),
    ),
    (
        "cross-stain",
        include_str!("../../assets/presets/cross-stain.toml"),
    ),
    (
        "photo-scene",
        include_str!("../../assets/presets/photo-scene.toml"),
    ),
    (
        "sections",
        include_str!("../../assets/presets/sections.toml"),
    ),
];

/// Registration settings over [`RegisterOptions`]' defaults; `None` leaves a setting alone.
/// Field names are the preset keys and, with dashes, the command-line flags.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Registration mode: accurate (affine + B-spline), affine, fast, demons, landmarks.
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Metric: ncc (same modality, robust to exposure changes), mse (identical
    /// intensities), mi (different stains or modalities).
    #[arg(long)]
    pub metric: Option<MetricKind>,
    /// Pyramid levels (default: down to about 16 px; 64 px with --metric mi).
    #[arg(long)]
    pub levels: Option<usize>,
    /// Samples per metric evaluation (at least 100).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Samples at the finest B-spline level (default: a fifth of its pixels, 20000 to 300000).
    #[arg(long)]
    pub final_samples: Option<usize>,
    /// Iterations per pyramid level at most.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Stop a level when the metric improves by less than this fraction.
    #[arg(long, allow_negative_numbers = true)]
    pub relative_tolerance: Option<f64>,
    /// Final B-spline control-point spacing in full-resolution pixels (default: the longer
    /// side / 20, at least 32).
    #[arg(long, allow_negative_numbers = true)]
    pub grid_spacing: Option<f64>,
    /// Control-grid resolutions: the spacing halves this many times minus one.
    #[arg(long)]
    pub grid_levels: Option<usize>,
    /// Bending-energy penalty weight, relative to the image's size (0: none; 3e-4 between
    /// stains with MI, 0.07 for sections on an empty slide with NCC).
    #[arg(long, allow_negative_numbers = true)]
    pub bending_weight: Option<f64>,
    /// Landmarks mode: thin-plate smoothing λ (0: through every landmark; larger: smoother,
    /// landmarks may be missed; dimensionless, positions are normalised).
    #[arg(long, allow_negative_numbers = true)]
    pub landmark_smoothing: Option<f64>,
    /// Accurate mode with --landmarks: weight of the landmarks' mean squared distance (level
    /// pixels²) in the cost, beside the image metric (0: ignore them).
    #[arg(long, allow_negative_numbers = true)]
    pub landmark_weight: Option<f64>,
    /// Finest pyramid level registered (default 0; 1 above 100 megapixels).
    #[arg(long)]
    pub finest_level: Option<usize>,
    /// Register on this channel (0-based) instead of the luminance.
    #[arg(long)]
    pub channel: Option<usize>,
    /// The affine stage's initialisation: phase (translation), features (any rotation, scale
    /// or a mirror, from matched keypoints), auto (the better of both and the identity on the
    /// coarsest level), none.
    #[arg(long)]
    pub init: Option<super::init::InitMethod>,
    /// Seed of the metric's random sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fast mode: smoothness of the flow (larger is smoother; coarse levels, at most 1/16 of the
    /// image, use half).
    #[arg(long, allow_negative_numbers = true)]
    pub smoothness: Option<f32>,
    /// Fast mode: linearisations per pyramid level.
    #[arg(long)]
    pub warps: Option<u32>,
    /// Fast mode: solver sweeps per linearisation.
    #[arg(long)]
    pub sweeps: Option<u32>,
    /// Fast mode: radius in pixels of a discrete search on coarse levels, for objects that move
    /// independently (stereo, photo series); 0 for smooth deformations. Unset: chosen per pair
    /// (report.json's flow_choice says how).
    #[arg(long)]
    pub search: Option<u32>,
    /// Demons mode: most iterations per pyramid level.
    #[arg(long)]
    pub demons_iterations: Option<u32>,
    /// Demons mode: largest update per iteration, in pixels of each level (at most 4).
    #[arg(long, allow_negative_numbers = true)]
    pub max_step: Option<f32>,
    /// Demons mode: Gaussian smoothing (pixels of each level) of every update, the fluid
    /// regularisation (0 to 2.6).
    #[arg(long, allow_negative_numbers = true)]
    pub fluid_sigma: Option<f32>,
    /// Demons mode: Gaussian smoothing (pixels of each level) of the velocity field after
    /// every update, the elastic regularisation (0 to 2.6).
    #[arg(long, allow_negative_numbers = true)]
    pub elastic_sigma: Option<f32>,
}

impl Settings {
    /// Reads a preset file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::io::read_input_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses preset `text` and checks its ranges (errors name `origin`).
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let settings: Self = toml::from_str(text).map_err(|e| Error::Corrupt {
            path: origin.into(),
            detail: format!("not a valid preset: {}", e.message()),
        })?;
        settings
            .apply(&mut RegisterOptions::default())
            .map_err(|e| Error::InvalidArgument(format!("{}: preset {e}", origin.display())))?;
        Ok(settings)
    }

    /// A bundled preset by name (`None`: no preset has that name).
    pub fn bundled(name: &str) -> Option<Result<Self>> {
        let (name, text) = BUNDLED.iter().find(|(n, _)| *n == name)?;
        Some(Self::parse(text, Path::new(name)))
    }

    /// A bundled preset's name, or else a preset file's path.
    pub fn named(name_or_path: &str) -> Result<Self> {
        if let Some(bundled) = Self::bundled(name_or_path) {
            return bundled;
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<&str> = BUNDLED.iter().map(|(name, _)| *name).collect();
            return Err(Error::InvalidArgument(format!(
                "preset {name_or_path:?} is neither a bundled preset ({}) nor a file",
                names.join(", ")
            )));
        }
        Self::load(path)
    }

    /// Each setting's key and its fixed default as a person reads it, from
    /// [`RegisterOptions::default`] (the one place defaults are defined). Settings whose
    /// default depends on the images (levels, grid spacing, ...) are left out: their
    /// documentation gives the rule.
    pub fn defaults() -> Vec<(String, String)> {
        let options = serde_json::to_value(RegisterOptions::default()).expect("plain data");
        setting_keys()
            .into_iter()
            .filter_map(|key| {
                let value = option_value(&options, &key)?;
                let text = match value {
                    serde_json::Value::Null => return None,
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some((key, text))
            })
            .collect()
    }

    /// The defaults with these settings on top.
    pub fn options(&self) -> Result<RegisterOptions> {
        let mut options = RegisterOptions::default();
        self.apply(&mut options)?;
        Ok(options)
    }

    /// Writes the settings that are set onto `options`, checking their ranges. This is the one
    /// place the ranges are checked; an error names the preset key and the flag.
    pub fn apply(&self, options: &mut RegisterOptions) -> Result<()> {
        let out_of_range = |key: &str, rule: String| {
            Error::InvalidArgument(format!(
                "setting {key} (--{}) {rule}",
                key.replace('_', "-")
            ))
        };
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(out_of_range(
                    key,
                    format!("must be a positive number, not {v}"),
                ))
            }
        };
        let non_negative = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(out_of_range(
                    key,
                    format!("must be zero or positive, not {v}"),
                ))
            }
        };
        let at_least_one = |key: &str, v: usize| {
            if v >= 1 {
                Ok(v)
            } else {
                Err(out_of_range(key, "must be at least 1".into()))
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
            options.iterations = at_least_one("iterations", v)?;
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
            let v = non_negative("bending_weight", v)?;
            if v > MAX_BENDING_WEIGHT {
                // Weights up to this build were in 1/px^2 (10 to 1000); read as the size-relative
                // weight they would freeze the grid, so an old preset must not pass silently.
                return Err(out_of_range(
                    "bending_weight",
                    format!(
                        "{v} is above {MAX_BENDING_WEIGHT}: the weight is now relative to the \
                         image's size (the old 300 is about 3e-4 at 1000 px: old weight / longer side²)"
                    ),
                ));
            }
            options.bending_weight = v;
        }
        if let Some(v) = self.landmark_smoothing {
            options.landmark_smoothing = non_negative("landmark_smoothing", v)?;
        }
        if let Some(v) = self.landmark_weight {
            options.landmark_weight = non_negative("landmark_weight", v)?;
        }
        if let Some(v) = self.finest_level {
            options.finest_level = Some(v);
        }
        if let Some(v) = self.channel {
            options.channel = Some(v);
        }
        if let Some(v) = self.init {
            options.init = v;
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
            options.flow.sweeps = at_least_one("sweeps", v as usize)? as u32;
        }
        if let Some(v) = self.search {
            // A radius given (0 included) replaces the automatic choice.
            options.flow.search = v;
            options.flow.auto_search = false;
        }
        if let Some(v) = self.demons_iterations {
            options.demons.iterations = at_least_one("demons_iterations", v as usize)? as u32;
        }
        if let Some(v) = self.max_step {
            options.demons.max_step = positive("max_step", v as f64)? as f32;
        }
        if let Some(v) = self.fluid_sigma {
            options.demons.fluid_sigma = non_negative("fluid_sigma", v as f64)? as f32;
        }
        if let Some(v) = self.elastic_sigma {
            options.demons.elastic_sigma = non_negative("elastic_sigma", v as f64)? as f32;
        }
        options.demons.validate()?;
        Ok(())
    }
}

/// The option a setting's key names in the serialised [`RegisterOptions`]: at the top, or in
/// the flow's or the demons' settings.
fn option_value<'a>(options: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    options
        .get(key)
        .or_else(|| options["flow"].get(key))
        .or_else(|| options["demons"].get(key))
}

/// Every setting's key, in declaration order.
fn setting_keys() -> Vec<String> {
    match serde_json::to_value(Settings::default()).expect("plain data") {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        _ => unreachable!("a struct serialises to an object"),
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
        Settings::load(&p).unwrap().apply(&mut o).unwrap();
        assert_eq!(
            (o.mode, o.metric, o.grid_spacing),
            (Mode::Accurate, MetricKind::Mi, Some(48.0))
        );
        std::fs::write(&p, "grid_spacnig = 48.0\n").unwrap();
        let e = Settings::load(&p).unwrap_err();
        assert!(e.to_string().contains("grid_spacnig"), "{e}");
        let bad = Settings {
            grid_spacing: Some(-1.0),
            ..Settings::default()
        };
        assert!(bad.apply(&mut o).is_err());
    }

    #[test]
    fn an_old_preset_bending_weight_in_per_pixel_units_is_refused_with_the_conversion() {
        let old = Settings {
            bending_weight: Some(300.0),
            ..Settings::default()
        };
        let e = old.apply(&mut RegisterOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains("bending_weight") && e.to_string().contains("3e-4"),
            "{e}"
        );
        let new = Settings {
            bending_weight: Some(3e-4),
            ..Settings::default()
        };
        let mut o = RegisterOptions::default();
        new.apply(&mut o).unwrap();
        assert_eq!(o.bending_weight, 3e-4);
    }

    #[test]
    fn shipped_presets_are_valid_and_bundled_by_name() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let from_file = Settings::load(&path).unwrap();
            from_file.options().unwrap();
            let name = path.file_stem().unwrap().to_str().unwrap();
            assert_eq!(Settings::named(name).unwrap(), from_file, "{name}");
            n += 1;
        }
        assert_eq!(n, BUNDLED.len());
        let cross = Settings::named("cross-stain").unwrap().options().unwrap();
        assert_eq!((cross.metric, cross.grid_levels), (MetricKind::Mi, 3));
        let e = Settings::named("no-such-preset").unwrap_err();
        assert!(
            e.to_string().contains("no-such-preset") && e.to_string().contains("cross-stain"),
            "{e}"
        );
    }

    #[test]
    fn every_setting_has_the_name_of_the_option_it_sets() {
        let options = serde_json::to_value(RegisterOptions::default()).unwrap();
        for key in setting_keys() {
            assert!(
                option_value(&options, &key).is_some(),
                "the setting {key} names no option"
            );
        }
        let defaults = Settings::defaults();
        let default = |key: &str| defaults.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        assert_eq!(default("mode").unwrap(), "accurate");
        assert_eq!(default("iterations").unwrap(), "100");
        assert_eq!(default("sweeps").unwrap(), "12");
        assert_eq!(default("grid_spacing"), None, "depends on the image");
    }

    #[test]
    fn the_default_mode_is_accurate_everywhere() {
        assert_eq!(Mode::default(), Mode::Accurate);
        assert_eq!(RegisterOptions::default().mode, Mode::Accurate);
        assert_eq!(Settings::default().options().unwrap().mode, Mode::Accurate);
    }
}
