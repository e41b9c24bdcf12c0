//! The registration panel's settings as a person uses them: the initialisation.

use super::*;
use crate::register::init::InitMethod;

#[test]
fn a_person_picks_the_auto_initialisation_and_the_run_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 128, 4, Mode::Accurate);
    harness.set_size(egui::vec2(1100.0, 900.0));
    harness.run_steps(2);
    harness.get_by_label("Initialisation").click();
    harness.run_steps(2);
    harness.get_by_label("auto (any angle)").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().settings.parameters.values.init,
        Some(InitMethod::Auto)
    );
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && (app.result.is_some() || app.error.is_some())
    });
    assert_eq!(harness.state().error, None);
    let result = harness.state().result.as_ref().unwrap();
    assert_eq!(result.options.init, InitMethod::Auto);
}
