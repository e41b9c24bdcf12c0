//! Mutual information between two variables sampled at the same N points: ARACNe-AP's
//! adaptive partitioning of the rank square, and a fixed-bin histogram estimator.

use rayon::prelude::*;

/// Which estimator an all-pairs matrix uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// ARACNe-AP's adaptive partitioning of the rank square (the default).
    #[default]
    Adaptive,
    /// Equal-width bins over each variable's range ([`HISTOGRAM_BINS`] a side).
    Histogram,
}

/// Bins a side of the histogram estimator.
pub const HISTOGRAM_BINS: usize = 32;

/// Ranks `0..N` of `values`, ties broken in a random order drawn from `seed` (8-bit images tie
/// massively; a fixed order would bias the partition). Ranks are `u32`, so N is not capped at
/// Java's `short` range.
pub fn ranks(values: &[f32], seed: u64) -> Vec<u32> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut order: Vec<(f32, u64, u32)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, rng.next_u64(), i as u32))
        .collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut ranks = vec![0u32; values.len()];
    for (rank, &(_, _, i)) in order.iter().enumerate() {
        ranks[i as usize] = rank as u32;
    }
    ranks
}

/// The χ² value (df 3, p = 0.05) above which a cell's four quadrants are not uniform, so the
/// cell is split further.
const CHI_SQUARE_95: f64 = 7.815;

/// `n ln(n / (w_x w_y))`, zero for an empty cell.
#[inline]
fn information(n: f64, width_x: f64, width_y: f64) -> f64 {
    if n == 0.0 {
        0.0
    } else {
        n * (n / (width_x * width_y)).ln()
    }
}

/// A point of the rank square: its x and y ranks.
trait Point: Copy + Default + Send {
    fn new(x: u32, y: u32) -> Self;
    fn x(self) -> u32;
    fn y(self) -> u32;
}

/// Both ranks in one word (N ≤ 65 536): half the memory traffic of a pair.
impl Point for u32 {
    #[inline(always)]
    fn new(x: u32, y: u32) -> Self {
        (x << 16) | y
    }
    #[inline(always)]
    fn x(self) -> u32 {
        self >> 16
    }
    #[inline(always)]
    fn y(self) -> u32 {
        self & 0xFFFF
    }
}

impl Point for (u32, u32) {
    #[inline(always)]
    fn new(x: u32, y: u32) -> Self {
        (x, y)
    }
    #[inline(always)]
    fn x(self) -> u32 {
        self.0
    }
    #[inline(always)]
    fn y(self) -> u32 {
        self.1
    }
}

/// ARACNe-AP's adaptive-partitioning mutual information (nats) of two rank vectors of equal
/// length: the square `[0, N)²` is split at its midpoint into quadrants, and each quadrant
/// again while the χ² test on the four counts exceeds 7.815 (the first split is forced); a
/// quadrant with at most 2 points stops. With `n` points in a cell of widths `w_x, w_y`,
/// `MI = Σ n ln(n / (w_x w_y)) / N + ln N`.
pub fn adaptive_mi(x: &[u32], y: &[u32]) -> f64 {
    assert_eq!(x.len(), y.len(), "the two variables have the same samples");
    let grid = RankGrid::new(x.len() as u32);
    adaptive_mi_on(&grid, [x, y], [&grid.bins(x), &grid.bins(y)])
}

/// [`adaptive_mi`] with the rank grid and each variable's grid intervals already known (the
/// all-pairs matrix computes them once per variable, not once per pair).
fn adaptive_mi_on(grid: &RankGrid, ranks: [&[u32]; 2], bins: [&[u16]; 2]) -> f64 {
    let n = ranks[0].len();
    if n == 0 {
        return 0.0;
    }
    let sum = if n <= 1 << 16 {
        points_mi::<u32>(grid, ranks, bins)
    } else {
        points_mi::<(u32, u32)>(grid, ranks, bins)
    };
    sum / n as f64 + (n as f64).ln()
}

