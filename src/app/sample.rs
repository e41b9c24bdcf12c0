//! The pairs a newcomer can open in one click: the bundled sample pair (with the cross-stain
//! preset, for that pair only) and a generated pair.

use super::AlinifyApp;
use super::parameters::Parameters;
use crate::{Error, Result, io};
use eframe::egui;
use std::path::{Path, PathBuf};

/// The bundled sample pair (assets/sample, BSD-3-Clause): the reference and the moving image.
const SAMPLE_PAIR: [(&str, &[u8]); 2] = [
    (
        "rat-kidney-he.jpg",
        include_bytes!("../../assets/sample/rat-kidney-he.jpg"),
    ),
    (
        "rat-kidney-pancytokeratin.jpg",
        include_bytes!("../../assets/sample/rat-kidney-pancytokeratin.jpg"),
    ),
];

/// The preset the sample pair opens with.
const SAMPLE_PRESET: &str = "cross-stain";

/// Writes the bundled sample pair into `dir/sample` and returns its paths.
pub fn write_sample_pair(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    use std::io::Write;
    let dir = dir.join("sample");
    io::ensure_output_dir(&dir)?;
    let mut paths = Vec::new();
    for (name, bytes) in SAMPLE_PAIR {
        let path = dir.join(name);
        io::write_atomic(&path, |w| {
            w.write_all(bytes).map_err(|e| Error::write(&path, e))
        })?;
        paths.push(path);
    }
    let moving = paths.pop().expect("two files");
    let fixed = paths.pop().expect("two files");
    Ok((fixed, moving))
}

/// Writes a 512 x 512 generated pair into `dir/generated` and returns its paths.
pub fn generate_demo_pair(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    crate::synth::write_generated_pair(&dir.join("generated"), 512, 1)
}

impl AlinifyApp {
    /// Loads the bundled sample pair with the cross-stain preset (accurate mode). The person's
    /// own mode and parameters are put aside, not replaced: the next pair brings them back,
    /// and they are what is saved.
    pub fn open_sample_pair(&mut self) {
        match write_sample_pair(self.out_dir.path()) {
            Ok((fixed, moving)) => {
                if let Some(Ok(preset)) = Parameters::bundled(SAMPLE_PRESET) {
                    let settings = &mut self.settings;
                    self.own_choice
                        .get_or_insert_with(|| (settings.mode, settings.parameters.clone()));
                    settings.parameters.choose(preset, &mut settings.mode);
                }
                self.start_loading(fixed, moving, None, Vec::new());
            }
            Err(e) => self.error = Some(format!("cannot write the sample pair: {e}")),
        }
    }

    /// Gives back the mode and parameters the sample pair put aside.
    pub(super) fn restore_own_choice(&mut self) {
        if let Some((mode, parameters)) = self.own_choice.take() {
            self.settings.mode = mode;
            self.settings.parameters = parameters;
        }
    }

    /// "Sample pair" (the bundled cross-stain pair, with the cross-stain preset) and
    /// "Generated pair" (a synthetic pair with a known deformation).
    pub(super) fn sample_buttons(&mut self, ui: &mut egui::Ui) {
        let idle = matches!(self.task, super::Task::Idle);
        if ui
            .add_enabled(idle, egui::Button::new("Sample pair"))
            .on_hover_text("two stains of a rat kidney section (assets/sample), cross-stain preset")
            .clicked()
        {
            self.open_sample_pair();
        }
        if ui
            .add_enabled(idle, egui::Button::new("Generated pair"))
            .on_hover_text("a textured pair with a known smooth deformation")
            .clicked()
        {
            match generate_demo_pair(self.out_dir.path()) {
                Ok((f, m)) => self.load(f, m),
                Err(e) => self.error = Some(e.to_string()),
            }
        }
    }
}
