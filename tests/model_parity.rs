//! Parity of the burn SAM3 detector with HF transformers 5.17 on the `tiny` preset.
//!
//! Reference tensors: `shared/fixtures/sam3-tiny` (made by `shared/tools/make_sam3_fixtures.py
//! --preset tiny --seed 0`). Each stage starts from the *reference* input of that stage, so a
//! failure points at one component. Every test runs on burn's CPU backend (flex) and, when a
//! wgpu adapter exists, on wgpu too (required when `M2C_REQUIRE_GPU_ADAPTER=1`, as in CI).
//! Tolerance: max abs error ≤ 1e-4 on every element (activations are O(1)–O(15)).
// Helpers outside #[test] fns panic on broken fixtures on purpose.
#![allow(clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::store::{ModuleStore as _, SafetensorsStore, bridge};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use m2c::engine::device::{cpu_device, wgpu_device};
use m2c::model::geometry_encoder::ExemplarBox;
use m2c::model::neck::sine_position_encoding;
use m2c::model::preprocess::{RgbImage, normalized_chw};
use m2c::model::{
    ImageFeatures, ModelError, Prompt, Sam3, Sam3Config, TextPrompt, WeightPrecision,
};

/// Max abs error allowed everywhere.
const ATOL: f32 = 1e-4;

fn fixture_dir() -> Option<PathBuf> {
    common::shared_path("fixtures/sam3-tiny")
}

/// The devices to check: flex always, wgpu when an adapter exists.
fn devices() -> Vec<(&'static str, Device)> {
    let mut out = vec![("flex", cpu_device())];
    match wgpu_device() {
        Ok(device) => out.push(("wgpu", device)),
        Err(e) => {
            assert!(
                std::env::var_os("M2C_REQUIRE_GPU_ADAPTER").is_none(),
                "wgpu required but unavailable: {e}"
            );
            eprintln!("SKIP wgpu part: {e}");
        }
    }
    out
}

/// Reads one tensor of a fixture file.
fn read(dir: &Path, file: &str, name: &str) -> TensorData {
    let mut store = SafetensorsStore::from_file(dir.join(file));
    let tensor = store
        .get_tensor(name)
        .expect("readable fixture")
        .unwrap_or_else(|| panic!("{file} lacks {name}"));
    bridge::to_data(tensor).expect("fixture data")
}

fn float<const D: usize>(dir: &Path, file: &str, name: &str, device: &Device) -> Tensor<D> {
    Tensor::from_data(read(dir, file, name).convert::<f32>(), device)
}

fn int<const D: usize>(dir: &Path, file: &str, name: &str, device: &Device) -> Tensor<D, Int> {
    let data = read(dir, file, name).convert::<i64>();
    Tensor::from_data(data, device)
}

fn valid_mask(dir: &Path, device: &Device) -> Tensor<2, Bool> {
    int::<2>(dir, "inputs.safetensors", "attention_mask", device).equal_elem(1)
}

/// Compares with [`ATOL`], naming the device and the worst element.
fn check<const D: usize>(
    device: &str,
    name: &str,
    actual: Tensor<D>,
    dir: &Path,
    file: &str,
    key: &str,
) {
    let expected = read(dir, file, key);
    let expected_dims = expected.shape().to_vec();
    if expected_dims.is_empty() {
        assert_eq!(actual.dims().to_vec(), vec![1], "[{device}] {name}: scalar");
    } else {
        assert_eq!(
            actual.dims().to_vec(),
            expected_dims,
            "[{device}] {name}: shape"
        );
    }
    let actual: Vec<f32> = actual
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .expect("f32 data");
    let expected: Vec<f32> = expected.convert::<f32>().try_to_vec().expect("f32 data");
    let (err, _) = common::max_abs_diff(&actual, &expected);
    eprintln!("[{device}] {name}: max abs err {err:.3e}");
    common::assert_close(&format!("[{device}] {name}"), &actual, &expected, ATOL);
}