/// The information sum of the whole rank square. The first `k` levels of splits (4^k ≤ N)
/// fall on a fixed grid of rank intervals, the same in every cell of a level: their quadrant
/// counts come from a summed-area table of the points' grid cells, in O(1) each; only cells
/// finer than the grid visit their points. The sums are those of the plain recursion, in the
/// same order.
fn points_mi<P: Point>(grid: &RankGrid, [x, y]: [&[u32]; 2], [bx, by]: [&[u16]; 2]) -> f64 {
    let n = x.len();
    let total = n as u32;
    let side = grid.limits.len();
    // The points sorted by grid cell (counting sort), each cell's run contiguous.
    let cell = |i: usize| bx[i] as usize * side + by[i] as usize;
    let mut starts = vec![0u32; side * side + 1];
    for i in 0..n {
        starts[cell(i) + 1] += 1;
    }
    // Summed-area table of the counts: sat[(i, j)] = points in cells x < i, y < j.
    let stride = side + 1;
    let mut sat = vec![0u32; stride * stride];
    for i in 0..side {
        let mut row = 0;
        for j in 0..side {
            row += starts[i * side + j + 1];
            sat[(i + 1) * stride + j + 1] = sat[i * stride + j + 1] + row;
        }
    }
    for c in 0..side * side {
        starts[c + 1] += starts[c];
    }
    let mut next = starts.clone();
    let mut points = vec![P::default(); n];
    for i in 0..n {
        let c = cell(i);
        points[next[c] as usize] = P::new(x[i], y[i]);
        next[c] += 1;
    }
    let mut scratch = vec![P::default(); n];
    let mut cells = Cells {
        grid,
        sat: &sat,
        stride,
        starts: &starts,
        points: &mut points,
        scratch: &mut scratch,
    };
    if side == 1 {
        return partition(cells.points, cells.scratch, [0, total], [0, total], true);
    }
    cells.block(0, [0, 0], true)
}

/// The rank intervals of the first `k` levels of splits: `limits[b]` are the split limits of
/// interval `b` (in order), `of_rank[r]` the interval of rank `r`.
struct RankGrid {
    limits: Vec<[u32; 2]>,
    of_rank: Vec<u16>,
}

impl RankGrid {
    fn new(n: u32) -> Self {
        // 4^k ≤ N cells, at most 256 intervals a side.
        let mut k = 0;
        while k < 8 && 4u64.pow(k + 1) <= n as u64 {
            k += 1;
        }
        let mut limits = vec![[0, n]];
        for _ in 0..k {
            limits = limits
                .iter()
                .flat_map(|&[a, b]| {
                    let split = (a + b) / 2;
                    [[a, split], [split, b]]
                })
                .collect();
        }
        // Ranks up to and including a split go to its low side.
        let mut of_rank = vec![0u16; n as usize];
        let mut b = 0;
        for (r, slot) in of_rank.iter_mut().enumerate() {
            while b + 1 < limits.len() && r as u32 > limits[b][1] {
                b += 1;
            }
            *slot = b as u16;
        }
        Self { limits, of_rank }
    }

    /// The grid interval of each rank.
    fn bins(&self, ranks: &[u32]) -> Vec<u16> {
        ranks.iter().map(|&r| self.of_rank[r as usize]).collect()
    }
}

/// The points sorted by grid cell with their summed-area table.
struct Cells<'a, P> {
    grid: &'a RankGrid,
    sat: &'a [u32],
    stride: usize,
    starts: &'a [u32],
    points: &'a mut [P],
    scratch: &'a mut [P],
}

impl<P: Point> Cells<'_, P> {
    /// Points in the grid block `x in bx..bx + w`, `y in by..by + w`.
    fn count(&self, [bx, by]: [usize; 2], w: usize) -> usize {
        let s = |i: usize, j: usize| self.sat[i * self.stride + j] as i64;
        (s(bx + w, by + w) - s(bx, by + w) - s(bx + w, by) + s(bx, by)) as usize
    }

    /// The split limits of a block.
    fn limits(&self, [bx, by]: [usize; 2], w: usize) -> ([u32; 2], [u32; 2]) {
        let l = &self.grid.limits;
        ([l[bx][0], l[bx + w - 1][1]], [l[by][0], l[by + w - 1][1]])
    }

    /// [`partition`] of the cell at `depth` whose block starts at grid cell `at`.
    fn block(&mut self, depth: u32, at: [usize; 2], first: bool) -> f64 {
        let side = self.grid.limits.len();
        let w = side >> depth;
        let h = w / 2;
        let [bx, by] = at;
        // ARACNe's quadrant order: low x low y, low x high y, high x high y, high x low y.
        let quadrants = [[bx, by], [bx, by + h], [bx + h, by + h], [bx + h, by]];
        let counts = quadrants.map(|q| self.count(q, h));
        let total: usize = counts.iter().sum();
        let expected = total as f64 / 4.0;
        let chi_square: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2))
            .sum::<f64>()
            / expected;
        let (lx, ly) = self.limits(at, w);
        if !(chi_square > CHI_SQUARE_95 || first) {
            return information(total as f64, (lx[1] - lx[0]) as f64, (ly[1] - ly[0]) as f64);
        }
        let mut sum = 0.0;
        for (q, count) in quadrants.into_iter().zip(counts) {
            let (qx, qy) = self.limits(q, h);
            sum += if count <= 2 {
                information(count as f64, (qx[1] - qx[0]) as f64, (qy[1] - qy[0]) as f64)
            } else if h > 1 {
                self.block(depth + 1, q, false)
            } else {
                // One grid cell: its points, contiguous.
                let c = q[0] * side + q[1];
                let range = self.starts[c] as usize..self.starts[c + 1] as usize;
                partition(
                    &mut self.points[range.clone()],
                    &mut self.scratch[range],
                    qx,
                    qy,
                    false,
                )
            };
        }
        sum
    }
}

