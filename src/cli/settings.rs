//! The registration flags that `alinify register` and `alinify batch` share: the engine's
//! [`Settings`] flattened into clap, a preset under them and the backend beside them.

use alinify::register::{Backend, RegisterOptions, Settings};

/// Backend, preset and every registration setting.
#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    /// Where to compute: auto, cpu or gpu (env ALINIFY_BACKEND).
    #[arg(long, env = "ALINIFY_BACKEND", default_value = "auto")]
    backend: Backend,
    /// A bundled preset (same-modality, cross-stain, photo-scene) or a TOML preset file;
    /// flags given here override it (in a batch, a pair's own preset column wins over both).
    #[arg(long, value_name = "NAME|FILE")]
    preset: Option<String>,
    #[command(flatten)]
    settings: Settings,
}

impl SettingsArgs {
    /// The defaults, then the preset, then the flags given.
    pub fn options(&self) -> anyhow::Result<RegisterOptions> {
        let mut options = RegisterOptions::default();
        if let Some(preset) = &self.preset {
            Settings::named(preset)?.apply(&mut options)?;
        }
        self.settings.apply(&mut options)?;
        options.backend = self.backend;
        Ok(options)
    }
}
