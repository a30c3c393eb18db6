//! Stage-by-stage comparison with HF reference fixtures (the committed `tests/fixtures/sam3-tiny`
//! or a folder made by `tests/reference/make_reference.py`, e.g. `--preset full`), shared by
//! `tests/model/model_parity.rs` and `m2c parity`.
//!
//! Each stage starts from the *reference* input of that stage, so a failure points at one
//! component. A stage returns one [`Comparison`] per tensor; judging it (tolerance, assertion,
//! table) is the caller's business.
//!
//! Test tooling, kept beside `model` so the model stays pure tensors in, tensors out: reads
//! safetensors fixtures and may use `model` only.

mod stages;
mod tracker;

use std::path::{Path, PathBuf};

use burn::store::{ModuleStore as _, SafetensorsStore, SafetensorsStoreError, bridge};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::model::geometry_encoder::ExemplarBox;
use crate::model::{ImageFeatures, ModelError, Sam3, Sam3Config, TextPrompt, WeightPrecision};

/// Max abs error the fixtures README suggests for float32 (activations are O(1)–O(15)).
pub const DEFAULT_TOLERANCE: f32 = 1e-4;

/// Failures reading the fixtures (comparisons that merely differ are not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParityError {
    /// A fixture file is missing or not safetensors.
    #[error("cannot read fixture file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: SafetensorsStoreError,
    },
    /// A fixture file lacks a tensor.
    #[error("fixture file {path} lacks tensor {name}")]
    MissingTensor { path: PathBuf, name: String },
    /// A tensor could not be decoded or has an unexpected layout.
    #[error("fixture tensor {name} in {path}: {reason}")]
    BadTensor {
        path: PathBuf,
        name: String,
        reason: String,
    },
    /// The fixture model could not be built or run.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// One tensor compared with its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Stage-qualified label, e.g. `vision.layer2`.
    pub name: String,
    pub actual_shape: Vec<usize>,
    pub expected_shape: Vec<usize>,
    /// Largest |actual − expected| (NaN when either side has a NaN; ∞ when shapes differ).
    pub max_abs_err: f32,
    /// Largest |expected|: the scale of the reference, for [`Comparison::max_rel_err`].
    pub reference_absmax: f32,
    /// Flat index of the worst element, with both values there.
    pub worst: Option<(usize, f32, f32)>,
    /// `Some("file: tensor")` when the fixture folder lacks the reference tensor (or the
    /// reference input) of this comparison, so nothing was compared: a full-size folder stores
    /// only a few ViT layers. Such an entry is not a failure.
    pub absent: Option<String>,
}

impl Comparison {
    /// Shapes agree and every element is within `tolerance`, or there was nothing to compare.
    pub fn within(&self, tolerance: f32) -> bool {
        self.absent.is_some()
            || (self.actual_shape == self.expected_shape && self.max_abs_err <= tolerance)
    }

    /// The max abs error relative to the reference's scale: `max_abs_err / max |expected|`
    /// (the plain max abs error when the reference is all zeros). Element-wise ratios are not
    /// used: they blow up wherever the reference crosses zero.
    pub fn max_rel_err(&self) -> f32 {
        if self.reference_absmax > 0.0 {
            self.max_abs_err / self.reference_absmax
        } else {
            self.max_abs_err
        }
    }

    /// A comparison that could not be made because `file` lacks `key`.
    pub fn absent(name: &str, file: &str, key: &str) -> Self {
        Self {
            name: name.to_owned(),
            actual_shape: Vec::new(),
            expected_shape: Vec::new(),
            max_abs_err: 0.0,
            reference_absmax: 0.0,
            worst: None,
            absent: Some(format!("{file}: {key}")),
        }
    }
}

/// A fixture folder: `sam3_config.json`, `sam3_model.safetensors`, `inputs.safetensors` and the
/// reference tensors.
#[derive(Debug, Clone)]
pub struct Fixtures {
    pub dir: PathBuf,
}

