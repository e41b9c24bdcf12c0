//! Both modes on a repeating pattern under a large smooth deformation: no region may lock one
//! period off. Regression: on this pair the accurate mode with its pyramid stopping at 64 px,
//! as it did (`--levels 5`), locked the whole image one period (255 px) off; starting both
//! modes where the pattern is averaged out (16 to 32 px) finds it (0.014 and 0.087 px).

use crate::common::register_and_score;
use alinify::raster::{AnyImage, CubicBSplineSampler};
use alinify::synth::SynthPair;
use alinify::transform::DenseField;
use ndarray::{Array2, s};

/// Side of the pair and period of its pattern.
const SIDE: usize = 1024;
const PERIOD: f64 = 256.0;

/// A 128 px crop of the bundled H&E section, mirrored in both axes: real tissue texture that
/// repeats every [`PERIOD`] pixels, as a printed or woven motif does.
struct Tiled {
    sampler: CubicBSplineSampler,
}

impl Tiled {
    fn new() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/sample/rat-kidney-he.jpg"
        );
        let section = alinify::io::load_image(std::path::Path::new(path))
            .unwrap()
            .luminance();
        let half = PERIOD as usize / 2;
        let crop = section
            .slice(s![200..201 + half, 600..601 + half])
            .to_owned();
        Self {
            sampler: CubicBSplineSampler::new(&crop),
        }
    }

    fn value(&self, x: f64, y: f64) -> f64 {
        let fold = |v: f64| {
            let u = v.rem_euclid(PERIOD);
            if u > PERIOD / 2.0 { PERIOD - u } else { u }
        };
        self.sampler.value(fold(x), fold(y)).unwrap()
    }
}

/// The moving image's "stain": a strong S-curve and a multiplicative bias across the image.
fn stain(value: f64, x: f64) -> f64 {
    let s = 1.0 / (1.0 + (-8.0 * (value - 0.45)).exp());
    0.15 + 0.7 * s.powf(1.6) * (1.0 + 0.2 * (std::f64::consts::PI * x / SIDE as f64).sin())
}

/// fixed(p) = texture(T(p)), moving(q) = stain(texture(q)), with T a similarity (2 degrees,
/// scale 1.02, shift under 1 %) plus two Gaussian bumps of 6 % of the side.
fn periodic_pair() -> SynthPair {
    let n = SIDE as f64;
    let c = (n - 1.0) / 2.0;
    let (sin, cos) = 2f64.to_radians().sin_cos();
    let bump = |x: f64, y: f64, cx: f64, cy: f64| {
        (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * (n / 4.0).powi(2))).exp()
    };
    let map = |x: f64, y: f64| {
        let (dx, dy) = (x - c, y - c);
        let amplitude = 0.06 * n;
        [
            c + 1.02 * (cos * dx - sin * dy)
                + 0.008 * n
                + amplitude * bump(x, y, 0.2 * n, 0.75 * n),
            c + 1.02 * (sin * dx + cos * dy) - 0.006 * n - amplitude * bump(x, y, 0.7 * n, 0.3 * n),
        ]
    };
    let texture = Tiled::new();
    let mut fixed = Array2::<f32>::zeros((SIDE, SIDE));
    let mut moving = Array2::<f32>::zeros((SIDE, SIDE));
    let mut truth = DenseField::zeros(SIDE, SIDE);
    let mut mask = Array2::from_elem((SIDE, SIDE), false);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (xf, yf) = (x as f64, y as f64);
            let [tx, ty] = map(xf, yf);
            fixed[[y, x]] = texture.value(tx, ty) as f32;
            moving[[y, x]] = stain(texture.value(xf, yf), xf) as f32;
            truth.u[[y, x]] = (tx - xf) as f32;
            truth.v[[y, x]] = (ty - yf) as f32;
            mask[[y, x]] = (0.0..=n - 1.0).contains(&tx) && (0.0..=n - 1.0).contains(&ty);
        }
    }
    SynthPair {
        fixed: AnyImage::from_gray_f32(fixed),
        moving: AnyImage::from_gray_f32(moving),
        ground_truth: truth,
        mask,
        description: "mirror-tiled H&E, 256 px period, 6 % bumps, stain".into(),
    }
}

#[test]
fn neither_mode_locks_a_period_off_on_a_repeating_pattern_under_a_large_deformation() {
    let dir = tempfile::tempdir().unwrap();
    let pair = dir.path().join("pair");
    alinify::synth::write_pair(&periodic_pair(), &pair).unwrap();
    for mode in ["fast", "accurate"] {
        let out = dir.path().join(mode);
        let epe = register_and_score(&pair, &out, &["--mode", mode, "--backend", "cpu"]);
        let report = std::fs::read_to_string(out.join("report.json")).unwrap();
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert!(
            epe < 0.5,
            "{mode} mode: mean end-point error {epe} px; {}",
            report["init"]
        );
    }
}
