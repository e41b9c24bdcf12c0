//! The app driven like a person uses it (egui_kittest): load a pair, toggle the mode, run,
//! cancel, change the blend; and a wgpu render of the viewer (lavapipe in CI).

use super::layers::drawn_overlays;
use super::*;
use crate::compose::WarpGrid;
use crate::io;
use crate::synth::write_generated_pair;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

mod chrome;
mod landmarks;
mod layers;
mod matches;
mod network;
mod parameters;
mod pointer;

use pointer::{click_at, on_screen};

/// An app in `mode` with a generated `size` pair loaded, in a harness.
fn loaded<'a>(dir: &Path, size: usize, seed: u64, mode: Mode) -> Harness<'a, AlinifyApp> {
    let (fixed, moving) = write_generated_pair(dir, size, seed).unwrap();
    let mut app = AlinifyApp::new(Settings {
        mode,
        ..Settings::default()
    })
    .unwrap();
    app.load(fixed, moving);
    let mut harness = harness(app);
    step_until(&mut harness, |app| app.layers.is_some());
    harness
}

fn harness<'a>(app: AlinifyApp) -> Harness<'a, AlinifyApp> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 700.0))
        .build_ui_state(|ui, app: &mut AlinifyApp| app.show(ui), app)
}

/// Clicks the (first) Sample pair button and steps until the pair is loaded or failed.
fn open_sample_pair(harness: &mut Harness<'_, AlinifyApp>) {
    harness
        .get_all_by_label("Sample pair")
        .next()
        .unwrap()
        .click();
    harness.run_steps(1);
    step_until(harness, |app| app.layers.is_some() || app.error.is_some());
}

/// Steps the UI until `done` holds, for at most a minute.
fn step_until(harness: &mut Harness<'_, AlinifyApp>, done: impl Fn(&AlinifyApp) -> bool) {
    let started = Instant::now();
    while !done(harness.state()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out; task {}, error {:?}",
            harness.state().task.name(),
            harness.state().error
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.run_steps(2);
}

#[test]
fn a_person_loads_a_pair_picks_fast_runs_it_and_changes_the_blend() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 160, 3, Mode::Accurate);
    assert!(harness.query_by_label("ready").is_some());

    harness.get_by_label("Fast").click();
    harness.run_steps(2);
    assert_eq!(harness.state().settings.mode, Mode::Fast);

    harness.get_by_label("Run").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && (app.result.is_some() || app.error.is_some())
    });
    assert_eq!(harness.state().error, None);
    let result = harness.state().result.clone().unwrap();
    assert!(result.ncc[1] > result.ncc[0], "{result:?}");
    assert!(harness.query_by_label_contains("NCC after").is_some());
    assert!(harness.query_by_label_contains("started from").is_some());
    assert_eq!(harness.state().view, View::After);

    // The controls with the result and its plot are taller than a 700-pt window.
    harness.set_size(egui::vec2(1100.0, 1000.0));
    harness.run_steps(2);
    harness.get_by_label("Blend").click();
    harness.run_steps(2);
    harness.get_by_label("Difference").click();
    harness.run_steps(2);
    assert_eq!(harness.state().settings.composite.blend, Blend::Difference);
}

#[test]
fn cancel_stops_a_running_registration() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 640, 4, Mode::Accurate);
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    assert_eq!(harness.state().task.name(), "registering");
    harness.get_by_label("Cancel").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| matches!(app.task, Task::Idle));
    // A cancel the person asked for is a notice, not an error.
    assert_eq!(harness.state().error, None);
    assert_eq!(
        harness.state().notice.as_deref(),
        Some("registration cancelled")
    );
    assert!(harness.state().result.is_none());
    assert!(harness.query_by_label("registration cancelled").is_some());
}

#[test]
fn closing_the_window_stops_the_running_registration_and_removes_the_session_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 640, 4, Mode::Accurate);
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    let Task::Registering { job, .. } = &harness.state().task else {
        panic!("not registering: {}", harness.state().task.name());
    };
    let cancel = job.cancel.clone();
    let session = harness.state().out_dir.path().to_owned();
    assert!(session.is_dir());
    drop(harness);
    assert!(cancel.is_cancelled(), "closing cancels the registration");
    assert!(!session.exists(), "closing removes {}", session.display());
}

