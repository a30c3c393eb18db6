//! The mask overlay, drawn on the GPU by `shaders/mask_overlay.wgsl` inside egui's render pass
//! (an `egui_wgpu` paint callback): label values live in an `R8Uint` texture, colours in a
//! palette uniform, so opacity, outline mode and colours change without re-uploading the mask,
//! and label edges stay crisp at any zoom.
//!
//! The pipeline is created once per window from eframe's render state ([`register`]); the label
//! texture is re-uploaded only when the overlay's `generation` changes.

use std::sync::Arc;

use eframe::egui_wgpu::{self, wgpu};
use egui::Rect;

/// Source of the overlay shader.
pub const SHADER_SOURCE: &str = include_str!("../../shaders/mask_overlay.wgsl");
/// Palette entries (label values 0..=255; 0 is background and never drawn).
pub const PALETTE_LEN: usize = 256;
const HEADER_BYTES: usize = 32;
const UNIFORM_BYTES: usize = HEADER_BYTES + PALETTE_LEN * 16;

/// What to draw: a label map the size of the image, and how.
#[derive(Debug, Clone)]
pub struct LabelOverlay {
    pub width: u32,
    pub height: u32,
    /// One label value per pixel, row-major; 0 = background.
    pub labels: Arc<Vec<u8>>,
    /// Changes whenever `labels` changes; the GPU copy is refreshed only then.
    pub generation: u64,
    /// Linear RGBA per label value (alpha = that label's own opacity).
    pub palette: Arc<[[f32; 4]; PALETTE_LEN]>,
    /// Overall opacity in [0, 1].
    pub opacity: f32,
    /// Draw only the outlines of labelled regions.
    pub outline: bool,
}

/// GPU objects shared by every overlay of a window.
struct OverlayPipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    uniform: wgpu::Buffer,
    /// Label texture, its size and generation, and the bind group using it.
    current: Option<(wgpu::Texture, [u32; 2], u64, wgpu::BindGroup)>,
}

/// Creates the overlay pipeline for the window's target format. Call once when the app starts
/// (with `cc.wgpu_render_state`); without it, overlays are simply not drawn.
pub fn register(render_state: &egui_wgpu::RenderState) {
    let device = &render_state.device;
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("m2c mask overlay"),
        source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("m2c mask overlay"),
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
                    sample_type: wgpu::TextureSampleType::Uint,
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            },
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("m2c mask overlay"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("m2c mask overlay"),
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
        label: Some("m2c mask overlay params"),
        size: UNIFORM_BYTES as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(OverlayPipeline {
            pipeline,
            layout,
            uniform,
            current: None,
        });
}

/// The paint callback drawing `overlay` over `image_rect`, clipped to `canvas` (both in `ui`
/// points). The callback covers the visible canvas; the image rectangle reaches the shader in
/// normalised device coordinates of that viewport, so a zoomed-in image may extend past it.
pub fn paint_callback(canvas: Rect, image_rect: Rect, overlay: LabelOverlay) -> egui::Shape {
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
        OverlayCallback {
            rect_ndc: [x0, y0, x1, y1],
            overlay,
        },
    )
    .into()
}

struct OverlayCallback {
    rect_ndc: [f32; 4],
    overlay: LabelOverlay,
}

/// The uniform block as the shader lays it out (std140-compatible: vec4, f32, u32, u32, u32,
/// then 256 × vec4).
fn uniform_bytes(rect_ndc: [f32; 4], overlay: &LabelOverlay) -> Vec<u8> {
    let mut out = Vec::with_capacity(UNIFORM_BYTES);
    for v in rect_ndc {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&overlay.opacity.clamp(0.0, 1.0).to_le_bytes());
    out.extend_from_slice(&u32::from(overlay.outline).to_le_bytes());
    out.extend_from_slice(&(PALETTE_LEN as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for colour in overlay.palette.iter() {
        for c in colour {
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    out
}

impl egui_wgpu::CallbackTrait for OverlayCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(p) = resources.get_mut::<OverlayPipeline>() else {
            return Vec::new();
        };
        let o = &self.overlay;
        let expected = (o.width as usize).checked_mul(o.height as usize);
        if o.width == 0 || o.height == 0 || expected != Some(o.labels.len()) {
            p.current = None;
            return Vec::new();
        }
        queue.write_buffer(&p.uniform, 0, &uniform_bytes(self.rect_ndc, o));
        let stale = !matches!(&p.current, Some((_, size, generation, _))
            if *size == [o.width, o.height] && *generation == o.generation);
        if stale {
            let size = wgpu::Extent3d {
                width: o.width,
                height: o.height,
                depth_or_array_layers: 1,
            };
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("m2c label map"),
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Uint,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                &o.labels,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(o.width),
                    rows_per_image: Some(o.height),
                },
                size,
            );
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("m2c mask overlay"),
                layout: &p.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: p.uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(&view),
                    },
                ],
            });
            p.current = Some((texture, [o.width, o.height], o.generation, bind_group));
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(p) = resources.get::<OverlayPipeline>() else {
            return;
        };
        let Some((_, _, _, bind_group)) = &p.current else {
            return;
        };
        render_pass.set_pipeline(&p.pipeline);
        render_pass.set_bind_group(0, bind_group, &[]);
        render_pass.draw(0..6, 0..1);
    }
}

/// A default palette: distinct, colour-blind-friendly hues for labels 1…, alpha 1.
pub fn default_palette() -> [[f32; 4]; PALETTE_LEN] {
    const BASE: [[f32; 3]; 8] = [
        [0.90, 0.62, 0.00],
        [0.34, 0.71, 0.91],
        [0.00, 0.62, 0.45],
        [0.94, 0.89, 0.26],
        [0.00, 0.45, 0.70],
        [0.84, 0.37, 0.00],
        [0.80, 0.47, 0.65],
        [0.60, 0.60, 0.60],
    ];
    let mut out = [[0.0; 4]; PALETTE_LEN];
    for (i, slot) in out.iter_mut().enumerate().skip(1) {
        let [r, g, b] = BASE[(i - 1) % BASE.len()];
        *slot = [r, g, b, 1.0];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_block_has_the_shader_layout() {
        let overlay = LabelOverlay {
            width: 1,
            height: 1,
            labels: Arc::new(vec![1]),
            generation: 0,
            palette: Arc::new(default_palette()),
            opacity: 0.5,
            outline: true,
        };
        let bytes = uniform_bytes([-1.0, 1.0, 1.0, -1.0], &overlay);
        assert_eq!(bytes.len(), UNIFORM_BYTES);
        assert_eq!(&bytes[16..20], &0.5f32.to_le_bytes());
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
        // Palette entry 1 starts after the header and entry 0.
        let r1 = f32::from_le_bytes(
            bytes[HEADER_BYTES + 16..HEADER_BYTES + 20]
                .try_into()
                .unwrap(),
        );
        assert_eq!(r1, default_palette()[1][0]);
    }

    #[test]
    fn the_shader_module_embedded_here_is_the_validated_one() {
        assert!(SHADER_SOURCE.contains("fn fs_main"));
    }
}
