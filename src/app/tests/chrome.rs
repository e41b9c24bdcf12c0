//! The window's chrome driven like a person uses it: the file chooser (Ctrl+O), shortcuts
//! from key events, the help overlay, one file as the fixed image, the recent pairs.

use super::*;

/// Types `text` into the focused field and presses Enter, one frame each.
fn type_and_enter(harness: &mut Harness<'_, AlinifyApp>, text: &str) {
    harness.event(egui::Event::Text(text.to_owned()));
    harness.run_steps(1);
    harness.key_press(egui::Key::Enter);
    harness.run_steps(2);
}

#[test]
fn ctrl_o_opens_the_chooser_and_typed_paths_load_the_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving) = write_generated_pair(dir.path(), 96, 5).unwrap();
    let mut harness = harness(AlinifyApp::new(Settings::default()).unwrap());
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("Open pair: the fixed (reference) image")
            .is_some()
    );
    // A path that is not there is refused with the reason, and the chooser stays open.
    type_and_enter(&mut harness, dir.path().join("nope.tif").to_str().unwrap());
    assert!(harness.query_by_label_contains("no such file").is_some());
    harness.get_by_label("Open pair: the fixed (reference) image");
    // The path field has the keyboard again: the next path is typed straight in.
    type_and_enter(&mut harness, fixed.to_str().unwrap());
    assert_eq!(harness.state().pending_fixed.as_ref(), Some(&fixed));
    let title = "Open pair: the moving image (fixed: fixed.tif)";
    harness.run_steps(1);
    assert!(harness.query_by_label(title).is_some());
    type_and_enter(&mut harness, moving.to_str().unwrap());
    step_until(&mut harness, |app| {
        app.layers.is_some() || app.error.is_some()
    });
    let app = harness.state();
    assert_eq!(app.error, None);
    let layers = app.layers.as_ref().unwrap();
    assert_eq!((&layers.fixed_path, &layers.moving_path), (&fixed, &moving));
    assert!(
        harness.query_by_label(title).is_none(),
        "the chooser closed"
    );
}

#[test]
fn a_quick_ctrl_l_within_one_frame_switches_the_layout() {
    let mut harness = harness(AlinifyApp::new(Settings::default()).unwrap());
    harness.run_steps(1);
    assert_eq!(harness.state().settings.layout, Layout::Overlay);
    // Ctrl down, L down and up, Ctrl up: all in one frame.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::L);
    harness.step();
    assert_eq!(harness.state().settings.layout, Layout::SideBySide);
}

#[test]
fn f1_shows_every_shortcut_and_closes_again() {
    let mut harness = harness(AlinifyApp::new(Settings::default()).unwrap());
    harness.run_steps(1);
    harness.key_press(egui::Key::F1);
    harness.run_steps(2);
    assert!(harness.query_by_label("Keyboard shortcuts").is_some());
    for (keys, _) in super::shortcuts::SHORTCUTS {
        assert!(harness.query_by_label(keys).is_some(), "{keys} not listed");
    }
    harness.key_press(egui::Key::F1);
    harness.run_steps(2);
    assert!(harness.query_by_label("Keyboard shortcuts").is_none());
}

#[test]
fn one_file_opens_as_the_fixed_image_and_the_next_is_the_moving_one() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving) = write_generated_pair(dir.path(), 96, 6).unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.open(vec![fixed.clone()]);
    let mut harness = harness(app);
    harness.run_steps(2);
    assert_eq!(harness.state().pending_fixed.as_ref(), Some(&fixed));
    assert!(
        harness
            .query_by_label_contains("Fixed image: fixed.tif")
            .is_some()
    );
    assert!(
        harness
            .query_by_label("Open pair: the moving image (fixed: fixed.tif)")
            .is_some(),
        "the moving image's chooser opens by itself"
    );
    // A second single file (dropped, say) is the moving image.
    harness.state_mut().open(vec![moving.clone()]);
    step_until(&mut harness, |app| {
        app.layers.is_some() || app.error.is_some()
    });
    assert_eq!(harness.state().error, None);
    assert_eq!(harness.state().pending_fixed, None);

    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.open(vec![dir.path().join("missing.png")]);
    assert!(app.error.as_deref().unwrap().contains("missing.png"));
    assert_eq!(app.pending_fixed, None);
}

#[test]
fn a_loaded_pair_is_offered_again_among_the_recent_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving) = write_generated_pair(dir.path(), 96, 7).unwrap();
    let mut settings = Settings::default();
    // A pair whose files are gone is kept but not offered.
    settings.remember_pair([dir.path().join("gone-f.tif"), dir.path().join("gone-m.tif")]);
    settings.remember_pair([fixed.clone(), moving.clone()]);
    settings.remember_pair([dir.path().join("gone-f.tif"), dir.path().join("gone-m.tif")]);
    assert_eq!(settings.recent_pairs.len(), 2, "a pair is listed once");
    let mut harness = harness(AlinifyApp::new(settings).unwrap());
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("gone-f.tif").is_none());
    harness.get_by_label("fixed.tif  ·  moving.tif").click();
    step_until(&mut harness, |app| {
        app.layers.is_some() || app.error.is_some()
    });
    let app = harness.state();
    assert_eq!(app.error, None);
    assert_eq!(app.settings.recent_pairs[0], [fixed, moving]);
}
