//! Pointer helpers for the kittests that click in the viewer's panes.

use super::*;

/// A primary (or secondary) click at `pos`, as a pointer makes it.
pub(super) fn click_at(
    harness: &mut Harness<'_, AlinifyApp>,
    pos: egui::Pos2,
    button: egui::PointerButton,
) {
    harness.hover_at(pos);
    harness.run_steps(1);
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos,
            button,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        harness.run_steps(1);
    }
}

/// Where fixed-frame point `p` is on screen in pane `pane`.
pub(super) fn on_screen(harness: &Harness<'_, AlinifyApp>, pane: usize, p: [f64; 2]) -> egui::Pos2 {
    let app = harness.state();
    let camera = app.viewer.camera.unwrap();
    camera.to_screen(app.viewer.last_panes[pane].rect, p)
}
