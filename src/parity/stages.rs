//! The stages of `tests/model/model_parity.rs`, each from the reference input of that stage.

use burn::module::Module as _;
use burn::tensor::{Device, Tensor};

use super::{Comparison, Fixtures, ParityError};
use crate::model::geometry_encoder::ExemplarBox;
use crate::model::neck::sine_position_encoding;
use crate::model::preprocess::{RgbImage, normalized_chw};
use crate::model::{Prompt, Sam3, TextPrompt};

/// The detector scenarios: reference file, and whether the box prompts are used.
pub const DETECTOR_SCENARIOS: [(&str, bool); 2] = [
    ("det_text.safetensors", false),
    ("det_text_box.safetensors", true),
];

/// Resize + normalise of the uint8 test images (`image_{i}_uint8`, one per batch element)
/// against `pixel_values` (no device).
pub fn preprocessing(fx: &Fixtures) -> Result<Vec<Comparison>, ParityError> {
    let file = "inputs.safetensors";
    let expected = fx.values::<f32>(file, "pixel_values")?;
    let dims = fx.read(file, "pixel_values")?.shape().to_vec();
    let size = dims.last().copied().unwrap_or(0);
    let batch = dims.first().copied().unwrap_or(0);
    let n = 3 * size * size;
    let mut out = Vec::new();
    for i in 0..batch {
        let key = &format!("image_{i}_uint8");
        let data = fx.read(file, key)?;
        let &[height, width, 3] = data.shape().to_vec().as_slice() else {
            return Err(fx.bad(file, key, "not HxWx3".to_owned()));
        };
        let bytes: Vec<u8> = data
            .try_to_vec()
            .map_err(|e| fx.bad(file, key, e.to_string()))?;
        let image = RgbImage {
            height,
            width,
            data: &bytes,
        };
        let got = normalized_chw(&image, size)?;
        let reference = expected.get(i * n..(i + 1) * n).unwrap_or_default();
        out.push(super::compare_values(
            &format!("pixel_values[{i}]"),
            vec![3, size, size],
            vec![3, size, size],
            &got,
            reference,
        ));
    }
    Ok(out)
}

/// Patch embedding, pre-LayerNorm, every ViT layer (from the reference input of that layer),
/// and the whole backbone from pixels.
pub fn vision_backbone(
    fx: &Fixtures,
    model: &Sam3,
    device: &Device,
) -> Result<Vec<Comparison>, ParityError> {
    let file = "vision.safetensors";
    let vit = &model.vision_encoder.backbone;
    let pixels = fx.float::<4>("inputs.safetensors", "pixel_values", device)?;
    let mut out = Vec::new();
    let embeddings = vit.embeddings.forward(pixels.clone());
    out.push(fx.compare(
        "vision.embeddings",
        embeddings.clone(),
        file,
        "vision.embeddings",
    )?);
    let [b, n, c] = embeddings.dims();
    let g = (n as f64).sqrt() as usize;
    // [b, g·g, C] → [b, g, g, C]
    let x = vit.layer_norm.forward(embeddings.reshape([b, g, g, c]));
    out.push(fx.compare(
        "vision.pre_layernorm",
        x.clone(),
        file,
        "vision.pre_layernorm",
    )?);
    for (i, layer) in vit.layers.iter().enumerate() {
        let key = format!("vision.layer{i}");
        let previous = format!("vision.layer{}", i.wrapping_sub(1));
        // A full-size folder stores only some layers: a layer is checked when its output and
        // its input (the previous layer's output) are both there.
        if !fx.has(file, &key)? {
            out.push(Comparison::absent(&key, file, &key));
            continue;
        }
        let input = if i == 0 {
            x.clone()
        } else if fx.has(file, &previous)? {
            fx.float(file, &previous, device)?
        } else {
            out.push(Comparison::absent(&key, file, &previous));
            continue;
        };
        out.push(fx.compare(&key, layer.forward(input), file, &key)?);
    }
    let whole = vit.forward(pixels).reshape([b, n, c]);
    out.push(fx.compare(
        "vision.backbone_output",
        whole,
        file,
        "vision.backbone_output",
    )?);
    Ok(out)
}

