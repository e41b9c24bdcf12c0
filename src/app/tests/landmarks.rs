//! The landmark mode driven like a person uses it: clicking pairs, dragging, deleting, undo,
//! the thin-plate fit, and landmark files given with the pair.

use super::*;

#[test]
fn a_person_clicks_landmark_pairs_edits_them_and_fits_a_thin_plate_spline() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 192, 9, Mode::Accurate);
    harness.set_size(egui::vec2(1100.0, 1000.0)); // the whole left panel in view
    harness.get_by_label("Landmark mode").click();
    harness.run_steps(2);
    assert_eq!(harness.state().settings.layout, Layout::SideBySide);
    assert_eq!(harness.state().viewer.last_panes.len(), 2);

    // Each moving point 6 px right and 4 px down of its fixed partner.
    let shift = [6.0, 4.0];
    let fixed = [[40.0, 50.0], [150.0, 45.0], [60.0, 140.0], [140.0, 150.0]];
    let place = |harness: &mut Harness<'_, AlinifyApp>, p: [f64; 2]| {
        let f = on_screen(harness, 0, p);
        click_at(harness, f, egui::PointerButton::Primary);
        let m = on_screen(harness, 1, [p[0] + shift[0], p[1] + shift[1]]);
        click_at(harness, m, egui::PointerButton::Primary);
    };
    for &p in &fixed[..2] {
        place(&mut harness, p);
    }
    assert_eq!(harness.state().landmarks.complete().0.len(), 2);
    harness.get_by_label("Thin-plate from landmarks").click();
    harness.run_steps(2);
    let error = harness.state().error.clone().unwrap_or_default();
    assert!(error.contains("at least 3"), "{error}");
    for &p in &fixed[2..] {
        place(&mut harness, p);
    }
    let (f, m) = harness.state().landmarks.complete();
    assert_eq!(f.len(), 4);
    for (a, b) in fixed.iter().zip(&f) {
        assert!(
            (a[0] - b[0]).abs() < 0.01 && (a[1] - b[1]).abs() < 0.01,
            "{a:?} {b:?}"
        );
    }
    assert!(
        (m[3][0] - 146.0).abs() < 0.01 && (m[3][1] - 154.0).abs() < 0.01,
        "{m:?}"
    );
    harness.run_steps(1); // the panel is drawn before the viewer takes the click
    assert!(
        harness
            .query_by_label_contains("4 pairs before registration: median 7.21 px")
            .is_some()
    );

    // Drag the last moving point 10 px to the right, then take it back.
    let from = on_screen(&harness, 1, m[3]);
    harness.hover_at(from);
    harness.run_steps(1);
    harness.drag_at(from);
    harness.run_steps(1);
    let step = harness.state().viewer.camera.unwrap().step as f32;
    for k in 1..=5 {
        harness.hover_at(from + egui::vec2(2.0 * k as f32 / step, 0.0));
        harness.run_steps(1);
    }
    harness.drop_at(from + egui::vec2(10.0 / step, 0.0));
    harness.run_steps(2);
    let moved = harness.state().landmarks.pairs[3].moving.unwrap();
    assert!(
        (moved[0] - 156.0).abs() < 0.05 && (moved[1] - 154.0).abs() < 0.05,
        "{moved:?}"
    );
    assert!(harness.query_by_label("4. error 16.49 px").is_some());
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run_steps(2);
    assert_eq!(harness.state().landmarks.pairs[3].moving, Some(m[3]));

    // A right-click removes a pair; undo brings it back.
    let at = on_screen(&harness, 0, fixed[1]);
    click_at(&mut harness, at, egui::PointerButton::Secondary);
    assert_eq!(harness.state().landmarks.pairs.len(), 3);
    harness.run_steps(1); // the list, one row shorter, moves the buttons up
    harness.get_by_label("Undo").click();
    harness.run_steps(2);
    assert_eq!(harness.state().landmarks.pairs.len(), 4);

    harness.get_by_label("Thin-plate from landmarks").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && (app.result.is_some() || app.error.is_some())
    });
    assert_eq!(harness.state().error, None);
    assert_eq!(
        harness.state().result.as_ref().unwrap().options.mode,
        Mode::Landmarks
    );
    assert_eq!(harness.state().view, View::After);
    assert!(
        harness
            .query_by_label_contains("4 pairs under the current transform: median 0.00 px")
            .is_some()
    );

    // In the After view the right pane shows the moving image warped: a point placed there is
    // carried through the transform into the moving image.
    place(&mut harness, [100.0, 100.0]);
    let pair = harness.state().landmarks.pairs[4];
    assert_eq!(pair.fixed.map(|p| p.map(f64::round)), Some([100.0, 100.0]));
    let m = pair.moving.unwrap();
    assert!(
        (m[0] - 112.0).abs() < 0.05 && (m[1] - 108.0).abs() < 0.05,
        "{m:?}"
    );
}

#[test]
fn landmark_files_given_with_the_pair_open_the_landmark_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving) = write_generated_pair(dir.path(), 96, 2).unwrap();
    let f = dir.path().join("f.csv");
    let m = dir.path().join("m.csv");
    std::fs::write(&f, ",X,Y\n0,10,12\n1,50,60\n2,80,20\n").unwrap();
    std::fs::write(&m, "x,y\n11,13\n52,61\n").unwrap();
    let files = vec![fixed, moving, f.clone(), m];
    let Ok(Some(Opening::Pair(_, _, extras, landmarks))) = Opening::of(files.clone()) else {
        panic!("not a pair");
    };
    assert!(extras.is_empty());
    assert_eq!(landmarks.len(), 2);
    let too_many = [files.clone(), vec![f]].concat();
    assert!(
        Opening::of(too_many)
            .unwrap_err()
            .to_string()
            .contains("3 landmark files")
    );

    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.open(files);
    let mut harness = harness(app);
    step_until(&mut harness, |app| app.layers.is_some());
    let app = harness.state();
    assert!(app.landmarks.active);
    assert_eq!(app.settings.layout, Layout::SideBySide);
    assert_eq!(app.landmarks.complete().0.len(), 2);
    assert_eq!(
        app.landmarks.pairs.len(),
        3,
        "the third waits for its moving point"
    );
    assert!(
        harness
            .query_by_label("3. needs its moving point")
            .is_some()
    );
}
