//! elastix / transformix `TransformParameters` files.
//!
//! Coordinates agree with Alinify's when an image has origin 0, spacing 1 and identity direction:
//! physical point = pixel index, x = column. An affine is written as `AffineTransform` about its
//! centre (`q = A(p - c) + c + t`, parameters `a00 a01 a10 a11 tx ty`). The accurate mode's
//! `q = A(p) + d(p)` is written exactly as the composition `A(p + d'(p))` with `d' = A^-1 d`:
//! the B-spline file is the affine file's initial transform, combined by "Compose"
//! (transformix computes `T_affine(T_bspline(p))`).

use super::TransformSpec;
use crate::transform::{Affine, AffineBSpline, BSplineTransform};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Writes `spec` as elastix parameter files: `path` is the one to hand to transformix; a
/// B-spline part goes beside it as `<stem>.bspline.txt`.
pub fn export(path: &Path, spec: &TransformSpec, fixed_size: [usize; 2]) -> Result<()> {
    match spec {
        TransformSpec::Affine(a) => write(path, &affine_map(a, fixed_size, None)),
        TransformSpec::AffineBspline(ab) => {
            let composed = ab.as_bspline_then_affine().ok_or_else(|| {
                Error::write(path, "the affine part is singular; it has no elastix form")
            })?;
            let bspline_path = companion_path(path);
            write(&bspline_path, &bspline_map(&composed, fixed_size))?;
            let name = bspline_path.to_string_lossy().into_owned();
            write(path, &affine_map(&ab.affine, fixed_size, Some(&name)))
        }
        TransformSpec::Bspline(b) => write(path, &bspline_map(b, fixed_size)),
        other => Err(Error::write(
            path,
            format!("no elastix export for a {} transform", kind(other)),
        )),
    }
}

fn kind(spec: &TransformSpec) -> &'static str {
    match spec {
        TransformSpec::Identity => "identity",
        TransformSpec::Affine(_) => "affine",
        TransformSpec::Bspline(_) => "bspline",
        TransformSpec::AffineBspline(_) => "affine_bspline",
        TransformSpec::Dense { .. } => "dense",
        TransformSpec::Velocity { .. } => "velocity",
        TransformSpec::ThinPlate(_) => "thin_plate",
        TransformSpec::Composed { .. } => "composed",
    }
}

/// `TransformParameters.txt` -> `TransformParameters.bspline.txt`.
/// The second file an affine + B-spline export writes beside `path` (the B-spline map that
/// the affine map names as its initial transform).
pub fn companion_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.bspline.txt"))
}

/// One parameter: strings are quoted, numbers bare.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Number(f64),
}

