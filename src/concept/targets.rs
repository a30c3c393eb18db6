//! Training targets of concept search from labelled binary masks (m2c-method.md §2.1).
//!
//! Each mask is split into 8-connected components of at least [`MIN_INSTANCE_AREA`] pixels
//! at its own resolution (the authors do this on the original mask), each component is one
//! instance with its normalised box, and every instance mask is resampled (nearest pixel
//! centre) to the model's S×S input, which the image is squashed to as at inference. The
//! semantic target is the union of the kept instances.

use burn::tensor::{Device, Tensor, TensorData};

use super::boxes::CxCyWh;
use super::error::ConceptError;
use super::instances::{MIN_INSTANCE_AREA, connected_components};
use crate::model::preprocess::Placement;

/// A labelled binary mask, row-major.
#[derive(Debug, Clone, Copy)]
pub struct BinaryMask<'a> {
    pub width: usize,
    pub height: usize,
    pub data: &'a [bool],
}

/// The targets of one training image at model resolution `size` × `size`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTargets {
    /// Model input side S.
    pub size: usize,
    /// One normalised box per instance.
    pub boxes: Vec<CxCyWh>,
    /// Instance masks [n, S, S], 0/1, row-major.
    pub masks: Vec<f32>,
    /// Union of the instances [S, S], 0/1.
    pub semantic: Vec<f32>,
}

impl ImageTargets {
    /// Number of instances.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Whether no component survived (the authors drop such images).
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// Targets from a binary mask, for a model whose input side is `size`.
    pub fn from_mask(mask: BinaryMask<'_>, size: usize) -> Result<Self, ConceptError> {
        Self::from_mask_placed(mask, size, None)
    }

    /// [`ImageTargets::from_mask`] for an input where the image was squashed to a square and
    /// padded as `placement` says (the training augmentation); `None`: squashed to the whole
    /// input.
    pub fn from_mask_placed(
        mask: BinaryMask<'_>,
        size: usize,
        placement: Option<Placement>,
    ) -> Result<Self, ConceptError> {
        let BinaryMask {
            width,
            height,
            data,
        } = mask;
        if width == 0 || height == 0 || size == 0 || width.checked_mul(height) != Some(data.len()) {
            return Err(ConceptError::InvalidTargets {
                reason: format!(
                    "mask of {} pixels for {width} × {height} (model side {size})",
                    data.len()
                ),
            });
        }
        let place = placement.unwrap_or(Placement {
            side: size,
            x0: 0,
            y0: 0,
        });
        if place.side == 0 || place.x0 + place.side > size || place.y0 + place.side > size {
            return Err(ConceptError::InvalidTargets {
                reason: format!("placement {place:?} does not fit a {size}×{size} input"),
            });
        }
        let instances = connected_components(data, width, height, MIN_INSTANCE_AREA);
        let mut masks = Vec::with_capacity(instances.len() * size * size);
        let mut semantic = vec![0.0f32; size * size];
        for inst in &instances {
            let resized = place_square(
                &resize_nearest(&inst.mask, width, height, place.side),
                place,
                size,
            );
            for (s, &m) in semantic.iter_mut().zip(&resized) {
                *s = s.max(m);
            }
            masks.extend(resized);
        }
        Ok(Self {
            size,
            boxes: instances
                .iter()
                .map(|i| {
                    let b = i.bbox_normalised(width, height);
                    let (k, s) = (place.side as f32, size as f32);
                    CxCyWh {
                        cx: (place.x0 as f32 + b.cx * k) / s,
                        cy: (place.y0 as f32 + b.cy * k) / s,
                        w: b.w * k / s,
                        h: b.h * k / s,
                    }
                })
                .collect(),
            masks,
            semantic,
        })
    }
}

/// The targets of a batch on the device the loss runs on.
#[derive(Debug, Clone)]
pub struct TargetBatch {
    /// Model input side S.
    pub size: usize,
    /// Boxes per image.
    pub boxes: Vec<Vec<CxCyWh>>,
    /// Index of each image's first instance in [`TargetBatch::instance_masks`].
    pub offsets: Vec<usize>,
    /// All instance masks [N, S·S]; `None` when no image has an instance.
    pub instance_masks: Option<Tensor<2>>,
    /// Semantic masks [B, S·S].
    pub semantic: Tensor<2>,
}

impl TargetBatch {
    /// Uploads `images` (all at the same side S) to `device`.
    pub fn new(images: &[ImageTargets], device: &Device) -> Result<Self, ConceptError> {
        let Some(size) = images.first().map(|t| t.size) else {
            return Err(ConceptError::InvalidTargets {
                reason: "no training images".to_owned(),
            });
        };
        let pixels = size * size;
        let consistent = images.iter().all(|t| {
            t.size == size && t.semantic.len() == pixels && t.masks.len() == t.boxes.len() * pixels
        });
        if !consistent {
            return Err(ConceptError::InvalidTargets {
                reason: "targets of different sizes in one batch".to_owned(),
            });
        }
        let mut offsets = Vec::with_capacity(images.len());
        let mut total = 0;
        for t in images {
            offsets.push(total);
            total += t.len();
        }
        let instance_masks = (total > 0).then(|| {
            let flat: Vec<f32> = images
                .iter()
                .flat_map(|t| t.masks.iter().copied())
                .collect();
            Tensor::from_data(TensorData::new(flat, [total, pixels]), device)
        });
        let semantic: Vec<f32> = images
            .iter()
            .flat_map(|t| t.semantic.iter().copied())
            .collect();
        Ok(Self {
            size,
            boxes: images.iter().map(|t| t.boxes.clone()).collect(),
            offsets,
            instance_masks,
            semantic: Tensor::from_data(TensorData::new(semantic, [images.len(), pixels]), device),
        })
    }

