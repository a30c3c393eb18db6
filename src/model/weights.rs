//! Loading SAM3 detector weights from a Hugging Face safetensors checkpoint through burn-store.
//!
//! Accepted files: the hub `facebook/sam3` `model.safetensors` (a `Sam3VideoModel` state dict:
//! detector under `detector_model.`, tracker under `tracker_model.` / `tracker_neck.`) and bare
//! `Sam3Model` state dicts such as the fixtures' `sam3_model.safetensors`.
//!
//! Module fields are named after the HF keys, so the remap table is short:
//!
//! | checkpoint key                                   | module path                          |
//! |--------------------------------------------------|--------------------------------------|
//! | `detector_model.<rest>`                          | `<rest>` (prefix rule)               |
//! | `….fpn_layers.<i>.scale_layers.<j>.<p>`          | `….fpn_layers.<i>.scale_layers_<j>.<p>` (ConvT at 0 and 2; 1 is a GELU) |
//! | `tracker_model.*`, `tracker_neck.*`              | ignored (SAM-style tracker)          |
//!
//! The PyTorch adapter transposes every Linear weight (`[out, in]` → `[in, out]`) and renames
//! norm `weight`/`bias` to `gamma`/`beta`; the cast adapter converts every float tensor to the
//! requested dtype. Every module tensor must be present with its exact shape and every detector
//! tensor of the file must be used, otherwise loading fails with
//! [`ModelError::IncompatibleCheckpoint`] listing all of them.

use std::path::Path;

use burn::store::{
    ApplyError, ApplyResult, FloatCastAdapter, KeyRemapper, ModuleAdapter as _,
    ModuleSnapshot as _, ModuleStore as _, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Device};

use super::config::Sam3Config;
use super::error::{ModelError, TensorMismatch};
use super::sam3::Sam3;

/// Prefixes of checkpoint keys that belong to other models sharing the file.
const FOREIGN_PREFIXES: [&str; 2] = ["tracker_model.", "tracker_neck."];

/// Float type the weights are converted to on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightPrecision {
    #[default]
    F32,
    F16,
}

impl WeightPrecision {
    pub(crate) fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
        }
    }
}

/// The remap table of the module header, as regex rules.
fn remapper() -> Result<KeyRemapper, ModelError> {
    let rules = [
        // `detector_model.vision_encoder.…` → `vision_encoder.…` (bare Sam3Model files have no prefix)
        (r"^detector_model\.", ""),
        // `fpn_layers.0.scale_layers.2.weight` → `fpn_layers.0.scale_layers_2.weight`
        (r"\.scale_layers\.(\d+)\.", ".scale_layers_$1."),
    ];
    KeyRemapper::from_patterns(rules.to_vec()).map_err(|e| ModelError::InvalidConfig {
        reason: format!("weight remap table: {e}"),
    })
}

impl Sam3 {
    /// Builds the model for `config` on `device` and loads `path` into it.
    pub fn load(
        config: &Sam3Config,
        path: &Path,
        precision: WeightPrecision,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let mut model = config.init(device);
        model.load_weights(path, precision)?;
        Ok(model)
    }

    /// Loads `path` into this model, replacing every parameter.
    pub fn load_weights(
        &mut self,
        path: &Path,
        precision: WeightPrecision,
    ) -> Result<(), ModelError> {
        let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(precision.dtype()));
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(adapter)
            .remap(remapper()?)
            .validate(false)
            .allow_partial(true);
        // Reading the header first separates "not a safetensors file" from "wrong tensors".
        store.keys().map_err(|source| ModelError::ReadCheckpoint {
            path: path.to_owned(),
            source,
        })?;
        let result = self
            .load_from(&mut store)
            .map_err(|source| ModelError::ReadCheckpoint {
                path: path.to_owned(),
                source,
            })?;
        judge_load(path, &result, |key| {
            FOREIGN_PREFIXES
                .iter()
                .any(|prefix| key.starts_with(prefix))
        })
    }
}

/// Turns a burn-store load result into `Ok` or [`ModelError::IncompatibleCheckpoint`] listing
/// every missing, unexpected (file tensors for which `foreign` is false), mis-shaped and
/// unreadable tensor.
pub(crate) fn judge_load(
    path: &Path,
    result: &ApplyResult,
    foreign: impl Fn(&str) -> bool,
) -> Result<(), ModelError> {
    let missing: Vec<String> = result.missing.iter().map(|(key, _)| key.clone()).collect();
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|key| !foreign(key))
        .cloned()
        .collect();
    let mut mismatched = Vec::new();
    let mut failed = Vec::new();
    for error in &result.errors {
        match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => mismatched.push(TensorMismatch {
                key: path.clone(),
                expected: expected.to_vec(),
                actual: found.to_vec(),
            }),
            other => failed.push(other.to_string()),
        }
    }
    if missing.is_empty() && unexpected.is_empty() && mismatched.is_empty() && failed.is_empty() {
        Ok(())
    } else {
        Err(ModelError::IncompatibleCheckpoint {
            path: path.to_owned(),
            missing,
            unexpected,
            mismatched,
            failed,
        })
    }
}