/// A point's quadrant in ARACNe's order (low x low y, low x high y, high x high y, high x
/// low y), from whether it lies above each split.
const QUADRANT: [usize; 4] = [0, 1, 3, 2];

/// The information sum of one cell `x in lim_x, y in lim_y` holding `points`; `scratch` (as
/// long) receives them sorted by quadrant, and the quadrants recurse with the roles swapped.
fn partition<P: Point>(
    points: &mut [P],
    scratch: &mut [P],
    [x1, x2]: [u32; 2],
    [y1, y2]: [u32; 2],
    first: bool,
) -> f64 {
    let (split_x, split_y) = ((x1 + x2) / 2, (y1 + y2) / 2);
    let quadrant =
        |p: P| QUADRANT[(((p.x() > split_x) as usize) << 1) | (p.y() > split_y) as usize];
    let mut counts = [0usize; 4];
    for &p in points.iter() {
        counts[quadrant(p)] += 1;
    }
    let expected = points.len() as f64 / 4.0;
    let chi_square: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2))
        .sum::<f64>()
        / expected;
    if !(chi_square > CHI_SQUARE_95 || first) {
        return information(points.len() as f64, (x2 - x1) as f64, (y2 - y1) as f64);
    }
    let mut starts = [0usize; 4];
    for q in 1..4 {
        starts[q] = starts[q - 1] + counts[q - 1];
    }
    let mut next = starts;
    let scratch = &mut scratch[..points.len()];
    for &p in points.iter() {
        let q = quadrant(p);
        // `next[q]` stays below `starts[q] + counts[q]`, within the slice.
        scratch[next[q]] = p;
        next[q] += 1;
    }
    let limits = [
        ([x1, split_x], [y1, split_y]),
        ([x1, split_x], [split_y, y2]),
        ([split_x, x2], [split_y, y2]),
        ([split_x, x2], [y1, split_y]),
    ];
    let mut sum = 0.0;
    for (q, (lim_x, lim_y)) in limits.into_iter().enumerate() {
        let range = starts[q]..starts[q] + counts[q];
        sum += if counts[q] > 2 {
            partition(
                &mut scratch[range.clone()],
                &mut points[range],
                lim_x,
                lim_y,
                false,
            )
        } else {
            information(
                counts[q] as f64,
                (lim_x[1] - lim_x[0]) as f64,
                (lim_y[1] - lim_y[0]) as f64,
            )
        };
    }
    sum
}

/// Mutual information (nats) from a joint histogram of [`HISTOGRAM_BINS`]² equal-width bins
/// over each variable's range.
pub fn histogram_mi(x: &[f32], y: &[f32]) -> f64 {
    assert_eq!(x.len(), y.len(), "the two variables have the same samples");
    let n = x.len();
    if n == 0 {
        return 0.0;
    }
    let b = HISTOGRAM_BINS;
    let bin = |v: &[f32]| {
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        let span = (hi - lo).max(f32::EPSILON);
        v.iter()
            .map(|&s| (((s - lo) / span * b as f32) as usize).min(b - 1))
            .collect::<Vec<_>>()
    };
    let (bx, by) = (bin(x), bin(y));
    let mut joint = vec![0u64; b * b];
    let (mut px, mut py) = (vec![0u64; b], vec![0u64; b]);
    for (&i, &j) in bx.iter().zip(&by) {
        joint[i * b + j] += 1;
        px[i] += 1;
        py[j] += 1;
    }
    let total = n as f64;
    let mut mi = 0.0;
    for i in 0..b {
        for j in 0..b {
            let c = joint[i * b + j] as f64;
            if c > 0.0 {
                mi += c / total * (c * total / (px[i] as f64 * py[j] as f64)).ln();
            }
        }
    }
    mi
}