#[test]
fn errors_show_in_the_middle_of_the_window_until_dismissed() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.load(
        dir.path().join("missing.tif"),
        dir.path().join("also-missing.tif"),
    );
    let mut harness = harness(app);
    step_until(&mut harness, |app| app.error.is_some());
    // One message, naming the file and the problem.
    let message = harness.get_by_label_contains("file not found");
    assert!(
        format!("{message:?}").contains("missing.tif"),
        "{message:?}"
    );
    // It stays through any number of frames, then goes when dismissed.
    harness.run_steps(5);
    assert!(harness.query_by_label_contains("file not found").is_some());
    harness.get_by_label("Dismiss").click();
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("file not found").is_none());
    assert_eq!(harness.state().error, None);
}

/// A harness that renders with wgpu (lavapipe in CI), a generated `size` pair loaded in it;
/// the viewer composes on the GPU in a paint callback (`gpu_viewer`), otherwise the CPU twin
/// fills a texture. `None` (the test skips) when there is no adapter outside CI.
fn rendering_harness<'a>(
    dir: &Path,
    size: usize,
    gpu_viewer: bool,
) -> Option<Harness<'a, AlinifyApp>> {
    if let Err(e) = crate::gpu::GpuContext::shared() {
        assert!(
            !crate::gpu::adapter_required(),
            "CI=true but no GPU adapter: {e}"
        );
        eprintln!("skipping the render test: {e}");
        return None;
    }
    let (fixed, moving) = write_generated_pair(dir, size, 5).unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    let render_state = egui_kittest::wgpu::create_render_state(
        egui_kittest::wgpu::default_wgpu_setup(),
        eframe::egui_wgpu::RendererOptions::PREDICTABLE,
    );
    if gpu_viewer {
        app.viewer = Viewer::new(Some(render_state.clone()));
    }
    assert_eq!(app.viewer.backend(), if gpu_viewer { "gpu" } else { "cpu" });
    app.load(fixed, moving);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(900.0, 720.0))
        .with_render_cursor(false)
        .renderer(egui_kittest::wgpu::WgpuTestRenderer::from_render_state(
            render_state,
        ))
        .build_ui_state(|ui, app: &mut AlinifyApp| app.show(ui), app);
    step_until(&mut harness, |app| app.layers.is_some());
    Some(harness)
}

/// Renders the app with a loaded pair and counts the gray levels in the viewer: the textured
/// composite has many.
fn render_viewer(gpu_viewer: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut harness) = rendering_harness(dir.path(), 256, gpu_viewer) else {
        return;
    };
    let image = harness.render().expect("a wgpu render");
    // The viewer (right of the controls) shows the textured composite: many distinct grays.
    let (w, h) = image.dimensions();
    let mut grays = std::collections::HashSet::new();
    for y in (h / 4..3 * h / 4).step_by(3) {
        for x in (w / 2..w - 40).step_by(3) {
            grays.insert(image.get_pixel(x, y).0[0]);
        }
    }
    assert!(
        grays.len() > 40,
        "only {} gray levels in the viewer",
        grays.len()
    );
}