fn tiny_model(dir: &Path, device: &Device) -> Sam3 {
    let config = Sam3Config::from_file(&dir.join("sam3_config.json")).expect("tiny config");
    assert_eq!(
        config,
        Sam3Config::tiny(),
        "sam3_config.json differs from the tiny preset"
    );
    Sam3::load(
        &config,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        device,
    )
    .expect("tiny checkpoint")
}

/// Reference image features (neck levels 0–2 and the level-2 encoding).
fn reference_features(dir: &Path, device: &Device) -> ImageFeatures {
    let fpn = ["vision.fpn0", "vision.fpn1", "vision.fpn2"]
        .map(|k| float::<4>(dir, "vision.safetensors", k, device));
    ImageFeatures {
        fpn,
        pos: float(dir, "vision.safetensors", "vision.fpn_pos2", device),
    }
}

fn reference_text(dir: &Path, device: &Device) -> TextPrompt {
    TextPrompt {
        features: float(dir, "text.safetensors", "text.features", device),
        valid: valid_mask(dir, device),
    }
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    eprintln!("{what}: {:.2} s", start.elapsed().as_secs_f64());
    out
}

#[test]
fn preprocessing_matches_reference() {
    let Some(dir) = fixture_dir() else { return };
    let expected = read(&dir, "inputs.safetensors", "pixel_values")
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let size = 168;
    for (i, key) in ["image_0_uint8", "image_1_uint8"].iter().enumerate() {
        let data = read(&dir, "inputs.safetensors", key);
        let [h, w, _] = [data.shape()[0], data.shape()[1], data.shape()[2]];
        let bytes: Vec<u8> = data.try_to_vec().expect("u8 image");
        let image = RgbImage {
            height: h,
            width: w,
            data: &bytes,
        };
        let got = normalized_chw(&image, size).expect("resize");
        let n = 3 * size * size;
        common::assert_close(
            &format!("pixel_values[{i}]"),
            &got,
            &expected[i * n..(i + 1) * n],
            ATOL,
        );
    }
}

#[test]
fn vision_backbone_matches_reference() {
    let Some(dir) = fixture_dir() else { return };
    let file = "vision.safetensors";
    for (name, device) in devices() {
        let model = tiny_model(&dir, &device);
        let vit = &model.vision_encoder.backbone;
        let pixels = float::<4>(&dir, "inputs.safetensors", "pixel_values", &device);
        timed(&format!("[{name}] backbone"), || {
            let embeddings = vit.embeddings.forward(pixels);
            check(
                name,
                "embeddings",
                embeddings.clone(),
                &dir,
                file,
                "vision.embeddings",
            );
            let [b, n, c] = embeddings.dims();
            let g = (n as f64).sqrt() as usize;
            let mut x = vit.layer_norm.forward(embeddings.reshape([b, g, g, c]));
            check(
                name,
                "pre_layernorm",
                x.clone(),
                &dir,
                file,
                "vision.pre_layernorm",
            );
            for (i, layer) in vit.layers.iter().enumerate() {
                // each layer from the reference input of that layer
                let input = if i == 0 {
                    x.clone()
                } else {
                    float(&dir, file, &format!("vision.layer{}", i - 1), &device)
                };
                x = layer.forward(input);
                check(
                    name,
                    &format!("layer{i}"),
                    x.clone(),
                    &dir,
                    file,
                    &format!("vision.layer{i}"),
                );
            }
            let pixels = float::<4>(&dir, "inputs.safetensors", "pixel_values", &device);
            let out = vit.forward(pixels).reshape([b, n, c]);
            check(
                name,
                "backbone_output",
                out,
                &dir,
                file,
                "vision.backbone_output",
            );
        });
    }
}