type Map = Vec<(&'static str, Vec<Value>)>;

fn text(s: &str) -> Vec<Value> {
    vec![Value::Text(s.into())]
}
fn numbers(v: impl IntoIterator<Item = f64>) -> Vec<Value> {
    v.into_iter().map(Value::Number).collect()
}

fn image_geometry(size: [usize; 2]) -> Map {
    vec![
        ("FixedImageDimension", numbers([2.0])),
        ("MovingImageDimension", numbers([2.0])),
        ("FixedInternalImagePixelType", text("float")),
        ("MovingInternalImagePixelType", text("float")),
        ("Size", numbers([size[0] as f64, size[1] as f64])),
        ("Index", numbers([0.0, 0.0])),
        ("Spacing", numbers([1.0, 1.0])),
        ("Origin", numbers([0.0, 0.0])),
        ("Direction", numbers([1.0, 0.0, 0.0, 1.0])),
        ("UseDirectionCosines", text("true")),
        ("ResampleInterpolator", text("FinalBSplineInterpolator")),
        ("FinalBSplineInterpolationOrder", numbers([3.0])),
        ("Resampler", text("DefaultResampler")),
        ("DefaultPixelValue", numbers([0.0])),
        ("ResultImageFormat", text("tif")),
        ("ResultImagePixelType", text("float")),
        ("CompressResultImage", text("false")),
    ]
}

fn affine_map(a: &Affine, size: [usize; 2], initial: Option<&str>) -> Map {
    let [m0, m1, m2, m3] = a.matrix;
    let mut map: Map = vec![
        ("Transform", text("AffineTransform")),
        ("NumberOfParameters", numbers([6.0])),
        (
            "TransformParameters",
            numbers([m0, m1, m2, m3, a.translation[0], a.translation[1]]),
        ),
        ("CenterOfRotationPoint", numbers(a.center)),
        (
            "InitialTransformParametersFileName",
            text(initial.unwrap_or("NoInitialTransform")),
        ),
        ("HowToCombineTransforms", text("Compose")),
    ];
    map.extend(image_geometry(size));
    map
}

fn bspline_map(b: &BSplineTransform, size: [usize; 2]) -> Map {
    let [nx, ny] = b.grid();
    let mut map: Map = vec![
        ("Transform", text("BSplineTransform")),
        ("NumberOfParameters", numbers([(2 * nx * ny) as f64])),
        (
            "TransformParameters",
            numbers(b.u.iter().chain(b.v.iter()).copied()),
        ),
        (
            "InitialTransformParametersFileName",
            text("NoInitialTransform"),
        ),
        ("HowToCombineTransforms", text("Compose")),
        ("GridSize", numbers([nx as f64, ny as f64])),
        ("GridIndex", numbers([0.0, 0.0])),
        ("GridSpacing", numbers(b.spacing)),
        // Control point i sits at (i - 1) * spacing.
        ("GridOrigin", numbers([-b.spacing[0], -b.spacing[1]])),
        ("GridDirection", numbers([1.0, 0.0, 0.0, 1.0])),
        ("BSplineTransformSplineOrder", numbers([3.0])),
        ("UseCyclicTransform", text("false")),
    ];
    map.extend(image_geometry(size));
    map
}

fn write(path: &Path, map: &Map) -> Result<()> {
    let mut out = String::new();
    for (key, values) in map {
        let _ = write!(out, "({key}");
        for v in values {
            match v {
                Value::Text(s) => {
                    let _ = write!(out, " \"{s}\"");
                }
                // Integral values without a decimal point: elastix parses sizes as integers.
                Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
                    let _ = write!(out, " {}", *x as i64);
                }
                Value::Number(x) => {
                    let _ = write!(out, " {x:?}");
                }
            }
        }
        out.push_str(")\n");
    }
    super::write_text_atomic(path, &out)
}

/// Parses a parameter file into its entries.
fn parse(path: &Path) -> Result<BTreeMap<String, Vec<Value>>> {
    let textual = super::read_input_text(path)?;
    let corrupt = |detail: String| Error::Corrupt {
        path: path.into(),
        detail,
    };
    let mut map = BTreeMap::new();
    for (n, line) in textual.lines().enumerate() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let inner = line
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| corrupt(format!("line {}: expected (Key values...)", n + 1)))?;
        let mut tokens = Vec::new();
        let mut rest = inner.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('"') {
                let end = r
                    .find('"')
                    .ok_or_else(|| corrupt(format!("line {}: unclosed quote", n + 1)))?;
                tokens.push(Value::Text(r[..end].to_string()));
                rest = r[end + 1..].trim_start();
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let word = &rest[..end];
                tokens.push(match word.parse::<f64>() {
                    Ok(x) => Value::Number(x),
                    Err(_) => Value::Text(word.to_string()),
                });
                rest = rest[end..].trim_start();
            }
        }
        let Some(Value::Text(key)) = tokens.first().cloned() else {
            return Err(corrupt(format!("line {}: no key", n + 1)));
        };
        map.insert(key, tokens[1..].to_vec());
    }
    Ok(map)
}

