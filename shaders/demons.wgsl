// The demons mode's iteration: scaling and squaring, the warp, the symmetric force, the fluid
// and elastic Gaussian smoothing and the update. Kernel for kernel the twin of
// src/demons/cpu.rs; see that file and src/demons/mod.rs for the method.

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
    // Size of the whole moving level, then the interior [x0, y0, x1, y1) counted in the sums.
    moving_level_width: u32,
    moving_level_height: u32,
    own_x0: u32,
    own_y0: u32,
    own_x1: u32,
    own_y1: u32,
    // The smoothing's radius (this binding's: fluid or elastic).
    radius: u32,
    pad: u32,
    // The affine part in level coordinates: [m00, m01, m10, m11] and [ox, oy, _, _].
    matrix: vec4<f32>,
    offset: vec4<f32>,
    // [1 / max_step², 2^-steps, _, _].
    scalars: vec4<f32>,
    // The smoothing's half kernel: weight of offset k at weights[k / 4][k % 4].
    weights: array<vec4<f32>, 3>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> fixed_image: array<f32>;
@group(0) @binding(2) var<storage, read> moving_image: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> displacement: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> squared: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> warped: array<f32>;
@group(0) @binding(7) var<storage, read_write> update: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read_write> scratch: array<vec2<f32>>;
// Per workgroup of `accumulate`: the sum of squared updates and the longest v + update over the
// interior.
@group(0) @binding(9) var<storage, read_write> partials: array<vec2<f32>>;

fn inside(id: vec3<u32>) -> bool {
    return id.x < params.width && id.y < params.height;
}

@compute @workgroup_size(16, 16)
fn exp_scale(@builtin(global_invocation_id) id: vec3<u32>) {
    if (!inside(id)) {
        return;
    }
    let i = id.y * params.width + id.x;
    displacement[i] = velocity[i] * params.scalars.y;
}

// Bilinear sample of the displacement at tile coordinates (x, y), clamped to the tile.
fn sample_displacement(xin: f32, yin: f32) -> vec2<f32> {
    let x = clamp(xin, 0.0, f32(params.width - 1u));
    let y = clamp(yin, 0.0, f32(params.height - 1u));
    let xf = floor(x);
    let yf = floor(y);
    let fx = x - xf;
    let fy = y - yf;
    let x0 = u32(xf);
    let y0 = u32(yf);
    let x1 = min(x0 + 1u, params.width - 1u);
    let y1 = min(y0 + 1u, params.height - 1u);
    let w = params.width;
    let a = displacement[y0 * w + x0];
    let b = displacement[y0 * w + x1];
    let c = displacement[y1 * w + x0];
    let d = displacement[y1 * w + x1];
    let top = a + fx * (b - a);
    let bottom = c + fx * (d - c);
    return top + fy * (bottom - top);
}

@compute @workgroup_size(16, 16)
fn exp_square(@builtin(global_invocation_id) id: vec3<u32>) {
    if (!inside(id)) {
        return;
    }
    let i = id.y * params.width + id.x;
    let u = displacement[i];
    let px = f32(id.x + params.origin_x) + u.x - f32(params.origin_x);
    let py = f32(id.y + params.origin_y) + u.y - f32(params.origin_y);
    squared[i] = u + sample_displacement(px, py);
}

fn moving_at(x: u32, y: u32) -> f32 {
    return moving_image[y * params.moving_width + x];
}

fn fixed_at(x: u32, y: u32) -> f32 {
    return fixed_image[y * params.width + x];
}

