//! The registration flags that `alinify register` and `alinify batch` share: the engine's
//! [`Settings`] flattened into clap, a preset under them and the backend beside them.

use alinify::register::settings::BUNDLED;
use alinify::register::{Backend, RegisterOptions, Settings};

/// Backend, preset and every registration setting.
#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    /// Where to compute: auto, cpu or gpu (env ALINIFY_BACKEND).
    #[arg(long, env = "ALINIFY_BACKEND", default_value = "auto")]
    backend: Backend,
    /// A bundled preset by name or a TOML preset file; flags given here override it (in a
    /// batch, a pair's own preset column wins over both).
    #[arg(long, value_name = "NAME|FILE")]
    preset: Option<String>,
    #[command(flatten)]
    settings: Settings,
}

/// `command` with the engine's facts added to the help of the subcommands that take the
/// settings: each setting's default, and the bundled presets' names. They come from the
/// engine, not from the help's text, so the two cannot disagree.
pub fn help_from_engine(command: clap::Command) -> clap::Command {
    let defaults = Settings::defaults();
    let presets: Vec<&str> = BUNDLED.iter().map(|(name, _)| *name).collect();
    ["register", "batch"]
        .into_iter()
        .fold(command, |command, name| {
            command.mut_subcommand(name, |mut sub| {
                sub = sub.mut_arg("preset", |arg| {
                    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                    arg.help(format!("{help} [bundled: {}]", presets.join(", ")))
                });
                for (key, value) in &defaults {
                    sub = sub.mut_arg(key, |arg| {
                        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                        arg.help(format!("{help} [default: {value}]"))
                    });
                }
                sub
            })
        })
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
