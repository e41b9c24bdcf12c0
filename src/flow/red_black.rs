//! The CPU solver's red-black sweeps on a layout split by colour.
//!
//! Row `y` of colour `k` holds, in increasing `x`, the pixels with `(x + y + parity) % 2 == k`;
//! pixel `x` sits at index `x / 2`. A pixel's four neighbours are all of the other colour, at
//! the same or the adjacent index of the other colour's rows, so a colour's pass reads runs of
//! consecutive values (the compiler vectorises it), writes only its own planes, and needs no
//! atomics. Each pixel's arithmetic is [`crate::flow::cpu`]'s and the shader's, in the same
//! order: the layout changes where values live, not what is computed.

use rayon::prelude::*;

/// The planes of one colour's row, each `stride` long.
#[derive(Clone, Copy)]
enum Plane {
    U,
    V,
    Weight,
    A11,
    A12,
    A22,
    B1,
    B2,
}

const PLANES: usize = 8;

/// The flow and the sweeps' inputs of a tile, split by colour.
pub struct RedBlack {
    width: usize,
    height: usize,
    parity: usize,
    /// Values per plane row: `ceil(width / 2)`.
    stride: usize,
    /// Per colour, `height` rows of [`PLANES`] planes.
    colours: [Vec<f32>; 2],
}

/// Row `y` of both colours, for writing per pixel.
pub struct BoardRow<'a> {
    rows: [&'a mut [f32]; 2],
    /// The colour of the row's pixel 0.
    first: usize,
    stride: usize,
}

impl BoardRow<'_> {
    /// Writes pixel `x`'s `values` into their planes.
    fn set<const N: usize>(&mut self, x: usize, values: [(Plane, f32); N]) {
        let at = &mut self.rows[(x + self.first) % 2][x / 2..];
        for (plane, value) in values {
            at[plane as usize * self.stride] = value;
        }
    }

    /// Sets pixel `x`'s data term: `[a11, a12, a22]` and the right-hand side.
    pub fn set_data_term(&mut self, x: usize, [a11, a12, a22]: [f32; 3], [b1, b2]: [f32; 2]) {
        self.set(
            x,
            [
                (Plane::A11, a11),
                (Plane::A12, a12),
                (Plane::A22, a22),
                (Plane::B1, b1),
                (Plane::B2, b2),
            ],
        );
    }

    /// Sets pixel `x`'s flow.
    pub fn set_flow(&mut self, x: usize, [u, v]: [f32; 2]) {
        self.set(x, [(Plane::U, u), (Plane::V, v)]);
    }

    /// Sets pixel `x`'s smoothness weight.
    pub fn set_weight(&mut self, x: usize, weight: f32) {
        self.set(x, [(Plane::Weight, weight)]);
    }
}

impl RedBlack {
    /// A `width x height` tile whose pixel `(x, y)` has colour `(x + y + parity) % 2`.
    pub fn new(width: usize, height: usize, parity: usize) -> Self {
        let stride = width.div_ceil(2);
        let colour = || vec![0.0f32; height * PLANES * stride];
        Self {
            width,
            height,
            parity,
            stride,
            colours: [colour(), colour()],
        }
    }

