//! The HUE uncertainty heatmap, drawn on the GPU by `shaders/heatmap.wgsl` inside egui's render
//! pass (an `egui_wgpu` paint callback, like [`super::overlay`]): the predicted foreground
//! probability of every image pixel lives in an `R32Float` texture; the shader turns it into
//! uncertainty (binary entropy in bits, [`uncertainty`]) and colours it with viridis
//! ([`colormap`]), fading out certain pixels so the image shows through.
//!
//! The pipeline is created once per window from eframe's render state ([`register`]); the
//! probability texture is re-uploaded only when the heatmap's `generation` changes. One heatmap
//! is drawn per frame (the callback resources hold one texture). [`legend_ui`] draws the colour
//! scale with the same colours.

use std::sync::Arc;

use eframe::egui_wgpu::{self, wgpu};
use egui::{Color32, Rect, pos2, vec2};

/// Source of the heatmap shader.
pub const SHADER_SOURCE: &str = include_str!("../../shaders/heatmap.wgsl");
/// Below this uncertainty (bits) the heatmap is fully transparent (p < 0.005 or p > 0.995).
pub const U_TRANSPARENT: f32 = 0.05;
/// From this uncertainty on the heatmap has its full opacity (0.03 < p < 0.97); linear ramp
/// from [`U_TRANSPARENT`].
pub const U_OPAQUE: f32 = 0.2;
/// Opacity a caller may start with.
pub const DEFAULT_OPACITY: f32 = 0.6;
const UNIFORM_BYTES: usize = 32;

/// Viridis as a degree-6 polynomial per channel, `c0 + t (c1 + t (c2 + …))`, sRGB-encoded.
/// Matt Zucker's least-squares fit (<https://www.shadertoy.com/view/WlfXRN>) of matplotlib's
/// viridis table (Stéfan van der Walt and Nathaniel Smith, CC0). The shader holds the same
/// numbers (`VIRIDIS_C0` … `VIRIDIS_C6`); a test compares them.
#[allow(
    clippy::excessive_precision,
    reason = "the same decimal text as the shader, so both round it alike"
)]
pub const VIRIDIS: [[f32; 3]; 7] = [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

/// What to draw: the predicted probability map of one image, and how strongly.
#[derive(Debug, Clone)]
pub struct HeatmapOverlay {
    pub width: u32,
    pub height: u32,
    /// Foreground probability per image pixel, row-major, in [0, 1] (values outside are
    /// clamped, NaN counts as certain).
    pub probability: Arc<Vec<f32>>,
    /// Changes whenever `probability` changes; the GPU copy is refreshed only then.
    pub generation: u64,
    /// Overall opacity in [0, 1] (at full uncertainty).
    pub opacity: f32,
}

/// Uncertainty of a foreground probability: binary entropy in bits, 0 at p = 0 or 1, 1 at
/// p = 0.5. The CPU twin of the shader's `uncertainty`.
pub fn uncertainty(p: f32) -> f32 {
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    if p <= 0.0 || p >= 1.0 {
        return 0.0;
    }
    (-(p * p.log2() + (1.0 - p) * (1.0 - p).log2())).clamp(0.0, 1.0)
}

/// Opacity factor the shader applies at uncertainty `u` (before the overall opacity).
pub fn alpha_at(u: f32) -> f32 {
    ((u - U_TRANSPARENT) / (U_OPAQUE - U_TRANSPARENT)).clamp(0.0, 1.0)
}

/// Viridis at `t` in [0, 1] as 8-bit sRGB: the CPU twin of the shader's colormap (same
/// coefficients, same f32 arithmetic), used by the legend.
pub fn colormap(t: f32) -> [u8; 3] {
    let [r, g, b] = colormap_f32(t);
    let to_u8 = |c: f32| (c * 255.0).round() as u8;
    [to_u8(r), to_u8(g), to_u8(b)]
}

/// Viridis at `t` in [0, 1] as sRGB-encoded floats in [0, 1].
pub fn colormap_f32(t: f32) -> [f32; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let mut out = [0.0f32; 3];
    for (channel, value) in out.iter_mut().enumerate() {
        let mut acc = VIRIDIS[6][channel];
        for coefficients in VIRIDIS[..6].iter().rev() {
            acc = coefficients[channel] + t * acc;
        }
        *value = acc.clamp(0.0, 1.0);
    }
    out
}

/// GPU objects shared by every heatmap of a window.
struct HeatmapPipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    uniform: wgpu::Buffer,
    srgb_target: bool,
    current: Option<Uploaded>,
}

/// The probability texture on the GPU, what it holds, and the bind group using it.
struct Uploaded {
    texture: wgpu::Texture,
    size: [u32; 2],
    generation: u64,
    bind_group: wgpu::BindGroup,
}

