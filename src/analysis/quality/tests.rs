use super::*;
use crate::job::CancelToken;
use crate::raster::{AnyImage, Raster};
use crate::synth::Texture;

/// A direct per-window implementation of R2M2's definitions, written apart from the kernels:
/// every window is copied out, demeaned where asked, and each measure computed from scratch.
mod reference {
    pub fn luminance(img: &crate::raster::AnyImage, x: usize, y: usize) -> f64 {
        let mut row = vec![0.0; img.width()];
        img.luminance_row_f64(y, &mut row);
        row[x]
    }

    pub fn window(img: &[Vec<f64>], x: usize, y: usize, r: usize) -> Vec<f64> {
        let (h, w) = (img.len(), img[0].len());
        let mut out = Vec::new();
        for row in &img[y.saturating_sub(r)..=(y + r).min(h - 1)] {
            out.extend_from_slice(&row[x.saturating_sub(r)..=(x + r).min(w - 1)]);
        }
        out
    }

    fn mean(v: &[f64]) -> f64 {
        let mut s = 0.0;
        for &x in v {
            s += x;
        }
        s / v.len() as f64
    }

    fn flat(v: &[f64]) -> bool {
        v.iter().all(|&x| x == v[0])
    }

    pub fn demean(v: &[f64]) -> Vec<f64> {
        let m = mean(v);
        v.iter().map(|&x| x - m).collect()
    }

    pub fn mse(f: &[f64], m: &[f64]) -> f64 {
        f.iter().zip(m).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / f.len() as f64
    }

    pub fn corr(f: &[f64], m: &[f64]) -> f64 {
        if flat(f) || flat(m) {
            return 0.0;
        }
        let (mf, mm) = (mean(f), mean(m));
        let cov: f64 = f.iter().zip(m).map(|(a, b)| (a - mf) * (b - mm)).sum();
        let vf: f64 = f.iter().map(|a| (a - mf) * (a - mf)).sum();
        let vm: f64 = m.iter().map(|b| (b - mm) * (b - mm)).sum();
        cov / (vf * vm).sqrt()
    }

    pub fn mi(f: &[f64], m: &[f64], bins: usize) -> f64 {
        if flat(f) || flat(m) {
            return 0.0;
        }
        let lo_hi = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        let ((flo, fhi), (mlo, mhi)) = (lo_hi(f), lo_hi(m));
        let bin = |v: f64, lo: f64, hi: f64| ((v - lo) / (hi - lo) * (bins - 1) as f64).trunc();
        let mut joint = vec![vec![0.0; bins]; bins];
        for (&a, &b) in f.iter().zip(m) {
            joint[bin(a, flo, fhi) as usize][bin(b, mlo, mhi) as usize] += 1.0;
        }
        let n = f.len() as f64;
        let pf: Vec<f64> = joint.iter().map(|r| r.iter().sum::<f64>() / n).collect();
        let pm: Vec<f64> = (0..bins)
            .map(|j| joint.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let mut total = 0.0;
        for i in 0..bins {
            for j in 0..bins {
                let p = joint[i][j] / n;
                if p > 0.0 {
                    total += p * (p / (pf[i] * pm[j])).ln();
                }
            }
        }
        total
    }
}

/// An 8-bit pair with a flat square in both images, texture elsewhere, and the moving image a
/// shifted, noisier copy: windows at the borders, on flat ground and across its edges.
fn pair_u8(w: usize, h: usize, seed: u64) -> (AnyImage, AnyImage) {
    let t = Texture::procedural(w, h, seed);
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut f = Vec::new();
    let mut m = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let in_flat = (5..14).contains(&x) && (4..12).contains(&y);
            let a = if in_flat {
                0.4
            } else {
                t.value(x as f64, y as f64)
            };
            let b = if in_flat {
                0.4
            } else {
                t.value(x as f64 + 0.7, y as f64 - 0.4) + 0.03 * rng.normal()
            };
            f.push((a * 255.0).round().clamp(0.0, 255.0) as u8);
            m.push((b * 255.0).round().clamp(0.0, 255.0) as u8);
        }
    }
    (
        AnyImage::U8(Raster::from_interleaved(w, h, 1, f).unwrap()),
        AnyImage::U8(Raster::from_interleaved(w, h, 1, m).unwrap()),
    )
}

