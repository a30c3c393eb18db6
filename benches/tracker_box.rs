//! Latency of one box prompt on cached image features with the interactive (tracker) head, at
//! full size (`Sam3TrackerConfig::full`: 72×72 grid, D = 256, 288×288 mask logits), random
//! weights: prompt encoder, two-way transformer, upscaling, 4 mask heads, reading back the
//! IoUs, the object score and the best mask. Goal on a GPU: < 50 ms. Also the per-image
//! tracker feature step (tracker neck + `conv_s0`/`conv_s1` on a ViT output), paid once per
//! image.
//!
//! Run: `cargo bench --bench tracker_box` (flex CPU always; wgpu when an adapter exists, e.g.
//! lavapipe; `-- box` for the per-box benches only: on lavapipe the feature step's 3×3 conv at
//! 288×288 takes minutes).

use burn::tensor::{Device, Distribution, Tensor};
use m2c::engine::device::{cpu_device, wgpu_device};
use m2c::model::{Sam3Tracker, Sam3TrackerConfig, TrackerFeatures};

fn main() {
    divan::main();
}

/// A box covering the middle of the 1008×1008 input.
const BOX_XYXY: [f32; 4] = [300.0, 250.0, 700.0, 800.0];

/// The tracker and random inputs at full size: ViT output [1, C, g, g] and cached tracker
/// features (image [1, D, g, g], s0 [1, D/8, 4g, 4g], s1 [1, D/4, 2g, 2g], grid PE).
fn setup(device: &Device) -> (Sam3Tracker, Tensor<4>, TrackerFeatures) {
    let config = Sam3TrackerConfig::full();
    let tracker = config.init(device);
    let c = config.vision_config.backbone_config.hidden_size;
    let d = config.vision_config.fpn_hidden_size;
    let g = config.prompt_encoder_config.grid();
    let normal = Distribution::Normal(0.0, 1.0);
    let backbone = Tensor::<4>::random([1, c, g, g], normal, device);
    // random cached features: the box bench does not pay for the neck
    let features = TrackerFeatures {
        image: Tensor::random([1, d, g, g], normal, device),
        s0: Tensor::random([1, d / 8, 4 * g, 4 * g], normal, device),
        s1: Tensor::random([1, d / 4, 2 * g, 2 * g], normal, device),
        pos: tracker.shared_image_embedding.grid(g, g, device),
    };
    (tracker, backbone, features)
}

fn bench_box(bencher: divan::Bencher, device: Option<Device>) {
    let Some(device) = device else {
        eprintln!("SKIP: no such device");
        return;
    };
    let (tracker, _, features) = setup(&device);
    // warm-up: kernels compiled, buffers allocated
    if let Ok(seg) = tracker.segment_box(&features, BOX_XYXY) {
        divan::black_box(seg.mask.into_data());
    }
    bencher.bench_local(|| {
        let Ok(seg) = tracker.segment_box(&features, divan::black_box(BOX_XYXY)) else {
            return;
        };
        divan::black_box(seg.mask.into_data());
    });
}

fn bench_features(bencher: divan::Bencher, device: Option<Device>) {
    let Some(device) = device else {
        eprintln!("SKIP: no such device");
        return;
    };
    let (tracker, backbone, _) = setup(&device);
    bencher.bench_local(|| {
        let Ok(features) = tracker.image_features(backbone.clone()) else {
            return;
        };
        divan::black_box(features.s0.into_data());
    });
}

/// One box on cached features, flex CPU backend.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn box_flex(bencher: divan::Bencher) {
    bench_box(bencher, Some(cpu_device()));
}

/// One box on cached features, wgpu (lavapipe on machines without a GPU).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn box_wgpu(bencher: divan::Bencher) {
    bench_box(bencher, wgpu_device().ok());
}

/// Tracker features from a ViT output (once per image), flex CPU backend.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn features_flex(bencher: divan::Bencher) {
    bench_features(bencher, Some(cpu_device()));
}

/// Tracker features from a ViT output (once per image), wgpu.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn features_wgpu(bencher: divan::Bencher) {
    bench_features(bencher, wgpu_device().ok());
}
