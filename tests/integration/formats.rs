//! Reading files the engine's own writers do not produce.

use crate::common::{Entry, build_tiff};
use alinify::raster::AnyImage;

#[test]
fn tiled_tiff_is_read_tile_by_tile() {
    // 40 x 24 pixels in 16 x 16 tiles: 3 x 2 tiles, the last column and row partly padding.
    let (w, h, t) = (40u32, 24u32, 16u32);
    let (tx, ty) = (w.div_ceil(t), h.div_ceil(t));
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for j in 0..ty {
        for i in 0..tx {
            offsets.push(data.len() as u32);
            for y in 0..t {
                for x in 0..t {
                    let (gx, gy) = (i * t + x, j * t + y);
                    data.push(if gx < w && gy < h {
                        ((gx + 3 * gy) % 251) as u8
                    } else {
                        0
                    });
                }
            }
        }
    }
    let tile_bytes = (t * t) as usize;
    // Offsets are relative to the data block; the block starts right after the arrays.
    let e = |tag, kind, values: Vec<u32>| Entry { tag, kind, values };
    let entries = |base: u32| {
        vec![
            e(256, 4, vec![w]),
            e(257, 4, vec![h]),
            e(258, 3, vec![8]),
            e(259, 3, vec![1]),
            e(262, 3, vec![1]),
            e(277, 3, vec![1]),
            e(322, 4, vec![t]),
            e(323, 4, vec![t]),
            e(324, 4, offsets.iter().map(|o| o + base).collect()),
            e(325, 4, vec![tile_bytes as u32; offsets.len()]),
        ]
    };
    // First pass finds where the data block lands, second writes the real offsets.
    let probe = build_tiff(&entries(0), &data);
    let base = (probe.len() - data.len()) as u32;
    let bytes = build_tiff(&entries(base), &data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiled.tif");
    std::fs::write(&path, bytes).unwrap();
    let AnyImage::U8(r) = alinify::io::load_image(&path).unwrap() else {
        panic!("8-bit expected")
    };
    assert_eq!((r.width(), r.height()), (40, 24));
    for &(x, y) in &[(0usize, 0usize), (17, 3), (39, 23), (20, 16)] {
        assert_eq!(
            r.data[[y, x, 0]],
            ((x + 3 * y) % 251) as u8,
            "pixel {x},{y}"
        );
    }
}

#[test]
fn a_20000_pixel_square_image_loads() {
    // 400 MB of 8-bit samples: over the `tiff` crate's default 256 MiB decoding buffer, which the
    // loader raises deliberately after checking the header against the memory available.
    let (w, h) = (20000usize, 20000usize);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tif");
    let spec = alinify::io::TiffSpec {
        width: w,
        height: h,
        channels: 1,
        depth: alinify::raster::SampleDepth::U8,
    };
    alinify::io::write_tiff_streaming(&path, spec, &mut |band, buf| {
        let alinify::io::tiff::BandBuffer::U8(b) = buf else {
            unreachable!()
        };
        for (i, row) in b.chunks_mut(w).enumerate() {
            row.fill(((band.y + i) % 256) as u8);
        }
        Ok(())
    })
    .unwrap();
    let AnyImage::U8(r) = alinify::io::load_image(&path).unwrap() else {
        panic!("8-bit expected")
    };
    assert_eq!((r.width(), r.height()), (w, h));
    assert_eq!(r.data[[19999, 5, 0]], (19999 % 256) as u8);
}