fn maps_of(
    fixed: &AnyImage,
    moving: &AnyImage,
    options: &QualityOptions,
) -> (QualityResult, InMemoryMaps) {
    let source = PairSource {
        fixed,
        moving,
        transform: None,
        mask: None,
    };
    let mut sink = InMemoryMaps::default();
    let reporter = Reporter::<()>::silent(CancelToken::new());
    let result = compute_quality(&source, options, &CpuBoxMaps, &mut sink, &reporter).unwrap();
    (result, sink)
}

#[test]
fn r2m2_maps_equal_a_direct_implementation_of_the_definitions() {
    for (w, h, seed, radius, bins) in [(37, 29, 1, 3, 32), (26, 31, 2, 2, 8)] {
        let (fixed, moving) = pair_u8(w, h, seed);
        let options = QualityOptions {
            radius,
            bins: Some(bins),
            definition: Definition::R2m2,
            ..QualityOptions::default()
        };
        let (_, sink) = maps_of(&fixed, &moving, &options);
        let image = |img: &AnyImage| -> Vec<Vec<f64>> {
            (0..h)
                .map(|y| (0..w).map(|x| reference::luminance(img, x, y)).collect())
                .collect()
        };
        let (f, m) = (image(&fixed), image(&moving));
        let mut worst = BTreeMap::new();
        for y in 0..h {
            for x in 0..w {
                let (fw, mw) = (
                    reference::window(&f, x, y, radius),
                    reference::window(&m, x, y, radius),
                );
                let (fd, md) = (reference::demean(&fw), reference::demean(&mw));
                let expected = [
                    (QualityMap::Mse, reference::mse(&fw, &mw)),
                    (QualityMap::Corr, reference::corr(&fw, &mw)),
                    (QualityMap::Mi, reference::mi(&fw, &mw, bins)),
                    (QualityMap::DmMse, reference::mse(&fd, &md)),
                    (QualityMap::DmCorr, reference::corr(&fd, &md)),
                    (QualityMap::DmMi, reference::mi(&fd, &md, bins)),
                ];
                for (map, want) in expected {
                    // The maps are handed out as f32: within f32 rounding of the definition here,
                    // and the f64 kernel within 1e-9 below.
                    let got = f64::from(sink.maps[&map][y * w + x]);
                    let e: &mut f64 = worst.entry(map).or_insert(0.0);
                    *e = e.max((got - want).abs() / want.abs().max(1.0));
                }
            }
        }
        for (map, e) in worst {
            assert!(
                e <= 1e-7,
                "{} differs from the definition by {e:e}",
                map.name()
            );
        }
    }
}

#[test]
fn r2m2_kernel_in_f64_is_within_1e_9_of_the_definitions() {
    let (w, h, r, bins) = (23, 19, 3, 32);
    let (fixed, moving) = pair_u8(w, h, 7);
    let source = PairSource {
        fixed: &fixed,
        moving: &moving,
        transform: None,
        mask: None,
    };
    let band = source.load(0, h, r);
    let values = window::r2m2_band(&band, r, bins, true, true);
    let image = |img: &AnyImage| -> Vec<Vec<f64>> {
        (0..h)
            .map(|y| (0..w).map(|x| reference::luminance(img, x, y)).collect())
            .collect()
    };
    let (f, m) = (image(&fixed), image(&moving));
    let mut worst = [0f64; 5];
    for y in 0..h {
        for x in 0..w {
            let (fw, mw) = (
                reference::window(&f, x, y, r),
                reference::window(&m, x, y, r),
            );
            let (fd, md) = (reference::demean(&fw), reference::demean(&mw));
            let got = values[y * w + x];
            let want = [
                reference::mse(&fw, &mw),
                reference::corr(&fw, &mw),
                reference::mse(&fd, &md),
                reference::mi(&fw, &mw, bins),
                reference::mi(&fd, &md, bins),
            ];
            for k in 0..5 {
                worst[k] = worst[k].max((got[k] - want[k]).abs());
            }
            // dm_CORR is reported as CORR: Pearson's r does not change with a subtracted mean.
            assert!((got[1] - reference::corr(&fd, &md)).abs() <= 1e-9);
        }
    }
    assert!(worst.iter().all(|&e| e <= 1e-9), "worst errors {worst:?}");
}