impl Fixtures {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// Whether `file` holds a tensor `name` (without reading its values).
    pub fn has(&self, file: &str, name: &str) -> Result<bool, ParityError> {
        let path = self.dir.join(file);
        let mut store = SafetensorsStore::from_file(&path);
        let found = store
            .get_tensor(name)
            .map_err(|source| ParityError::Read {
                path: path.clone(),
                source,
            })?
            .is_some();
        Ok(found)
    }

    /// One tensor of a fixture file.
    pub fn read(&self, file: &str, name: &str) -> Result<TensorData, ParityError> {
        let path = self.dir.join(file);
        let mut store = SafetensorsStore::from_file(&path);
        let read_err = |source| ParityError::Read {
            path: path.clone(),
            source,
        };
        let tensor = store.get_tensor(name).map_err(read_err)?.ok_or_else(|| {
            ParityError::MissingTensor {
                path: path.clone(),
                name: name.to_owned(),
            }
        })?;
        bridge::to_data(tensor).map_err(|e| self.bad(file, name, e.to_string()))
    }

    fn bad(&self, file: &str, name: &str, reason: String) -> ParityError {
        ParityError::BadTensor {
            path: self.dir.join(file),
            name: name.to_owned(),
            reason,
        }
    }

    /// A tensor as `f32` values.
    pub fn values<E: burn::tensor::Element>(
        &self,
        file: &str,
        name: &str,
    ) -> Result<Vec<E>, ParityError> {
        self.read(file, name)?
            .convert::<E>()
            .try_to_vec::<E>()
            .map_err(|e| self.bad(file, name, e.to_string()))
    }

    pub fn float<const D: usize>(
        &self,
        file: &str,
        name: &str,
        device: &Device,
    ) -> Result<Tensor<D>, ParityError> {
        let data = self.read(file, name)?.convert::<f32>();
        self.check_rank::<D>(file, name, &data)?;
        Ok(Tensor::from_data(data, device))
    }

    pub fn int<const D: usize>(
        &self,
        file: &str,
        name: &str,
        device: &Device,
    ) -> Result<Tensor<D, Int>, ParityError> {
        let data = self.read(file, name)?.convert::<i64>();
        self.check_rank::<D>(file, name, &data)?;
        Ok(Tensor::from_data(data, device))
    }

    fn check_rank<const D: usize>(
        &self,
        file: &str,
        name: &str,
        data: &TensorData,
    ) -> Result<(), ParityError> {
        let rank = data.shape().to_vec().len();
        if rank == D {
            Ok(())
        } else {
            Err(self.bad(file, name, format!("rank {rank}, expected {D}")))
        }
    }

    /// `attention_mask == 1`: the valid text tokens.
    pub fn valid_mask(&self, device: &Device) -> Result<Tensor<2, Bool>, ParityError> {
        Ok(self
            .int::<2>("inputs.safetensors", "attention_mask", device)?
            .equal_elem(1))
    }

    /// `sam3_config.json`.
    pub fn config(&self) -> Result<Sam3Config, ParityError> {
        Ok(Sam3Config::from_file(&self.dir.join("sam3_config.json"))?)
    }

    /// The fixture model (`sam3_model.safetensors`, f32) on `device`.
    pub fn model(&self, device: &Device) -> Result<Sam3, ParityError> {
        let config = self.config()?;
        let path = self.dir.join("sam3_model.safetensors");
        Ok(Sam3::load(&config, &path, WeightPrecision::F32, device)?)
    }

    /// Reference image features (neck levels 0–2 and the level-2 encoding).
    pub fn reference_features(&self, device: &Device) -> Result<ImageFeatures, ParityError> {
        let file = "vision.safetensors";
        Ok(ImageFeatures {
            fpn: [
                self.float(file, "vision.fpn0", device)?,
                self.float(file, "vision.fpn1", device)?,
                self.float(file, "vision.fpn2", device)?,
            ],
            pos: self.float(file, "vision.fpn_pos2", device)?,
        })
    }