/// Reads a transform exported by [`export`] (an affine, a B-spline, or an affine whose initial
/// transform is a B-spline) back into Alinify's form.
pub fn import(path: &Path) -> Result<TransformSpec> {
    let spec = import_file(path, true)?;
    spec.validate(path)?;
    Ok(spec)
}

/// Reads one parameter file; `follow_initial` is false for the initial transform an affine
/// names, which must be a B-spline without one of its own (so a file naming itself, or a
/// chain, cannot recurse without end).
fn import_file(path: &Path, follow_initial: bool) -> Result<TransformSpec> {
    let map = parse(path)?;
    let corrupt = |detail: &str| Error::Corrupt {
        path: path.into(),
        detail: detail.into(),
    };
    let nums = |key: &str| -> Result<Vec<f64>> {
        map.get(key)
            .ok_or_else(|| corrupt(&format!("missing {key}")))?
            .iter()
            .map(|v| match v {
                Value::Number(x) => Ok(*x),
                Value::Text(_) => Err(corrupt(&format!("{key} is not numeric"))),
            })
            .collect()
    };
    let word = |key: &str| match map.get(key).and_then(|v| v.first()) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    };
    let size = nums("Size")?;
    if size.len() != 2 {
        return Err(corrupt("only 2D transforms are read"));
    }
    let whole = |x: f64| x.is_finite() && x >= 1.0 && x.fract() == 0.0;
    if !(whole(size[0]) && whole(size[1])) || size[0] * size[1] > super::max_pixels() as f64 {
        return Err(corrupt(&format!(
            "image size {} x {} is not a positive whole size under the limit of {} megapixels",
            size[0],
            size[1],
            super::max_pixels() / 1_000_000
        )));
    }
    let (w, h) = (size[0] as usize, size[1] as usize);
    match word("Transform").as_deref() {
        Some("AffineTransform") => {
            let p = nums("TransformParameters")?;
            let c = nums("CenterOfRotationPoint")?;
            if p.len() != 6 || c.len() != 2 {
                return Err(corrupt("an affine needs 6 parameters and a 2D centre"));
            }
            let affine = Affine::from_matrix([p[0], p[1], p[2], p[3]], [p[4], p[5]], [c[0], c[1]]);
            match word("InitialTransformParametersFileName").as_deref() {
                None | Some("NoInitialTransform") => Ok(TransformSpec::Affine(affine)),
                Some(_) if !follow_initial => Err(corrupt(
                    "the initial transform has an initial transform of its own (only an affine over a B-spline is read)",
                )),
                Some(initial) => {
                    let initial = resolve(path, initial);
                    let TransformSpec::Bspline(composed) = import_file(&initial, false)? else {
                        return Err(corrupt("the initial transform is not a B-spline"));
                    };
                    // A(p + d'(p)) = A(p) + M d'(p).
                    let mut bspline = composed;
                    for (u, v) in bspline.u.iter_mut().zip(bspline.v.iter_mut()) {
                        let (du, dv) = (*u, *v);
                        *u = affine.matrix[0] * du + affine.matrix[1] * dv;
                        *v = affine.matrix[2] * du + affine.matrix[3] * dv;
                    }
                    Ok(TransformSpec::AffineBspline(AffineBSpline {
                        affine,
                        bspline,
                    }))
                }
            }
        }
        Some("BSplineTransform") => {
            let grid = nums("GridSize")?;
            let spacing = nums("GridSpacing")?;
            let origin = nums("GridOrigin")?;
            let p = nums("TransformParameters")?;
            if grid.len() != 2 || spacing.len() != 2 || origin.len() != 2 {
                return Err(corrupt("only 2D B-spline grids are read"));
            }
            if !spacing.iter().all(|s| s.is_finite() && *s >= 1.0) {
                return Err(corrupt(
                    "the B-spline grid spacing must be at least 1 pixel",
                ));
            }
            let [nx, ny] = BSplineTransform::grid_for(w, h, [spacing[0], spacing[1]]);
            if grid != [nx as f64, ny as f64]
                || (origin[0] + spacing[0]).abs() > 1e-6
                || (origin[1] + spacing[1]).abs() > 1e-6
                || p.len() != 2 * nx * ny
            {
                return Err(corrupt(
                    "the B-spline grid is not one Alinify writes (origin -spacing, covering the image)",
                ));
            }
            use crate::transform::Parametric;
            let mut b = BSplineTransform::new(w, h, [spacing[0], spacing[1]]);
            b.set_params(&p);
            Ok(TransformSpec::Bspline(b))
        }
        other => Err(Error::Unsupported {
            path: path.into(),
            detail: format!("elastix transform {other:?}"),
        }),
    }
}

