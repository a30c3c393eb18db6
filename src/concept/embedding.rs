//! The concept embedding φ (m2c-method.md §1): one learnable tensor, zeros at start, added to
//! the frozen base prompt.
//!
//! - [`EmbeddingSite::TextInput`] (the authors' code): φ is `[T, Ct]` (32 × 1024 at full size)
//!   and is added to the CLIP token embeddings of the base text, *before* the positional
//!   embedding, the text transformer and the resizer. The validity mask still comes from the
//!   base text's token ids, so rows at pad positions receive no gradient.
//! - [`EmbeddingSite::ProjectedText`] (the paper figure, for ablation): φ is `[T, D]`
//!   (32 × 256) and is added to the projected text tokens, after the resizer.
//!
//! Everything here is a pure function of tensors on the caller's device; put the model and
//! the base prompt on an autodiff device (see `search.rs`) to differentiate through it.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::error::ConceptError;
use super::file::EmbeddingSite;
use crate::model::{Sam3, TextPrompt};

/// The frozen part of a concept prompt: the base text, prepared once per search.
#[derive(Debug, Clone)]
pub struct BasePrompt {
    pub site: EmbeddingSite,
    /// TextInput: token embeddings [1, T, Ct]. ProjectedText: projected text tokens [1, T, D].
    /// Detached either way.
    pub base: Tensor<3>,
    /// [1, T], `true` = real token (from the base text's ids).
    pub valid: Tensor<2, Bool>,
}

impl BasePrompt {
    /// Prepares the base prompt from token ids [1, T] and their validity [1, T].
    pub fn new(
        model: &Sam3,
        ids: Tensor<2, Int>,
        valid: Tensor<2, Bool>,
        site: EmbeddingSite,
    ) -> Result<Self, ConceptError> {
        let [b, t] = ids.dims();
        if b != 1 || valid.dims() != [1, t] {
            return Err(ConceptError::InvalidEmbedding {
                reason: format!(
                    "base prompt ids {:?} / mask {:?}: expected one prompt [1, T]",
                    ids.dims(),
                    valid.dims()
                ),
            });
        }
        let base = match site {
            EmbeddingSite::TextInput => model.embed_tokens(ids),
            EmbeddingSite::ProjectedText => model.encode_text(ids, valid.clone())?.features,
        };
        Ok(Self {
            site,
            base: base.detach(),
            valid,
        })
    }

    /// Shape of φ for this prompt: `[T, width]`.
    pub fn phi_shape(&self) -> [usize; 2] {
        let [_, t, w] = self.base.dims();
        [t, w]
    }

    /// The same prompt with its tensors lifted onto the autodiff variant of their device (as
    /// constants: nothing here requires a gradient).
    pub fn autodiff(self) -> Self {
        Self {
            site: self.site,
            base: self.base.autodiff(),
            valid: self.valid.autodiff(),
        }
    }

    /// The text prompt `base ⊕ φ` for `batch` images; differentiable with respect to `phi`
    /// [T, W] when the model and this prompt live on an autodiff device.
    pub fn text_prompt(
        &self,
        model: &Sam3,
        phi: Tensor<2>,
        batch: usize,
    ) -> Result<TextPrompt, ConceptError> {
        let shape = self.phi_shape();
        if phi.dims() != shape {
            return Err(ConceptError::InvalidEmbedding {
                reason: format!("φ is {:?}, this prompt needs {shape:?}", phi.dims()),
            });
        }
        // [T, W] → [1, T, W]
        let shifted = self.base.clone() + phi.unsqueeze_dim::<3>(0);
        let one = match self.site {
            EmbeddingSite::TextInput => model.encode_text_embeds(shifted, self.valid.clone())?,
            EmbeddingSite::ProjectedText => TextPrompt {
                features: shifted,
                valid: self.valid.clone(),
            },
        };
        // [1, T, D] → [batch, T, D]; the text tower runs once for the whole batch.
        Ok(TextPrompt {
            features: one.features.repeat_dim(0, batch),
            valid: one.valid.repeat_dim(0, batch),
        })
    }
}

/// Checks that `values` can be φ of `shape`: the right length and all finite.
pub fn check_phi(values: &[f32], shape: [usize; 2]) -> Result<(), ConceptError> {
    if shape[0].checked_mul(shape[1]) != Some(values.len()) {
        return Err(ConceptError::InvalidEmbedding {
            reason: format!("{} values do not fill shape {shape:?}", values.len()),
        });
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(ConceptError::InvalidEmbedding {
            reason: format!("non-finite value {bad}"),
        });
    }
    Ok(())
}

/// φ as a tensor [T, W] on `device` (plain: a constant; call `require_grad` to learn it).
pub fn phi_tensor(
    values: &[f32],
    shape: [usize; 2],
    device: &Device,
) -> Result<Tensor<2>, ConceptError> {
    check_phi(values, shape)?;
    Ok(Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        device,
    ))
}

/// Reads a float tensor back to the host.
pub(crate) fn host_values<const D: usize>(
    tensor: Tensor<D>,
    what: &'static str,
) -> Result<Vec<f32>, ConceptError> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ConceptError::ReadBack {
            what,
            reason: format!("{e:?}"),
        })
}