    /// Runs `fill(y, row)` for every row, in parallel.
    pub fn fill_rows(&mut self, fill: impl Fn(usize, &mut BoardRow<'_>) + Sync) {
        let (row_len, stride, parity) = (PLANES * self.stride, self.stride, self.parity);
        let [red, black] = &mut self.colours;
        red.par_chunks_mut(row_len)
            .zip(black.par_chunks_mut(row_len))
            .enumerate()
            .for_each(|(y, (red, black))| {
                let mut row = BoardRow {
                    rows: [red, black],
                    first: (y + parity) % 2,
                    stride,
                };
                fill(y, &mut row);
            });
    }

    /// Copies the flow out.
    pub fn store_flow(&self, flow: &mut [[f32; 2]]) {
        let width = self.width;
        flow.par_chunks_mut(width).enumerate().for_each(|(y, out)| {
            for (x, f) in out.iter_mut().enumerate() {
                *f = self.flow_at(x, y);
            }
        });
    }

    /// The flow at pixel `(x, y)`.
    pub fn flow_at(&self, x: usize, y: usize) -> [f32; 2] {
        let row = self.row(&self.colours[(x + y + self.parity) % 2], y);
        [Plane::U, Plane::V].map(|p| plane(row, p, self.stride)[x / 2])
    }

    fn row<'a>(&self, colour: &'a [f32], y: usize) -> &'a [f32] {
        &colour[y * PLANES * self.stride..][..PLANES * self.stride]
    }

    /// One over-relaxed Gauss-Seidel pass over the pixels of `colour`: each solves its 2x2
    /// Euler-Lagrange system with its neighbours' current flow (smoothness weight `alpha`,
    /// relaxation `omega`).
    pub fn sweep(&mut self, colour: usize, alpha: f32, omega: f32) {
        let (width, height, stride) = (self.width, self.height, self.stride);
        let row_len = PLANES * stride;
        let [red, black] = &mut self.colours;
        let (mine, other) = if colour == 0 {
            (red, &*black)
        } else {
            (black, &*red)
        };
        let other_row = |y: usize| &other[y * row_len..][..row_len];
        let first_colour = |y: usize| (y + self.parity) % 2;
        mine.par_chunks_mut(row_len).enumerate().for_each_init(
            || vec![0.0f32; 3 * stride],
            |sums, (y, row)| {
                // The first pixel of this colour in the row; its neighbours in the rows above
                // and below sit at the same index, those left and right at index - 1 + offset
                // and index + offset.
                let offset = (colour + 2 - first_colour(y)) % 2;
                if width <= offset {
                    return;
                }
                let count = (width - offset).div_ceil(2);
                let neighbours = Neighbours {
                    same: other_row(y),
                    up: (y > 0).then(|| other_row(y - 1)),
                    down: (y + 1 < height).then(|| other_row(y + 1)),
                    offset,
                };
                let (flow, own) = row.split_at_mut(2 * stride);
                let (u, v) = flow.split_at_mut(stride);
                let mut own = Own {
                    u: &mut u[..count],
                    v: &mut v[..count],
                    planes: own,
                    stride,
                };
                let settings = [alpha, omega];
                // Left and right both exist for indices `inner`.
                let inner = (1 - offset)..(width - offset - 1).div_ceil(2);
                match (neighbours.up, neighbours.down) {
                    (Some(up), Some(down)) if !inner.is_empty() => {
                        relax_each(&mut own, &neighbours, 0..inner.start, width, settings);
                        relax_inner(
                            &mut own,
                            &neighbours,
                            inner.clone(),
                            [up, down],
                            sums,
                            settings,
                        );
                        relax_each(&mut own, &neighbours, inner.end..count, width, settings);
                    }
                    _ => relax_each(&mut own, &neighbours, 0..count, width, settings),
                }
            },
        );
    }
}

/// The plane `plane` of a colour's row.
fn plane(row: &[f32], plane: Plane, stride: usize) -> &[f32] {
    &row[plane as usize * stride..][..stride]
}

/// A row's own values: its flow (written) and its weights and data term.
struct Own<'a> {
    u: &'a mut [f32],
    v: &'a mut [f32],
    /// The planes after the flow: weight, `a11`, `a12`, `a22`, `b1`, `b2`.
    planes: &'a [f32],
    stride: usize,
}

impl<'a> Own<'a> {
    /// The row's weights and data term: `[weight, a11, a12, a22, b1, b2]`.
    fn inputs(&self) -> [&'a [f32]; 6] {
        let planes = self.planes;
        [0, 1, 2, 3, 4, 5].map(|k| &planes[k * self.stride..][..self.stride])
    }
}

/// The other colour's rows around a row.
struct Neighbours<'a> {
    same: &'a [f32],
    up: Option<&'a [f32]>,
    down: Option<&'a [f32]>,
    /// The row's first pixel of its colour (0 or 1).
    offset: usize,
}

/// A pixel's flow after its update from its data term `[a11, a12, a22, b1, b2]` and the
/// weighted sums over its neighbours `[sum of weights, of weight * u, of weight * v]`.
#[inline(always)]
fn relax(
    [u, v]: [f32; 2],
    [a11, a12, a22, b1, b2]: [f32; 5],
    [sum_w, su, sv]: [f32; 3],
    [alpha, omega]: [f32; 2],
) -> [f32; 2] {
    let d11 = a11 + alpha * sum_w;
    let d22 = a22 + alpha * sum_w;
    let b1 = b1 + alpha * su;
    let b2 = b2 + alpha * sv;
    let det = d11 * d22 - a12 * a12;
    if det <= 1e-12 {
        return [u, v];
    }
    let un = (d22 * b1 - a12 * b2) / det;
    let vn = (d11 * b2 - a12 * b1) / det;
    [u + omega * (un - u), v + omega * (vn - v)]
}

