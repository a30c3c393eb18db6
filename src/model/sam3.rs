//! SAM3 image detector assembly (HF `Sam3Model`; official `sam3_image.py` `Sam3Image`), spec §1.
//!
//! - [`Sam3::encode_image`]: pixels [b, 3, S, S] → [`ImageFeatures`] (neck levels 0–2 and the
//!   level-2 position encoding). Frozen and cacheable; outputs are detached.
//! - [`Sam3::encode_text`] / [`Sam3::encode_text_embeds`]: token ids (or token embeddings, where a
//!   learnable offset can be added) → [`TextPrompt`] [b, T, D] + validity.
//! - [`Sam3::decode`]: features + [`Prompt`] → [`Detections`]. Differentiable with respect to the
//!   prompt tensors; the weights and the image features are used as constants.
//!
//! Text-only prompts follow HF (the geometry encoder runs only when boxes are given).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Bool, DType, Device, Int, Tensor};

use super::config::Sam3Config;
use super::decoder::{DecoderOutput, DetrDecoder};
use super::error::ModelError;
use super::fusion_encoder::FusionEncoder;
use super::geometry_encoder::{BoxBatch, ExemplarBox, GeometryEncoder};
use super::layers::{box_cxcywh_to_xyxy, inverse_sigmoid, key_padding_mask, linear};
use super::mask_decoder::{MaskDecoder, MaskOutput};
use super::neck::{Neck, sine_position_encoding};
use super::scoring::DotProductScoring;
use super::text_encoder::TextEncoder;
use super::vit::Vit;

/// HF `Sam3VisionModel`: backbone + detector neck.
#[derive(Module, Debug)]
pub struct VisionEncoder {
    pub backbone: Vit,
    pub neck: Neck,
}

/// HF `Sam3Model`. Field names are the checkpoint's top-level keys.
#[derive(Module, Debug)]
pub struct Sam3 {
    pub vision_encoder: VisionEncoder,
    pub text_encoder: TextEncoder,
    /// The resizer Ct → D.
    pub text_projection: Linear,
    pub geometry_encoder: GeometryEncoder,
    pub detr_encoder: FusionEncoder,
    pub detr_decoder: DetrDecoder,
    pub mask_decoder: MaskDecoder,
    pub dot_product_scoring: DotProductScoring,
    /// Input side S in pixels.
    pub image_size: usize,
}

/// Per-image features the decoder needs; independent of the prompt.
#[derive(Debug, Clone)]
pub struct ImageFeatures {
    /// Neck levels 0, 1, 2: [b, D, 4g, 4g], [b, D, 2g, 2g], [b, D, g, g].
    pub fpn: [Tensor<4>; 3],
    /// Sine position encoding of level 2: [1, D, g, g].
    pub pos: Tensor<4>,
}

impl ImageFeatures {
    /// Batch size b.
    pub fn batch(&self) -> usize {
        self.fpn[2].dims()[0]
    }

    /// Moves (or lifts, e.g. onto an autodiff device) the features.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            fpn: self.fpn.map(|t| t.to_device(device)),
            pos: self.pos.to_device(device),
        }
    }
}

/// Encoded text: the prompt tokens entering the detector.
#[derive(Debug, Clone)]
pub struct TextPrompt {
    /// [b, T, D]
    pub features: Tensor<3>,
    /// [b, T], `true` = real token.
    pub valid: Tensor<2, Bool>,
}

/// A detector prompt: text (or learned) tokens plus optional box exemplars per image.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub text: TextPrompt,
    /// One list per image (may be empty); all empty = text-only prompt.
    pub boxes: Vec<Vec<ExemplarBox>>,
}

/// Raw detector outputs (HF `Sam3ImageSegmentationOutput` plus every decoder layer).
#[derive(Debug, Clone)]
pub struct Detections {
    /// [b, Q] last-layer classification logits.
    pub pred_logits: Tensor<2>,
    /// [b, Q, 4] last-layer boxes, normalised (x0, y0, x1, y1).
    pub pred_boxes: Tensor<3>,
    /// [b, 1] last-layer presence logit.
    pub presence_logits: Tensor<2>,
    /// [b, Q, 4g, 4g] instance mask logits.
    pub pred_masks: Tensor<4>,
    /// [b, 1, 4g, 4g] semantic logits.
    pub semantic_seg: Tensor<4>,
    /// [L, b, Q] logits of every decoder layer.
    pub all_pred_logits: Tensor<3>,
    /// [L, b, Q, 4] boxes (x0, y0, x1, y1) of every decoder layer.
    pub all_pred_boxes: Tensor<4>,
    /// [L, b, 1] presence logits of every decoder layer.
    pub all_presence_logits: Tensor<3>,
}

