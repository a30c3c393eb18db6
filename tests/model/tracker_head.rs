//! The interactive (tracker) head on random weights with the tiny preset, on burn's CPU
//! backend: output shapes, best-of-three selection, HF's single-mask rule (stable mask 0 kept,
//! unstable → best candidate by predicted IoU), point and mask prompts, input errors. Numbers
//! against the HF reference are in `model_parity.rs` (`tracker_box_matches_reference`).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use m2c::engine::device::cpu_device;
use m2c::model::tracker::{PointPrompt, TrackerPrompt};
use m2c::model::{ModelError, Sam3Tracker, Sam3TrackerConfig};

fn tiny() -> (Sam3Tracker, Device) {
    let device = cpu_device();
    (Sam3TrackerConfig::tiny().init(&device), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 values")
}

/// Four 4×4 masks: mask 0 filled with `first`, candidates 1–3 with 1, 2, 3; IoUs
/// 0.9, 0.2, 0.7, 0.4.
fn decoder_output(first: f32, device: &Device) -> (Tensor<4>, Tensor<2>) {
    let mut masks = vec![first; 16];
    for k in 1..4 {
        masks.extend(std::iter::repeat_n(k as f32, 16));
    }
    (
        Tensor::from_data(TensorData::new(masks, [1, 4, 4, 4]), device),
        Tensor::from_data(TensorData::new(vec![0.9f32, 0.2, 0.7, 0.4], [1, 4]), device),
    )
}

#[test]
fn single_mask_keeps_a_stable_mask_zero() {
    let (tracker, device) = tiny();
    // all logits far from 0: the areas at ±δ agree, stability 1
    let (masks, iou) = decoder_output(10.0, &device);
    let (mask, score) = tracker.mask_decoder.select_single(masks, iou);
    assert_eq!(values(mask), vec![10.0; 16]);
    assert_eq!(values(score), vec![0.9]);
    // nothing above −δ: empty union counts as stable (HF: stability 1)
    let (masks, iou) = decoder_output(-10.0, &device);
    let (mask, _) = tracker.mask_decoder.select_single(masks, iou);
    assert_eq!(values(mask), vec![-10.0; 16]);
}

#[test]
fn single_mask_falls_back_to_the_best_candidate() {
    let (tracker, device) = tiny();
    // logits at 0: above −δ everywhere, above δ nowhere → stability 0
    let (masks, iou) = decoder_output(0.0, &device);
    let (mask, score) = tracker.mask_decoder.select_single(masks, iou);
    // candidates 1–3 have IoU 0.2, 0.7, 0.4: candidate 2 (filled with 2.0)
    assert_eq!(values(mask), vec![2.0; 16]);
    assert_eq!(values(score), vec![0.7]);
}

#[test]
fn segment_box_returns_the_best_of_three() {
    let (tracker, device) = tiny();
    let backbone = Tensor::<4>::random([1, 96, 12, 12], Distribution::Normal(0.0, 1.0), &device);
    let features = tracker
        .image_features(backbone)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(features.s0.dims(), [1, 8, 48, 48]);
    assert_eq!(features.s1.dims(), [1, 16, 24, 24]);
    let seg = tracker
        .segment_box(&features, [20.0, 30.0, 120.0, 100.0])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seg.mask.dims(), [48, 48]);
    assert_eq!(seg.candidates.dims(), [3, 48, 48]);
    assert_eq!(seg.candidate_iou.len(), 3);
    assert!(seg.candidate_iou.iter().all(|v| *v <= seg.iou));
    assert_eq!(seg.candidate_iou[seg.best], seg.iou);
    let best = values(seg.candidates.narrow(0, seg.best, 1));
    assert_eq!(values(seg.mask), best);
    // malformed boxes and batches are errors, not panics
    for bad in [[f32::NAN, 0.0, 1.0, 1.0], [50.0, 0.0, 10.0, 10.0]] {
        assert!(matches!(
            tracker.segment_box(&features, bad),
            Err(ModelError::InvalidInput { .. })
        ));
    }
    let wrong = Tensor::<4>::zeros([1, 64, 12, 12], &device);
    assert!(tracker.image_features(wrong).is_err());
}