/// FPN levels from the reference backbone output, and their sine position encodings.
pub fn neck(fx: &Fixtures, model: &Sam3, device: &Device) -> Result<Vec<Comparison>, ParityError> {
    let file = "vision.safetensors";
    let tokens = fx.float::<3>(file, "vision.backbone_output", device)?;
    let [b, n, c] = tokens.dims();
    let g = (n as f64).sqrt() as usize;
    // [b, g·g, C] → [b, C, g, g]
    let x = tokens.reshape([b, g, g, c]).permute([0, 3, 1, 2]);
    let mut out = Vec::new();
    for (i, level) in model.vision_encoder.neck.forward(x).into_iter().enumerate() {
        let [_, d, h, w] = level.dims();
        let key = format!("vision.fpn{i}");
        out.push(fx.compare(&key, level, file, &key)?);
        let key = format!("vision.fpn_pos{i}");
        out.push(fx.compare(&key, sine_position_encoding(d, h, w, device), file, &key)?);
    }
    Ok(out)
}

/// CLIP text tower and projection from the reference token ids.
pub fn text_encoder(
    fx: &Fixtures,
    model: &Sam3,
    device: &Device,
) -> Result<Vec<Comparison>, ParityError> {
    let file = "text.safetensors";
    let ids = fx.int::<2>("inputs.safetensors", "input_ids", device)?;
    let valid = fx.valid_mask(device)?;
    let hidden = model.text_encoder.forward(ids.clone(), Some(valid.clone()));
    let features = model.encode_text(ids, valid)?.features;
    Ok(vec![
        fx.compare(
            "text.encoder_last_hidden_state",
            hidden,
            file,
            "text.encoder_last_hidden_state",
        )?,
        fx.compare("text.features", features, file, "text.features")?,
    ])
}

/// Fusion encoder → decoder → scoring → mask head on reference image and text features.
pub fn detector(
    fx: &Fixtures,
    model: &Sam3,
    device: &Device,
    file: &str,
    boxes: Vec<Vec<ExemplarBox>>,
) -> Result<Vec<Comparison>, ParityError> {
    let prompt = Prompt {
        text: fx.reference_text(device)?,
        boxes,
    };
    let features = fx.reference_features(device)?;
    let trace = model.decode_traced(&features, &prompt)?;
    let scenario = file.trim_end_matches(".safetensors");
    let label = |key: &str| format!("{scenario}:{key}");
    let mut out = Vec::new();
    let mut c3 = |t: Tensor<3>, key: &str| -> Result<(), ParityError> {
        out.push(fx.compare(&label(key), t, file, key)?);
        Ok(())
    };
    if let Some((tokens, _)) = trace.geometry.clone() {
        c3(tokens, "geometry.features")?;
    }
    c3(trace.prompt.clone(), "encoder.prompt_features")?;
    for (i, layer) in trace.encoder_layers.iter().enumerate() {
        c3(layer.clone(), &format!("encoder.layer{i}"))?;
    }
    for (i, layer) in trace.decoder.layer_outputs.iter().enumerate() {
        c3(layer.clone(), &format!("decoder.layer{i}"))?;
    }
    let det = &trace.detections;
    let mask = &trace.mask;
    c3(
        det.all_presence_logits.clone(),
        "decoder.presence_logits_all",
    )?;
    c3(det.all_pred_logits.clone(), "scoring.all_pred_logits")?;
    c3(
        mask.prompt_cross_attn_out.clone(),
        "mask_decoder.prompt_cross_attn_out",
    )?;
    c3(mask.mask_embeddings.clone(), "mask_decoder.mask_embeddings")?;
    c3(det.pred_boxes.clone(), "out.pred_boxes")?;
    let decoder = &trace.decoder;
    let mut four: Vec<(Tensor<4>, &str)> = vec![
        (
            Tensor::stack(decoder.hidden_states.clone(), 0),
            "decoder.intermediate_hidden_states",
        ),
        (
            Tensor::stack(decoder.reference_boxes.clone(), 0),
            "decoder.reference_boxes",
        ),
        (det.pred_masks.clone(), "out.pred_masks"),
        (det.semantic_seg.clone(), "out.semantic_seg"),
    ];
    if file == "det_text.safetensors" {
        four.push((mask.pixel_embed.clone(), "mask_decoder.pixel_embed"));
        four.push((mask.instance_embeds.clone(), "mask_decoder.instance_embeds"));
    }
    for (t, key) in four {
        out.push(fx.compare(&label(key), t, file, key)?);
    }
    out.push(fx.compare(
        &label("out.pred_logits"),
        det.pred_logits.clone(),
        file,
        "out.pred_logits",
    )?);
    out.push(fx.compare(
        &label("out.presence_logits"),
        det.presence_logits.clone(),
        file,
        "out.presence_logits",
    )?);
    Ok(out)
}