/// [`Detections`] plus the intermediates the parity tests compare.
#[derive(Debug, Clone)]
pub struct DecodeTrace {
    pub detections: Detections,
    /// Geometry-encoder tokens [b, nb+1, D] and validity, when boxes were given.
    pub geometry: Option<(Tensor<3>, Tensor<2, Bool>)>,
    /// Prompt seen by encoder, decoder, scoring and mask head [b, P, D].
    pub prompt: Tensor<3>,
    /// Fusion-encoder layer outputs [b, g·g, D].
    pub encoder_layers: Vec<Tensor<3>>,
    pub decoder: DecoderOutput,
    pub mask: MaskOutput,
}

impl Sam3Config {
    /// Builds the detector with placeholder weights (see `Sam3::load`). Call `validate` first.
    pub fn init(&self, device: &Device) -> Sam3 {
        let vision = &self.vision_config;
        Sam3 {
            vision_encoder: VisionEncoder {
                backbone: vision.backbone_config.init(device),
                neck: vision.init_neck(device),
            },
            text_encoder: self.text_config.init(device),
            text_projection: linear(
                self.text_config.hidden_size,
                self.detr_encoder_config.hidden_size,
                device,
            ),
            geometry_encoder: self.geometry_encoder_config.init_geometry_encoder(device),
            detr_encoder: self.detr_encoder_config.init_fusion_encoder(device),
            detr_decoder: self.detr_decoder_config.init_decoder(device),
            mask_decoder: self.mask_decoder_config.init(device),
            dot_product_scoring: self.detr_decoder_config.init_scoring(device),
            image_size: vision.backbone_config.image_size,
        }
    }
}

impl Sam3 {
    /// Pixels [b, 3, S, S] (preprocessed, see `preprocess.rs`) → image features.
    pub fn encode_image(&self, pixels: Tensor<4>) -> Result<ImageFeatures, ModelError> {
        let backbone = self.encode_backbone(pixels)?;
        self.features_from_backbone(backbone)
    }

    /// Pixels [b, 3, S, S] → ViT output [b, C, g, g], detached: the input of both the detector
    /// neck ([`Sam3::features_from_backbone`]) and the tracker
    /// (`Sam3Tracker::image_features`), so one ViT pass serves both heads.
    pub fn encode_backbone(&self, pixels: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        let [_, c, h, w] = pixels.dims();
        if c != 3 || h != self.image_size || w != self.image_size {
            return Err(ModelError::InvalidInput {
                reason: format!(
                    "pixels are [_, {c}, {h}, {w}], expected [_, 3, {0}, {0}]",
                    self.image_size
                ),
            });
        }
        let _stage = tracing::debug_span!("sam3_vit").entered();
        // Inputs follow the weights' dtype (f32, or f16 when loaded so).
        let tokens = self
            .vision_encoder
            .backbone
            .forward(pixels.cast(self.float_dtype()));
        // [b, g, g, C] → [b, C, g, g]
        Ok(tokens.permute([0, 3, 1, 2]).detach())
    }

    /// ViT output [b, C, g, g] → detector image features (neck levels 0–2, level-2 encoding).
    pub fn features_from_backbone(&self, backbone: Tensor<4>) -> Result<ImageFeatures, ModelError> {
        let _stage = tracing::debug_span!("sam3_neck").entered();
        let maps = self.vision_encoder.neck.forward(backbone);
        let mut levels = maps.into_iter().map(Tensor::detach);
        let (Some(f0), Some(f1), Some(f2)) = (levels.next(), levels.next(), levels.next()) else {
            return Err(ModelError::InvalidInput {
                reason: "neck produced fewer than 3 levels".to_owned(),
            });
        };
        let [_, d, gh, gw] = f2.dims();
        let pos = sine_position_encoding(d, gh, gw, &f2.device()).cast(f2.dtype());
        Ok(ImageFeatures {
            fpn: [f0, f1, f2],
            pos,
        })
    }

    /// Float type of the weights (see `WeightPrecision`); activations follow it.
    pub fn float_dtype(&self) -> DType {
        self.text_projection.weight.val().dtype()
    }

