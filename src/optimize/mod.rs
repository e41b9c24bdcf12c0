//! Optimisers: L-BFGS with a step cap and backtracking line search, and the stopping rules.

use crate::{Error, Result};
use std::collections::VecDeque;

/// Settings of [`lbfgs`].
#[derive(Debug, Clone)]
pub struct LbfgsParams {
    /// Iterations at most.
    pub iterations: usize,
    /// Correction pairs kept.
    pub memory: usize,
    /// Stop when the metric improves by less than this fraction of its magnitude over
    /// `patience` consecutive iterations.
    pub relative_tolerance: f64,
    /// See `relative_tolerance`.
    pub patience: usize,
    /// Largest change of any parameter in one step (parameters are scaled so this is ~pixels).
    pub max_step: f64,
}

impl Default for LbfgsParams {
    fn default() -> Self {
        Self {
            iterations: 100,
            memory: 7,
            relative_tolerance: 1e-6,
            patience: 3,
            max_step: 2.0,
        }
    }
}

/// Why the optimiser stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The metric stopped improving (relative tolerance).
    Converged,
    /// No step along the search direction improved the metric.
    LineSearchFailed,
    /// The iteration limit was reached.
    MaxIterations,
    /// A method with a fixed schedule (the flow's warps and sweeps) ran it to the end.
    Completed,
}

/// The optimiser's result.
#[derive(Debug, Clone)]
pub struct Minimum {
    /// Best parameters found.
    pub x: Vec<f64>,
    /// Metric at `x`.
    pub value: f64,
    /// Metric at the start.
    pub start_value: f64,
    /// Iterations performed.
    pub iterations: usize,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Minimises `f` (which returns the value and writes the gradient) from `x0` with L-BFGS.
/// `on_iteration(iteration, value)` runs after every accepted step and may stop the run by
/// returning an error (cancellation). An `f` that fails at a trial point (e.g. the images no
/// longer overlap) is treated as an infinitely bad point and the step is shortened.
pub fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> Result<f64>,
    x0: &[f64],
    params: &LbfgsParams,
    mut on_iteration: impl FnMut(usize, f64) -> Result<()>,
) -> Result<Minimum> {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut value = f(&x, &mut g)?;
    let start_value = value;
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let mut stalled = 0;
    let mut stop = StopReason::MaxIterations;
    let mut iterations = 0;
    let mut trial = vec![0.0; n];
    let mut trial_g = vec![0.0; n];
    for it in 1..=params.iterations {
        iterations = it;
        let mut d = two_loop(&g, &history);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 || !slope.is_finite() {
            history.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        if slope == 0.0 {
            stop = StopReason::Converged;
            break;
        }
        // Without curvature information the gradient's length says nothing about the distance
        // to the minimum: start steepest descent at the step cap. Otherwise cap the quasi-Newton
        // step so no parameter moves more than max_step.
        let largest = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut step = if history.is_empty() || largest > params.max_step {
            params.max_step / largest
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..30 {
            trial
                .iter_mut()
                .zip(&x)
                .zip(&d)
                .for_each(|((t, xi), di)| *t = xi + step * di);
            match f(&trial, &mut trial_g) {
                Ok(v) if v.is_finite() && v <= value + 1e-4 * step * slope => {
                    accepted = Some(v);
                    break;
                }
                Ok(_) | Err(Error::InvalidArgument(_)) => step *= 0.5,
                Err(e) => return Err(e),
            }
        }
        let Some(new_value) = accepted else {
            stop = StopReason::LineSearchFailed;
            break;
        };
        let s: Vec<f64> = trial.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = trial_g.iter().zip(&g).map(|(a, b)| a - b).collect();
        // Keep the pair only with clearly positive curvature (scale-free test).
        let sy = dot(&s, &y);
        if sy > 1e-10 * (dot(&s, &s) * dot(&y, &y)).sqrt() {
            if history.len() == params.memory {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        x.copy_from_slice(&trial);
        g.copy_from_slice(&trial_g);
        let improvement = value - new_value;
        value = new_value;
        on_iteration(it, value)?;
        if improvement <= params.relative_tolerance * value.abs().max(1e-12) {
            stalled += 1;
            if stalled >= params.patience {
                stop = StopReason::Converged;
                break;
            }
        } else {
            stalled = 0;
        }
    }
    Ok(Minimum {
        x,
        value,
        start_value,
        iterations,
        stop,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The L-BFGS two-loop recursion: returns `-H g`.
fn two_loop(g: &[f64], history: &VecDeque<(Vec<f64>, Vec<f64>, f64)>) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y, rho) in history.iter().rev() {
        let a = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
        alphas.push(a);
    }
    if let Some((s, y, _)) = history.back() {
        let gamma = dot(s, y) / dot(y, y).max(1e-300);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
        let b = rho * dot(y, &q);
        q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
    }
    q.iter_mut().for_each(|v| *v = -*v);
    q
}

/// What happened at one pyramid level.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LevelReport {
    /// The level (0 = full resolution).
    pub level: usize,
    /// Which stage ran (`affine`, `bspline`, ...).
    pub stage: String,
    /// Level width.
    pub width: usize,
    /// Level height.
    pub height: usize,
    /// Samples per evaluation.
    pub samples: usize,
    /// Iterations run.
    pub iterations: usize,
    /// Metric at the start.
    pub metric_start: f64,
    /// Metric at the end.
    pub metric_end: f64,
    /// Why the level stopped.
    pub stop: StopReason,
    /// Wall time of the level (sampling, interpolation set-up and optimisation).
    pub seconds: f64,
}

impl LevelReport {
    /// The report of a level that ran `stage` on a `size` level with `samples` samples and
    /// ended at `minimum` after `seconds`.
    pub fn new(
        level: usize,
        stage: &str,
        size: [usize; 2],
        samples: usize,
        minimum: &Minimum,
        seconds: f64,
    ) -> Self {
        Self {
            level,
            stage: stage.into(),
            width: size[0],
            height: size[1],
            samples,
            iterations: minimum.iterations,
            metric_start: minimum.start_value,
            metric_end: minimum.value,
            stop: minimum.stop,
            seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbfgs_minimises_an_ill_conditioned_quadratic() {
        let scales = [1.0, 10.0, 100.0, 0.5];
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..4 {
                let d = x[i] - i as f64;
                v += scales[i] * d * d;
                g[i] = 2.0 * scales[i] * d;
            }
            Ok(v)
        };
        let params = LbfgsParams {
            relative_tolerance: 0.0,
            iterations: 200,
            ..Default::default()
        };
        let m = lbfgs(f, &[5.0, -3.0, 2.0, 9.0], &params, |_, _| Ok(())).unwrap();
        for i in 0..4 {
            assert!((m.x[i] - i as f64).abs() < 1e-5, "{:?}", m.x);
        }
        assert!(m.value < m.start_value);
    }

    #[test]
    fn lbfgs_minimises_rosenbrock() {
        let f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            Ok((1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2))
        };
        let params = LbfgsParams {
            iterations: 500,
            relative_tolerance: 0.0,
            max_step: 0.5,
            ..Default::default()
        };
        let m = lbfgs(f, &[-1.2, 1.0], &params, |_, _| Ok(())).unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-3 && (m.x[1] - 1.0).abs() < 1e-3,
            "{:?}",
            m.x
        );
    }

    #[test]
    fn callback_error_stops_the_run() {
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * x[0];
            Ok(x[0] * x[0])
        };
        let r = lbfgs(f, &[3.0], &LbfgsParams::default(), |_, _| {
            Err(Error::Cancelled)
        });
        assert!(matches!(r, Err(Error::Cancelled)));
    }
}
