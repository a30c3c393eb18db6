//! Hybrid uncertainty (HUE) of a concept's prediction on one image, as the M2C authors compute
//! it (m2c-method.md §4):
//!
//! - `U_ENT`: mean binary entropy (natural log, p clipped to [1e-6, 1−1e-6]) over the pixels in
//!   the uncertain band `0.05 < p < 0.95` of the probability map; 0 when the band is empty.
//! - `U_CGPI = 1 − IoU(concept mask, box-prompted mask)`, where the box-prompted mask comes from
//!   feeding the concept's own predicted boxes back to SAM3 as exemplars; IoU 0 when the concept
//!   produced no boxes.
//! - `U_HU = U_ENT + U_CGPI`; an empty concept prediction scores [`HueConfig::empty_score`]
//!   (2.0) and is never easy. Easy (auto-accepted) iff `U_HU < 0.6` and `IoU > 0.9`.

/// Thresholds of the score and the auto-accept rule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HueConfig {
    pub band_low: f32,
    pub band_high: f32,
    /// Auto-accept needs a score below this …
    pub easy_score: f32,
    /// … and an IoU above this.
    pub easy_iou: f32,
    /// Score of an empty prediction (the worst possible).
    pub empty_score: f32,
}

impl Default for HueConfig {
    fn default() -> Self {
        Self {
            band_low: 0.05,
            band_high: 0.95,
            easy_score: 0.6,
            easy_iou: 0.9,
            empty_score: 2.0,
        }
    }
}

/// The score of one image.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HueScore {
    /// `U_ENT`.
    pub entropy: f32,
    /// IoU between the concept mask and the box-prompted mask.
    pub consistency_iou: f32,
    /// `U_HU`.
    pub score: f32,
    /// The concept predicted nothing.
    pub empty: bool,
    /// Auto-accept without review.
    pub easy: bool,
}

/// Binary entropy in nats, with p clipped to [1e-6, 1 − 1e-6].
pub fn binary_entropy(p: f32) -> f32 {
    let p = f64::from(p).clamp(1e-6, 1.0 - 1e-6);
    (-(p * p.ln() + (1.0 - p) * (1.0 - p).ln())) as f32
}

/// Mean entropy over the uncertain band; 0 when no pixel is in it.
pub fn band_entropy(prob: &[f32], cfg: &HueConfig) -> f32 {
    let (sum, n) = prob
        .iter()
        .filter(|&&p| p > cfg.band_low && p < cfg.band_high)
        .fold((0.0f64, 0usize), |(s, n), &p| {
            (s + f64::from(binary_entropy(p)), n + 1)
        });
    if n == 0 { 0.0 } else { (sum / n as f64) as f32 }
}

/// Foreground IoU of two equally sized masks; 1 when both are empty.
pub fn mask_iou(a: &[bool], b: &[bool]) -> f32 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        inter += usize::from(x && y);
        union += usize::from(x || y);
    }
    if union == 0 {
        1.0
    } else {
        inter as f32 / union as f32
    }
}

/// HUE of one image. `prob` is the concept's probability map (max over kept instances),
/// `concept_mask` its thresholded mask, `box_mask` the mask from the box-prompted pass (`None`
/// when the concept produced no boxes). All slices are the same image, row-major.
pub fn hue(
    prob: &[f32],
    concept_mask: &[bool],
    box_mask: Option<&[bool]>,
    cfg: &HueConfig,
) -> HueScore {
    if !concept_mask.iter().any(|&m| m) {
        return HueScore {
            entropy: band_entropy(prob, cfg),
            consistency_iou: 0.0,
            score: cfg.empty_score,
            empty: true,
            easy: false,
        };
    }
    let entropy = band_entropy(prob, cfg);
    let consistency_iou = box_mask.map_or(0.0, |b| mask_iou(concept_mask, b));
    let score = entropy + (1.0 - consistency_iou);
    HueScore {
        entropy,
        consistency_iou,
        score,
        empty: false,
        easy: score < cfg.easy_score && consistency_iou > cfg.easy_iou,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_a_hand_made_map() {
        let cfg = HueConfig::default();
        // 0.5 -> ln 2; 0.2 -> 0.500402; 0.01 and 0.99 are outside the band.
        let prob = [0.5, 0.2, 0.01, 0.99];
        let expected = (std::f32::consts::LN_2 + 0.500_402_4) / 2.0;
        assert!((band_entropy(&prob, &cfg) - expected).abs() < 1e-5);
        assert_eq!(band_entropy(&[0.0, 1.0, 0.96], &cfg), 0.0);
    }

    #[test]
    fn score_is_entropy_plus_inconsistency_and_easy_needs_both_rules() {
        let cfg = HueConfig::default();
        let concept = [true, true, true, true, false];
        let boxed = [true, true, true, false, false]; // IoU 3/4
        let prob = [0.99, 0.99, 0.99, 0.5, 0.01];
        let s = hue(&prob, &concept, Some(&boxed), &cfg);
        assert!((s.consistency_iou - 0.75).abs() < 1e-6);
        assert!((s.score - (std::f32::consts::LN_2 + 0.25)).abs() < 1e-5);
        assert!(!s.easy);
        let s = hue(
            &[0.99, 0.99, 0.99, 0.99, 0.01],
            &concept,
            Some(&concept),
            &cfg,
        );
        assert_eq!(s.score, 0.0);
        assert!(s.easy);
    }

    #[test]
    fn empty_prediction_scores_two_and_no_boxes_means_iou_zero() {
        let cfg = HueConfig::default();
        let s = hue(&[0.1, 0.2], &[false, false], None, &cfg);
        assert_eq!((s.score, s.empty, s.easy), (2.0, true, false));
        let s = hue(&[0.99, 0.01], &[true, false], None, &cfg);
        assert_eq!(s.consistency_iou, 0.0);
        assert!((s.score - 1.0).abs() < 1e-6);
    }
}