    /// Token embeddings [b, T, Ct] of `ids` (before positions): the input of
    /// [`Sam3::encode_text_embeds`].
    pub fn embed_tokens(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.text_encoder.embed_tokens(ids)
    }

    /// Token ids [b, T] with validity [b, T] → text prompt [b, T, D].
    pub fn encode_text(
        &self,
        ids: Tensor<2, Int>,
        valid: Tensor<2, Bool>,
    ) -> Result<TextPrompt, ModelError> {
        self.encode_text_embeds(self.embed_tokens(ids), valid)
    }

    /// Token embeddings [b, T, Ct] with validity [b, T] → text prompt [b, T, D].
    pub fn encode_text_embeds(
        &self,
        token_embeds: Tensor<3>,
        valid: Tensor<2, Bool>,
    ) -> Result<TextPrompt, ModelError> {
        let [b, t, c] = token_embeds.dims();
        let [vb, vt] = valid.dims();
        let [max_t, width] = self
            .text_encoder
            .text_model
            .embeddings
            .position_embedding
            .weight
            .val()
            .dims();
        if t > max_t || c != width || vb != b || vt != t {
            return Err(ModelError::InvalidInput {
                reason: format!(
                    "text embeds [{b}, {t}, {c}] / mask [{vb}, {vt}]: need T ≤ {max_t}, width {width}"
                ),
            });
        }
        let _stage = tracing::debug_span!("sam3_text_encoder").entered();
        let hidden = self
            .text_encoder
            .forward_embeds(token_embeds, Some(valid.clone()));
        Ok(TextPrompt {
            features: self.text_projection.forward(hidden),
            valid,
        })
    }

    /// Runs the detector on cached image features.
    pub fn decode(
        &self,
        features: &ImageFeatures,
        prompt: &Prompt,
    ) -> Result<Detections, ModelError> {
        Ok(self.decode_traced(features, prompt)?.detections)
    }

    /// [`Sam3::decode`] keeping every intermediate tensor.
    pub fn decode_traced(
        &self,
        features: &ImageFeatures,
        prompt: &Prompt,
    ) -> Result<DecodeTrace, ModelError> {
        self.check_prompt(features, prompt)?;
        let (geometry, prompt_tokens, prompt_valid) = self.prompt_tokens(features, prompt);
        let (image, pos) = flat_image(features);
        let fusion = tracing::debug_span!("sam3_fusion_encoder").entered();
        let encoder_layers = self.detr_encoder.forward(
            image.clone(),
            pos.clone(),
            prompt_tokens.clone(),
            prompt_valid.clone(),
        );
        drop(fusion);
        let memory = encoder_layers.last().cloned().unwrap_or(image);
        let (detections, decoder, mask) =
            self.heads(features, memory, pos, prompt_tokens.clone(), prompt_valid);
        Ok(DecodeTrace {
            detections,
            geometry,
            prompt: prompt_tokens,
            encoder_layers,
            decoder,
            mask,
        })
    }

    /// The prompt every stage after the image sees: the text tokens, followed by the geometry
    /// encoder's tokens when the prompt has boxes ([b, P, D] and validity [b, P]).
    #[allow(clippy::type_complexity)]
    fn prompt_tokens(
        &self,
        features: &ImageFeatures,
        prompt: &Prompt,
    ) -> (
        Option<(Tensor<3>, Tensor<2, Bool>)>,
        Tensor<3>,
        Tensor<2, Bool>,
    ) {
        let has_boxes = prompt.boxes.iter().any(|list| !list.is_empty());
        let geometry = has_boxes.then(|| {
            let _stage = tracing::debug_span!("sam3_geometry_encoder").entered();
            let boxes = BoxBatch::from_lists(&prompt.boxes);
            self.geometry_encoder
                .forward(features.fpn[2].clone(), features.pos.clone(), &boxes)
        });
        let (tokens, valid) = match &geometry {
            Some((tokens, valid)) => (
                Tensor::cat(vec![prompt.text.features.clone(), tokens.clone()], 1),
                Tensor::cat(vec![prompt.text.valid.clone(), valid.clone()], 1),
            ),
            None => (prompt.text.features.clone(), prompt.text.valid.clone()),
        };
        (geometry, tokens, valid)
    }