/// Renders the window and holds every pane of the viewer to the CPU twin's rendering of that
/// pane's composite through the one camera; returns each pane's mean gray.
fn panes_match_the_cpu_twin(harness: &mut Harness<'_, AlinifyApp>) -> Vec<f64> {
    let image = harness.render().expect("a wgpu render");
    let ppp = harness.ctx.pixels_per_point();
    let app = harness.state();
    let camera = app.viewer.camera.expect("the viewer has a camera");
    let layers = app.layers.as_ref().unwrap();
    let scene = crate::compose::Scene {
        bottom: &layers.fixed,
        top: &layers.moving,
        warp: match app.view {
            View::After => layers.warp.as_deref(),
            View::Before => None,
        },
        overlays: &[],
    };
    let mut means = Vec::new();
    for pane in &app.viewer.last_panes {
        let view = camera.view_rect(pane.rect, ppp);
        let rect = pane.rect;
        let size = [
            (rect.width() * ppp).round() as usize,
            (rect.height() * ppp).round() as usize,
        ];
        let cpu = crate::compose::render(scene, &pane.composite, view, size, &scene.levels(&view));
        let (mut differ, mut compared, mut sum) = (0, 0, 0.0);
        // Inside the pane, one pixel in from its edges, below the caption and above the scale
        // bar.
        let x_range = (rect.min.x * ppp).ceil() as u32 + 1..(rect.max.x * ppp).floor() as u32 - 1;
        let y_range = ((rect.min.y + 30.0) * ppp).ceil() as u32..((rect.max.y - 45.0) * ppp) as u32;
        for y in y_range.clone() {
            for x in x_range.clone() {
                let i = (x as f32 + 0.5 - rect.min.x * ppp).floor() as usize;
                let j = (y as f32 + 0.5 - rect.min.y * ppp).floor() as usize;
                let expected = &cpu[(j * size[0] + i) * 4..][..4];
                // Where the composite is transparent the panel's background shows.
                if expected[3] < 255 {
                    continue;
                }
                let got = image.get_pixel(x, y).0;
                compared += 1;
                sum += got[0] as f64;
                if (0..3).any(|c| (got[c] as i32 - expected[c] as i32).abs() > 2) {
                    differ += 1;
                }
            }
        }
        assert!(compared > 10_000, "only {compared} pixels in {pane:?}");
        assert!(
            differ * 100 <= compared,
            "{differ} of {compared} pixels differ from the CPU twin in {pane:?}"
        );
        means.push(sum / compared as f64);
    }
    means
}

/// Side by side: the fixed pane and the warped moving pane, each equal to the CPU twin's
/// rendering through one camera; a drag in the right pane moves both; Ctrl+L goes back.
fn side_by_side(gpu_viewer: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut harness) = rendering_harness(dir.path(), 256, gpu_viewer) else {
        return;
    };
    {
        // A warp that shows: the moving pane turns and shifts.
        let app = harness.state_mut();
        let layers = app.layers.as_mut().unwrap();
        let affine = crate::transform::Affine::similarity(0.1, 1.1, [19.0, -11.0], [128.0; 2]);
        layers.warp = Some(Arc::new(WarpGrid::of(&affine, layers.fixed.size(), 4, 256)));
        app.view = View::After;
    }
    harness.get_by_label("Side by side").click();
    harness.remove_cursor();
    harness.run_steps(3);
    assert_eq!(harness.state().settings.layout, Layout::SideBySide);
    assert!(harness.query_by_label("fixed").is_some());
    assert!(harness.query_by_label("moving, warped").is_some());
    let panes = harness.state().viewer.last_panes.clone();
    assert_eq!(panes.len(), 2);
    assert!(panes[0].rect.max.x < panes[1].rect.min.x);
    let means = panes_match_the_cpu_twin(&mut harness);
    assert!(
        (means[0] - means[1]).abs() > 0.5,
        "the panes look alike: {means:?}"
    );

    let camera = harness.state().viewer.camera.unwrap();
    let start = panes[1].rect.center();
    harness.hover_at(start);
    harness.run_steps(1);
    harness.drag_at(start);
    harness.run_steps(1);
    for k in 1..=4 {
        harness.hover_at(start + egui::vec2(-10.0 * k as f32, 6.0 * k as f32));
        harness.run_steps(1);
    }
    harness.drop_at(start + egui::vec2(-40.0, 24.0));
    harness.run_steps(2);
    let moved = harness.state().viewer.camera.unwrap();
    let shift = [
        (moved.center[0] - camera.center[0]) / camera.step,
        (moved.center[1] - camera.center[1]) / camera.step,
    ];
    assert!(
        (20.0..=40.5).contains(&shift[0]) && (-24.5..=-12.0).contains(&shift[1]),
        "dragging by (-40, 24) points moved the camera by {shift:?} points"
    );
    panes_match_the_cpu_twin(&mut harness);

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::L);
    harness.run_steps(2);
    assert_eq!(harness.state().settings.layout, Layout::Overlay);
    assert_eq!(harness.state().viewer.last_panes.len(), 1);
    panes_match_the_cpu_twin(&mut harness);
}

#[test]
fn side_by_side_panes_share_the_camera_on_the_gpu() {
    side_by_side(true);
}

#[test]
fn side_by_side_panes_share_the_camera_on_the_cpu() {
    side_by_side(false);
}