fn resolve(from: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.into()
    } else {
        from.parent().unwrap_or(Path::new(".")).join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Transform;

    #[test]
    fn accurate_transform_round_trips_through_elastix_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = BSplineTransform::new(120, 90, [30.0, 30.0]);
        let mut rng = crate::rng::SplitMix64::new(1);
        b.u.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
        b.v.iter_mut().for_each(|c| *c = rng.uniform(-3.0, 3.0));
        let original = AffineBSpline {
            affine: Affine::similarity(0.03, 1.02, [4.0, -2.0], [60.0, 45.0]),
            bspline: b,
        };
        let path = dir.path().join("TransformParameters.txt");
        export(
            &path,
            &TransformSpec::AffineBspline(original.clone()),
            [120, 90],
        )
        .unwrap();
        assert!(dir.path().join("TransformParameters.bspline.txt").exists());
        let TransformSpec::AffineBspline(back) = import(&path).unwrap() else {
            panic!("kind changed")
        };
        for &(x, y) in &[(0.0, 0.0), (61.3, 22.2), (119.0, 89.0)] {
            let (p, q) = (original.map_point(x, y), back.map_point(x, y));
            assert!((p[0] - q[0]).abs() < 1e-9 && (p[1] - q[1]).abs() < 1e-9);
        }
    }

    #[test]
    fn garbage_parameter_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, "(Transform \"AffineTransform\"\n").unwrap();
        assert!(matches!(import(&path), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn absurd_or_self_referencing_parameter_files_are_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        let affine = |initial: &str, size: &str, params: &str| {
            format!(
                "(Transform \"AffineTransform\")\n(TransformParameters {params})\n\
                 (CenterOfRotationPoint 1 1)\n(InitialTransformParametersFileName \"{initial}\")\n\
                 (Size {size})\n"
            )
        };
        // An affine naming itself as its initial transform recursed until the stack overflowed.
        std::fs::write(&path, affine("t.txt", "8 8", "1 0 0 1 0 0")).unwrap();
        let e = import(&path).unwrap_err();
        assert!(e.to_string().contains("initial transform"), "{e}");
        std::fs::write(&path, affine("NoInitialTransform", "8 8", "1 0 0 1 nan 0")).unwrap();
        assert!(
            import(&path)
                .unwrap_err()
                .to_string()
                .contains("not finite")
        );
        std::fs::write(
            &path,
            affine("NoInitialTransform", "1e300 8", "1 0 0 1 0 0"),
        )
        .unwrap();
        assert!(
            import(&path)
                .unwrap_err()
                .to_string()
                .contains("megapixels")
        );
        // A B-spline at a tiny spacing would have allocated a grid of 10^15 points.
        std::fs::write(
            &path,
            "(Transform \"BSplineTransform\")\n(Size 100000 10000)\n(GridSize 4 4)\n\
             (GridSpacing 1e-9 1e-9)\n(GridOrigin 0 0)\n(TransformParameters 0)\n",
        )
        .unwrap();
        assert!(import(&path).unwrap_err().to_string().contains("spacing"));
    }
}