    /// Everything after the fusion encoder: decoder, box head, scoring and mask head, from the
    /// fused image tokens `memory` [b, g·g, D].
    fn heads(
        &self,
        features: &ImageFeatures,
        memory: Tensor<3>,
        pos: Tensor<3>,
        prompt_tokens: Tensor<3>,
        prompt_valid: Tensor<2, Bool>,
    ) -> (Detections, DecoderOutput, MaskOutput) {
        let _stage = tracing::debug_span!("sam3_decoder_and_heads").entered();
        let [f0, f1, f2] = features.fpn.clone();
        let [b, _, gh, gw] = f2.dims();
        let decoder = self.detr_decoder.forward(
            memory.clone(),
            pos,
            prompt_tokens.clone(),
            prompt_valid.clone(),
            [gh, gw],
        );
        let hidden = Tensor::stack(decoder.hidden_states.clone(), 0);
        let references = Tensor::stack(decoder.reference_boxes.clone(), 0);
        let offsets = self.detr_decoder.box_head.forward(hidden.clone());
        let all_pred_boxes = box_cxcywh_to_xyxy(sigmoid(inverse_sigmoid(references) + offsets));
        let all_pred_logits =
            self.dot_product_scoring
                .forward(hidden, prompt_tokens.clone(), prompt_valid.clone());
        let all_presence_logits = Tensor::stack(decoder.presence_logits.clone(), 0);
        let last_hidden = decoder
            .hidden_states
            .last()
            .cloned()
            .unwrap_or_else(|| memory.clone());
        let mask = self.mask_decoder.forward(
            last_hidden,
            memory,
            &[f0, f1, f2],
            prompt_tokens,
            prompt_valid,
        );
        let layers = decoder.hidden_states.len();
        let [_, _, q] = all_pred_logits.dims();
        let last = layers.saturating_sub(1);
        let detections = Detections {
            pred_logits: all_pred_logits.clone().narrow(0, last, 1).reshape([b, q]),
            pred_boxes: all_pred_boxes.clone().narrow(0, last, 1).reshape([b, q, 4]),
            presence_logits: all_presence_logits
                .clone()
                .narrow(0, last, 1)
                .reshape([b, 1]),
            pred_masks: mask.pred_masks.clone(),
            semantic_seg: mask.semantic_seg.clone(),
            all_pred_logits,
            all_pred_boxes,
            all_presence_logits,
        };
        (detections, decoder, mask)
    }

    /// Backpropagates `objective(decode(features, prompt))` to the prompt's text features with
    /// the fusion encoder checkpointed, and returns the objective's value and
    /// ∂objective/∂`prompt.text.features` ([b, T, D], without autodiff).
    ///
    /// Call it on a model lifted onto an autodiff device (frozen). A plain backward pass keeps
    /// every fusion-encoder layer's attention scores, heads × (g·g)² floats each: 860 MB per
    /// layer for one 1008² image, and a step on one image passed 18 GB on the CPU. Here:
    /// - the encoder first runs outside the graph, keeping only each layer's input
    ///   ([b, g·g, D], 5 MB at full size);
    /// - the decoder, heads and objective are differentiated from the last layer's output;
    /// - each encoder layer is rerun under autodiff, last to first, to carry the gradient back
    ///   (a vector-Jacobian product per layer).
    ///
    /// Within a layer, queries are taken `score_rows(…)` rows at a time (see
    /// [`super::fusion_encoder::FusionLayer::forward_rows`]) so that no score matrix exceeds [`SCORE_BLOCK_BYTES`]:
    /// one buffer of 860 MB is more than some GPUs can bind (lavapipe allows 128 MiB). The
    /// result is the same gradient as the plain pass (tested to float rounding), whatever
    /// `prompt.text.features` depends on: the caller finishes the chain, e.g. into the text
    /// tower.
    pub fn backward_checkpointed<E: From<ModelError>>(
        &self,
        features: &ImageFeatures,
        prompt: &Prompt,
        objective: impl FnOnce(&Detections) -> Result<Tensor<1>, E>,
    ) -> Result<(f32, Tensor<3>), E> {
        let rows = self.score_rows(features, SCORE_BLOCK_BYTES);
        self.backward_checkpointed_in_blocks(features, prompt, rows, objective)
    }

    /// Query rows per block such that one block's attention scores (heads × rows × g·g f32)
    /// stay within `bytes`.
    pub fn score_rows(&self, features: &ImageFeatures, bytes: usize) -> usize {
        let [_, _, gh, gw] = features.fpn[2].dims();
        let heads = self
            .detr_encoder
            .layers
            .first()
            .map_or(1, |l| l.self_attn.num_heads);
        (bytes / (heads.max(1) * (gh * gw).max(1) * 4)).max(1)
    }

