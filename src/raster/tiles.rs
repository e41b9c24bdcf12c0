//! Tiling: splitting huge images into rectangles (with optional overlap) and row bands, so that no
//! step needs the whole image in one buffer or one GPU texture.

/// A rectangle of pixels `[x, x + width) x [y, y + height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// A band of whole rows `[y, y + rows)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// First row.
    pub y: usize,
    /// Number of rows.
    pub rows: usize,
}

/// A regular grid of tiles of at most `tile x tile` pixels covering `width x height`, each grown
/// by `overlap` pixels on every side (clipped to the image).
#[derive(Debug, Clone, Copy)]
pub struct TileGrid {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Core tile side.
    pub tile: usize,
    /// Extra context on each side.
    pub overlap: usize,
}

impl TileGrid {
    /// Tiles in row-major order: `(core, with_overlap)`.
    pub fn tiles(&self) -> impl Iterator<Item = (Tile, Tile)> + '_ {
        let tile = self.tile.max(1);
        let nx = self.width.div_ceil(tile);
        let ny = self.height.div_ceil(tile);
        (0..ny).flat_map(move |ty| {
            (0..nx).map(move |tx| {
                let x = tx * tile;
                let y = ty * tile;
                let core = Tile {
                    x,
                    y,
                    width: tile.min(self.width - x),
                    height: tile.min(self.height - y),
                };
                let x0 = x.saturating_sub(self.overlap);
                let y0 = y.saturating_sub(self.overlap);
                let x1 = (core.x + core.width + self.overlap).min(self.width);
                let y1 = (core.y + core.height + self.overlap).min(self.height);
                (
                    core,
                    Tile {
                        x: x0,
                        y: y0,
                        width: x1 - x0,
                        height: y1 - y0,
                    },
                )
            })
        })
    }
}

/// Bands of at most `rows` rows covering `height` rows.
pub fn bands(height: usize, rows: usize) -> impl Iterator<Item = Band> {
    let rows = rows.max(1);
    (0..height.div_ceil(rows)).map(move |i| Band {
        y: i * rows,
        rows: rows.min(height - i * rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_every_pixel_exactly_once() {
        let grid = TileGrid {
            width: 103,
            height: 57,
            tile: 32,
            overlap: 5,
        };
        let mut hits = vec![0u8; 103 * 57];
        for (core, outer) in grid.tiles() {
            assert!(outer.x <= core.x && outer.x + outer.width >= core.x + core.width);
            assert!(outer.x + outer.width <= 103 && outer.y + outer.height <= 57);
            for y in core.y..core.y + core.height {
                for x in core.x..core.x + core.width {
                    hits[y * 103 + x] += 1;
                }
            }
        }
        assert!(hits.iter().all(|&h| h == 1));
    }

    #[test]
    fn bands_cover_all_rows() {
        let b: Vec<Band> = bands(10, 4).collect();
        assert_eq!(
            b,
            vec![
                Band { y: 0, rows: 4 },
                Band { y: 4, rows: 4 },
                Band { y: 8, rows: 2 }
            ]
        );
    }
}
