//! Dot-product classification scores (HF `Sam3DotProductScoring`; official `model_misc.py`
//! `DotProductScoring`), spec §8.4.
//!
//! Query states [L, b, Q, D] and prompt [b, P, D] + validity [b, P] → logits [L, b, Q]:
//! `u = LN(prompt + MLP(prompt))`, masked mean over valid tokens, `text_proj`, then
//! `query_proj(q)·p / √D`, clamped to ±12.

use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Bool, Device, Tensor};

use super::config::DetrConfig;
use super::layers::{DecoderMlp, TORCH_LN_EPS, layer_norm, linear};

/// HF `Sam3DotProductScoring`.
#[derive(Module, Debug)]
pub struct DotProductScoring {
    pub text_mlp: DecoderMlp,
    pub text_mlp_out_norm: LayerNorm,
    pub text_proj: Linear,
    pub query_proj: Linear,
}

impl DetrConfig {
    /// Builds the scoring head from the decoder config (width and FFN width).
    pub fn init_scoring(&self, device: &Device) -> DotProductScoring {
        let d = self.hidden_size;
        DotProductScoring {
            text_mlp: DecoderMlp::new(d, self.intermediate_size, d, 2, device),
            text_mlp_out_norm: layer_norm(d, TORCH_LN_EPS, device),
            text_proj: linear(d, d, device),
            query_proj: linear(d, d, device),
        }
    }
}

impl DotProductScoring {
    /// `hidden` [L, b, Q, D], `prompt` [b, P, D], `prompt_valid` [b, P] → [L, b, Q].
    pub fn forward(
        &self,
        hidden: Tensor<4>,
        prompt: Tensor<3>,
        prompt_valid: Tensor<2, Bool>,
    ) -> Tensor<3> {
        const CLAMP: f32 = 12.0;
        let [l, b, q, d] = hidden.dims();
        let [_, p, _] = prompt.dims();
        let dtype = prompt.dtype();
        let u = self
            .text_mlp_out_norm
            .forward(self.text_mlp.forward(prompt.clone()) + prompt);
        // [b, P] → [b, P, 1]
        let weights = prompt_valid.float().cast(dtype).reshape([b, p, 1]);
        let count = weights.clone().sum_dim(1).clamp_min(1.0);
        // [b, 1, D] → [b, D]
        let pooled = ((u * weights).sum_dim(1) / count).reshape([b, d]);
        let text = self.text_proj.forward(pooled);
        let queries = self.query_proj.forward(hidden);
        // [L, b, Q, D] @ [1, b, D, 1] → [L, b, Q, 1]
        let scores = queries.matmul(text.reshape([1, b, d, 1]).expand([l, b, d, 1]));
        let scale = 1.0 / (d as f64).sqrt();
        (scores * scale as f32)
            .clamp(-CLAMP, CLAMP)
            .reshape([l, b, q])
    }
}
