//! DETR decoder with presence token, iterative box refinement and box relative-position bias
//! (HF `Sam3DetrDecoder`, `Sam3DetrDecoderLayer`; official `decoder.py` `TransformerDecoder`),
//! spec §8.1–8.3.
//!
//! Memory [b, h·w, D] + its position encoding, prompt [b, P, D] + validity → per layer: query
//! states [b, Q, D] (after `output_layer_norm`), the reference boxes that entered the layer
//! [b, Q, 4] (cx, cy, w, h in sigmoid space) and the presence logit [b, 1] (clamped to ±10).
//! Post-norm layers over [presence; Q queries]. Reference boxes are detached between layers.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::config::DetrConfig;
use super::layers::{
    Attention, DecoderMlp, Mlp, TORCH_LN_EPS, box_cxcywh_to_xyxy, inverse_sigmoid,
    key_padding_mask, layer_norm, sine_encode,
};

/// HF `Sam3DetrDecoderLayer`.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub self_attn: Attention,
    pub self_attn_layer_norm: LayerNorm,
    pub text_cross_attn: Attention,
    pub text_cross_attn_layer_norm: LayerNorm,
    pub vision_cross_attn: Attention,
    pub vision_cross_attn_layer_norm: LayerNorm,
    pub mlp: Mlp,
    pub mlp_layer_norm: LayerNorm,
}

/// Per-layer decoder outputs.
#[derive(Debug, Clone)]
pub struct DecoderOutput {
    /// Raw layer outputs [b, 1+Q, D] (index 0 = presence token).
    pub layer_outputs: Vec<Tensor<3>>,
    /// `output_layer_norm` of the query states [b, Q, D], per layer.
    pub hidden_states: Vec<Tensor<3>>,
    /// Reference boxes entering each layer [b, Q, 4] (not detached, for box predictions).
    pub reference_boxes: Vec<Tensor<3>>,
    /// Presence logits [b, 1], per layer.
    pub presence_logits: Vec<Tensor<2>>,
}

/// Inputs shared by all decoder layers.
struct LayerInputs<'a> {
    query_pos: Tensor<3>,
    prompt: &'a Tensor<3>,
    prompt_mask: &'a Tensor<4, Bool>,
    memory: &'a Tensor<3>,
    memory_keys: &'a Tensor<3>,
    rpb: Tensor<4>,
}

impl DecoderLayer {
    /// `t` [b, 1+Q, D] → [b, 1+Q, D].
    fn forward(&self, t: Tensor<3>, inputs: LayerInputs<'_>) -> Tensor<3> {
        let [b, _, d] = t.dims();
        let device = t.device();
        // presence token has no positional term: [b, 1+Q, D]
        let presence_pos = Tensor::zeros([b, 1, d], (&device, t.dtype()));
        let qp = Tensor::cat(vec![presence_pos, inputs.query_pos], 1);
        let q = t.clone() + qp.clone();
        let attn = self.self_attn.forward(q.clone(), q, t.clone(), None, None);
        let t = self.self_attn_layer_norm.forward(t + attn);
        let q = t.clone() + qp.clone();
        let prompt = inputs.prompt.clone();
        let attn = self.text_cross_attn.forward(
            q,
            prompt.clone(),
            prompt,
            Some(inputs.prompt_mask.clone()),
            None,
        );
        let t = self.text_cross_attn_layer_norm.forward(t + attn);
        let q = t.clone() + qp;
        let memory = inputs.memory.clone();
        let attn = self.vision_cross_attn.forward(
            q,
            inputs.memory_keys.clone(),
            memory,
            None,
            Some(inputs.rpb),
        );
        let t = self.vision_cross_attn_layer_norm.forward(t + attn);
        let ffn = self.mlp.forward(t.clone());
        self.mlp_layer_norm.forward(t + ffn)
    }
}

/// HF `Sam3DetrDecoder`.
#[derive(Module, Debug)]
pub struct DetrDecoder {
    pub layers: Vec<DecoderLayer>,
    pub output_layer_norm: LayerNorm,
    pub box_head: DecoderMlp,
    pub query_embed: Embedding,
    pub reference_points: Embedding,
    pub presence_token: Embedding,
    pub presence_head: DecoderMlp,
    pub presence_layer_norm: LayerNorm,
    pub ref_point_head: DecoderMlp,
    pub box_rpb_embed_x: DecoderMlp,
    pub box_rpb_embed_y: DecoderMlp,
}

impl DetrConfig {
    /// Builds the decoder (uses `num_queries`).
    pub fn init_decoder(&self, device: &Device) -> DetrDecoder {
        let d = self.hidden_size;
        let heads = self.num_attention_heads;
        let ln = || layer_norm(d, TORCH_LN_EPS, device);
        let layers = (0..self.num_layers)
            .map(|_| DecoderLayer {
                self_attn: Attention::new(d, heads, device),
                self_attn_layer_norm: ln(),
                text_cross_attn: Attention::new(d, heads, device),
                text_cross_attn_layer_norm: ln(),
                vision_cross_attn: Attention::new(d, heads, device),
                vision_cross_attn_layer_norm: ln(),
                mlp: Mlp::new(d, self.intermediate_size, self.hidden_act, device),
                mlp_layer_norm: ln(),
            })
            .collect();
        DetrDecoder {
            layers,
            output_layer_norm: ln(),
            box_head: DecoderMlp::new(d, d, 4, 3, device),
            query_embed: EmbeddingConfig::new(self.num_queries, d).init(device),
            reference_points: EmbeddingConfig::new(self.num_queries, 4).init(device),
            presence_token: EmbeddingConfig::new(1, d).init(device),
            presence_head: DecoderMlp::new(d, d, 1, 3, device),
            presence_layer_norm: ln(),
            ref_point_head: DecoderMlp::new(2 * d, d, d, 2, device),
            box_rpb_embed_x: DecoderMlp::new(2, d, heads, 2, device),
            box_rpb_embed_y: DecoderMlp::new(2, d, heads, 2, device),
        }
    }
}

