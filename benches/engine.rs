//! Criterion benchmarks of the engine's hot paths at a size criterion can repeat (2048 x 2048);
//! `alinify bench pyramid|warp --size 17320` measures the 300-megapixel case with peak memory.

use alinify::job::CancelToken;
use alinify::metric::{MetricKind, MovingLevel, SampleSet, evaluate};
use alinify::raster::{AnyImage, Pyramid, PyramidParams, Raster};
use alinify::transform::warp::{Interpolation, warp_image};
use alinify::transform::{Affine, AffineParametric, BSplineTransform, Composed, Parametric};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const SIDE: usize = 2048;

fn image() -> AnyImage {
    let data = (0..SIDE * SIDE)
        .map(|i| (alinify::rng::hash64((i / 8) as u64) >> 56) as u8)
        .collect();
    AnyImage::U8(Raster::from_interleaved(SIDE, SIDE, 1, data).unwrap())
}

fn pyramid(c: &mut Criterion) {
    let img = image();
    let params = PyramidParams {
        levels: 6,
        sigma: 1.0,
    };
    c.bench_function("pyramid 2048 u8, 6 levels", |b| {
        b.iter(|| black_box(Pyramid::build(&img, &params, &CancelToken::new()).unwrap()))
    });
}

fn warp(c: &mut Criterion) {
    let img = image();
    let centre = (SIDE as f64 - 1.0) / 2.0;
    let mut bspline = BSplineTransform::new(SIDE, SIDE, [256.0, 256.0]);
    bspline
        .u
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = (i as f64).sin() * 4.0);
    let t = Composed {
        steps: vec![
            Box::new(bspline),
            Box::new(Affine::similarity(0.01, 1.01, [2.0, 1.0], [centre, centre])),
        ],
    };
    c.bench_function("warp 2048 u8, B-spline + affine", |b| {
        b.iter(|| {
            black_box(
                warp_image(
                    &img,
                    &t,
                    SIDE,
                    SIDE,
                    Interpolation::Linear,
                    &CancelToken::new(),
                )
                .unwrap(),
            )
        })
    });
}

fn metric(c: &mut Criterion) {
    let fixed = image().luminance();
    let level = MovingLevel::new(&fixed);
    let samples = SampleSet::random(&fixed, None, 20_000, 1);
    let t = AffineParametric {
        affine: Affine::similarity(0.01, 1.0, [0.5, 0.5], [1024.0, 1024.0]),
        radius: 1024.0,
    };
    let mut g = vec![0.0; t.num_params()];
    for kind in [MetricKind::Mse, MetricKind::Ncc, MetricKind::Mi] {
        c.bench_function(
            &format!("{kind:?} value+gradient, 20k samples, affine"),
            |b| {
                b.iter(|| {
                    black_box(evaluate(kind, &samples, &level, &t, 1.0, Some(&mut g)).unwrap())
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = pyramid, warp, metric
}
criterion_main!(benches);