/// Creates the heatmap pipeline for the window's target format. Call once when the app starts
/// (with `cc.wgpu_render_state`), beside [`super::overlay::register`]; without it, heatmaps are
/// simply not drawn.
pub fn register(render_state: &egui_wgpu::RenderState) {
    let device = &render_state.device;
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("m2c heatmap"),
        source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("m2c heatmap"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    // R32Float is not filterable; textureLoad needs no sampler.
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            },
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("m2c heatmap"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("m2c heatmap"),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &shader,
            entry_point: Some("vs_main"),
            buffers: &[],
            compilation_options: wgpu::PipelineCompilationOptions::default(),
        },
        fragment: Some(wgpu::FragmentState {
            module: &shader,
            entry_point: Some("fs_main"),
            targets: &[Some(wgpu::ColorTargetState {
                format: render_state.target_format,
                blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
            compilation_options: wgpu::PipelineCompilationOptions::default(),
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    let uniform = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("m2c heatmap params"),
        size: UNIFORM_BYTES as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(HeatmapPipeline {
            pipeline,
            layout,
            uniform,
            srgb_target: render_state.target_format.is_srgb(),
            current: None,
        });
}

/// The paint callback drawing `heatmap` over `image_rect`, clipped to `canvas` (both in `ui`
/// points), exactly as [`super::overlay::paint_callback`] places the mask overlay. Add it after
/// the image (and after the mask overlay, so the heatmap stays readable).
pub fn paint_callback(canvas: Rect, image_rect: Rect, heatmap: HeatmapOverlay) -> egui::Shape {
    let to_ndc = |p: egui::Pos2| {
        [
            2.0 * (p.x - canvas.min.x) / canvas.width().max(1e-3) - 1.0,
            1.0 - 2.0 * (p.y - canvas.min.y) / canvas.height().max(1e-3),
        ]
    };
    let [x0, y0] = to_ndc(image_rect.min);
    let [x1, y1] = to_ndc(image_rect.max);
    egui_wgpu::Callback::new_paint_callback(
        canvas,
        HeatmapCallback {
            rect_ndc: [x0, y0, x1, y1],
            heatmap,
        },
    )
    .into()
}

struct HeatmapCallback {
    rect_ndc: [f32; 4],
    heatmap: HeatmapOverlay,
}

/// The uniform block as the shader lays it out: vec4, f32, f32, f32, u32.
fn uniform_bytes(rect_ndc: [f32; 4], opacity: f32, srgb_target: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(UNIFORM_BYTES);
    for v in rect_ndc {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let opacity = if opacity.is_nan() {
        0.0
    } else {
        opacity.clamp(0.0, 1.0)
    };
    out.extend_from_slice(&opacity.to_le_bytes());
    out.extend_from_slice(&U_TRANSPARENT.to_le_bytes());
    out.extend_from_slice(&U_OPAQUE.to_le_bytes());
    out.extend_from_slice(&u32::from(srgb_target).to_le_bytes());
    out
}

/// Texel bytes of the probability map: clamped to [0, 1], NaN as 0 (certain, not drawn).
fn texel_bytes(probability: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(probability.len() * 4);
    for &p in probability {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        out.extend_from_slice(&p.to_ne_bytes());
    }
    out
}

impl HeatmapPipeline {
    /// Makes `current` hold `h`'s probabilities, uploading only when size or generation changed.
    fn upload(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, h: &HeatmapOverlay) {
        let size = [h.width, h.height];
        if let Some(c) = &self.current
            && c.size == size
            && c.generation == h.generation
        {
            return;
        }
        let extent = wgpu::Extent3d {
            width: h.width,
            height: h.height,
            depth_or_array_layers: 1,
        };
        if self.current.as_ref().is_none_or(|c| c.size != size) {
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("m2c probability map"),
                size: extent,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R32Float,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("m2c heatmap"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&view),
                    },
                ],
            });
            self.current = Some(Uploaded {
                texture,
                size,
                generation: h.generation,
                bind_group,
            });
        }
        let Some(current) = self.current.as_mut() else {
            return;
        };
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &current.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &texel_bytes(&h.probability),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(h.width * 4),
                rows_per_image: Some(h.height),
            },
            extent,
        );
        current.generation = h.generation;
    }
}

impl egui_wgpu::CallbackTrait for HeatmapCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(p) = resources.get_mut::<HeatmapPipeline>() else {
            return Vec::new();
        };
        let h = &self.heatmap;
        let expected = (h.width as usize).checked_mul(h.height as usize);
        let max_side = device.limits().max_texture_dimension_2d;
        if h.width == 0
            || h.height == 0
            || h.width > max_side
            || h.height > max_side
            || expected != Some(h.probability.len())
        {
            p.current = None;
            return Vec::new();
        }
        queue.write_buffer(
            &p.uniform,
            0,
            &uniform_bytes(self.rect_ndc, h.opacity, p.srgb_target),
        );
        p.upload(device, queue, h);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(p) = resources.get::<HeatmapPipeline>() else {
            return;
        };
        let Some(current) = &p.current else {
            return;
        };
        render_pass.set_pipeline(&p.pipeline);
        render_pass.set_bind_group(0, &current.bind_group, &[]);
        render_pass.draw(0..6, 0..1);
    }
}