#[test]
fn neck_matches_reference() {
    let Some(dir) = fixture_dir() else { return };
    let file = "vision.safetensors";
    for (name, device) in devices() {
        let model = tiny_model(&dir, &device);
        let tokens = float::<3>(&dir, file, "vision.backbone_output", &device);
        let [b, n, c] = tokens.dims();
        let g = (n as f64).sqrt() as usize;
        // [b, g·g, C] → [b, C, g, g]
        let x = tokens.reshape([b, g, g, c]).permute([0, 3, 1, 2]);
        let levels = timed(&format!("[{name}] neck"), || {
            model.vision_encoder.neck.forward(x)
        });
        for (i, level) in levels.into_iter().enumerate() {
            let [_, d, h, w] = level.dims();
            check(
                name,
                &format!("fpn{i}"),
                level,
                &dir,
                file,
                &format!("vision.fpn{i}"),
            );
            check(
                name,
                &format!("fpn_pos{i}"),
                sine_position_encoding(d, h, w, &device),
                &dir,
                file,
                &format!("vision.fpn_pos{i}"),
            );
        }
    }
}

#[test]
fn text_encoder_matches_reference() {
    let Some(dir) = fixture_dir() else { return };
    for (name, device) in devices() {
        let model = tiny_model(&dir, &device);
        let ids = int::<2>(&dir, "inputs.safetensors", "input_ids", &device);
        let valid = valid_mask(&dir, &device);
        let hidden = model.text_encoder.forward(ids.clone(), Some(valid.clone()));
        check(
            name,
            "encoder_last_hidden_state",
            hidden,
            &dir,
            "text.safetensors",
            "text.encoder_last_hidden_state",
        );
        let prompt = model.encode_text(ids, valid).expect("text prompt");
        check(
            name,
            "text features",
            prompt.features,
            &dir,
            "text.safetensors",
            "text.features",
        );
    }
}

/// Fusion encoder → decoder → scoring → mask head on reference image and text features.
fn check_detector(
    name: &str,
    device: &Device,
    dir: &Path,
    file: &str,
    boxes: Vec<Vec<ExemplarBox>>,
) {
    let model = tiny_model(dir, device);
    let prompt = Prompt {
        text: reference_text(dir, device),
        boxes,
    };
    let features = reference_features(dir, device);
    let trace = timed(&format!("[{name}] decode {file}"), || {
        model.decode_traced(&features, &prompt).expect("decode")
    });
    let c3 = |label: &str, t: Tensor<3>, key: &str| check(name, label, t, dir, file, key);
    let c4 = |label: &str, t: Tensor<4>, key: &str| check(name, label, t, dir, file, key);
    if let Some((tokens, _)) = trace.geometry.clone() {
        c3("geometry.features", tokens, "geometry.features");
    }
    c3("prompt", trace.prompt.clone(), "encoder.prompt_features");
    for (i, layer) in trace.encoder_layers.iter().enumerate() {
        c3(
            &format!("encoder.layer{i}"),
            layer.clone(),
            &format!("encoder.layer{i}"),
        );
    }
    for (i, layer) in trace.decoder.layer_outputs.iter().enumerate() {
        c3(
            &format!("decoder.layer{i}"),
            layer.clone(),
            &format!("decoder.layer{i}"),
        );
    }
    let decoder = &trace.decoder;
    c4(
        "decoder.hidden",
        Tensor::stack(decoder.hidden_states.clone(), 0),
        "decoder.intermediate_hidden_states",
    );
    c4(
        "decoder.reference_boxes",
        Tensor::stack(decoder.reference_boxes.clone(), 0),
        "decoder.reference_boxes",
    );
    let det = &trace.detections;
    c3(
        "decoder.presence_logits",
        det.all_presence_logits.clone(),
        "decoder.presence_logits_all",
    );
    c3(
        "scoring.all_pred_logits",
        det.all_pred_logits.clone(),
        "scoring.all_pred_logits",
    );
    let mask = &trace.mask;
    c3(
        "prompt_cross_attn_out",
        mask.prompt_cross_attn_out.clone(),
        "mask_decoder.prompt_cross_attn_out",
    );
    if file == "det_text.safetensors" {
        c4(
            "pixel_embed",
            mask.pixel_embed.clone(),
            "mask_decoder.pixel_embed",
        );
        c4(
            "instance_embeds",
            mask.instance_embeds.clone(),
            "mask_decoder.instance_embeds",
        );
    }
    c3(
        "mask_embeddings",
        mask.mask_embeddings.clone(),
        "mask_decoder.mask_embeddings",
    );
    check(
        name,
        "out.pred_logits",
        det.pred_logits.clone(),
        dir,
        file,
        "out.pred_logits",
    );
    c3("out.pred_boxes", det.pred_boxes.clone(), "out.pred_boxes");
    check(
        name,
        "out.presence_logits",
        det.presence_logits.clone(),
        dir,
        file,
        "out.presence_logits",
    );
    c4("out.pred_masks", det.pred_masks.clone(), "out.pred_masks");
    c4(
        "out.semantic_seg",
        det.semantic_seg.clone(),
        "out.semantic_seg",
    );
}