/// Pixels and token ids through `encode_image`, `encode_text` and `decode` (scenario A).
pub fn end_to_end(
    fx: &Fixtures,
    model: &Sam3,
    device: &Device,
) -> Result<Vec<Comparison>, ParityError> {
    let file = "det_text.safetensors";
    let pixels = fx.float::<4>("inputs.safetensors", "pixel_values", device)?;
    let features = model.encode_image(pixels)?;
    let ids = fx.int::<2>("inputs.safetensors", "input_ids", device)?;
    let text = model.encode_text(ids, fx.valid_mask(device)?)?;
    let det = model.decode(
        &features,
        &Prompt {
            text,
            boxes: Vec::new(),
        },
    )?;
    Ok(vec![
        fx.compare(
            "e2e:out.pred_logits",
            det.pred_logits,
            file,
            "out.pred_logits",
        )?,
        fx.compare("e2e:out.pred_boxes", det.pred_boxes, file, "out.pred_boxes")?,
        fx.compare(
            "e2e:out.presence_logits",
            det.presence_logits,
            file,
            "out.presence_logits",
        )?,
        fx.compare("e2e:out.pred_masks", det.pred_masks, file, "out.pred_masks")?,
        fx.compare(
            "e2e:out.semantic_seg",
            det.semantic_seg,
            file,
            "out.semantic_seg",
        )?,
    ])
}

/// Mean binary cross-entropy with logits (torch's stable form).
fn bce_with_logits<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    let stable = logits.clone().clamp_min(0.0) - logits.clone() * target
        + (logits.abs().neg().exp() + 1.0).log();
    mean_by_axes(stable)
}

/// The mean of every element, reduced one axis at a time (last first). A single f32 `mean` over
/// the full-size mask logits (1·200·288·288 = 16.6 M elements) accumulates sequentially on the
/// CPU backend and is ~1 % off; per-axis means keep each f32 sum short.
fn mean_by_axes<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let mut t = t;
    for axis in (0..D).rev() {
        t = t.mean_dim(axis);
    }
    t.reshape([1])
}

/// (mask BCE, mask BCE + logits BCE + presence BCE) of a decode from `text` features.
fn fixture_losses(
    fx: &Fixtures,
    model: &Sam3,
    device: &Device,
    text: Tensor<3>,
) -> Result<(Tensor<1>, Tensor<1>), ParityError> {
    let prompt = Prompt {
        text: TextPrompt {
            features: text,
            valid: fx.valid_mask(device)?,
        },
        boxes: Vec::new(),
    };
    let det = model.decode(&fx.reference_features(device)?, &prompt)?;
    let mask_target = fx.float::<4>("inputs.safetensors", "mask_target", device)?;
    let logits_target = fx.float::<2>("inputs.safetensors", "logits_target", device)?;
    let loss_mask = bce_with_logits(det.pred_masks, mask_target);
    let presence_target = det.presence_logits.ones_like();
    let loss_total = loss_mask.clone()
        + bce_with_logits(det.pred_logits, logits_target)
        + bce_with_logits(det.presence_logits, presence_target);
    Ok((loss_mask, loss_total))
}

