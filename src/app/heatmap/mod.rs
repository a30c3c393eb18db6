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
use egui::Rect;

mod legend;
mod scale;

pub use legend::{
    LEGEND_BAR, LEGEND_BAR_SIZE, LEGEND_CERTAIN, LEGEND_UNCERTAIN, legend_colour, legend_ui,
};
pub use scale::{VIRIDIS, alpha_at, colormap, colormap_f32, uncertainty};

/// Source of the heatmap shader.
pub const SHADER_SOURCE: &str = include_str!("../../../shaders/heatmap.wgsl");
/// Below this uncertainty (bits) the heatmap is fully transparent (p < 0.005 or p > 0.995).
pub const U_TRANSPARENT: f32 = 0.05;
/// From this uncertainty on the heatmap has its full opacity (0.03 < p < 0.97); linear ramp
/// from [`U_TRANSPARENT`].
pub const U_OPAQUE: f32 = 0.2;
/// Opacity a caller may start with.
pub const DEFAULT_OPACITY: f32 = 0.6;
const UNIFORM_BYTES: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::*;

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