#[test]
fn text_prompt_detector_matches_reference() {
    let Some(dir) = fixture_dir() else { return };
    for (name, device) in devices() {
        check_detector(
            name,
            &device,
            &dir,
            "det_text.safetensors",
            vec![Vec::new(), Vec::new()],
        );
    }
}

#[test]
fn box_prompt_detector_matches_reference() {
    let Some(dir) = fixture_dir() else { return };
    let boxes = read(&dir, "inputs.safetensors", "input_boxes")
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("boxes");
    let labels = read(&dir, "inputs.safetensors", "input_boxes_labels")
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("labels");
    let lists: Vec<Vec<ExemplarBox>> = (0..2)
        .map(|b| {
            (0..2)
                .filter(|&j| labels[b * 2 + j] != -10)
                .map(|j| ExemplarBox {
                    cxcywh: [0, 1, 2, 3].map(|k| boxes[(b * 2 + j) * 4 + k]),
                    positive: labels[b * 2 + j] == 1,
                })
                .collect()
        })
        .collect();
    for (name, device) in devices() {
        check_detector(
            name,
            &device,
            &dir,
            "det_text_box.safetensors",
            lists.clone(),
        );
    }
}

#[test]
fn end_to_end_from_pixels_and_tokens_matches_reference() {
    let Some(dir) = fixture_dir() else { return };
    let file = "det_text.safetensors";
    for (name, device) in devices() {
        let model = tiny_model(&dir, &device);
        let pixels = float::<4>(&dir, "inputs.safetensors", "pixel_values", &device);
        let features = timed(&format!("[{name}] encode_image"), || {
            model.encode_image(pixels).expect("encode")
        });
        let ids = int::<2>(&dir, "inputs.safetensors", "input_ids", &device);
        let text = model
            .encode_text(ids, valid_mask(&dir, &device))
            .expect("text");
        let det = model
            .decode(
                &features,
                &Prompt {
                    text,
                    boxes: Vec::new(),
                },
            )
            .expect("decode");
        check(
            name,
            "e2e pred_logits",
            det.pred_logits,
            &dir,
            file,
            "out.pred_logits",
        );
        check(
            name,
            "e2e pred_boxes",
            det.pred_boxes,
            &dir,
            file,
            "out.pred_boxes",
        );
        check(
            name,
            "e2e presence_logits",
            det.presence_logits,
            &dir,
            file,
            "out.presence_logits",
        );
        check(
            name,
            "e2e pred_masks",
            det.pred_masks,
            &dir,
            file,
            "out.pred_masks",
        );
        check(
            name,
            "e2e semantic_seg",
            det.semantic_seg,
            &dir,
            file,
            "out.semantic_seg",
        );
    }
}