/// One variable (an image's sampled pixels) ready for either estimator.
#[derive(Debug, Clone)]
pub struct Variable {
    /// The values as sampled.
    pub values: Vec<f32>,
    /// Their ranks (ties broken at random, seeded).
    pub ranks: Vec<u32>,
}

impl Variable {
    /// `values` with their ranks, ties broken by `seed`.
    pub fn new(values: Vec<f32>, seed: u64) -> Self {
        let ranks = ranks(&values, seed);
        Self { values, ranks }
    }
}

/// The symmetric all-pairs MI matrix (zero diagonal), pairs in parallel.
pub fn mi_matrix(variables: &[Variable], estimator: Estimator) -> Vec<Vec<f64>> {
    let n = variables.len();
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect();
    let samples = variables.first().map_or(0, |v| v.ranks.len());
    let grid = RankGrid::new(samples as u32);
    let bins: Vec<Vec<u16>> = match estimator {
        Estimator::Adaptive => variables.par_iter().map(|v| grid.bins(&v.ranks)).collect(),
        Estimator::Histogram => Vec::new(),
    };
    let values: Vec<f64> = pairs
        .par_iter()
        .map(|&(i, j)| {
            let (a, b) = (&variables[i], &variables[j]);
            match estimator {
                Estimator::Adaptive => {
                    adaptive_mi_on(&grid, [&a.ranks, &b.ranks], [&bins[i], &bins[j]])
                }
                Estimator::Histogram => histogram_mi(&a.values, &b.values),
            }
        })
        .collect();
    let mut matrix = vec![vec![0.0; n]; n];
    for (&(i, j), &v) in pairs.iter().zip(&values) {
        matrix[i][j] = v;
        matrix[j][i] = v;
    }
    matrix
}

/// The MI above which an edge is kept at p-value `p`: the `1 - p` quantile of the MI of
/// `pairs` random pairs of variables with one side's samples permuted (a null of no
/// dependence), seeded.
pub fn permutation_threshold(
    variables: &[Variable],
    estimator: Estimator,
    p: f64,
    pairs: usize,
    seed: u64,
) -> f64 {
    if variables.len() < 2 || pairs == 0 {
        return 0.0;
    }
    let mut rng = crate::rng::SplitMix64::new(seed);
    let draws: Vec<(usize, usize, u64)> = (0..pairs)
        .map(|_| {
            let i = rng.below(variables.len() as u64) as usize;
            let mut j = rng.below(variables.len() as u64 - 1) as usize;
            if j >= i {
                j += 1;
            }
            (i, j, rng.next_u64())
        })
        .collect();
    let mut null: Vec<f64> = draws
        .par_iter()
        .map(|&(i, j, s)| {
            let permutation = shuffled_indices(variables[j].values.len(), s);
            let b = &variables[j];
            match estimator {
                Estimator::Adaptive => {
                    let shuffled: Vec<u32> = permutation.iter().map(|&k| b.ranks[k]).collect();
                    adaptive_mi(&variables[i].ranks, &shuffled)
                }
                Estimator::Histogram => {
                    let shuffled: Vec<f32> = permutation.iter().map(|&k| b.values[k]).collect();
                    histogram_mi(&variables[i].values, &shuffled)
                }
            }
        })
        .collect();
    null.sort_by(f64::total_cmp);
    let at = (((1.0 - p.clamp(0.0, 1.0)) * null.len() as f64).ceil() as usize).min(null.len() - 1);
    null[at]
}

