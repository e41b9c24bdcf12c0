// The fast mode's flow solver: one linearisation, the smoothness weights and a red-black
// over-relaxed Gauss-Seidel sweep. Pass for pass the twin of src/flow/cpu.rs; see that file and
// src/flow/mod.rs for the method.

struct Params {
    // Tile (fixed image) and moving-crop sizes.
    width: u32,
    height: u32,
    moving_width: u32,
    moving_height: u32,
    // Level coordinates of the tile's and the crop's first pixels.
    origin_x: u32,
    origin_y: u32,
    moving_x: u32,
    moving_y: u32,
    // Size of the whole moving level, the colour this sweep updates, the median's radius.
    moving_level_width: u32,
    moving_level_height: u32,
    colour: u32,
    median_radius: u32,
    // The affine part in level coordinates: [m00, m01, m10, m11] and [ox, oy, _, _].
    matrix: vec4<f32>,
    offset: vec4<f32>,
    // Smoothness weight, relaxation, data epsilon squared, 1 / smoothness epsilon squared.
    alpha: f32,
    omega: f32,
    data_eps2: f32,
    inv_smooth_eps2: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> fixed_image: array<f32>;
@group(0) @binding(2) var<storage, read> moving_image: array<f32>;
@group(0) @binding(3) var<storage, read_write> flow: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> coefficients: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> rhs: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> weights: array<f32>;

fn moving_at(x: u32, y: u32) -> f32 {
    return moving_image[y * params.moving_width + x];
}

fn fixed_at(x: u32, y: u32) -> f32 {
    return fixed_image[y * params.width + x];
}

// Bilinear sample at level coordinates (xa, ya) with clamped neighbours; the caller keeps the
// point inside the crop. Positions are rounded in level coordinates and only then moved into the
// crop, by an exact subtraction of whole numbers, so a tile computes what the whole level does.
fn bilinear(xa: f32, ya: f32) -> f32 {
    let x = xa - f32(params.moving_x);
    let y = ya - f32(params.moving_y);
    let xf = floor(x);
    let yf = floor(y);
    let fx = x - xf;
    let fy = y - yf;
    let x0 = min(u32(xf), params.moving_width - 1u);
    let y0 = min(u32(yf), params.moving_height - 1u);
    let x1 = min(x0 + 1u, params.moving_width - 1u);
    let y1 = min(y0 + 1u, params.moving_height - 1u);
    let top = moving_at(x0, y0) + fx * (moving_at(x1, y0) - moving_at(x0, y0));
    let bottom = moving_at(x0, y1) + fx * (moving_at(x1, y1) - moving_at(x0, y1));
    return top + fy * (bottom - top);
}

@compute @workgroup_size(16, 16)
fn linearize(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    let y = id.y;
    let w = params.width;
    let h = params.height;
    if (x >= w || y >= h) {
        return;
    }
    let i = y * w + x;
    let r = flow[i];
    let xa = f32(x + params.origin_x);
    let ya = f32(y + params.origin_y);
    let m = params.matrix;
    let px = m.x * xa + m.y * ya + params.offset.x + r.x;
    let py = m.z * xa + m.w * ya + params.offset.y + r.y;
    let inside = px >= 0.5 && py >= 0.5 && px <= f32(params.moving_level_width) - 1.5
        && py <= f32(params.moving_level_height) - 1.5;
    if (!inside) {
        coefficients[i] = vec4<f32>(0.0);
        rhs[i] = vec2<f32>(0.0);
        return;
    }
    let warped = bilinear(px, py);
    let gx2 = bilinear(px + 0.5, py) - bilinear(px - 0.5, py);
    let gy2 = bilinear(px, py + 0.5) - bilinear(px, py - 0.5);
    let xl = select(x - 1u, 0u, x == 0u);
    let xr = min(x + 1u, w - 1u);
    let yu = select(y - 1u, 0u, y == 0u);
    let yd = min(y + 1u, h - 1u);
    let gx1 = (fixed_at(xr, y) - fixed_at(xl, y)) / f32(max(xr - xl, 1u));
    let gy1 = (fixed_at(x, yd) - fixed_at(x, yu)) / f32(max(yd - yu, 1u));
    let ix = 0.5 * (gx1 + gx2);
    let iy = 0.5 * (gy1 + gy2);
    let it = warped - fixed_at(x, y);
    let psi = 1.0 / sqrt(it * it + params.data_eps2);
    let residual = ix * r.x + iy * r.y - it;
    coefficients[i] = vec4<f32>(psi * ix * ix, psi * ix * iy, psi * iy * iy, 0.0);
    rhs[i] = vec2<f32>(psi * ix * residual, psi * iy * residual);
}

@compute @workgroup_size(16, 16)
fn smoothness(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    let y = id.y;
    let w = params.width;
    let h = params.height;
    if (x >= w || y >= h) {
        return;
    }
    let i = y * w + x;
    let c = flow[i];
    var right = c;
    if (x + 1u < w) {
        right = flow[i + 1u];
    }
    var down = c;
    if (y + 1u < h) {
        down = flow[i + w];
    }
    let dx = right - c;
    let dy = down - c;
    let g2 = dx.x * dx.x + dx.y * dx.y + dy.x * dy.x + dy.y * dy.y;
    weights[i] = 1.0 / sqrt(1.0 + g2 * params.inv_smooth_eps2);
}

@compute @workgroup_size(16, 16)
fn sweep(@builtin(global_invocation_id) id: vec3<u32>) {
    // Each invocation handles one pixel of the colour: x = 2 * id.x + offset in its row.
    let y = id.y;
    let w = params.width;
    let h = params.height;
    if (y >= h) {
        return;
    }
    let first = (params.colour + params.origin_x + params.origin_y + y) % 2u;
    let x = 2u * id.x + first;
    if (x >= w) {
        return;
    }
    let i = y * w + x;
    let wi = weights[i];
    var sum_w = 0.0;
    var s = vec2<f32>(0.0);
    if (x > 0u) {
        let we = 0.5 * (wi + weights[i - 1u]);
        sum_w += we;
        s += we * flow[i - 1u];
    }
    if (x + 1u < w) {
        let we = 0.5 * (wi + weights[i + 1u]);
        sum_w += we;
        s += we * flow[i + 1u];
    }
    if (y > 0u) {
        let we = 0.5 * (wi + weights[i - w]);
        sum_w += we;
        s += we * flow[i - w];
    }
    if (y + 1u < h) {
        let we = 0.5 * (wi + weights[i + w]);
        sum_w += we;
        s += we * flow[i + w];
    }
    let a = coefficients[i];
    let d11 = a.x + params.alpha * sum_w;
    let d22 = a.z + params.alpha * sum_w;
    let b1 = rhs[i].x + params.alpha * s.x;
    let b2 = rhs[i].y + params.alpha * s.y;
    let det = d11 * d22 - a.y * a.y;
    if (det <= 1e-12) {
        return;
    }
    let un = (d22 * b1 - a.y * b2) / det;
    let vn = (d11 * b2 - a.y * b1) / det;
    let c = flow[i];
    flow[i] = c + params.omega * (vec2<f32>(un, vn) - c);
}

// Component-wise upper median of the flow over a (2 r + 1)^2 window clipped to the tile, written
// to `rhs` (free until the next linearisation) and copied back to `flow` by the host.
@compute @workgroup_size(16, 16)
fn median(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    let y = id.y;
    let w = params.width;
    let h = params.height;
    if (x >= w || y >= h) {
        return;
    }
    let r = params.median_radius;
    var us: array<f32, 49>;
    var vs: array<f32, 49>;
    var n = 0u;
    let y0 = select(y - r, 0u, y < r);
    let x0 = select(x - r, 0u, x < r);
    let y1 = min(y + r + 1u, h);
    let x1 = min(x + r + 1u, w);
    for (var yy = y0; yy < y1; yy++) {
        for (var xx = x0; xx < x1; xx++) {
            let f = flow[yy * w + xx];
            us[n] = f.x;
            vs[n] = f.y;
            n++;
        }
    }
    for (var i = 1u; i < n; i++) {
        let ku = us[i];
        var j = i;
        while (j > 0u && us[j - 1u] > ku) {
            us[j] = us[j - 1u];
            j--;
        }
        us[j] = ku;
        let kv = vs[i];
        j = i;
        while (j > 0u && vs[j - 1u] > kv) {
            vs[j] = vs[j - 1u];
            j--;
        }
        vs[j] = kv;
    }
    rhs[y * w + x] = vec2<f32>(us[n / 2u], vs[n / 2u]);
}