/// The row's pixels `indices`, with whichever neighbours exist (left, right, up, down, summed
/// in that order).
fn relax_each(
    own: &mut Own<'_>,
    near: &Neighbours<'_>,
    indices: std::ops::Range<usize>,
    width: usize,
    settings: [f32; 2],
) {
    let stride = own.stride;
    let [weight, a11, a12, a22, b1, b2] = own.inputs();
    for j in indices {
        let x = near.offset + 2 * j;
        let (mut sum_w, mut su, mut sv) = (0.0f32, 0.0f32, 0.0f32);
        let mut neighbour = |row: &[f32], n: usize| {
            let we = 0.5 * (weight[j] + plane(row, Plane::Weight, stride)[n]);
            sum_w += we;
            su += we * plane(row, Plane::U, stride)[n];
            sv += we * plane(row, Plane::V, stride)[n];
        };
        if x > 0 {
            neighbour(near.same, j + near.offset - 1);
        }
        if x + 1 < width {
            neighbour(near.same, j + near.offset);
        }
        if let Some(up) = near.up {
            neighbour(up, j);
        }
        if let Some(down) = near.down {
            neighbour(down, j);
        }
        [own.u[j], own.v[j]] = relax(
            [own.u[j], own.v[j]],
            [a11[j], a12[j], a22[j], b1[j], b2[j]],
            [sum_w, su, sv],
            settings,
        );
    }
}

/// The pixels `inner` of an interior row, which have all four neighbours. Each neighbour's
/// values are runs as long as `inner`, and the work is cut into passes over few runs each
/// (the neighbours left and right, those up and down, then the update), loops the compiler
/// vectorises; `sums` is scratch of at least `3 * inner.len()`.
fn relax_inner(
    own: &mut Own<'_>,
    near: &Neighbours<'_>,
    inner: std::ops::Range<usize>,
    [up, down]: [&[f32]; 2],
    sums: &mut [f32],
    settings: [f32; 2],
) {
    let (start, n, stride) = (inner.start, inner.len(), own.stride);
    let [left, right, up, down] = [
        (near.same, start + near.offset - 1),
        (near.same, start + near.offset),
        (up, start),
        (down, start),
    ]
    .map(|(row, from)| {
        [Plane::Weight, Plane::U, Plane::V].map(|p| &plane(row, p, stride)[from..][..n])
    });
    let [weight, a11, a12, a22, b1, b2] = own.inputs().map(|p| &p[start..][..n]);
    let (sum_w, rest) = sums[..3 * n].split_at_mut(n);
    let (sum_u, sum_v) = rest.split_at_mut(n);
    // Summed from zero in the order of `relax_each`: `0.0 + x` keeps the sign of a zero as
    // that order does.
    sum_w.fill(0.0);
    sum_u.fill(0.0);
    sum_v.fill(0.0);
    for pair in [[left, right], [up, down]] {
        add_neighbours(weight, pair, [&mut *sum_w, &mut *sum_u, &mut *sum_v]);
    }
    let u = &mut own.u[start..][..n];
    let v = &mut own.v[start..][..n];
    for t in 0..n {
        [u[t], v[t]] = relax(
            [u[t], v[t]],
            [a11[t], a12[t], a22[t], b1[t], b2[t]],
            [sum_w[t], sum_u[t], sum_v[t]],
            settings,
        );
    }
}