#[test]
fn qc_box_maps_agree_with_r2m2_within_f32_rounding() {
    let (fixed, moving) = pair_u8(64, 48, 3);
    let (_, exact) = maps_of(
        &fixed,
        &moving,
        &QualityOptions {
            definition: Definition::R2m2,
            ..QualityOptions::default()
        },
    );
    let (_, qc) = maps_of(&fixed, &moving, &QualityOptions::default());
    for map in [
        QualityMap::Mse,
        QualityMap::Corr,
        QualityMap::DmMse,
        QualityMap::DmCorr,
    ] {
        let worst = exact.maps[&map]
            .iter()
            .zip(&qc.maps[&map])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 2e-4, "{}: {worst}", map.name());
    }
}

/// A textured pair registered well, and the same with a square patch of the moving image
/// displaced by `shift` pixels.
fn patch_pair(size: usize, patch: [usize; 3], shift: usize, seed: u64) -> (AnyImage, AnyImage) {
    let t = Texture::procedural(size, size, seed);
    let mut rng = crate::rng::SplitMix64::new(seed + 100);
    let [px, py, side] = patch;
    let mut f = Vec::new();
    let mut m = Vec::new();
    for y in 0..size {
        for x in 0..size {
            f.push(t.value(x as f64, y as f64) as f32);
            let inside = (px..px + side).contains(&x) && (py..py + side).contains(&y);
            let dx = if inside { shift as f64 } else { 0.0 };
            m.push((t.value(x as f64 + dx, y as f64) + 0.01 * rng.normal()) as f32);
        }
    }
    (
        AnyImage::F32(Raster::from_interleaved(size, size, 1, f).unwrap()),
        AnyImage::F32(Raster::from_interleaved(size, size, 1, m).unwrap()),
    )
}

#[test]
fn a_displaced_patch_is_flagged_there_and_a_good_registration_is_not_flagged() {
    for seed in [11, 12] {
        let (fixed, good) = patch_pair(384, [0, 0, 0], 0, seed);
        let (result, _) = maps_of(&fixed, &good, &QualityOptions::default());
        assert!(
            result.report.flags.is_empty(),
            "good pair flagged: {:?}",
            result.report.flags
        );

        let patch = [200, 96, 96];
        let (_, bad) = patch_pair(384, patch, 4, seed);
        let (result, _) = maps_of(&fixed, &bad, &QualityOptions::default());
        let flags = &result.report.flags;
        assert!(!flags.is_empty(), "the displaced patch was not flagged");
        let overlap = |f: &Flag| {
            let x = (f.x + f.width).min(patch[0] + patch[2]) as i64 - f.x.max(patch[0]) as i64;
            let y = (f.y + f.height).min(patch[1] + patch[2]) as i64 - f.y.max(patch[1]) as i64;
            x.max(0) * y.max(0)
        };
        let flagged: i64 = flags.iter().map(|f| (f.width * f.height) as i64).sum();
        let inside: i64 = flags.iter().map(overlap).sum();
        assert!(
            inside as f64 >= 0.5 * (patch[2] * patch[2]) as f64,
            "flags {flags:?} miss the patch"
        );
        assert!(
            inside as f64 >= 0.6 * flagged as f64,
            "flags {flags:?} reach far outside"
        );
    }
}

