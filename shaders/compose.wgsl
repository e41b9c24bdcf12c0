// Layer composition for the viewer and for export: the GPU twin of `compose::render`: a bottom
// and a top layer blended, then up to six overlays mixed in with their opacity
// (`compose::MAX_OVERLAYS`).
//
// Each layer is one pyramid level, bound as a 2D texture array whose layers are the level's
// square tiles (row-major), so no texture exceeds the device's limit. Texels are unsigned
// integers (8 or 16 bits, gray or RGB); each layer's style turns them into colours: a window,
// a gamma and, for gray layers, a colour map (twin of `compose::Display::colour`). The top layer is warped on
// the fly through a coarse displacement grid. Sampling is bilinear between the level's pixel
// centres with texel loads, so tile borders never show.

struct Params {
    // origin.x, origin.y (fixed-image coordinates of output pixel (0, 0)), step, srgb target (1/0)
    view: vec4<f32>,
    // target origin x, y (framebuffer pixels of output pixel (0, 0)'s corner), opacity, square
    output: vec4<f32>,
    // bottom level scale (2^level), top level scale, grid scale, unused
    scales: vec4<f32>,
    // bottom level: width, height, tiles across, tile side
    bottom: vec4<u32>,
    // top level: width, height, tiles across, tile side
    top: vec4<u32>,
    // grid: width, height, warp on (1/0), unused
    grid: vec4<u32>,
    // blend mode, flicker shows top (1/0), overlay count, show top (1/0)
    mode: vec4<u32>,
    // per overlay: level width, height, tiles across, tile side
    overlay_level: array<vec4<u32>, 6>,
    // per overlay: level scale, opacity, follows the warp (1/0), heatmap (1/0)
    overlay_info: array<vec4<f32>, 6>,
    // show bottom (1/0), unused, unused, unused
    layers: vec4<u32>,
    // per layer (bottom, top, overlays): how its samples show
    styles: array<LayerStyle, 8>,
}

