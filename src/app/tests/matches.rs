//! The Analysis panel's matches view driven like a person uses it: match, look side by side,
//! delete a match with a right click, refit.

use super::*;

#[test]
fn a_person_matches_features_deletes_a_match_side_by_side_and_refits() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 192, 6, Mode::Accurate);
    harness.set_size(egui::vec2(1100.0, 1400.0)); // the whole left panel in view
    harness.run_steps(2);
    harness.get_by_label("Match features").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && (app.matches.outcome.is_some() || app.error.is_some())
    });
    assert_eq!(harness.state().error, None);
    // Shown side by side on the pair as loaded, with the counts.
    assert_eq!(harness.state().settings.layout, Layout::SideBySide);
    assert_eq!(harness.state().view, View::Before);
    assert!(harness.query_by_label_contains("inliers").is_some());
    let found = harness.state().matches.outcome.clone().unwrap();
    let inliers = found.inliers();
    assert!(inliers >= 8, "{inliers} inliers");

    // A right click on an inlier's fixed point deletes it; Refit leaves it out.
    let i = (0..found.matches.len())
        .find(|&i| found.matches[i].inlier)
        .unwrap();
    let at = on_screen(&harness, 0, found.fixed_point(i));
    click_at(&mut harness, at, egui::PointerButton::Secondary);
    let view = &harness.state().matches;
    let deleted: Vec<usize> = (0..found.matches.len())
        .filter(|&j| view.outcome.as_ref().unwrap().matches[j].deleted)
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(view.changed);
    harness.run_steps(1);
    assert!(harness.query_by_label_contains("1 deleted").is_some());
    harness.get_by_label("Refit").click();
    harness.run_steps(2);
    let view = &harness.state().matches;
    let refitted = view.outcome.as_ref().unwrap();
    assert!(!view.changed);
    assert!(!refitted.matches[deleted[0]].inlier);
    assert!(refitted.inliers() < inliers && refitted.inliers() >= 8);
    assert_eq!(harness.state().error, None);

    // Restore all brings it back for the next refit.
    harness.get_by_label("Restore all").click();
    harness.run_steps(1);
    harness.get_by_label("Refit").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().matches.outcome.as_ref().unwrap().inliers(),
        inliers
    );
}