#[test]
fn the_viewer_composes_on_the_gpu_in_a_paint_callback() {
    render_viewer(true);
}

#[test]
fn the_viewer_composes_on_the_cpu_without_a_wgpu_renderer() {
    render_viewer(false);
}

/// An app showing the batch panel with `count` generated pairs of `size` in a manifest (plus
/// `extra` manifest lines), writing into `dir/out`.
fn batch_harness<'a>(
    dir: &Path,
    count: usize,
    size: usize,
    extra: &str,
    mode: Mode,
) -> Harness<'a, AlinifyApp> {
    let mut manifest = String::from("fixed,moving,name\n");
    for i in 0..count {
        write_generated_pair(&dir.join(format!("p{i}")), size, 10 + i as u64).unwrap();
        manifest += &format!("p{i}/fixed.tif,p{i}/moving.tif,pair{i}\n");
    }
    manifest += extra;
    std::fs::write(dir.join("pairs.csv"), manifest).unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.batch.source = Some(batch_panel::BatchSource::Manifest(dir.join("pairs.csv")));
    app.batch.out_dir = Some(dir.join("out"));
    app.settings.mode = mode;
    app.batch.jobs_at_once = Some(1);
    let mut harness = harness(app);
    harness.get_by_label("Batch").click();
    harness.run_steps(2);
    assert_eq!(harness.state().workspace, Workspace::Batch);
    harness
}

fn row_states(app: &AlinifyApp) -> Vec<batch_panel::RowState> {
    app.batch.rows.iter().map(|r| r.state).collect()
}

#[test]
fn a_person_runs_a_batch_sees_every_pair_and_opens_a_result() {
    use crate::batch::JobStatus;
    use batch_panel::RowState::Ended;
    let dir = tempfile::tempdir().unwrap();
    let mut harness = batch_harness(
        dir.path(),
        2,
        128,
        "p0/fixed.tif,missing.tif,broken\n",
        Mode::Fast,
    );
    harness.get_by_label("Start batch").click();
    harness.run_steps(1);
    assert!(
        harness.state().batch.is_running(),
        "{:?}",
        harness.state().batch.message
    );
    step_until(&mut harness, |app| !app.batch.is_running());
    assert_eq!(
        row_states(harness.state()),
        [
            Ended(JobStatus::Done),
            Ended(JobStatus::Done),
            Ended(JobStatus::Failed)
        ]
    );
    assert!(harness.query_by_label_contains("3 pairs in").is_some());
    assert!(harness.query_by_label("failed").is_some());
    assert!(harness.query_by_label_contains("missing.tif").is_some());
    assert!(dir.path().join("out/summary.csv").is_file());

    harness.get_all_by_label("Open").next().unwrap().click();
    harness.run_steps(1);
    assert_eq!(harness.state().workspace, Workspace::Pair);
    step_until(&mut harness, |app| {
        app.layers.as_ref().is_some_and(|l| l.warp.is_some()) || app.error.is_some()
    });
    assert_eq!(harness.state().error, None);
    assert_eq!(harness.state().view, View::After);
}

#[test]
fn a_person_cancels_one_pair_then_the_whole_batch() {
    use crate::batch::JobStatus;
    use batch_panel::RowState::{Ended, Queued, Running};
    let dir = tempfile::tempdir().unwrap();
    let mut harness = batch_harness(dir.path(), 3, 512, "", Mode::Accurate);
    harness.get_by_label("Start batch").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        app.batch.rows[0].state == Running && app.batch.rows[0].progress.is_some()
    });
    harness.get_by_label("Cancel").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| app.batch.rows[1].state == Running);
    assert_eq!(
        harness.state().batch.rows[0].state,
        Ended(JobStatus::Cancelled)
    );
    harness.get_by_label("Cancel all").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| !app.batch.is_running());
    // The whole batch stopped: nothing runs, and once a pair is left queued every later one is
    // too (the worker may have been between pairs when the click came).
    let states = row_states(harness.state());
    assert_eq!(states[0], Ended(JobStatus::Cancelled), "{states:?}");
    assert!(!states.contains(&Running), "{states:?}");
    let first_queued = states
        .iter()
        .position(|s| *s == Queued)
        .unwrap_or(states.len());
    assert!(
        states[first_queued..].iter().all(|s| *s == Queued),
        "{states:?}"
    );
    assert!(harness.query_by_label_contains("batch cancelled").is_some());
}