struct LayerStyle {
    // window low, window high, gamma, colour map (0 gray, 1 inverted, 2 viridis, 3 stain,
    // 4 an RGB layer)
    window: vec4<f32>,
    // the stain's tint (rgb), the value of one sample unit (1/255 or 1/65535)
    tint: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var bottom_tiles: texture_2d_array<u32>;
@group(0) @binding(2) var top_tiles: texture_2d_array<u32>;
@group(0) @binding(3) var grid: texture_2d<f32>;
@group(0) @binding(4) var overlay0_tiles: texture_2d_array<u32>;
@group(0) @binding(5) var overlay1_tiles: texture_2d_array<u32>;
@group(0) @binding(6) var overlay2_tiles: texture_2d_array<u32>;
@group(0) @binding(7) var overlay3_tiles: texture_2d_array<u32>;
@group(0) @binding(8) var overlay4_tiles: texture_2d_array<u32>;
@group(0) @binding(9) var overlay5_tiles: texture_2d_array<u32>;

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    // One triangle that covers the viewport.
    let x = f32(i32(index & 1u) * 4 - 1);
    let y = f32(i32(index >> 1u) * 4 - 1);
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn texel(tiles: texture_2d_array<u32>, level: vec4<u32>, unit: f32, x: u32, y: u32) -> vec3<f32> {
    let side = level.w;
    let layer = (y / side) * level.z + x / side;
    return vec3<f32>(textureLoad(tiles, vec2<u32>(x % side, y % side), layer, 0).rgb) * unit;
}

// (value, 1) inside the layer, (0, 0) outside; a gray layer's value is in .x.
fn sample_layer(tiles: texture_2d_array<u32>, level: vec4<u32>, scale: f32, unit: f32, p: vec2<f32>) -> vec4<f32> {
    let size = vec2<f32>(level.xy);
    let l = (p + 0.5) / scale - 0.5;
    if (l.x < -0.5 || l.y < -0.5 || l.x >= size.x - 0.5 || l.y >= size.y - 0.5) {
        return vec4<f32>(0.0);
    }
    let c = clamp(l, vec2<f32>(0.0), size - 1.0);
    let c0 = vec2<u32>(floor(c));
    let c1 = min(c0 + 1u, level.xy - 1u);
    let f = c - floor(c);
    let top = mix(texel(tiles, level, unit, c0.x, c0.y), texel(tiles, level, unit, c1.x, c0.y), f.x);
    let bottom = mix(texel(tiles, level, unit, c0.x, c1.y), texel(tiles, level, unit, c1.x, c1.y), f.x);
    return vec4<f32>(mix(top, bottom, f.y), 1.0);
}

// Values placed in the style's window, clamped, through its gamma.
fn stretch(v: vec3<f32>, s: LayerStyle) -> vec3<f32> {
    let t = clamp((v - s.window.x) / max(s.window.y - s.window.x, 1e-4), vec3<f32>(0.0), vec3<f32>(1.0));
    if (s.window.z == 1.0) {
        return t;
    }
    return pow(max(t, vec3<f32>(1e-30)), vec3<f32>(s.window.z));
}

// The colour of a sampled value under layer `i`'s style.
fn styled(raw: vec3<f32>, i: u32) -> vec3<f32> {
    let s = params.styles[i];
    let code = s.window.w;
    if (code == 4.0) {
        return stretch(raw, s);
    }
    let t = stretch(vec3<f32>(raw.x), s).x;
    if (code == 1.0) {
        return vec3<f32>(1.0 - t);
    }
    if (code == 2.0) {
        return heat_colour(t);
    }
    if (code == 3.0) {
        return s.tint.rgb + t * (1.0 - s.tint.rgb);
    }
    return vec3<f32>(t);
}

// The sample of layer `i` at `p`: (colour, 1) inside, (0, 0) outside.
fn layer_colour(tiles: texture_2d_array<u32>, level: vec4<u32>, scale: f32, i: u32, p: vec2<f32>) -> vec4<f32> {
    let v = sample_layer(tiles, level, scale, params.styles[i].tint.w, p);
    if (v.w == 0.0) {
        return v;
    }
    return vec4<f32>(styled(v.rgb, i), 1.0);
}

fn grid_at(i: u32, j: u32) -> vec2<f32> {
    return textureLoad(grid, vec2<u32>(i, j), 0).xy;
}

fn warp(p: vec2<f32>) -> vec2<f32> {
    if (params.grid.z == 0u) {
        return p;
    }
    let size = vec2<f32>(params.grid.xy);
    let c = clamp(p / params.scales.z, vec2<f32>(0.0), size - 1.0);
    let c0 = vec2<u32>(floor(c));
    let c1 = min(c0 + 1u, params.grid.xy - 1u);
    let f = c - floor(c);
    let top = mix(grid_at(c0.x, c0.y), grid_at(c1.x, c0.y), f.x);
    let bottom = mix(grid_at(c0.x, c1.y), grid_at(c1.x, c1.y), f.x);
    return p + mix(top, bottom, f.y);
}

fn srgb_to_linear(v: vec3<f32>) -> vec3<f32> {
    let low = v / 12.92;
    let high = pow((v + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, v <= vec3<f32>(0.04045));
}

fn luminance(c: vec3<f32>) -> f32 {
    return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
}

fn blend(b: vec3<f32>, t: vec4<f32>, p: vec2<f32>) -> vec4<f32> {
    if (params.layers.x == 0u) {
        // The top layer alone, transparent where it has no data (or is hidden).
        if (t.w == 0.0 || params.mode.w == 0u) {
            return vec4<f32>(0.0);
        }
        return vec4<f32>(t.rgb, 1.0);
    }
    if (t.w == 0.0 || params.mode.w == 0u) {
        return vec4<f32>(b, 1.0);
    }
    let top = t.rgb;
    switch params.mode.x {
        case 0u: {
            return vec4<f32>(b + params.output.z * (top - b), 1.0);
        }
        case 1u: {
            return vec4<f32>(abs(top - b), 1.0);
        }
        case 2u: {
            let square = max(params.output.w, 1.0);
            let cell = floor(p.x / square) + floor(p.y / square);
            return vec4<f32>(select(top, b, cell - 2.0 * floor(cell / 2.0) < 1.0), 1.0);
        }
        case 3u: {
            let f = luminance(b);
            let m = luminance(top);
            return vec4<f32>(f, m, m, 1.0);
        }
        default: {
            return vec4<f32>(select(b, top, params.mode.y == 1u), 1.0);
        }
    }
}

// Overlay `i` (when there is one) mixed into `colour` with its opacity, sampled at the fixed
// point `p` or, when it follows the warp, at the moving point `q`.
fn mix_overlay(colour: vec4<f32>, tiles: texture_2d_array<u32>, i: u32, p: vec2<f32>, q: vec2<f32>) -> vec4<f32> {
    if (i >= params.mode.z) {
        return colour;
    }
    let info = params.overlay_info[i];
    let o = sample_layer(tiles, params.overlay_level[i], info.x, params.styles[2u + i].tint.w, select(p, q, info.z == 1.0));
    if (o.w == 0.0) {
        return colour;
    }
    var over = styled(o.rgb, 2u + i);
    if (info.w == 1.0) {
        // A heatmap: byte 0 (and the half-texel fringe next to it) is no data.
        let byte = o.x * 255.0;
        if (byte < 0.5) {
            return colour;
        }
        over = heat_colour(clamp((byte - 1.0) / 254.0, 0.0, 1.0));
    }
    return vec4<f32>(mix(colour.rgb, over, info.y), colour.a);
}

// The heatmap's colour map (twin of `compose::heat_colour`).
fn heat_colour(t: f32) -> vec3<f32> {
    var stops = array<vec3<f32>, 5>(
        vec3<f32>(68.0, 1.0, 84.0),
        vec3<f32>(59.0, 82.0, 139.0),
        vec3<f32>(33.0, 145.0, 140.0),
        vec3<f32>(94.0, 201.0, 98.0),
        vec3<f32>(253.0, 231.0, 37.0),
    );
    let s = clamp(t, 0.0, 1.0) * 4.0;
    let i = min(u32(s), 3u);
    let f = s - f32(i);
    return (stops[i] + f * (stops[i + 1u] - stops[i])) / 255.0;
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let ij = floor(position.xy - params.output.xy);
    let p = params.view.xy + params.view.z * ij;
    let b = layer_colour(bottom_tiles, params.bottom, params.scales.x, 0u, p);
    if (b.w == 0.0) {
        return vec4<f32>(0.0);
    }
    let q = warp(p);
    let t = layer_colour(top_tiles, params.top, params.scales.y, 1u, q);
    var colour = blend(b.rgb, t, p);
    if (colour.a == 0.0) {
        return colour;
    }
    colour = mix_overlay(colour, overlay0_tiles, 0u, p, q);
    colour = mix_overlay(colour, overlay1_tiles, 1u, p, q);
    colour = mix_overlay(colour, overlay2_tiles, 2u, p, q);
    colour = mix_overlay(colour, overlay3_tiles, 3u, p, q);
    colour = mix_overlay(colour, overlay4_tiles, 4u, p, q);
    colour = mix_overlay(colour, overlay5_tiles, 5u, p, q);
    colour = clamp(colour, vec4<f32>(0.0), vec4<f32>(1.0));
    if (params.view.w == 1.0) {
        colour = vec4<f32>(srgb_to_linear(colour.rgb), colour.a);
    }
    return colour;
}