/// Adds two neighbours' weighted flow, first `a` then `b` (each `[weight, u, v]`), to the
/// sums of the weights, of weight * u and of weight * v.
fn add_neighbours(weight: &[f32], [a, b]: [[&[f32]; 3]; 2], [sw, su, sv]: [&mut [f32]; 3]) {
    let n = weight.len();
    let (sw, su, sv) = (&mut sw[..n], &mut su[..n], &mut sv[..n]);
    let ([aw, au, av], [bw, bu, bv]) = (a.map(|p| &p[..n]), b.map(|p| &p[..n]));
    for t in 0..n {
        let we_a = 0.5 * (weight[t] + aw[t]);
        let we_b = 0.5 * (weight[t] + bw[t]);
        sw[t] = sw[t] + we_a + we_b;
        su[t] = su[t] + we_a * au[t] + we_b * bu[t];
        sv[t] = sv[t] + we_a * av[t] + we_b * bv[t];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// The inputs of one pixel in the plain row-major layout: `[weight, a11, a12, a22, b1, b2]`.
    type Inputs = [f32; 6];

    /// One pass over colour `colour` in the plain layout, in place, pixel by pixel: the
    /// definition the split layout must reproduce.
    fn plain_sweep(
        (w, h, parity): (usize, usize, usize),
        colour: usize,
        flow: &mut [[f32; 2]],
        inputs: &[Inputs],
        settings: [f32; 2],
    ) {
        for y in 0..h {
            for x in ((colour + parity + y) % 2..w).step_by(2) {
                let i = y * w + x;
                let (mut sum_w, mut su, mut sv) = (0.0f32, 0.0f32, 0.0f32);
                let mut neighbour = |n: usize| {
                    let we = 0.5 * (inputs[i][0] + inputs[n][0]);
                    sum_w += we;
                    su += we * flow[n][0];
                    sv += we * flow[n][1];
                };
                if x > 0 {
                    neighbour(i - 1);
                }
                if x + 1 < w {
                    neighbour(i + 1);
                }
                if y > 0 {
                    neighbour(i - w);
                }
                if y + 1 < h {
                    neighbour(i + w);
                }
                let [_, a11, a12, a22, b1, b2] = inputs[i];
                flow[i] = relax(flow[i], [a11, a12, a22, b1, b2], [sum_w, su, sv], settings);
            }
        }
    }

    #[test]
    fn split_sweeps_equal_plain_in_place_sweeps_bit_for_bit() {
        let mut rng = SplitMix64::new(11);
        let settings = [8.0, 1.8];
        for (w, h) in [
            (1, 1),
            (1, 5),
            (2, 1),
            (2, 2),
            (3, 4),
            (7, 6),
            (8, 9),
            (33, 17),
        ] {
            for parity in 0..2 {
                let mut value = |low: f64, high: f64| rng.uniform(low, high) as f32;
                let inputs: Vec<Inputs> = (0..w * h)
                    .map(|_| {
                        // Some pixels without data (all zero), as outside the moving image.
                        let data = if value(0.0, 1.0) < 0.2 { 0.0 } else { 1.0 };
                        let [a11, a22] = [value(0.0, 2.0), value(0.0, 2.0)].map(|a| a * data);
                        let a12 = value(-1.0, 1.0) * (a11 * a22).sqrt();
                        [
                            value(0.05, 1.0),
                            a11,
                            a12,
                            a22,
                            value(-1.0, 1.0) * data,
                            value(-1.0, 1.0) * data,
                        ]
                    })
                    .collect();
                let mut plain: Vec<[f32; 2]> = (0..w * h)
                    .map(|_| [value(-3.0, 3.0), value(-3.0, 3.0)])
                    .collect();
                let mut board = RedBlack::new(w, h, parity);
                board.fill_rows(|y, row| {
                    for (x, i) in inputs[y * w..][..w].iter().enumerate() {
                        row.set_flow(x, plain[y * w + x]);
                        row.set_weight(x, i[0]);
                        row.set_data_term(x, [i[1], i[2], i[3]], [i[4], i[5]]);
                    }
                });
                for _ in 0..3 {
                    for colour in 0..2 {
                        plain_sweep((w, h, parity), colour, &mut plain, &inputs, settings);
                        board.sweep(colour, settings[0], settings[1]);
                    }
                }
                let mut split = vec![[f32::NAN; 2]; w * h];
                board.store_flow(&mut split);
                let bits = |f: &[[f32; 2]]| -> Vec<[u32; 2]> {
                    f.iter().map(|v| v.map(f32::to_bits)).collect()
                };
                assert_eq!(bits(&split), bits(&plain), "{w} x {h}, parity {parity}");
                for (i, f) in plain.iter().enumerate() {
                    assert_eq!(
                        board.flow_at(i % w, i / w).map(f32::to_bits),
                        f.map(f32::to_bits)
                    );
                }
            }
        }
    }
}