#[test]
fn the_warmup_shows_its_steps_and_a_fast_run_during_it_uses_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 128, 6, Mode::Fast);
    // No frame runs between these two calls, so the warmup is certainly still running.
    harness.state_mut().start_warmup();
    harness.state_mut().run();
    assert!(
        harness
            .state()
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("uses the CPU")),
        "{:?}",
        harness.state().notice
    );
    harness.run_steps(1);
    assert!(harness.query_by_label_contains("warming up").is_some());
    step_until(&mut harness, |app| {
        matches!(app.warmup, WarmupState::Done(_) | WarmupState::Failed(_))
            && matches!(app.task, Task::Idle)
    });
    assert_eq!(harness.state().error, None);
    assert_eq!(harness.state().result.as_ref().unwrap().backend, "cpu");
    let WarmupState::Done(report) = &harness.state().warmup else {
        panic!("the warmup failed: {}", harness.state().warmup_status().0);
    };
    assert_eq!(report.steps.len(), if report.gpu.is_ok() { 4 } else { 3 });
    assert!(harness.query_by_label_contains("warmed up in").is_some());
}

#[test]
fn export_writes_the_full_resolution_composite_and_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 160, 7, Mode::Fast);
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && (app.result.is_some() || app.error.is_some())
    });
    // The moving image again, as a layer that follows it: its export must be warped.tif.
    let moving = harness.state().layers.as_ref().unwrap().moving_path.clone();
    harness.state_mut().add_layers(vec![moving], true);
    harness.run_steps(1);
    step_until(&mut harness, |app| matches!(app.task, Task::Idle));
    let folder = dir.path().join("export");
    harness.state_mut().export(folder.clone());
    harness.run_steps(1);
    step_until(&mut harness, |app| matches!(app.task, Task::Idle));
    assert_eq!(harness.state().error, None);
    assert!(
        harness
            .query_by_label_contains("exported composite.tif")
            .is_some()
    );
    let composite = io::load_image(&folder.join("composite.tif")).unwrap();
    assert_eq!(
        [composite.width(), composite.height(), composite.channels()],
        [160, 160, 3]
    );
    for name in ["warped.tif", "transform.json", "report.json"] {
        assert!(folder.join(name).is_file(), "{name}");
    }
    let warped = io::load_image(&folder.join("warped.tif")).unwrap();
    let layer = io::load_image(&folder.join("warped-moving.tif")).unwrap();
    assert_eq!(layer.luminance(), warped.luminance());
}

#[test]
fn a_person_adds_a_layer_hides_it_hides_the_moving_layer_and_removes_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving) = write_generated_pair(&dir.path().join("pair"), 128, 8).unwrap();
    let (extra, extra_moving) = write_generated_pair(&dir.path().join("extra"), 128, 9).unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.open(vec![fixed.clone(), moving, extra, extra_moving, fixed]);
    let mut harness = harness(app);
    // Tall enough that the layer list's buttons are on screen below the settings.
    harness.set_size(egui::vec2(1100.0, 1000.0));
    step_until(&mut harness, |app| {
        app.layers.as_ref().is_some_and(|l| !l.extras.is_empty()) && matches!(app.task, Task::Idle)
    });
    let extras = &harness.state().layers.as_ref().unwrap().extras;
    assert_eq!(extras.len(), 3);
    assert_eq!(extras[0].name, "fixed.tif");
    assert!(extras[0].visible && !extras[0].follows_moving);
    // Three visible extra layers are all drawn.
    assert_eq!(drawn_overlays(extras).len(), 3);
    assert!(harness.query_by_label_contains("only the first").is_none());
    for _ in 0..2 {
        harness.get_all_by_label("Remove").next().unwrap().click();
        harness.run_steps(2);
    }

    harness.get_by_label("moving: moving.tif").click();
    harness.run_steps(2);
    assert!(!harness.state().settings.composite.show_top);
    harness.get_by_label("fixed.tif").click();
    harness.run_steps(2);
    assert!(!harness.state().layers.as_ref().unwrap().extras[0].visible);

    harness.get_by_label("Remove").click();
    harness.run_steps(2);
    assert!(harness.state().layers.as_ref().unwrap().extras.is_empty());
}

