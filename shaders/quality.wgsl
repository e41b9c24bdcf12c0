// The QC box maps of a band: per output pixel, window sums of f, m, f², m², fm over the
// (2r + 1)² window clipped to the band's loaded rows and the image's columns, then MSE, CORR,
// dm_MSE and the fixed window's standard deviation. The CPU twin is
// `analysis::quality::boxmaps::CpuBoxMaps`, which adds in the same order: each column top to
// bottom, then the columns left to right.

struct Params {
    width: u32,
    loaded: u32,
    halo_above: u32,
    rows: u32,
    radius: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> fixed: array<f32>;
@group(0) @binding(2) var<storage, read> moving: array<f32>;
@group(0) @binding(3) var<storage, read_write> maps: array<vec4<f32>>;

// Windows with at most this variance are flat: their correlation is 0.
const FLAT_VARIANCE: f32 = 1e-6;

@compute @workgroup_size(16, 16)
fn box_maps(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    let row = id.y;
    if (x >= params.width || row >= params.rows) {
        return;
    }
    let y = row + params.halo_above;
    let r = params.radius;
    let top = select(0u, y - r, y >= r);
    let bottom = min(y + r + 1u, params.loaded);
    let left = select(0u, x - r, x >= r);
    let right = min(x + r + 1u, params.width);
    var s = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
    for (var xx = left; xx < right; xx++) {
        var c = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
        for (var yy = top; yy < bottom; yy++) {
            let i = yy * params.width + xx;
            let a = fixed[i];
            let b = moving[i];
            c[0] += a;
            c[1] += b;
            c[2] += a * a;
            c[3] += b * b;
            c[4] += a * b;
        }
        for (var k = 0; k < 5; k++) {
            s[k] += c[k];
        }
    }
    let n = f32(bottom - top) * f32(right - left);
    let mf = s[0] / n;
    let mm = s[1] / n;
    let vf = max(s[2] / n - mf * mf, 0.0);
    let vm = max(s[3] / n - mm * mm, 0.0);
    let cov = s[4] / n - mf * mm;
    let mse = max((s[2] - 2.0 * s[4] + s[3]) / n, 0.0);
    let dm_mse = max(vf + vm - 2.0 * cov, 0.0);
    var corr = 0.0;
    if (vf > FLAT_VARIANCE && vm > FLAT_VARIANCE) {
        corr = clamp(cov / sqrt(vf * vm), -1.0, 1.0);
    }
    maps[row * params.width + x] = vec4<f32>(mse, corr, dm_mse, sqrt(vf));
}
