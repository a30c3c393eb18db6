// HUE uncertainty heatmap: draws per-pixel uncertainty of a predicted mask over the image quad.
//
// Input: a probability texture (one f32 foreground probability p per image pixel, in [0, 1]).
// Uncertainty is the binary entropy of p in bits, u = -(p log2 p + (1-p) log2 (1-p)): 0 where
// p is 0 or 1, 1 at p = 0.5. It is shown through viridis (perceptually uniform, readable with
// colour-vision deficiencies) and faded out below `u_transparent`, so certain areas show the
// image untouched. Pixels are fetched with textureLoad (nearest), so they stay crisp at zoom.
//
// The viridis polynomial is Matt Zucker's degree-6 least-squares fit
// (https://www.shadertoy.com/view/WlfXRN) of matplotlib's viridis table (van der Walt & Smith,
// CC0). `src/app/heatmap.rs` holds the same
// coefficients for the legend; a unit test there parses the constants below and compares.

struct Params {
    // xy = top-left, zw = bottom-right, in normalised device coordinates.
    rect_ndc: vec4<f32>,
    // Overall opacity of the heatmap in [0, 1].
    opacity: f32,
    // Below this uncertainty the heatmap is fully transparent.
    u_transparent: f32,
    // From this uncertainty on it has the full opacity (linear ramp in between).
    u_opaque: f32,
    // 1 when the render target is an sRGB format (the GPU encodes): colours go out linear.
    srgb_target: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var probability: texture_2d<f32>;

const VIRIDIS_C0 = vec3<f32>(0.2777273272234177, 0.005407344544966578, 0.3340998053353061);
const VIRIDIS_C1 = vec3<f32>(0.1050930431085774, 1.404613529898575, 1.384590162594685);
const VIRIDIS_C2 = vec3<f32>(-0.3308618287255563, 0.214847559468213, 0.09509516302823659);
const VIRIDIS_C3 = vec3<f32>(-4.634230498983486, -5.799100973351585, -19.33244095627987);
const VIRIDIS_C4 = vec3<f32>(6.228269936347081, 14.17993336680509, 56.69055260068105);
const VIRIDIS_C5 = vec3<f32>(4.776384997670288, -13.74514537774601, -65.35303263337234);
const VIRIDIS_C6 = vec3<f32>(-5.435455855934631, 4.645852612178535, 26.3124352495832);

// Viridis at t in [0, 1], as sRGB-encoded colour in [0, 1] (Horner's scheme).
fn viridis(t_in: f32) -> vec3<f32> {
    let t = clamp(t_in, 0.0, 1.0);
    let c = VIRIDIS_C0 + t * (VIRIDIS_C1 + t * (VIRIDIS_C2 + t * (VIRIDIS_C3
        + t * (VIRIDIS_C4 + t * (VIRIDIS_C5 + t * VIRIDIS_C6)))));
    return clamp(c, vec3<f32>(0.0), vec3<f32>(1.0));
}

// Binary entropy in bits; 0 at the ends (the limit of p log p).
fn uncertainty(p_in: f32) -> f32 {
    let p = clamp(p_in, 0.0, 1.0);
    if (p <= 0.0 || p >= 1.0) {
        return 0.0;
    }
    return clamp(-(p * log2(p) + (1.0 - p) * log2(1.0 - p)), 0.0, 1.0);
}

fn linear_from_srgb(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // Texture coordinate in [0, 1] across the image.
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // Two triangles: (0,0) (1,0) (0,1) / (0,1) (1,0) (1,1).
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    let c = corners[index % 6u];
    let x = mix(params.rect_ndc.x, params.rect_ndc.z, c.x);
    let y = mix(params.rect_ndc.y, params.rect_ndc.w, c.y);
    var out: VertexOut;
    out.position = vec4<f32>(x, y, 0.0, 1.0);
    out.uv = c;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let size = vec2<i32>(textureDimensions(probability));
    let texel = clamp(vec2<i32>(floor(in.uv * vec2<f32>(size))), vec2<i32>(0), size - vec2<i32>(1));
    let u = uncertainty(textureLoad(probability, texel, 0).r);
    let ramp = max(params.u_opaque - params.u_transparent, 1e-6);
    let alpha = params.opacity * clamp((u - params.u_transparent) / ramp, 0.0, 1.0);
    if (alpha <= 0.0) {
        discard;
    }
    var colour = viridis(u);
    if (params.srgb_target == 1u) {
        colour = linear_from_srgb(colour);
    }
    // Premultiplied alpha, as egui's render pass expects.
    return vec4<f32>(colour * alpha, alpha);
}