/// Label at the certain end of the legend.
pub const LEGEND_CERTAIN: &str = "certain";
/// Label at the uncertain end of the legend.
pub const LEGEND_UNCERTAIN: &str = "most uncertain (p = 0.5)";
/// Accessible name of the legend's colour bar.
pub const LEGEND_BAR: &str = "Uncertainty colour scale";
/// Size of the colour bar, in points.
pub const LEGEND_BAR_SIZE: egui::Vec2 = vec2(220.0, 14.0);
const LEGEND_STOPS: usize = 64;

/// The heatmap's legend: a title, the colour bar (uncertainty 0 … 1 bit, faded where the
/// heatmap fades), ticks at 0, 0.5 and 1, and the words at both ends. Ends with `_ui`: draws
/// only.
pub fn legend_ui(ui: &mut egui::Ui) -> egui::Response {
    ui.vertical(|ui| {
        ui.label("Uncertainty (HUE)").on_hover_text(
            "Binary entropy of the predicted probability p, in bits: 0 where the model is \
             sure (p = 0 or 1), 1 at p = 0.5. Below 0.05 the image shows through.",
        );
        let (rect, response) = ui.allocate_exact_size(LEGEND_BAR_SIZE, egui::Sense::hover());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, LEGEND_BAR));
        if ui.is_rect_visible(rect) {
            paint_bar(ui.painter(), rect, ui.visuals().extreme_bg_color);
            let text = ui.visuals().text_color();
            let font = egui::FontId::proportional(10.0);
            for (u, align) in [
                (0.0, egui::Align2::LEFT_TOP),
                (0.5, egui::Align2::CENTER_TOP),
                (1.0, egui::Align2::RIGHT_TOP),
            ] {
                let x = egui::lerp(rect.x_range(), u);
                ui.painter().line_segment(
                    [pos2(x, rect.max.y), pos2(x, rect.max.y + 3.0)],
                    egui::Stroke::new(1.0, text),
                );
                let label = if u == 0.5 {
                    "0.5".to_owned()
                } else {
                    format!("{u:.0}")
                };
                ui.painter()
                    .text(pos2(x, rect.max.y + 3.0), align, label, font.clone(), text);
            }
            ui.add_space(12.0);
        }
        ui.allocate_ui_with_layout(
            vec2(LEGEND_BAR_SIZE.x, 16.0),
            egui::Layout::left_to_right(egui::Align::Center),
            |ui| {
                ui.small(LEGEND_CERTAIN);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.small(LEGEND_UNCERTAIN);
                });
            },
        );
        response
    })
    .inner
}

/// The colour bar: `LEGEND_STOPS` flat segments, each the colormap at its centre, blended over
/// `background` with the heatmap's own fade-out so the legend matches what is drawn.
fn paint_bar(painter: &egui::Painter, rect: Rect, background: Color32) {
    let step = rect.width() / LEGEND_STOPS as f32;
    for i in 0..LEGEND_STOPS {
        let u = (i as f32 + 0.5) / LEGEND_STOPS as f32;
        let colour = legend_colour(u, background);
        let x0 = rect.min.x + step * i as f32;
        let segment = Rect::from_min_max(pos2(x0, rect.min.y), pos2(x0 + step + 0.5, rect.max.y));
        painter.rect_filled(segment.intersect(rect), 0.0, colour);
    }
    painter.rect_stroke(
        rect,
        0.0,
        egui::Stroke::new(1.0, Color32::from_gray(110)),
        egui::StrokeKind::Outside,
    );
}