    /// [`Sam3::backward_checkpointed`] with `rows` query rows per attention block.
    pub fn backward_checkpointed_in_blocks<E: From<ModelError>>(
        &self,
        features: &ImageFeatures,
        prompt: &Prompt,
        rows: usize,
        objective: impl FnOnce(&Detections) -> Result<Tensor<1>, E>,
    ) -> Result<(f32, Tensor<3>), E> {
        self.check_prompt(features, prompt)?;
        let device = prompt.text.features.device();
        if !device.is_autodiff() {
            return Err(ModelError::InvalidInput {
                reason: "backward_checkpointed needs the model on an autodiff device".to_owned(),
            }
            .into());
        }
        let text = prompt.text.features.clone().detach();
        // The prompt tokens with `leaf` as the text part (geometry tokens are constants).
        let tokens_with = |leaf: Tensor<3>| {
            let leaf_prompt = Prompt {
                text: TextPrompt {
                    features: leaf,
                    valid: prompt.text.valid.clone(),
                },
                boxes: prompt.boxes.clone(),
            };
            self.prompt_tokens(features, &leaf_prompt)
        };
        let (_, constant_tokens, prompt_valid) = tokens_with(text.clone());
        let constant_tokens = constant_tokens.detach();
        let (image, pos) = flat_image(features);
        let n = image.dims()[1];
        let blocks: Vec<(usize, usize)> = (0..n)
            .step_by(rows.max(1))
            .map(|r0| (r0, rows.max(1).min(n - r0)))
            .collect();
        let mask = key_padding_mask(prompt_valid.clone());
        // Forward outside the graph: nothing here requires a gradient, so nothing is kept.
        let layers = &self.detr_encoder.layers;
        let mut inputs = Vec::with_capacity(layers.len() + 1);
        let mut x = image.detach();
        for layer in layers {
            inputs.push(x.clone());
            let kv = layer.keys_values(x.clone(), pos.clone());
            let out: Vec<Tensor<3>> = blocks
                .iter()
                .map(|&(r0, len)| {
                    layer
                        .forward_rows(
                            x.clone().narrow(1, r0, len),
                            pos.clone().narrow(1, r0, len),
                            kv.clone(),
                            constant_tokens.clone(),
                            mask.clone(),
                        )
                        .detach()
                })
                .collect();
            x = Tensor::cat(out, 1);
        }
        // Decoder, heads and objective from the encoder's output.
        let text_leaf = text.clone().require_grad();
        let (_, tokens, _) = tokens_with(text_leaf.clone());
        let memory = x.require_grad();
        let (detections, _, _) =
            self.heads(features, memory.clone(), pos.clone(), tokens, prompt_valid);
        let value = objective(&detections)?;
        drop(detections);
        let loss = read_scalar(value.clone())?;
        let mut grads = value.backward();
        let zeros = || Tensor::<3>::zeros(text.dims(), &device).inner();
        let mut text_grad = text_leaf.grad_remove(&mut grads).unwrap_or_else(zeros);
        let mut carried = memory.grad_remove(&mut grads);
        drop(grads);
        // Encoder layers, last to first: ∂/∂(input, prompt) of ⟨layer(input, prompt), carried⟩,
        // one block of query rows at a time against detached keys and values, whose gradients
        // are then carried back to the input in one more small pass.
        for (i, layer) in layers.iter().enumerate().rev() {
            let Some(upstream) = carried.take() else {
                break;
            };
            let needs_input = i > 0;
            let input = inputs[i].clone();
            let input_leaf = input.clone().require_grad();
            let (k, v) = layer.keys_values(
                if needs_input {
                    input_leaf.clone()
                } else {
                    input.clone()
                },
                pos.clone(),
            );
            let k_leaf = k.clone().detach().require_grad();
            let v_leaf = v.clone().detach().require_grad();
            let mut k_grad: Option<Tensor<4>> = None;
            let mut v_grad: Option<Tensor<4>> = None;
            let mut row_grads = Vec::with_capacity(blocks.len());
            for &(r0, len) in &blocks {
                let rows_in = input.clone().narrow(1, r0, len).detach();
                let rows_in = if needs_input {
                    rows_in.require_grad()
                } else {
                    rows_in
                };
                let text_leaf = text.clone().require_grad();
                let (_, tokens, _) = tokens_with(text_leaf.clone());
                let out = layer.forward_rows(
                    rows_in.clone(),
                    pos.clone().narrow(1, r0, len),
                    (k_leaf.clone(), v_leaf.clone()),
                    tokens,
                    mask.clone(),
                );
                let weight = upstream.clone().narrow(1, r0, len).autodiff();
                let mut grads = (out * weight).sum().backward();
                if let Some(g) = text_leaf.grad_remove(&mut grads) {
                    text_grad = text_grad + g;
                }
                if needs_input {
                    k_grad = add_grad(k_grad, k_leaf.grad_remove(&mut grads));
                    v_grad = add_grad(v_grad, v_leaf.grad_remove(&mut grads));
                    let rows_grad = rows_in
                        .grad_remove(&mut grads)
                        .unwrap_or_else(|| Tensor::<3>::zeros(rows_in.dims(), &device).inner());
                    row_grads.push(rows_grad);
                }
            }
            carried = if needs_input {
                // The input's gradient: through the rows directly, plus through every token's
                // keys and values.
                let mut direct = Tensor::cat(row_grads, 1);
                let mut objective_kv: Option<Tensor<1>> = None;
                if let Some(g) = k_grad {
                    objective_kv = Some((k * g.autodiff()).sum());
                }
                if let Some(g) = v_grad {
                    let term = (v * g.autodiff()).sum();
                    objective_kv = Some(match objective_kv {
                        Some(o) => o + term,
                        None => term,
                    });
                }
                if let Some(o) = objective_kv {
                    let mut grads = o.backward();
                    if let Some(g) = input_leaf.grad_remove(&mut grads) {
                        direct = direct + g;
                    }
                }
                Some(direct)
            } else {
                None
            };
        }
        Ok((loss, text_grad))
    }