#[test]
fn a_person_picks_the_cross_stain_preset_and_the_run_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 160, 6, Mode::Fast);
    assert!(harness.query_by_label("Smoothness").is_some());
    harness.get_by_label("Preset").click();
    harness.run_steps(2);
    harness.get_by_label("cross-stain").click();
    harness.run_steps(2);
    // The preset names the accurate mode: the toggle follows, and its settings show.
    let parameters = &harness.state().settings.parameters;
    assert_eq!(parameters.preset, "cross-stain");
    assert_eq!(harness.state().settings.mode, Mode::Accurate);
    assert!(harness.query_by_label("Bending weight").is_some());
    assert!(harness.query_by_label("Metric").is_some());
    assert_eq!(
        harness.state().settings.parameters.values.metric,
        Some(crate::metric::MetricKind::Mi)
    );

    harness.get_by_label("Run").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && (app.result.is_some() || app.error.is_some())
    });
    assert_eq!(harness.state().error, None);
    let options = &harness.state().result.as_ref().unwrap().options;
    assert_eq!(options.mode, Mode::Accurate);
    assert_eq!(options.metric, crate::metric::MetricKind::Mi);
    assert_eq!(options.grid_levels, 3);
    assert_eq!(options.bending_weight, 3e-4);
}

#[test]
fn the_sample_pair_opens_with_the_cross_stain_preset() {
    let app = AlinifyApp::new(Settings::default()).unwrap();
    let mut harness = harness(app);
    harness.run_steps(2);
    // Offered in the toolbar and on the empty viewer.
    assert_eq!(harness.get_all_by_label("Sample pair").count(), 2);
    open_sample_pair(&mut harness);
    let app = harness.state();
    assert_eq!(app.error, None);
    let layers = app.layers.as_ref().unwrap();
    // The two stains differ in size; the reference defines the frame.
    assert_eq!(layers.fixed.size(), [1164, 787]);
    assert_eq!(layers.moving.size(), [1123, 724]);
    assert_eq!(app.settings.mode, Mode::Accurate);
    assert_eq!(app.settings.parameters.preset, "cross-stain");
    assert!(
        harness
            .query_all_by_label_contains("rat-kidney-he.jpg")
            .next()
            .is_some()
    );
}

#[test]
fn a_person_picks_a_preset_in_the_batch_tab_and_the_batch_uses_its_metric() {
    use crate::batch::JobStatus;
    let dir = tempfile::tempdir().unwrap();
    let mut harness = batch_harness(dir.path(), 1, 128, "", Mode::Fast);
    harness.get_by_label("Preset").click();
    harness.run_steps(2);
    harness.get_by_label("cross-stain").click();
    harness.run_steps(2);
    // The preset names the accurate mode: the shared toggle follows.
    assert_eq!(harness.state().settings.mode, Mode::Accurate);
    assert_eq!(harness.state().settings.parameters.preset, "cross-stain");
    harness.get_by_label("Start batch").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| !app.batch.is_running());
    let batch = &harness.state().batch;
    assert_eq!(
        batch.rows[0].state,
        batch_panel::RowState::Ended(JobStatus::Done),
        "{:?}",
        batch.message
    );
    assert_eq!(batch.row_mode(&batch.rows[0]), Some(Mode::Accurate));
    // The table's mode column.
    assert!(harness.query_by_label("accurate").is_some());
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/pair0/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["options"]["metric"], "mi");
    assert_eq!(report["options"]["mode"], "accurate");
    assert_eq!(report["options"]["bending_weight"], 3e-4);
}