#[test]
fn masked_and_unmapped_pixels_are_not_scored() {
    let (fixed, moving) = pair_u8(40, 30, 5);
    let mut mask = ndarray::Array2::from_elem((30, 40), true);
    mask.slice_mut(ndarray::s![.., ..10]).fill(false);
    let source = PairSource {
        fixed: &fixed,
        moving: &moving,
        transform: None,
        mask: Some(&mask),
    };
    let mut sink = InMemoryMaps::default();
    let reporter = Reporter::<()>::silent(CancelToken::new());
    let result = compute_quality(
        &source,
        &QualityOptions::default(),
        &CpuBoxMaps,
        &mut sink,
        &reporter,
    )
    .unwrap();
    assert_eq!(result.report.pixels, 30 * 30);
    let corr = &sink.maps[&QualityMap::Corr];
    assert!(corr[5].is_nan() && corr[15].is_finite());
    assert!(sink.maps[&QualityMap::Mi][55].is_finite());
}

#[test]
fn map_lists_parse_names_and_all_and_refuse_unknown_ones() {
    assert_eq!(QualityMap::parse_list("all").unwrap().len(), 6);
    assert_eq!(
        QualityMap::parse_list("dm_mi, mse").unwrap(),
        vec![QualityMap::Mse, QualityMap::DmMi]
    );
    assert!(QualityMap::parse_list("ssim").unwrap_err().contains("ssim"));
}

#[test]
fn a_region_locked_one_period_off_on_a_mirror_tiled_pattern_is_flagged_along_its_border() {
    // A mirror-tiled texture (period 48 px across), and a "registration" that holds the
    // top-right quarter one period off with a 20 px transition (what a fine B-spline grid or a
    // flow can do): inside the quarter the pattern matches again, so only the band is wrong.
    let (w, h, period) = (288usize, 288usize, 48.0);
    let t = Texture::procedural(64, h, 21);
    let tiled = |x: f64, y: f64| {
        let m = x.rem_euclid(period);
        t.value(if m < period / 2.0 { m } else { period - m }, y)
    };
    let image = |f: &dyn Fn(usize, usize) -> f64| {
        let v: Vec<f32> = (0..w * h).map(|i| f(i % w, i / w) as f32).collect();
        AnyImage::F32(Raster::from_interleaved(w, h, 1, v).unwrap())
    };
    let fixed = image(&|x, y| tiled(x as f64, y as f64));
    let ramp = |t: f64| ((t + 10.0) / 20.0).clamp(0.0, 1.0);
    let mut field = crate::transform::DenseField::zeros(w, h);
    for y in 0..h {
        for x in 0..w {
            field.u[[y, x]] = (period * ramp(x as f64 - 168.0) * ramp(120.0 - y as f64)) as f32;
        }
    }
    let source = PairSource {
        fixed: &fixed,
        moving: &fixed,
        transform: Some(&field),
        mask: None,
    };
    let mut sink = NoSink;
    let reporter = Reporter::<()>::silent(CancelToken::new());
    let result = compute_quality(
        &source,
        &QualityOptions::default(),
        &CpuBoxMaps,
        &mut sink,
        &reporter,
    )
    .unwrap();
    let flags = &result.report.flags;
    assert!(!flags.is_empty(), "the transition band is not flagged");
    for f in flags {
        let near_x = f.x <= 178 && f.x + f.width >= 158;
        let near_y = f.y <= 130 && f.y + f.height >= 110;
        assert!(near_x || near_y, "a flag away from the band: {f:?}");
    }
    let jacobian =
        crate::analysis::jacobian::jacobian_qc(&field, w, h, None, &CancelToken::new()).unwrap();
    assert!(
        jacobian
            .report
            .flags
            .iter()
            .any(|f| f.reason.starts_with("discontinuity"))
    );
}