// Bilinear sample of the moving crop at crop coordinates with clamped neighbours.
fn bilinear(x: f32, y: f32) -> f32 {
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
fn warp(@builtin(global_invocation_id) id: vec3<u32>) {
    if (!inside(id)) {
        return;
    }
    let i = id.y * params.width + id.x;
    let u = displacement[i];
    let xa = f32(id.x + params.origin_x) + u.x;
    let ya = f32(id.y + params.origin_y) + u.y;
    let m = params.matrix;
    let px = m.x * xa + m.y * ya + params.offset.x;
    let py = m.z * xa + m.w * ya + params.offset.y;
    let mw = f32(params.moving_level_width - 1u);
    let mh = f32(params.moving_level_height - 1u);
    if (px >= 0.0 && py >= 0.0 && px <= mw && py <= mh) {
        warped[i] = bilinear(px - f32(params.moving_x), py - f32(params.moving_y));
    } else {
        warped[i] = fixed_at(id.x, id.y);
    }
}

@compute @workgroup_size(16, 16)
fn force(@builtin(global_invocation_id) id: vec3<u32>) {
    if (!inside(id)) {
        return;
    }
    let w = params.width;
    let h = params.height;
    let x = id.x;
    let y = id.y;
    let i = y * w + x;
    let diff = fixed_at(x, y) - warped[i];
    var gx = 0.0;
    if (w >= 2u) {
        let lo = select(x - 1u, 0u, x == 0u);
        let hi = min(x + 1u, w - 1u);
        let span = f32(hi - lo);
        gx = (fixed_at(hi, y) - fixed_at(lo, y)) / span
            + (warped[y * w + hi] - warped[y * w + lo]) / span;
    }
    var gy = 0.0;
    if (h >= 2u) {
        let lo = select(y - 1u, 0u, y == 0u);
        let hi = min(y + 1u, h - 1u);
        let span = f32(hi - lo);
        gy = (fixed_at(x, hi) - fixed_at(x, lo)) / span
            + (warped[hi * w + x] - warped[lo * w + x]) / span;
    }
    let denominator = gx * gx + gy * gy + diff * diff * params.scalars.x;
    if (denominator > 1e-9) {
        let s = 2.0 * diff / denominator;
        update[i] = vec2<f32>(s * gx, s * gy);
    } else {
        update[i] = vec2<f32>(0.0, 0.0);
    }
}

fn weight(k: u32) -> f32 {
    return params.weights[k / 4u][k % 4u];
}

@compute @workgroup_size(16, 16)
fn smooth_rows(@builtin(global_invocation_id) id: vec3<u32>) {
    if (!inside(id)) {
        return;
    }
    let r = i32(params.radius);
    let last = i32(params.width) - 1;
    let row = id.y * params.width;
    var sum = vec2<f32>(0.0, 0.0);
    for (var k = -r; k <= r; k++) {
        let x = clamp(i32(id.x) + k, 0, last);
        sum += weight(u32(abs(k))) * update[row + u32(x)];
    }
    scratch[row + id.x] = sum;
}

fn column_sum(id: vec3<u32>) -> vec2<f32> {
    let r = i32(params.radius);
    let last = i32(params.height) - 1;
    var sum = vec2<f32>(0.0, 0.0);
    for (var k = -r; k <= r; k++) {
        let y = clamp(i32(id.y) + k, 0, last);
        sum += weight(u32(abs(k))) * scratch[u32(y) * params.width + id.x];
    }
    return sum;
}

@compute @workgroup_size(16, 16)
fn smooth_columns_update(@builtin(global_invocation_id) id: vec3<u32>) {
    if (!inside(id)) {
        return;
    }
    update[id.y * params.width + id.x] = column_sum(id);
}

@compute @workgroup_size(16, 16)
fn smooth_columns_velocity(@builtin(global_invocation_id) id: vec3<u32>) {
    if (!inside(id)) {
        return;
    }
    velocity[id.y * params.width + id.x] = column_sum(id);
}

var<workgroup> sums: array<f32, 256>;
var<workgroup> longest: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn accumulate(
    @builtin(global_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    var sum = 0.0;
    var norm = 0.0;
    if (inside(id)) {
        let i = id.y * params.width + id.x;
        let d = update[i];
        let v = velocity[i] + d;
        update[i] = v;
        let own = id.x >= params.own_x0 && id.x < params.own_x1
            && id.y >= params.own_y0 && id.y < params.own_y1;
        if (own) {
            sum = d.x * d.x + d.y * d.y;
            norm = sqrt(v.x * v.x + v.y * v.y);
        }
    }
    sums[local] = sum;
    longest[local] = norm;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
        if (local < stride) {
            sums[local] += sums[local + stride];
            longest[local] = max(longest[local], longest[local + stride]);
        }
        workgroupBarrier();
    }
    if (local == 0u) {
        partials[group.y * groups.x + group.x] = vec2<f32>(sums[0], longest[0]);
    }
}