impl DetrDecoder {
    /// `memory` [b, h·w, D], `pos` [1|b, h·w, D], `prompt` [b, P, D], `prompt_valid` [b, P].
    pub fn forward(
        &self,
        memory: Tensor<3>,
        pos: Tensor<3>,
        prompt: Tensor<3>,
        prompt_valid: Tensor<2, Bool>,
        grid: [usize; 2],
    ) -> DecoderOutput {
        const PRESENCE_CLAMP: f32 = 10.0;
        let [b, _, d] = memory.dims();
        let queries = self.query_embed.weight.val();
        let [q, _] = queries.dims();
        let queries = queries.reshape([1, q, d]).expand([b, q, d]);
        let mut reference = self
            .reference_points
            .weight
            .val()
            .reshape([1, q, 4])
            .expand([b, q, 4]);
        reference = burn::tensor::activation::sigmoid(reference);
        let presence = self
            .presence_token
            .weight
            .val()
            .reshape([1, 1, d])
            .expand([b, 1, d]);
        let mut t = Tensor::cat(vec![presence, queries], 1);
        let prompt_mask = key_padding_mask(prompt_valid);
        let memory_keys = memory.clone() + pos;
        let mut out = DecoderOutput {
            layer_outputs: Vec::new(),
            hidden_states: Vec::new(),
            reference_boxes: vec![reference.clone()],
            presence_logits: Vec::new(),
        };
        for layer in &self.layers {
            let inputs = LayerInputs {
                query_pos: self
                    .ref_point_head
                    .forward(encode_boxes(reference.clone(), d / 2)),
                prompt: &prompt,
                prompt_mask: &prompt_mask,
                memory: &memory,
                memory_keys: &memory_keys,
                rpb: self.rpb_matrix(reference.clone(), grid),
            };
            t = layer.forward(t, inputs);
            let states = t.clone().narrow(1, 1, q);
            let normed = self.output_layer_norm.forward(states);
            let delta = self.box_head.forward(normed.clone());
            let refined = burn::tensor::activation::sigmoid(delta + inverse_sigmoid(reference));
            reference = refined.clone().detach();
            let token = self.presence_layer_norm.forward(t.clone().narrow(1, 0, 1));
            // [b, 1, 1] → [b, 1]
            let logit = self.presence_head.forward(token).reshape([b, 1]);
            out.presence_logits
                .push(logit.clamp(-PRESENCE_CLAMP, PRESENCE_CLAMP));
            out.layer_outputs.push(t.clone());
            out.hidden_states.push(normed);
            out.reference_boxes.push(refined);
        }
        out.reference_boxes.pop();
        out
    }

    /// Box relative-position bias, log mode: [b, heads, 1+Q, h·w] (zero row for presence).
    fn rpb_matrix(&self, reference: Tensor<3>, grid: [usize; 2]) -> Tensor<4> {
        let [h, w] = grid;
        let [b, q, _] = reference.dims();
        let device = reference.device();
        let dtype = reference.dtype();
        let xyxy = box_cxcywh_to_xyxy(reference);
        let xs = xyxy
            .clone()
            .select(2, Tensor::<1, Int>::from_ints([0, 2], &device));
        let ys = xyxy.select(2, Tensor::<1, Int>::from_ints([1, 3], &device));
        let coords = |n: usize| {
            Tensor::<1, Int>::arange(0..n as i64, &device)
                .float()
                .cast(dtype)
                / n as f32
        };
        // [1, 1, n, 1] − [b, Q, 1, 2] → [b, Q, n, 2]
        let dx = coords(w).reshape([1, 1, w, 1]) - xs.reshape([b, q, 1, 2]);
        let dy = coords(h).reshape([1, 1, h, 1]) - ys.reshape([b, q, 1, 2]);
        let bias_x = self.box_rpb_embed_x.forward(log_scale(dx));
        let bias_y = self.box_rpb_embed_y.forward(log_scale(dy));
        let heads = bias_x.dims()[3];
        // [b, Q, h, 1, heads] + [b, Q, 1, w, heads] → [b, Q, h·w, heads] → [b, heads, Q, h·w]
        let rpb = bias_y.reshape([b, q, h, 1, heads]) + bias_x.reshape([b, q, 1, w, heads]);
        let rpb = rpb.reshape([b, q, h * w, heads]).permute([0, 3, 1, 2]);
        let zeros = Tensor::zeros([b, heads, 1, h * w], (&device, rpb.dtype()));
        Tensor::cat(vec![zeros, rpb], 2)
    }
}

/// `sign(8δ)·log2(|8δ| + 1) / log2(8)`.
fn log_scale(delta: Tensor<4>) -> Tensor<4> {
    let scaled = delta * 8.0;
    let magnitude = (scaled.clone().abs() + 1.0).log() / 8f32.ln();
    scaled.sign() * magnitude
}

/// HF `encode_boxes`: [b, Q, 4] (cx, cy, w, h) → [b, Q, 4·n] as [y, x, w, h] encodings.
pub fn encode_boxes(boxes: Tensor<3>, num_feats: usize) -> Tensor<3> {
    let [b, q, _] = boxes.dims();
    let parts = boxes.chunk(4, 2);
    let enc = |i: usize| sine_encode(parts[i].clone().reshape([b, q]), num_feats);
    Tensor::cat(vec![enc(1), enc(0), enc(2), enc(3)], 2)
}