#[test]
fn rejects_truncated_and_foreign_checkpoints() {
    let Some(dir) = fixture_dir() else { return };
    let device = cpu_device();
    let config = Sam3Config::tiny();
    let tmp = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(dir.join("sam3_model.safetensors")).expect("checkpoint");
    let truncated = tmp.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let err =
        Sam3::load(&config, &truncated, WeightPrecision::F32, &device).expect_err("truncated file");
    assert!(
        matches!(
            err,
            ModelError::ReadCheckpoint { .. } | ModelError::IncompatibleCheckpoint { .. }
        ),
        "{err}"
    );
    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").expect("write");
    let err =
        Sam3::load(&config, &garbage, WeightPrecision::F32, &device).expect_err("garbage file");
    assert!(matches!(err, ModelError::ReadCheckpoint { .. }), "{err}");
    // Fewer decoder layers: the file has unexpected tensors.
    let mut fewer = config.clone();
    fewer.detr_decoder_config.num_layers = 1;
    let err = Sam3::load(
        &fewer,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        &device,
    )
    .expect_err("extra layer");
    let ModelError::IncompatibleCheckpoint { unexpected, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        unexpected
            .iter()
            .any(|k| k.starts_with("detr_decoder.layers.1.")),
        "{err}"
    );
    // More queries: shapes differ.
    let mut wider = config.clone();
    wider.detr_decoder_config.num_queries = 11;
    let err = Sam3::load(
        &wider,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        &device,
    )
    .expect_err("shape");
    let ModelError::IncompatibleCheckpoint { mismatched, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        mismatched
            .iter()
            .any(|m| m.key == "detr_decoder.query_embed.weight"),
        "{err}"
    );
    // More text layers: tensors missing.
    let mut deeper = config;
    deeper.text_config.num_hidden_layers = 3;
    let err = Sam3::load(
        &deeper,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        &device,
    )
    .expect_err("missing");
    let ModelError::IncompatibleCheckpoint { missing, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        missing.iter().any(|k| k.contains("encoder.layers.2.")),
        "{err}"
    );
}

/// Mean binary cross-entropy with logits (torch's stable form).
fn bce_with_logits<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    let stable = logits.clone().clamp_min(0.0) - logits.clone() * target
        + (logits.abs().neg().exp() + 1.0).log();
    stable.mean()
}

/// (mean BCE of the masks, + BCE of the logits against `logits_target` + BCE of presence vs 1).
fn fixture_losses(
    model: &Sam3,
    dir: &Path,
    device: &Device,
    text: Tensor<3>,
) -> (Tensor<1>, Tensor<1>) {
    let features = reference_features(dir, device);
    let valid = valid_mask(dir, device);
    let prompt = Prompt {
        text: TextPrompt {
            features: text,
            valid,
        },
        boxes: Vec::new(),
    };
    let det = model.decode(&features, &prompt).expect("decode");
    let mask_target = float::<4>(dir, "inputs.safetensors", "mask_target", device);
    let logits_target = float::<2>(dir, "inputs.safetensors", "logits_target", device);
    let loss_mask = bce_with_logits(det.pred_masks, mask_target);
    let presence_target = det.presence_logits.ones_like();
    let loss_total = loss_mask.clone()
        + bce_with_logits(det.pred_logits, logits_target)
        + bce_with_logits(det.presence_logits, presence_target);
    (loss_mask, loss_total)
}

