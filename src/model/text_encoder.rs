//! CLIP text tower of SAM3 (HF `CLIPTextModelWithProjection` → `CLIPTextTransformer`; official
//! `text_encoder_ve.py` `VETextEncoder`), spec §5.2.
//!
//! Token ids [b, T] (+ validity mask) → token embeddings [b, T, Ct] → + positions → pre-LN causal
//! transformer → `final_layer_norm` → [b, T, Ct]. The resizer to the detector width lives in
//! `sam3.rs` (`text_projection`, [b, T, D]). CLIP's own `text_projection` is loaded, never used.
//! Attention is causal plus a key-padding mask, as in HF; with right padding the mask only changes
//! the (masked downstream) rows of padding tokens.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::config::TextConfig;
use super::layers::{Mlp, attend, layer_norm, linear, merge_heads, split_heads};

/// HF `CLIPTextEmbeddings`.
#[derive(Module, Debug)]
pub struct TextEmbeddings {
    pub token_embedding: Embedding,
    pub position_embedding: Embedding,
}

/// HF `CLIPAttention` (output projection named `out_proj`).
#[derive(Module, Debug)]
pub struct ClipAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
}

/// HF `CLIPEncoderLayer`: `x += attn(ln1(x))`, `x += mlp(ln2(x))`.
#[derive(Module, Debug)]
pub struct ClipLayer {
    pub layer_norm1: LayerNorm,
    pub self_attn: ClipAttention,
    pub layer_norm2: LayerNorm,
    pub mlp: Mlp,
}

/// HF `CLIPEncoder`.
#[derive(Module, Debug)]
pub struct ClipEncoder {
    pub layers: Vec<ClipLayer>,
}

/// HF `CLIPTextTransformer`.
#[derive(Module, Debug)]
pub struct TextModel {
    pub embeddings: TextEmbeddings,
    pub encoder: ClipEncoder,
    pub final_layer_norm: LayerNorm,
}

/// HF `CLIPTextModelWithProjection`.
#[derive(Module, Debug)]
pub struct TextEncoder {
    pub text_model: TextModel,
    /// CLIP's pooled-output projection [Ct → projection_dim], no bias. Unused by SAM3; kept so
    /// that every checkpoint tensor has a home.
    pub text_projection: Linear,
}

impl TextConfig {
    /// Builds the text tower with placeholder weights.
    pub fn init(&self, device: &Device) -> TextEncoder {
        let c = self.hidden_size;
        let eps = self.layer_norm_eps;
        let layers = (0..self.num_hidden_layers)
            .map(|_| ClipLayer {
                layer_norm1: layer_norm(c, eps, device),
                self_attn: ClipAttention {
                    q_proj: linear(c, c, device),
                    k_proj: linear(c, c, device),
                    v_proj: linear(c, c, device),
                    out_proj: linear(c, c, device),
                    num_heads: self.num_attention_heads,
                },
                layer_norm2: layer_norm(c, eps, device),
                mlp: Mlp::new(c, self.intermediate_size, self.hidden_act, device),
            })
            .collect();
        TextEncoder {
            text_model: TextModel {
                embeddings: TextEmbeddings {
                    token_embedding: EmbeddingConfig::new(self.vocab_size, c).init(device),
                    position_embedding: EmbeddingConfig::new(self.max_position_embeddings, c)
                        .init(device),
                },
                encoder: ClipEncoder { layers },
                final_layer_norm: layer_norm(c, eps, device),
            },
            text_projection: LinearConfig::new(c, self.projection_dim)
                .with_bias(false)
                .init(device),
        }
    }
}

impl TextEncoder {
    /// Token ids [b, T] → token embeddings [b, T, Ct] (no positions). This is where a learned
    /// offset can be added before [`TextEncoder::forward_embeds`].
    pub fn embed_tokens(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.text_model.embeddings.token_embedding.forward(ids)
    }

    /// Token ids [b, T] and validity mask [b, T] → `last_hidden_state` [b, T, Ct].
    pub fn forward(&self, ids: Tensor<2, Int>, valid: Option<Tensor<2, Bool>>) -> Tensor<3> {
        self.forward_embeds(self.embed_tokens(ids), valid)
    }

    /// Token embeddings [b, T, Ct] → `last_hidden_state` [b, T, Ct]; T ≤ context length.
    pub fn forward_embeds(
        &self,
        token_embeds: Tensor<3>,
        valid: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        let [b, t, _] = token_embeds.dims();
        let device = token_embeds.device();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
        let position_embeds = self
            .text_model
            .embeddings
            .position_embedding
            .forward(positions);
        let mut x = token_embeds + position_embeds;
        let mask = valid.map(|valid| causal_padding_mask(valid, b, t));
        for layer in &self.text_model.encoder.layers {
            x = layer.forward(x, mask.clone());
        }
        self.text_model.final_layer_norm.forward(x)
    }
}

/// `true` where query i may not see key j: j > i or key j is padding. [b, 1, T, T].
fn causal_padding_mask(valid: Tensor<2, Bool>, b: usize, t: usize) -> Tensor<4, Bool> {
    let device = valid.device();
    // tril_mask is true strictly above the diagonal (key after query)
    let future = Tensor::<2, Bool>::tril_mask([t, t], 0, &device).reshape([1, 1, t, t]);
    // [b, T] → [b, 1, 1, T]
    let padding = valid.bool_not().reshape([b, 1, 1, t]);
    future
        .expand([b, 1, t, t])
        .bool_or(padding.expand([b, 1, t, t]))
}

impl ClipLayer {
    fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4, Bool>>) -> Tensor<3> {
        let h = self.layer_norm1.forward(x.clone());
        let attn = &self.self_attn;
        let q = split_heads(attn.q_proj.forward(h.clone()), attn.num_heads);
        let k = split_heads(attn.k_proj.forward(h.clone()), attn.num_heads);
        let v = split_heads(attn.v_proj.forward(h), attn.num_heads);
        let causal = mask.is_none();
        let out = attn
            .out_proj
            .forward(merge_heads(attend(q, k, v, mask, None, causal)));
        let x = x + out;
        let mlp_out = self.mlp.forward(self.layer_norm2.forward(x.clone()));
        x + mlp_out
    }
}