/// `0..n` in a random order (Fisher-Yates), seeded.
fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// `n` draws of a standard bivariate normal with correlation `rho`.
    fn gaussian(n: usize, rho: f64, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let (a, b) = (rng.normal(), rng.normal());
                (a as f32, (rho * a + (1.0 - rho * rho).sqrt() * b) as f32)
            })
            .unzip()
    }

    #[test]
    fn the_adaptive_estimate_of_gaussian_mi_is_within_a_hundredth_of_the_exact_value() {
        for rho in [0.3, 0.6, 0.9] {
            let (x, y) = gaussian(65_536, rho, 7);
            let mi = adaptive_mi(&ranks(&x, 1), &ranks(&y, 2));
            let exact = -0.5 * (1.0 - rho * rho).ln();
            eprintln!("rho {rho}: adaptive {mi:.4}, exact {exact:.4}");
            assert!((mi - exact).abs() < 0.01, "rho {rho}: {mi} vs {exact}");
        }
        // Independent variables: close to zero.
        let (x, _) = gaussian(65_536, 0.0, 8);
        let (y, _) = gaussian(65_536, 0.0, 9);
        assert!(adaptive_mi(&ranks(&x, 1), &ranks(&y, 2)).abs() < 0.01);
    }

    /// ARACNe-AP's `MI.computeMI(short[], short[])`, step by step as the Java does it (arrays
    /// copied per quadrant, the limits and the widths as there), as the reference the fast
    /// version must equal.
    fn reference_mi(x: &[u32], y: &[u32]) -> f64 {
        fn information(p_xy: f64, p_x: f64, p_y: f64) -> f64 {
            if p_xy == 0.0 {
                0.0
            } else {
                p_xy * (p_xy / (p_x * p_y)).ln()
            }
        }
        fn compute(
            x: &[u32],
            y: &[u32],
            lx1: u32,
            lx2: u32,
            ly1: u32,
            ly2: u32,
            first: bool,
        ) -> f64 {
            let mut mi = 0.0;
            let (sx, sy) = ((lx2 + lx1) / 2, (ly2 + ly1) / 2);
            let mut libraries: [(Vec<u32>, Vec<u32>); 4] = Default::default();
            for i in 0..x.len() {
                let q = if x[i] <= sx {
                    if y[i] <= sy { 0 } else { 1 }
                } else if y[i] > sy {
                    2
                } else {
                    3
                };
                libraries[q].0.push(x[i]);
                libraries[q].1.push(y[i]);
            }
            let expected = x.len() as f64 / 4.0;
            let tst: f64 = libraries
                .iter()
                .map(|l| (l.0.len() as f64 - expected).powi(2))
                .sum::<f64>()
                / expected;
            if tst > 7.815 || first {
                let limits = [
                    (lx1, sx, ly1, sy),
                    (lx1, sx, sy, ly2),
                    (sx, lx2, sy, ly2),
                    (sx, lx2, ly1, sy),
                ];
                for (l, (a, b, c, d)) in libraries.iter().zip(limits) {
                    let count = l.0.len();
                    mi += if count > 2 {
                        compute(&l.0, &l.1, a, b, c, d, false)
                    } else {
                        information(count as f64, (b - a) as f64, (d - c) as f64)
                    };
                }
            } else {
                mi += information(x.len() as f64, (lx2 - lx1) as f64, (ly2 - ly1) as f64);
            }
            mi
        }
        let n = x.len() as u32;
        compute(x, y, 0, n, 0, n, true) / x.len() as f64 + (x.len() as f64).ln()
    }

    #[test]
    fn the_adaptive_estimate_equals_a_transliteration_of_aracne_ap() {
        for (n, rho) in [(5_000, 0.7), (4_099, 0.2), (40_000, 0.95)] {
            let (x, y) = gaussian(n, rho, n as u64);
            let (rx, ry) = (ranks(&x, 3), ranks(&y, 4));
            let (fast, reference) = (adaptive_mi(&rx, &ry), reference_mi(&rx, &ry));
            assert!(
                (fast - reference).abs() < 1e-12,
                "{n}: {fast} vs {reference}"
            );
        }
    }

    #[test]
    fn ties_are_broken_at_random_but_reproducibly() {
        let values = [0.5f32, 0.1, 0.5, 0.5, 0.9];
        let r = ranks(&values, 11);
        assert_eq!(r[1], 0);
        assert_eq!(r[4], 4);
        let mut tied: Vec<u32> = [r[0], r[2], r[3]].to_vec();
        tied.sort();
        assert_eq!(tied, [1, 2, 3]);
        assert_eq!(ranks(&values, 11), r);
    }

    #[test]
    fn the_histogram_estimate_sees_dependence_and_a_permutation_null_does_not() {
        let variables: Vec<Variable> = (0..4)
            .map(|k| {
                let (x, y) = gaussian(20_000, 0.9, 40 + k);
                Variable::new(if k % 2 == 0 { x } else { y }, k)
            })
            .collect();
        let (x, y) = gaussian(20_000, 0.9, 5);
        assert!(histogram_mi(&x, &y) > 0.6);
        let threshold = permutation_threshold(&variables, Estimator::Adaptive, 0.05, 20, 3);
        assert!((0.0..0.02).contains(&threshold), "{threshold}");
    }
}