#[test]
fn gradient_wrt_text_features_matches_reference() {
    use burn::module::Module as _;
    let Some(dir) = fixture_dir() else { return };
    let file = "grad_text_features.safetensors";
    for (name, plain) in devices() {
        let device = plain.autodiff();
        let model = tiny_model(&dir, &device).no_grad();
        let text = float::<3>(&dir, file, "grad.text_features", &device).require_grad();
        // one graph per backward pass: backward consumes it
        let (loss_mask, loss_total) = fixture_losses(&model, &dir, &device, text.clone());
        check(
            name,
            "loss_mask",
            loss_mask.clone(),
            &dir,
            file,
            "grad.loss_mask",
        );
        check(
            name,
            "loss_total",
            loss_total,
            &dir,
            file,
            "grad.loss_total",
        );
        let grads = timed(&format!("[{name}] backward"), || loss_mask.backward());
        let grad = text
            .grad(&grads)
            .expect("gradient reaches the text features");
        check(
            name,
            "d loss_mask / d text",
            grad,
            &dir,
            file,
            "grad.d_loss_mask_d_text_features",
        );
        let (_, loss_total) = fixture_losses(&model, &dir, &device, text.clone());
        let grads = loss_total.backward();
        let grad = text
            .grad(&grads)
            .expect("gradient reaches the text features");
        check(
            name,
            "d loss_total / d text",
            grad,
            &dir,
            file,
            "grad.d_loss_total_d_text_features",
        );
    }
}

/// Records every parameter as (HF key, PyTorch shape) without materialising it.
#[derive(Default)]
struct HfLayout {
    path: Vec<String>,
    containers: Vec<String>,
    shapes: std::collections::BTreeMap<String, Vec<usize>>,
}

impl burn::module::ModuleVisitor for HfLayout {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_owned());
        self.containers.push(container_type.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let mut shape = param.lazy_shape().to_vec();
        let owner = self
            .containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:"))
            .cloned()
            .unwrap_or_default();
        let mut path = self.path.clone();
        if let Some(last) = path.last_mut() {
            match (owner.as_str(), last.as_str()) {
                ("Struct:Linear", "weight") => shape.reverse(),
                ("Struct:LayerNorm" | "Struct:GroupNorm", "gamma") => *last = "weight".to_owned(),
                ("Struct:LayerNorm" | "Struct:GroupNorm", "beta") => *last = "bias".to_owned(),
                _ => {}
            }
        }
        self.shapes.insert(
            path.join(".").replace("scale_layers_", "scale_layers."),
            shape,
        );
    }
}

/// The full preset builds exactly the tensors (names and shapes) of HF `Sam3Model`, i.e. the
/// `detector_model.*` part of `facebook/sam3` (listing: `design/sam3-hf-state-dict.txt` §B).
#[test]
fn full_preset_matches_hf_checkpoint_layout() {
    use burn::module::Module as _;
    let Some(listing) = common::shared_path("design/sam3-hf-state-dict.txt") else {
        return;
    };
    let text = std::fs::read_to_string(listing).expect("listing");
    let expected: std::collections::BTreeMap<String, Vec<usize>> = text
        .lines()
        .skip_while(|line| !line.starts_with("SECTION B."))
        .skip(1)
        .take_while(|line| !line.starts_with("SECTION C."))
        .filter(|line| !line.starts_with('#') && !line.starts_with('='))
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let key = fields.next()?.to_owned();
            let dims = fields.next()?.trim_matches(|c| c == '[' || c == ']');
            let shape = dims
                .split(", ")
                .filter(|d| !d.is_empty())
                .map(|d| d.parse().expect("dim"))
                .collect();
            Some((key, shape))
        })
        .collect();
    assert_eq!(expected.len(), 1468, "listing section B");
    let model = Sam3Config::full().init(&cpu_device());
    let mut layout = HfLayout::default();
    model.visit(&mut layout);
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !layout.shapes.contains_key(*k))
        .collect();
    let extra: Vec<&String> = layout
        .shapes
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    let wrong: Vec<(&String, &Vec<usize>, &Vec<usize>)> = expected
        .iter()
        .filter_map(|(k, e)| layout.shapes.get(k).filter(|a| *a != e).map(|a| (k, a, e)))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "missing {missing:?}\nextra {extra:?}\nwrong {wrong:?}"
    );
}
