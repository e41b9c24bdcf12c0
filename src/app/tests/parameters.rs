//! The registration panel's settings as a person uses them: the initialisation, the method
//! menu, and the Analysis panel's comparison of methods.

use super::*;
use crate::register::init::InitMethod;

#[test]
fn a_person_picks_the_phase_initialisation_and_the_run_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 128, 4, Mode::Accurate);
    harness.set_size(egui::vec2(1100.0, 900.0));
    harness.run_steps(2);
    harness.get_by_label("Initialisation").click();
    harness.run_steps(2);
    // Auto is the default; a person picks phase correlation instead.
    assert!(harness.query_by_label("auto (any angle)").is_some());
    harness.get_by_label("phase (shift)").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().settings.parameters.values.init,
        Some(InitMethod::Phase)
    );
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && (app.result.is_some() || app.error.is_some())
    });
    assert_eq!(harness.state().error, None);
    let result = harness.state().result.as_ref().unwrap();
    assert_eq!(result.options.init, InitMethod::Phase);
}

#[test]
fn a_person_runs_demons_then_compares_another_method_on_the_same_pair() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 128, 5, Mode::Accurate);
    harness.set_size(egui::vec2(1100.0, 1400.0));
    harness.run_steps(2);
    harness.get_by_label("Demons").click();
    harness.run_steps(2);
    assert_eq!(harness.state().settings.mode, Mode::Demons);
    assert!(harness.query_by_label("Elastic σ").is_some());
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    let finished = |app: &AlinifyApp| {
        matches!(app.task, Task::Idle) && (app.result.is_some() || app.error.is_some())
    };
    step_until(&mut harness, finished);
    assert_eq!(harness.state().error, None);
    assert_eq!(
        harness.state().result.as_ref().unwrap().options.mode,
        Mode::Demons
    );
    harness.state_mut().compare_mode = Mode::Affine;
    harness.run_steps(2);
    harness.get_by_label("Run and compare").click();
    harness.run_steps(1);
    step_until(&mut harness, finished);
    let runs = &harness.state().method_runs;
    let modes: Vec<Mode> = runs.iter().map(|r| r.mode).collect();
    assert_eq!(modes, [Mode::Demons, Mode::Affine]);
    assert!(
        runs.iter()
            .all(|r| r.folded_fraction == 0.0 && r.ncc_after > 0.5)
    );
    harness.run_steps(2);
    assert!(harness.query_by_label("min det J").is_some());
}