#[test]
fn the_sample_pair_borrows_its_preset_without_changing_the_saved_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.open_sample_pair();
    let mut harness = harness(app);
    step_until(&mut harness, |app| {
        app.layers.is_some() || app.error.is_some()
    });
    assert_eq!(harness.state().settings.parameters.preset, "cross-stain");
    assert!(
        harness
            .query_by_label_contains("chosen for the sample pair")
            .is_some()
    );
    // What is saved is the person's own choice.
    assert_eq!(harness.state().persisted(), Settings::default());
    // The next pair brings it back.
    let (fixed, moving) = write_generated_pair(&dir.path().join("next"), 128, 2).unwrap();
    harness.state_mut().load(fixed.clone(), moving.clone());
    harness.run_steps(1);
    step_until(&mut harness, |app| matches!(app.task, Task::Idle));
    // Only the person's own pair is remembered, not the sample in the session folder.
    let mut expected = Settings::default();
    expected.remember_pair([fixed, moving]);
    assert_eq!(harness.state().settings, expected);
    assert!(harness.state().own_choice.is_none());
}

#[test]
fn a_person_computes_qc_maps_after_a_run_and_they_follow_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = loaded(dir.path(), 160, 3, Mode::Fast);
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && app.result.is_some()
    });
    harness.get_by_label("Compute QC maps").click();
    harness.run_steps(1);
    assert_eq!(harness.state().task.name(), "analyzing");
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && app.analysis.outcome.is_some()
    });
    let app = harness.state();
    let outcome = app.analysis.outcome.as_ref().unwrap();
    assert!(outcome.heatmap(analysis::Shown::Jacobian).is_some());
    assert!(outcome.jacobian.as_ref().unwrap().report.folded_fraction == 0.0);
    let scene = app.shared_scene(app.layers.as_ref().unwrap());
    assert!(scene.overlays.last().is_some_and(|(_, s)| s.heatmap));
    assert!(harness.query_by_label("no region flagged").is_some());
    assert!(
        harness
            .query_by_label_contains("local corr median")
            .is_some()
    );

    // A new registration replaces the maps with its own.
    harness.get_by_label("Run").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| {
        app.result.is_some() && app.analysis.outcome.is_none()
    });
    step_until(&mut harness, |app| {
        matches!(app.task, Task::Idle) && app.analysis.outcome.is_some()
    });
    harness.get_by_label("show").click();
    harness.run_steps(2);
    let app = harness.state();
    let scene = app.shared_scene(app.layers.as_ref().unwrap());
    assert!(
        scene.overlays.iter().all(|(_, s)| !s.heatmap),
        "hidden heatmap still drawn"
    );
}

#[test]
fn a_misregistered_patch_is_listed_and_a_click_zooms_the_viewer_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let size = 384;
    let texture = crate::synth::Texture::procedural(size, size, 11);
    let image = |shift: f64| {
        let v: Vec<f32> = (0..size * size)
            .map(|i| {
                let (x, y) = (i % size, i / size);
                let inside = (200..296).contains(&x) && (96..192).contains(&y);
                let dx = if inside { shift } else { 0.0 };
                texture.value(x as f64 + dx, y as f64) as f32
            })
            .collect();
        crate::raster::AnyImage::F32(
            crate::raster::Raster::from_interleaved(size, size, 1, v).unwrap(),
        )
    };
    let (fixed, moving) = (dir.path().join("fixed.tif"), dir.path().join("moving.tif"));
    io::save_image(&fixed, &image(0.0)).unwrap();
    io::save_image(&moving, &image(4.0)).unwrap();
    let mut app = AlinifyApp::new(Settings::default()).unwrap();
    app.load(fixed, moving);
    let mut harness = harness(app);
    step_until(&mut harness, |app| app.layers.is_some());
    harness.get_by_label("Compute QC maps").click();
    step_until(&mut harness, |app| app.analysis.outcome.is_some());
    let flags: Vec<_> = harness
        .state()
        .analysis
        .outcome
        .as_ref()
        .unwrap()
        .flags()
        .into_iter()
        .cloned()
        .collect();
    assert!(!flags.is_empty(), "the displaced patch is not flagged");
    harness.get_by_label_contains("1. poor_region").click();
    harness.run_steps(2);
    let camera = harness.state().viewer.camera.unwrap();
    let f = &flags[0];
    assert!((camera.center[0] - (f.x as f64 + f.width as f64 / 2.0)).abs() < 1e-6);
    assert!((camera.center[1] - (f.y as f64 + f.height as f64 / 2.0)).abs() < 1e-6);
    assert!(
        (200.0..296.0).contains(&camera.center[0]) && (96.0..192.0).contains(&camera.center[1])
    );
}
