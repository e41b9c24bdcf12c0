//! The warmup (docs/ARCHITECTURE.md, "The application"): open the GPU device, compile every
//! pipeline (with the on-disk pipeline cache where the backend has one), and run a tiny
//! registration in each mode, so that the first real run pays no first-use cost.
//!
//! It runs on a named background thread ([`JobHandle`]); each step is announced with a log
//! event as it begins, for a status bar.

use crate::job::{JobHandle, Reporter};
use crate::register::{Mode, RegisterOptions, RegisterRequest, register_files};
use crate::{Error, Result};
use std::time::Instant;

/// Side of the generated pair the warmup registers.
const PAIR_SIDE: usize = 128;

/// One step of the warmup and its duration.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupStep {
    /// What it did, e.g. `compiling pipelines`.
    pub name: String,
    /// Seconds it took.
    pub seconds: f64,
}

/// What the warmup did.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupReport {
    /// The steps, in order.
    pub steps: Vec<WarmupStep>,
    /// The GPU adapter's name, or why there is none (the fast mode then runs on the CPU).
    pub gpu: std::result::Result<String, String>,
    /// Seconds in all.
    pub seconds: f64,
}

/// Starts the warmup on a thread named `alinify-warmup`.
pub fn spawn(waker: Option<crate::job::Waker>) -> Result<JobHandle<WarmupReport>> {
    JobHandle::spawn_woken("alinify-warmup", waker, run)
        .map_err(|e| Error::Internal(format!("cannot start the warmup thread: {e}")))
}

/// Runs every step on the calling thread.
pub fn run(reporter: &Reporter<WarmupReport>) -> Result<WarmupReport> {
    let started = Instant::now();
    let mut steps = Vec::new();
    let mut step = |name: &str, work: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        reporter.check()?;
        reporter.log(name);
        let at = Instant::now();
        let outcome = work();
        steps.push(WarmupStep {
            name: name.to_string(),
            seconds: at.elapsed().as_secs_f64(),
        });
        outcome
    };
    let mut gpu = Err("built without the gpu feature".to_string());
    step("opening the GPU", &mut || {
        gpu = open_gpu();
        Ok(())
    })?;
    if gpu.is_ok() {
        step("compiling pipelines", &mut || compile_pipelines())?;
    }
    let folder = crate::io::ScratchDir::create("alinify-warmup-", "a warmup folder")?;
    let (fixed, moving) = crate::synth::write_generated_pair(folder.path(), PAIR_SIDE, 1)?;
    for (mode, name) in [
        (Mode::Fast, "warming the fast mode"),
        (Mode::Accurate, "warming the accurate mode"),
    ] {
        step(name, &mut || {
            let request = RegisterRequest {
                fixed: fixed.clone(),
                moving: moving.clone(),
                out_dir: folder.path().join(mode.to_string()),
                field: None,
                export_elastix: None,
                fixed_mask: None,
                moving_mask: None,
                landmarks: None,
                options: RegisterOptions {
                    mode,
                    ..RegisterOptions::default()
                },
            };
            let quiet = Reporter::<()>::silent(reporter.cancel_token().clone());
            register_files(&request, &quiet).map(|_| ())
        })?;
    }
    Ok(WarmupReport {
        steps,
        gpu,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(feature = "gpu")]
fn open_gpu() -> std::result::Result<String, String> {
    crate::gpu::GpuContext::shared()
        .map(|c| c.adapter_name())
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "gpu"))]
fn open_gpu() -> std::result::Result<String, String> {
    Err("built without the gpu feature".into())
}

#[cfg(feature = "gpu")]
fn compile_pipelines() -> Result<()> {
    crate::gpu::GpuContext::shared()?.warm_up()
}

#[cfg(not(feature = "gpu"))]
fn compile_pipelines() -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::CancelToken;

    #[test]
    fn the_warmup_runs_every_step_and_names_the_gpu_or_why_there_is_none() {
        let report = run(&Reporter::silent(CancelToken::new())).unwrap();
        let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names[0], "opening the GPU");
        assert!(names.ends_with(&["warming the fast mode", "warming the accurate mode"]));
        assert_eq!(names.contains(&"compiling pipelines"), report.gpu.is_ok());
        let total: f64 = report.steps.iter().map(|s| s.seconds).sum();
        assert!(total <= report.seconds + 1e-6);
    }

    #[test]
    fn a_cancelled_warmup_stops_before_its_next_step() {
        let cancel = CancelToken::new();
        cancel.cancel();
        assert!(matches!(
            run(&Reporter::silent(cancel)),
            Err(Error::Cancelled)
        ));
    }
}
