//! Flagged regions: a grid of cells accumulated band by band, and the contiguous groups of
//! cells that a rule marks, reported as rectangles in fixed-image pixels.

/// A flagged region of the fixed image.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Flag {
    /// Left edge, fixed-image pixels.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// The region's value of the measure that flagged it (its units are in `reason`).
    pub score: f64,
    /// What is wrong, in words.
    pub reason: String,
}

/// Block means of a map: the image cut into `cell x cell` blocks, each summing the finite
/// values given to it.
#[derive(Debug, Clone)]
pub struct BlockGrid {
    /// Block side in pixels.
    pub cell: usize,
    /// Blocks across.
    pub cols: usize,
    /// Blocks down.
    pub rows: usize,
    sum: Vec<f64>,
    count: Vec<u32>,
}

impl BlockGrid {
    /// The grid of a `width x height` image with blocks of `cell` pixels.
    pub fn new(width: usize, height: usize, cell: usize) -> Self {
        let cell = cell.max(1);
        let (cols, rows) = (width.div_ceil(cell), height.div_ceil(cell));
        Self {
            cell,
            cols,
            rows,
            sum: vec![0.0; cols * rows],
            count: vec![0; cols * rows],
        }
    }

    /// Adds one image row's values (non-finite values are skipped).
    pub fn add_row(&mut self, y: usize, values: &[f32]) {
        let base = (y / self.cell) * self.cols;
        for (cx, chunk) in values.chunks(self.cell).enumerate() {
            let (mut s, mut n) = (0.0, 0);
            for &v in chunk {
                if v.is_finite() {
                    s += f64::from(v);
                    n += 1;
                }
            }
            self.sum[base + cx] += s;
            self.count[base + cx] += n;
        }
    }

    /// Adds one image row's values in f64.
    pub fn add_row_f64(&mut self, y: usize, values: &[f64]) {
        let base = (y / self.cell) * self.cols;
        for (cx, chunk) in values.chunks(self.cell).enumerate() {
            self.sum[base + cx] += chunk.iter().sum::<f64>();
            self.count[base + cx] += chunk.len() as u32;
        }
    }

    /// The mean of block `(cx, cy)`, `None` when it got no value.
    pub fn mean(&self, cx: usize, cy: usize) -> Option<f64> {
        let i = cy * self.cols + cx;
        (self.count[i] > 0).then(|| self.sum[i] / f64::from(self.count[i]))
    }

    /// Values the block got.
    pub fn count(&self, cx: usize, cy: usize) -> u32 {
        self.count[cy * self.cols + cx]
    }

    /// Every block's mean, row-major, NaN where a block got nothing.
    pub fn means(&self) -> Vec<f32> {
        (0..self.rows)
            .flat_map(|cy| (0..self.cols).map(move |cx| (cx, cy)))
            .map(|(cx, cy)| self.mean(cx, cy).map_or(f32::NAN, |v| v as f32))
            .collect()
    }

    /// Every block's mean in f64 (0 where a block got nothing).
    pub fn means_f64(&self) -> Vec<f64> {
        self.sum
            .iter()
            .zip(&self.count)
            .map(|(&s, &n)| if n > 0 { s / f64::from(n) } else { 0.0 })
            .collect()
    }

    /// The pixel rectangle `(x, y, width, height)` of blocks `cx0..=cx1, cy0..=cy1`, clipped to a
    /// `width x height` image.
    pub fn rect(&self, cells: [usize; 4], width: usize, height: usize) -> [usize; 4] {
        let [cx0, cy0, cx1, cy1] = cells;
        let (x0, y0) = (cx0 * self.cell, cy0 * self.cell);
        let (x1, y1) = (
            ((cx1 + 1) * self.cell).min(width),
            ((cy1 + 1) * self.cell).min(height),
        );
        [x0, y0, x1 - x0, y1 - y0]
    }
}

/// The 8-connected groups of marked cells of a `cols x rows` grid, each as its cells' indices.
pub fn components(marked: &[bool], cols: usize, rows: usize) -> Vec<Vec<usize>> {
    let mut seen = vec![false; marked.len()];
    let mut groups = Vec::new();
    for start in 0..marked.len() {
        if !marked[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let (mut group, mut stack) = (Vec::new(), vec![start]);
        while let Some(i) = stack.pop() {
            group.push(i);
            let (cx, cy) = ((i % cols) as isize, (i / cols) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (cx + dx, cy + dy);
                    if nx < 0 || ny < 0 || nx >= cols as isize || ny >= rows as isize {
                        continue;
                    }
                    let j = ny as usize * cols + nx as usize;
                    if marked[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        groups.push(group);
    }
    groups
}

/// The bounding cells `[cx0, cy0, cx1, cy1]` of a group of cell indices.
pub fn bounds(group: &[usize], cols: usize) -> [usize; 4] {
    let mut b = [usize::MAX, usize::MAX, 0, 0];
    for &i in group {
        let (cx, cy) = (i % cols, i / cols);
        b = [b[0].min(cx), b[1].min(cy), b[2].max(cx), b[3].max(cy)];
    }
    b
}

/// The median of some values (sorted in place); NaN for none.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_join_diagonal_neighbours_and_keep_others_apart() {
        #[rustfmt::skip]
        let marked = [
            true,  false, false, false,
            false, true,  false, true,
            false, false, false, true,
        ];
        let mut groups = components(&marked, 4, 3);
        groups.iter_mut().for_each(|g| g.sort_unstable());
        assert_eq!(groups, vec![vec![0, 5], vec![7, 11]]);
        assert_eq!(bounds(&groups[1], 4), [3, 1, 3, 2]);
    }

    #[test]
    fn block_means_skip_non_finite_values_and_clip_at_the_border() {
        let mut g = BlockGrid::new(5, 3, 2);
        g.add_row(0, &[1.0, 3.0, f32::NAN, 4.0, 7.0]);
        g.add_row(2, &[2.0; 5]);
        assert_eq!((g.cols, g.rows), (3, 2));
        assert_eq!(g.mean(0, 0), Some(2.0));
        assert_eq!(g.mean(1, 0), Some(4.0));
        assert_eq!(g.mean(2, 1), Some(2.0));
        assert_eq!(g.rect([2, 1, 2, 1], 5, 3), [4, 2, 1, 1]);
    }
}