    /// Reference text prompt (projected features and validity).
    pub fn reference_text(&self, device: &Device) -> Result<TextPrompt, ParityError> {
        Ok(TextPrompt {
            features: self.float("text.safetensors", "text.features", device)?,
            valid: self.valid_mask(device)?,
        })
    }

    /// The detector box prompts of `inputs.safetensors`, label −10 (padding) dropped.
    pub fn exemplar_boxes(&self) -> Result<Vec<Vec<ExemplarBox>>, ParityError> {
        let file = "inputs.safetensors";
        let data = self.read(file, "input_boxes")?;
        let dims = data.shape().to_vec();
        let &[batch, per_image, 4] = dims.as_slice() else {
            return Err(self.bad(file, "input_boxes", format!("shape {dims:?}")));
        };
        let boxes = self.values::<f32>(file, "input_boxes")?;
        let labels = self.values::<i64>(file, "input_boxes_labels")?;
        if labels.len() != batch * per_image {
            return Err(self.bad(file, "input_boxes_labels", "count differs".to_owned()));
        }
        Ok((0..batch)
            .map(|b| {
                (0..per_image)
                    .filter_map(|j| {
                        let k = b * per_image + j;
                        let label = *labels.get(k)?;
                        let coords = boxes.get(k * 4..k * 4 + 4)?;
                        (label != -10).then(|| ExemplarBox {
                            cxcywh: [coords[0], coords[1], coords[2], coords[3]],
                            positive: label == 1,
                        })
                    })
                    .collect()
            })
            .collect())
    }

    /// Compares `actual` with `file`/`key`; a scalar reference matches a `[1]` tensor. A
    /// reference that `file` lacks gives an [`Comparison::absent`] entry.
    pub fn compare<const D: usize>(
        &self,
        name: &str,
        actual: Tensor<D>,
        file: &str,
        key: &str,
    ) -> Result<Comparison, ParityError> {
        let expected_shape = match self.read(file, key) {
            Ok(data) => data.shape().to_vec(),
            Err(ParityError::MissingTensor { .. }) => {
                return Ok(Comparison::absent(name, file, key));
            }
            Err(e) => return Err(e),
        };
        let actual_shape = actual.dims().to_vec();
        let actual_values: Vec<f32> = actual
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| self.bad(file, key, format!("result data: {e}")))?;
        let expected = self.values::<f32>(file, key)?;
        Ok(compare_values(
            name,
            actual_shape,
            expected_shape,
            &actual_values,
            &expected,
        ))
    }
}

/// Compares flat values; an empty `expected_shape` (a scalar) is taken as `[1]`.
pub fn compare_values(
    name: &str,
    actual_shape: Vec<usize>,
    expected_shape: Vec<usize>,
    actual: &[f32],
    expected: &[f32],
) -> Comparison {
    let expected_shape = if expected_shape.is_empty() {
        vec![1]
    } else {
        expected_shape
    };
    let mut out = Comparison {
        name: name.to_owned(),
        actual_shape,
        expected_shape,
        max_abs_err: f32::INFINITY,
        reference_absmax: expected.iter().fold(0.0f32, |m, e| m.max(e.abs())),
        worst: None,
        absent: None,
    };
    if out.actual_shape != out.expected_shape || actual.len() != expected.len() {
        return out;
    }
    out.max_abs_err = 0.0;
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let d = (a - e).abs();
        if d > out.max_abs_err || d.is_nan() {
            out.max_abs_err = d;
            out.worst = Some((i, *a, *e));
            if d.is_nan() {
                break;
            }
        }
    }
    out
}

pub use tracker::{
    TRACKER_CONFIG, TRACKER_FILE, TRACKER_WEIGHTS, run_tracker, tracker, tracker_end_to_end,
};

pub use stages::{
    DETECTOR_SCENARIOS, STAGES, detector, end_to_end, gradient, neck, preprocessing, run_all,
    run_all_with, text_encoder, vision_backbone,
};