/// Losses and their gradients w.r.t. the text features (scenario D), on `plain.autodiff()`.
pub fn gradient(fx: &Fixtures, plain: &Device) -> Result<Vec<Comparison>, ParityError> {
    let file = "grad_text_features.safetensors";
    let device = plain.clone().autodiff();
    let model = fx.model(&device)?.no_grad();
    let text = fx
        .float::<3>(file, "grad.text_features", &device)?
        .require_grad();
    let grad_of = |loss: Tensor<1>, key: &str| -> Result<Comparison, ParityError> {
        let grads = loss.backward();
        let grad = text
            .grad(&grads)
            .ok_or_else(|| fx.bad(file, key, "no gradient reaches the text features".into()))?;
        fx.compare(key, grad, file, key)
    };
    // one graph per backward pass: backward consumes it
    let (loss_mask, loss_total) = fixture_losses(fx, &model, &device, text.clone())?;
    let mut out = vec![
        fx.compare("grad.loss_mask", loss_mask.clone(), file, "grad.loss_mask")?,
        fx.compare("grad.loss_total", loss_total, file, "grad.loss_total")?,
        grad_of(loss_mask, "grad.d_loss_mask_d_text_features")?,
    ];
    let (_, loss_total) = fixture_losses(fx, &model, &device, text.clone())?;
    out.push(grad_of(loss_total, "grad.d_loss_total_d_text_features")?);
    Ok(out)
}

/// The stages of [`run_all_with`], in order, by the names its `only` filter takes.
pub const STAGES: [&str; 9] = [
    "preprocessing",
    "backbone",
    "neck",
    "text",
    "det_text",
    "det_text_box",
    "e2e",
    "gradient",
    "tracker",
];

/// Every stage on `device`: preprocessing, backbone, neck, text, both detector scenarios,
/// end to end, the gradient, and the tracker scenario when the folder has its files (see
/// `Fixtures::has_tracker`).
pub fn run_all(fx: &Fixtures, device: &Device) -> Result<Vec<Comparison>, ParityError> {
    run_all_with(fx, device, &[], |_, _| {})
}

/// The stages named in `only` (all of [`STAGES`] when empty), calling
/// `progress(stage, comparisons)` after loading the model (no comparisons) and after each
/// stage (a full-size run takes many minutes on the CPU).
pub fn run_all_with(
    fx: &Fixtures,
    device: &Device,
    only: &[String],
    mut progress: impl FnMut(&str, &[Comparison]),
) -> Result<Vec<Comparison>, ParityError> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let mut out = Vec::new();
    let mut stage = |name: &str, got: Vec<Comparison>| {
        progress(name, &got);
        out.extend(got);
    };
    let detector_stages = STAGES[1..7].iter().any(|s| wanted(s)) || wanted("tracker");
    if detector_stages {
        let model = fx.model(device)?;
        stage("load weights", Vec::new());
        if wanted("preprocessing") {
            stage("preprocessing", preprocessing(fx)?);
        }
        if wanted("backbone") {
            stage("backbone", vision_backbone(fx, &model, device)?);
        }
        if wanted("neck") {
            stage("neck", neck(fx, &model, device)?);
        }
        if wanted("text") {
            stage("text", text_encoder(fx, &model, device)?);
        }
        for (file, with_boxes) in DETECTOR_SCENARIOS {
            let name = file.trim_end_matches(".safetensors");
            if !wanted(name) {
                continue;
            }
            let boxes = if with_boxes {
                fx.exemplar_boxes()?
            } else {
                let batch = fx.read("inputs.safetensors", "input_ids")?.shape().to_vec();
                vec![Vec::new(); batch.first().copied().unwrap_or(0)]
            };
            stage(name, detector(fx, &model, device, file, boxes)?);
        }
        if wanted("e2e") {
            stage("e2e", end_to_end(fx, &model, device)?);
        }
        // The interactive head, when the folder has its files.
        if wanted("tracker")
            && let Some(tracker) = super::run_tracker(fx, &model, device)?
        {
            stage("tracker", tracker);
        }
    } else if wanted("preprocessing") {
        stage("preprocessing", preprocessing(fx)?);
    }
    // The gradient stage loads its own (autodiff) copy of the model.
    if wanted("gradient") {
        stage("gradient", gradient(fx, device)?);
    }
    Ok(out)
}