    /// The batches one after another, as one batch (on their device).
    pub fn concat<'a>(
        parts: impl IntoIterator<Item = &'a TargetBatch>,
    ) -> Result<Self, ConceptError> {
        let parts: Vec<&TargetBatch> = parts.into_iter().collect();
        let Some(first) = parts.first() else {
            return Err(ConceptError::InvalidTargets {
                reason: "no training images".to_owned(),
            });
        };
        if parts.iter().any(|p| p.size != first.size) {
            return Err(ConceptError::InvalidTargets {
                reason: "targets of different sizes in one batch".to_owned(),
            });
        }
        let mut offsets = Vec::new();
        let mut boxes = Vec::new();
        let mut total = 0;
        for part in &parts {
            for (list, offset) in part.boxes.iter().zip(&part.offsets) {
                offsets.push(total + offset);
                boxes.push(list.clone());
            }
            total += part.instances();
        }
        let masks: Vec<Tensor<2>> = parts
            .iter()
            .filter_map(|p| p.instance_masks.clone())
            .collect();
        Ok(Self {
            size: first.size,
            boxes,
            offsets,
            instance_masks: (!masks.is_empty()).then(|| Tensor::cat(masks, 0)),
            semantic: Tensor::cat(parts.iter().map(|p| p.semantic.clone()).collect(), 0),
        })
    }

    /// Number of images B.
    pub fn batch(&self) -> usize {
        self.boxes.len()
    }

    /// Total number of instances N in the batch.
    pub fn instances(&self) -> usize {
        self.boxes.iter().map(Vec::len).sum()
    }
}

/// A `side × side` square of values placed into a `size × size` zero canvas.
fn place_square(square: &[f32], place: Placement, size: usize) -> Vec<f32> {
    if place.side == size {
        return square.to_vec();
    }
    let mut out = vec![0.0f32; size * size];
    for (y, row) in square.chunks_exact(place.side).enumerate() {
        let at = (place.y0 + y) * size + place.x0;
        if let Some(to) = out.get_mut(at..at + place.side) {
            to.copy_from_slice(row);
        }
    }
    out
}

/// Nearest-pixel-centre resampling of a `width` × `height` mask to `size` × `size`, as 0/1.
fn resize_nearest(mask: &[bool], width: usize, height: usize, size: usize) -> Vec<f32> {
    let src =
        |dst: usize, n: usize| (((dst as f64 + 0.5) * n as f64 / size as f64) as usize).min(n - 1);
    let cols: Vec<usize> = (0..size).map(|x| src(x, width)).collect();
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let row = src(y, height) * width;
        out.extend(cols.iter().map(|&x| if mask[row + x] { 1.0 } else { 0.0 }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_instances_and_keeps_boxes_in_source_coordinates() {
        // 20 × 10 mask: an 8 × 5 block (40 px) and a 3 × 3 speck (9 px, dropped).
        let (w, h) = (20, 10);
        let mut data = vec![false; w * h];
        for y in 2..7 {
            for x in 1..9 {
                data[y * w + x] = true;
            }
        }
        for y in 0..3 {
            for x in 15..18 {
                data[y * w + x] = true;
            }
        }
        let t = ImageTargets::from_mask(
            BinaryMask {
                width: w,
                height: h,
                data: &data,
            },
            40,
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        let b = t.boxes[0];
        assert!((b.cx - 5.0 / 20.0).abs() < 1e-6 && (b.w - 8.0 / 20.0).abs() < 1e-6);
        assert!((b.cy - 4.5 / 10.0).abs() < 1e-6 && (b.h - 0.5).abs() < 1e-6);
        // Scaled 2× in x and 4× in y: 16 × 20 = 320 pixels.
        assert_eq!(t.masks.iter().sum::<f32>(), 320.0);
        assert_eq!(t.semantic, t.masks);
    }

    #[test]
    fn placed_targets_move_with_the_image() {
        // 10 × 10 mask with a 6 × 6 block at (2, 2): placed as a 20-px square at (5, 10) of 40.
        let mut data = vec![false; 100];
        for y in 2..8 {
            for x in 2..8 {
                data[y * 10 + x] = true;
            }
        }
        let mask = BinaryMask {
            width: 10,
            height: 10,
            data: &data,
        };
        let place = Placement {
            side: 20,
            x0: 5,
            y0: 10,
        };
        let t = ImageTargets::from_mask_placed(mask, 40, Some(place)).unwrap();
        let b = t.boxes[0];
        // block centre 5/10 of the square → (5 + 10) / 40 and (10 + 10) / 40; size 12 / 40
        assert!((b.cx - 15.0 / 40.0).abs() < 1e-6 && (b.cy - 20.0 / 40.0).abs() < 1e-6);
        assert!((b.w - 0.3).abs() < 1e-6 && (b.h - 0.3).abs() < 1e-6);
        // the 12 × 12 block sits at x 9..21, y 14..26 and nowhere else
        for (i, &v) in t.semantic.iter().enumerate() {
            let (x, y) = (i % 40, i / 40);
            let inside = (9..21).contains(&x) && (14..26).contains(&y);
            assert_eq!(v, if inside { 1.0 } else { 0.0 }, "({x}, {y})");
        }
        let too_big = Placement {
            side: 40,
            x0: 1,
            y0: 0,
        };
        assert!(ImageTargets::from_mask_placed(mask, 40, Some(too_big)).is_err());
    }

    #[test]
    fn rejects_inconsistent_sizes() {
        let data = [true; 6];
        let mask = BinaryMask {
            width: 4,
            height: 2,
            data: &data,
        };
        assert!(ImageTargets::from_mask(mask, 8).is_err());
    }
}