#[test]
fn points_and_masks_are_encoded() {
    let (tracker, device) = tiny();
    let backbone = Tensor::<4>::random([2, 96, 12, 12], Distribution::Normal(0.0, 1.0), &device);
    let features = tracker
        .image_features(backbone)
        .unwrap_or_else(|e| panic!("{e}"));
    let coords = Tensor::<4>::from_data(
        TensorData::new(
            vec![10.0f32, 20.0, 50.0, 60.0, 1.0, 2.0, 3.0, 4.0],
            [2, 1, 2, 2],
        ),
        &device,
    );
    let labels =
        Tensor::<3, Int>::from_data(TensorData::new(vec![1i64, 0, 1, -10], [2, 1, 2]), &device);
    let prompt = TrackerPrompt {
        points: Some(PointPrompt { coords, labels }),
        masks: Some(Tensor::zeros([2, 1, 48, 48], &device)),
        boxes: None,
    };
    let out = tracker
        .predict(&features, &prompt)
        .unwrap_or_else(|e| panic!("{e}"));
    // 2 points + the padding point appended when no box is given
    assert_eq!(out.sparse.dims(), [2, 1, 3, 64]);
    assert_eq!(out.dense.dims(), [2, 64, 12, 12]);
    assert_eq!(out.decoder.masks.dims(), [2, 4, 48, 48]);
    // an ignored point (−10) is a zero token
    let ignored = values(out.sparse.narrow(0, 1, 1).narrow(2, 1, 1));
    assert!(ignored.iter().all(|v| *v == 0.0));
    // no prompt at all: two padding tokens, as HF does
    let out = tracker
        .predict(&features, &TrackerPrompt::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.sparse.dims(), [2, 1, 2, 64]);
    let wrong = TrackerPrompt {
        masks: Some(Tensor::zeros([2, 1, 12, 12], &device)),
        ..TrackerPrompt::default()
    };
    assert!(tracker.predict(&features, &wrong).is_err());
}

/// Decoding boxes together gives each box the result it gets alone (tolerance 1e-5: only the
/// batch layout differs).
#[test]
fn boxes_decoded_together_match_boxes_decoded_alone() {
    let (tracker, device) = tiny();
    let backbone = Tensor::<4>::random([1, 96, 12, 12], Distribution::Normal(0.0, 1.0), &device);
    let features = tracker.image_features(backbone).unwrap();
    let boxes = [[20.0, 30.0, 120.0, 100.0], [0.0, 0.0, 80.0, 160.0]];
    let together = tracker.segment_boxes(&features, &boxes).unwrap();
    assert_eq!(together.len(), 2);
    for (b, joint) in boxes.iter().zip(together) {
        let alone = tracker.segment_box(&features, *b).unwrap();
        assert_eq!(alone.best, joint.best);
        for (x, y) in alone.candidate_iou.iter().zip(&joint.candidate_iou) {
            assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
        }
        let (a, j) = (values(alone.mask), values(joint.mask));
        assert!(a.iter().zip(&j).all(|(x, y)| (x - y).abs() <= 1e-5));
    }
    assert!(tracker.segment_boxes(&features, &[]).unwrap().is_empty());
}

/// `Segmenter`'s box path on the tiny fixture pair: the box mask is the image's size, and the
/// HUE consistency mask of several boxes is the union of their single-box masks.
#[test]
fn segmenter_box_masks_and_their_union() {
    use m2c::engine::device::{DevicePreference, plan_for};
    use m2c::engine::inference::Segmenter;
    use m2c::model::preprocess::RgbImage;
    let fixtures = common::tiny_fixture_dir();
    let tmp = tempfile::tempdir().unwrap();
    for file in [
        "sam3_model.safetensors",
        "sam3_tracker_model.safetensors",
        "sam3_tracker_config.json",
    ] {
        std::fs::copy(fixtures.join(file), tmp.path().join(file)).unwrap();
    }
    let weights = tmp.path().join("sam3_model.safetensors");
    let plan = plan_for(DevicePreference::Cpu);
    let mut segmenter =
        Segmenter::load(&weights, Some(&fixtures.join("sam3_config.json")), &plan).unwrap();
    let (width, height) = (90usize, 60usize);
    let data: Vec<u8> = (0..width * height * 3)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let image = RgbImage {
        width,
        height,
        data: &data,
    };
    // box prompts before the tracker is loaded are an error
    assert!(
        segmenter
            .segment_box(&image, [5.0, 5.0, 40.0, 30.0])
            .is_err()
    );
    segmenter.load_tracker(&weights, None).unwrap();
    let boxes = [[5.0, 5.0, 40.0, 30.0], [30.0, 20.0, 85.0, 55.0]];
    let singles: Vec<Vec<bool>> = boxes
        .iter()
        .map(|b| {
            let m = segmenter.segment_box(&image, *b).unwrap();
            assert_eq!(
                (m.width, m.height, m.mask.len()),
                (width, height, width * height)
            );
            assert_eq!(m.candidate_iou.len(), 3);
            m.mask
        })
        .collect();
    let union = segmenter.consistency_mask(&image, &boxes).unwrap();
    let expected: Vec<bool> = singles[0]
        .iter()
        .zip(&singles[1])
        .map(|(a, b)| *a || *b)
        .collect();
    // batching the boxes may move logits by ~1e-6: allow a handful of pixels at the boundary
    let differing = union.iter().zip(&expected).filter(|(a, b)| a != b).count();
    assert!(differing <= 5, "{differing} pixels differ");
    assert!(
        segmenter
            .consistency_mask(&image, &[])
            .unwrap()
            .iter()
            .all(|m| !m)
    );
}
