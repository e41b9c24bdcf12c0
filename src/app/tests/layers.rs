//! The layers panel as a person uses it: colour, the display controls, undo and redo.

use super::*;
use crate::compose::{ColourMap, Display};

/// An app with the bundled sample pair (two colour stains) loaded, in a tall window.
fn sample_loaded<'a>() -> Harness<'a, AlinifyApp> {
    let app = AlinifyApp::new(Settings::default()).unwrap();
    let mut harness = harness(app);
    harness.set_size(egui::vec2(1100.0, 1400.0));
    harness.run_steps(2);
    open_sample_pair(&mut harness);
    assert_eq!(harness.state().error, None);
    harness
}

fn displays(app: &AlinifyApp) -> [Display; 2] {
    app.composite().displays
}

#[test]
fn the_sample_pair_shows_in_colour_and_auto_sets_the_window_which_undo_takes_back() {
    let mut harness = sample_loaded();
    let layers = harness.state().layers.as_ref().unwrap();
    assert!(layers.fixed.is_rgb() && layers.moving.is_rgb());
    assert!(layers.looks[0].rgb && layers.looks[0].histogram.counts.len() == 3);
    assert_eq!(displays(harness.state()), [Display::default(); 2]);

    // The fixed layer's Display, then its Auto: the window from its percentiles.
    assert!(harness.query_by_label("Auto").is_none(), "closed at first");
    harness.get_all_by_label("Display").next().unwrap().click();
    harness.run();
    harness.get_by_label("Auto").click();
    harness.run_steps(2);
    let auto = displays(harness.state())[0];
    assert!(auto != Display::default(), "{auto:?}");
    assert!(auto.low >= 0.0 && auto.high <= 1.0 && auto.low < auto.high);
    assert_eq!(displays(harness.state())[1], Display::default());

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run_steps(2);
    assert_eq!(displays(harness.state())[0], Display::default());
    harness.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    harness.run_steps(2);
    assert_eq!(displays(harness.state())[0], auto);
}

#[test]
fn a_gray_layer_takes_a_colour_map_and_removing_a_layer_can_be_undone() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving) = write_generated_pair(&dir.path().join("pair"), 96, 8).unwrap();
    let (extra, _) = write_generated_pair(&dir.path().join("extra"), 96, 9).unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.open(vec![fixed, moving, extra]);
    let mut harness = harness(app);
    harness.set_size(egui::vec2(1100.0, 1400.0));
    step_until(&mut harness, |app| {
        app.layers.as_ref().is_some_and(|l| !l.extras.is_empty()) && matches!(app.task, Task::Idle)
    });
    // The generated pair is gray: each layer offers a colour map.
    harness.get_all_by_label("Display").next().unwrap().click();
    harness.run();
    harness.get_by_label("colour map").click();
    harness.run_steps(2);
    harness.get_by_label("viridis").click();
    harness.run_steps(2);
    assert_eq!(displays(harness.state())[0].map, ColourMap::Viridis);

    harness.get_by_label("Remove").click();
    harness.run_steps(2);
    assert!(harness.state().layers.as_ref().unwrap().extras.is_empty());
    harness.get_by_label("Undo layer").click();
    harness.run_steps(2);
    let extras = &harness.state().layers.as_ref().unwrap().extras;
    assert_eq!(extras.len(), 1, "the removed layer is back");
    assert_eq!(displays(harness.state())[0].map, ColourMap::Viridis);
    // Then the colour map's change.
    harness.get_by_label("Undo layer").click();
    harness.run_steps(2);
    assert_eq!(displays(harness.state())[0].map, ColourMap::Gray);
    harness.get_by_label("Redo layer").click();
    harness.run_steps(2);
    assert_eq!(displays(harness.state())[0].map, ColourMap::Viridis);
}