/// The legend's colour at uncertainty `u` over `background` (sRGB blend, as egui blends).
pub fn legend_colour(u: f32, background: Color32) -> Color32 {
    let [r, g, b] = colormap_f32(u);
    let a = alpha_at(u);
    let mix = |c: f32, bg: u8| (c * 255.0 * a + f32::from(bg) * (1.0 - a)).round() as u8;
    Color32::from_rgb(
        mix(r, background.r()),
        mix(g, background.g()),
        mix(b, background.b()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `VIRIDIS_Cn` constants of the WGSL source, as written there.
    fn shader_coefficients() -> Vec<[f32; 3]> {
        let mut out = Vec::new();
        for n in 0..7 {
            let prefix = format!("const VIRIDIS_C{n} = vec3<f32>(");
            let line = SHADER_SOURCE
                .lines()
                .find(|l| l.trim_start().starts_with(&prefix))
                .unwrap_or_else(|| panic!("shader lacks {prefix}"));
            let inner = line
                .trim()
                .trim_start_matches(&prefix)
                .trim_end_matches(");");
            let values: Vec<f32> = inner
                .split(',')
                .map(|v| v.trim().parse().expect("a number"))
                .collect();
            out.push([values[0], values[1], values[2]]);
        }
        out
    }

    #[test]
    fn rust_and_shader_colormaps_use_the_same_coefficients() {
        let shader = shader_coefficients();
        for (n, (wgsl, rust)) in shader.iter().zip(VIRIDIS.iter()).enumerate() {
            for c in 0..3 {
                // Both are the nearest f32 of the same decimal text.
                assert_eq!(
                    wgsl[c], rust[c],
                    "VIRIDIS_C{n}[{c}]: shader {} vs Rust {}",
                    wgsl[c], rust[c]
                );
            }
        }
    }

    #[test]
    fn colormap_follows_matplotlib_viridis() {
        // matplotlib's viridis at 0, 0.25, 0.5, 0.75, 1 (#440154 #3b528b #21918c #5ec962
        // #fde725); the polynomial fit stays within 4/255 of its table.
        let reference: [(f32, [u8; 3]); 5] = [
            (0.0, [0x44, 0x01, 0x54]),
            (0.25, [0x3b, 0x52, 0x8b]),
            (0.5, [0x21, 0x91, 0x8c]),
            (0.75, [0x5e, 0xc9, 0x62]),
            (1.0, [0xfd, 0xe7, 0x25]),
        ];
        for (t, expected) in reference {
            let got = colormap(t);
            for c in 0..3 {
                let d = (i32::from(got[c]) - i32::from(expected[c])).abs();
                assert!(d <= 4, "viridis({t}) = {got:?}, matplotlib {expected:?}");
            }
        }
        // Lightness grows monotonically (perceptual order: more uncertain = brighter).
        let luma = |c: [u8; 3]| {
            0.2126 * f32::from(c[0]) + 0.7152 * f32::from(c[1]) + 0.0722 * f32::from(c[2])
        };
        let mut last = -1.0;
        for i in 0..=100 {
            let l = luma(colormap(i as f32 / 100.0));
            assert!(
                l > last - 0.5,
                "lightness drops at t = {}",
                i as f32 / 100.0
            );
            last = l;
        }
        assert_eq!(colormap(-1.0), colormap(0.0));
        assert_eq!(colormap(f32::NAN), colormap(0.0));
        assert_eq!(colormap(7.0), colormap(1.0));
    }

    #[test]
    fn uncertainty_is_normalised_binary_entropy() {
        assert_eq!(uncertainty(0.0), 0.0);
        assert_eq!(uncertainty(1.0), 0.0);
        assert_eq!(uncertainty(f32::NAN), 0.0);
        assert_eq!(uncertainty(-3.0), 0.0);
        assert!((uncertainty(0.5) - 1.0).abs() < 1e-6);
        assert!((uncertainty(0.11) - 0.4999).abs() < 1e-3);
        assert!((uncertainty(0.25) - uncertainty(0.75)).abs() < 1e-6);
        assert_eq!(alpha_at(0.0), 0.0);
        assert_eq!(alpha_at(U_TRANSPARENT), 0.0);
        assert_eq!(alpha_at(U_OPAQUE), 1.0);
        assert_eq!(alpha_at(1.0), 1.0);
    }

    #[test]
    fn uniform_block_and_texels_have_the_shader_layout() {
        let bytes = uniform_bytes([-1.0, 1.0, 1.0, -1.0], 0.5, true);
        assert_eq!(bytes.len(), UNIFORM_BYTES);
        assert_eq!(&bytes[16..20], &0.5f32.to_le_bytes());
        assert_eq!(&bytes[20..24], &U_TRANSPARENT.to_le_bytes());
        assert_eq!(&bytes[24..28], &U_OPAQUE.to_le_bytes());
        assert_eq!(&bytes[28..32], &1u32.to_le_bytes());
        assert_eq!(&uniform_bytes([0.0; 4], f32::NAN, false)[16..20], &[0; 4]);
        let texels = texel_bytes(&[0.25, f32::NAN, 2.0, -1.0]);
        assert_eq!(texels.len(), 16);
        assert_eq!(&texels[0..4], &0.25f32.to_ne_bytes());
        assert_eq!(&texels[4..8], &0.0f32.to_ne_bytes());
        assert_eq!(&texels[8..12], &1.0f32.to_ne_bytes());
        assert_eq!(&texels[12..16], &0.0f32.to_ne_bytes());
    }
}
