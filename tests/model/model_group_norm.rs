//! The pixel decoder's GroupNorm on full-size groups (2.65 M elements each), on burn's CPU
//! backend, against an f64 reference: a one-shot f32 mean over such groups drifted 1.6e-3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Group statistics over 2.65 M elements per group (the full-size pixel decoder): within
/// float rounding of an f64 reference.
#[test]
fn group_norm_is_accurate_on_large_groups() {
    let device = m2c::engine::device::cpu_device();
    let (c, h, w) = (16, 288, 288);
    let values: Vec<f32> = (0..c * h * w)
        .map(|i| 3.0 + ((i as f32) * 0.618).sin() + (i / (h * w)) as f32 * 0.1)
        .collect();
    let x =
        burn::tensor::Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, c, h, w]);
    let norm = burn::nn::GroupNormConfig::new(2, c)
        .with_epsilon(1e-5)
        .init(&device);
    let got: Vec<f32> = m2c::model::mask_decoder::group_norm(&norm, x)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let group = c / 2 * h * w;
    let mut worst = 0.0f64;
    for (g, chunk) in values.chunks(group).enumerate() {
        let n = chunk.len() as f64;
        let mean = chunk.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = chunk
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        for (i, &v) in chunk.iter().enumerate() {
            let want = (f64::from(v) - mean) / (var + 1e-5).sqrt();
            worst = worst.max((f64::from(got[g * group + i]) - want).abs());
        }
    }
    assert!(worst < 2e-5, "max abs err {worst:e}");
}
