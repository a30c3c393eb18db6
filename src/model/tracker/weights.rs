//! Loading the tracker's weights through burn-store (the backbone is the detector's and is not
//! loaded here).
//!
//! Accepted files: the hub `facebook/sam3` `model.safetensors` (a `Sam3VideoModel` state dict)
//! and bare `Sam3TrackerModel` state dicts such as the fixtures' `sam3_tracker_model.safetensors`
//! (which lacks the shared backbone). Remap table:
//!
//! | checkpoint key                              | module path                               |
//! |---------------------------------------------|-------------------------------------------|
//! | `tracker_neck.<rest>`                       | `vision_encoder.neck.<rest>`              |
//! | `tracker_model.<rest>`                      | `<rest>`                                  |
//! | `….fpn_layers.<i>.scale_layers.<j>.<p>`     | `….fpn_layers.<i>.scale_layers_<j>.<p>`   |
//! | `detector_model.*`, `vision_encoder.backbone.*` | ignored (detector; shared backbone)   |
//! | video-only `memory_*`, `mask_downsample.*`, `object_pointer_proj.*`, `temporal_positional_encoding_projection_layer.*`, `no_memory_positional_encoding`, `no_object_pointer`, `occlusion_spatial_embedding_parameter`, `memory_temporal_positional_encoding` | ignored |
//!
//! Every module tensor must be present with its exact shape and every other tracker tensor of the
//! file must be used; otherwise [`ModelError::IncompatibleCheckpoint`] lists them all. A file
//! with no tracker tensors at all gives [`ModelError::NoTrackerWeights`].

use std::path::Path;

use burn::store::{
    FloatCastAdapter, KeyRemapper, ModuleAdapter as _, ModuleSnapshot as _, ModuleStore as _,
    PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::Device;

use super::Sam3Tracker;
use super::config::Sam3TrackerConfig;
use crate::model::error::ModelError;
use crate::model::weights::{WeightPrecision, judge_load};

/// Key prefixes (after remapping) of tensors that belong to other parts of the checkpoint.
const IGNORED_PREFIXES: [&str; 10] = [
    "detector_model.",
    "vision_encoder.backbone.",
    "memory_",
    "mask_downsample.",
    "object_pointer_proj.",
    "temporal_positional_encoding_projection_layer.",
    "no_memory_positional_encoding",
    "no_object_pointer",
    "occlusion_spatial_embedding_parameter",
    "memory_temporal_positional_encoding",
];

/// A key only the tracker has; its absence means the file has no tracker.
const TRACKER_MARKER: &str = "prompt_encoder.point_embed.weight";

fn remapper() -> Result<KeyRemapper, ModelError> {
    let rules = [
        // `tracker_neck.fpn_layers.0.proj1.weight` → `vision_encoder.neck.fpn_layers.0.proj1.weight`
        (r"^tracker_neck\.", "vision_encoder.neck."),
        // `tracker_model.mask_decoder.iou_token.weight` → `mask_decoder.iou_token.weight`
        (r"^tracker_model\.", ""),
        // `fpn_layers.0.scale_layers.2.weight` → `fpn_layers.0.scale_layers_2.weight`
        (r"\.scale_layers\.(\d+)\.", ".scale_layers_$1."),
    ];
    KeyRemapper::from_patterns(rules.to_vec()).map_err(|e| ModelError::InvalidConfig {
        reason: format!("tracker weight remap table: {e}"),
    })
}

impl Sam3Tracker {
    /// Builds the tracker for `config` on `device` and loads `path` into it.
    pub fn load(
        config: &Sam3TrackerConfig,
        path: &Path,
        precision: WeightPrecision,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let mut model = config.init(device);
        model.load_weights(path, precision)?;
        Ok(model)
    }

    /// Whether the safetensors file at `path` holds tracker weights (reads the header only).
    pub fn file_has_weights(path: &Path) -> Result<bool, ModelError> {
        let mut store = SafetensorsStore::from_file(path).remap(remapper()?);
        let keys = store.keys().map_err(|source| ModelError::ReadCheckpoint {
            path: path.to_owned(),
            source,
        })?;
        Ok(keys.iter().any(|k| k == TRACKER_MARKER))
    }

    /// Loads `path` into this tracker, replacing every parameter.
    pub fn load_weights(
        &mut self,
        path: &Path,
        precision: WeightPrecision,
    ) -> Result<(), ModelError> {
        if !Self::file_has_weights(path)? {
            return Err(ModelError::NoTrackerWeights {
                path: path.to_owned(),
            });
        }
        let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(precision.dtype()));
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(adapter)
            .remap(remapper()?)
            .validate(false)
            .allow_partial(true);
        let result = self
            .load_from(&mut store)
            .map_err(|source| ModelError::ReadCheckpoint {
                path: path.to_owned(),
                source,
            })?;
        judge_load(path, &result, |key| {
            IGNORED_PREFIXES
                .iter()
                .any(|prefix| key.starts_with(prefix))
        })
    }
}
