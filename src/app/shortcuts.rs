//! Keyboard shortcuts: the one list of them (the help overlay and the README show it), and
//! reading them from the frame's key events with each event's own modifiers, so that a quick
//! Ctrl+L whose keys go down and up within one slow frame still counts.

use super::AlinifyApp;
use super::viewer::Layout;
use eframe::egui;
use egui::{Key, Modifiers};

/// Every shortcut: the keys as the help overlay and the README write them, and what they do.
pub const SHORTCUTS: &[(&str, &str)] = &[
    (
        "Ctrl+O",
        "open a pair: choose the fixed image, then the moving one",
    ),
    (
        "Ctrl+E",
        "export the composite and the registration's outputs",
    ),
    ("Ctrl+R", "run the registration"),
    ("Esc", "cancel the running job"),
    ("Ctrl+L", "switch between overlay and side by side"),
    ("Ctrl+F", "fit the image to the view"),
    (
        "Arrow keys",
        "pan by an eighth of the view per press (over the viewer)",
    ),
    ("+ / -", "zoom in / out (over the viewer)"),
    (
        "1",
        "zoom to one image pixel per screen pixel (over the viewer)",
    ),
    ("Drag / wheel", "pan / zoom"),
    (
        "Click, drag, right-click",
        "landmark mode: place a point, move it, remove its pair",
    ),
    ("Delete", "landmark mode: remove the selected pair"),
    (
        "Ctrl+Z",
        "undo: the last landmark change in the landmark mode, else the last layer change",
    ),
    (
        "Ctrl+Shift+Z / Ctrl+Y",
        "redo: the last undone landmark or layer change",
    ),
    (
        "Enter",
        "dismiss an error; in the file chooser, open what is typed",
    ),
    ("F1 or ?", "show or hide this list"),
    ("F12", "the debug panel"),
];

/// The actions the window's own shortcuts ask for in one frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pressed {
    /// Ctrl+O.
    pub open: bool,
    /// Ctrl+E.
    pub export: bool,
    /// Ctrl+R.
    pub run: bool,
    /// Esc.
    pub cancel: bool,
    /// Ctrl+L.
    pub layout: bool,
    /// Ctrl+F.
    pub fit: bool,
    /// F1 or `?`.
    pub help: bool,
    /// F12.
    pub debug: bool,
}

impl Pressed {
    /// Takes the shortcuts out of this frame's key events. Keys typed into a text field are
    /// left to it, except the ones with Ctrl.
    pub fn read(input: &mut egui::InputState, typing: bool) -> Self {
        let mut take = |modifiers, key| input.consume_key(modifiers, key);
        let command = Modifiers::COMMAND;
        let mut pressed = Self {
            open: take(command, Key::O),
            export: take(command, Key::E),
            run: take(command, Key::R),
            layout: take(command, Key::L),
            fit: take(command, Key::F),
            debug: take(Modifiers::NONE, Key::F12),
            help: take(Modifiers::NONE, Key::F1),
            cancel: false,
        };
        if !typing {
            pressed.cancel = take(Modifiers::NONE, Key::Escape);
            pressed.help |= take(Modifiers::NONE, Key::Questionmark)
                || input
                    .events
                    .iter()
                    .any(|e| matches!(e, egui::Event::Text(t) if t == "?"));
        }
        pressed
    }
}

impl AlinifyApp {
    /// Acts on this frame's shortcuts.
    pub(super) fn shortcuts(&mut self, ui: &mut egui::Ui) {
        self.landmark_shortcuts(ui);
        let typing = ui.ctx().egui_wants_keyboard_input();
        let pressed = ui.input_mut(|i| Pressed::read(i, typing));
        if pressed.debug {
            self.show_debug = !self.show_debug;
        }
        if pressed.help {
            self.show_help = !self.show_help;
        }
        if pressed.layout {
            self.settings.layout = match self.settings.layout {
                Layout::Overlay => Layout::SideBySide,
                Layout::SideBySide => Layout::Overlay,
            };
        }
        if pressed.run {
            self.run();
        }
        if pressed.cancel {
            self.cancel();
        }
        if pressed.fit {
            self.viewer.camera = None;
        }
        if pressed.open {
            self.choose_pair(ui.ctx());
        }
        if pressed.export {
            self.choose_export(ui.ctx());
        }
    }

    /// The help overlay: every shortcut, while `show_help` holds.
    pub(super) fn help_window(&mut self, ctx: &egui::Context) {
        let mut open = self.show_help;
        egui::Window::new("Keyboard shortcuts")
            .open(&mut open)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts")
                    .num_columns(2)
                    .striped(true)
                    .show(ui, |ui| {
                        for (keys, action) in SHORTCUTS {
                            ui.strong(*keys);
                            ui.label(*action);
                            ui.end_row();
                        }
                    });
            });
        self.show_help = open;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_shortcut() {
        let readme = include_str!("../../README.md");
        for (keys, action) in SHORTCUTS {
            let row = format!("| `{keys}` | {action} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }

    #[test]
    fn shortcuts_come_from_key_events_with_their_own_modifiers() {
        let ctx = egui::Context::default();
        let key = |key, pressed, modifiers| egui::Event::Key {
            key,
            physical_key: None,
            pressed,
            repeat: false,
            modifiers,
        };
        // Ctrl goes down and up, and L with it, all before the frame: the frame's own
        // modifier state says no Ctrl, the events say Ctrl+L.
        let raw = egui::RawInput {
            events: vec![
                key(Key::L, true, Modifiers::COMMAND),
                key(Key::L, false, Modifiers::COMMAND),
            ],
            ..Default::default()
        };
        let mut pressed = Pressed::default();
        let mut output = ctx.run_ui(raw, |ui| {
            pressed = ui.input_mut(|i| Pressed::read(i, false));
        });
        output.textures_delta.clear();
        assert!(
            pressed.layout && !pressed.fit && !pressed.open,
            "{pressed:?}"
        );
    }
}
