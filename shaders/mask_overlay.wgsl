// Mask overlay: draws a label map over the image quad.
//
// Inputs: a label texture (one u32 label value per image pixel, 0 = background), a palette
// uniform (RGBA per label value, premultiplied later), overall opacity, and an outline mode.
// The vertex stage draws one quad covering `rect_ui` (the image's rectangle in normalised
// device coordinates); the fragment stage looks up the label under each screen pixel
// (nearest neighbour, so label edges stay crisp at any zoom) and either fills it or, in
// outline mode, only colours pixels whose 4-neighbours carry another label.

struct Params {
    // xy = top-left, zw = bottom-right, in normalised device coordinates.
    rect_ndc: vec4<f32>,
    // Overall opacity of the overlay in [0, 1].
    opacity: f32,
    // 0 = filled, 1 = outline only.
    outline: u32,
    // Number of valid palette entries.
    palette_len: u32,
    _pad: u32,
    palette: array<vec4<f32>, 256>,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var labels: texture_2d<u32>;

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

fn label_at(p: vec2<i32>, size: vec2<i32>) -> u32 {
    let q = clamp(p, vec2<i32>(0, 0), size - vec2<i32>(1, 1));
    return textureLoad(labels, q, 0).r;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let size = vec2<i32>(textureDimensions(labels));
    let p = vec2<i32>(floor(in.uv * vec2<f32>(size)));
    let label = label_at(p, size);
    if (label == 0u || label >= params.palette_len) {
        discard;
    }
    if (params.outline == 1u) {
        let edge = label_at(p + vec2<i32>(1, 0), size) != label
            || label_at(p - vec2<i32>(1, 0), size) != label
            || label_at(p + vec2<i32>(0, 1), size) != label
            || label_at(p - vec2<i32>(0, 1), size) != label;
        if (!edge) {
            discard;
        }
    }
    let colour = params.palette[label];
    let alpha = colour.a * params.opacity;
    // Premultiplied alpha, as egui's render pass expects.
    return vec4<f32>(colour.rgb * alpha, alpha);
}