    fn check_prompt(&self, features: &ImageFeatures, prompt: &Prompt) -> Result<(), ModelError> {
        let b = features.batch();
        let [tb, _, td] = prompt.text.features.dims();
        let d = features.fpn[2].dims()[1];
        let invalid = |reason: String| Err(ModelError::InvalidInput { reason });
        if tb != b || td != d || prompt.text.valid.dims() != [tb, prompt.text.features.dims()[1]] {
            return invalid(format!(
                "prompt {:?} / mask {:?} vs {b} images of width {d}",
                prompt.text.features.dims(),
                prompt.text.valid.dims()
            ));
        }
        let has_boxes = prompt.boxes.iter().any(|list| !list.is_empty());
        if has_boxes && prompt.boxes.len() != b {
            return invalid(format!("{} box lists for {b} images", prompt.boxes.len()));
        }
        let bad = prompt.boxes.iter().flatten().any(|x| {
            x.cxcywh
                .iter()
                .any(|v| !v.is_finite() || !(-1.0..=2.0).contains(v))
        });
        if bad {
            return invalid("box coordinates must be finite, normalised cx, cy, w, h".to_owned());
        }
        Ok(())
    }
}

/// Largest attention-score block (bytes) [`Sam3::backward_checkpointed`] builds: 64 MiB, half
/// of the smallest storage-buffer binding wgpu guarantees (128 MiB).
pub const SCORE_BLOCK_BYTES: usize = 64 << 20;

/// `sum + grad`, either side possibly absent.
fn add_grad<const D: usize>(sum: Option<Tensor<D>>, grad: Option<Tensor<D>>) -> Option<Tensor<D>> {
    match (sum, grad) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Level 2 as tokens [b, g·g, D] and its position encoding [1, g·g, D].
fn flat_image(features: &ImageFeatures) -> (Tensor<3>, Tensor<3>) {
    let [b, d, gh, gw] = features.fpn[2].dims();
    // [b, D, g, g] → [b, g·g, D]
    let image = features.fpn[2]
        .clone()
        .reshape([b, d, gh * gw])
        .swap_dims(1, 2);
    let pos = features
        .pos
        .clone()
        .reshape([1, d, gh * gw])
        .swap_dims(1, 2);
    (image, pos)
}

fn read_scalar(t: Tensor<1>) -> Result<f32, ModelError> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .ok_or_else(|| ModelError::InvalidInput {
            reason: "the objective is not a one-element float tensor".to_owned(),
        })
}
