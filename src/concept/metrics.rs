//! Dice and IoU of binary masks, as the M2C evaluation computes them: per image at the
//! original resolution, an empty prediction against an empty ground truth scores 1.

/// Dice and IoU of one prediction.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Overlap {
    pub dice: f64,
    pub iou: f64,
}

/// Compares two equally sized masks.
///
/// # Panics
/// When the lengths differ (callers check sizes first and report a typed error).
pub fn overlap(pred: &[bool], gt: &[bool]) -> Overlap {
    assert_eq!(pred.len(), gt.len(), "mask sizes differ");
    let (mut inter, mut p, mut g) = (0usize, 0usize, 0usize);
    for (&a, &b) in pred.iter().zip(gt) {
        inter += usize::from(a && b);
        p += usize::from(a);
        g += usize::from(b);
    }
    if p + g == 0 {
        return Overlap {
            dice: 1.0,
            iou: 1.0,
        };
    }
    let union = p + g - inter;
    Overlap {
        dice: 2.0 * inter as f64 / (p + g) as f64,
        iou: inter as f64 / union as f64,
    }
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_overlaps() {
        let o = overlap(&[true, true, false, false], &[true, false, true, false]);
        assert!((o.dice - 0.5).abs() < 1e-12 && (o.iou - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            overlap(&[false; 3], &[false; 3]),
            Overlap {
                dice: 1.0,
                iou: 1.0
            }
        );
        assert_eq!(
            overlap(&[true, false], &[false, false]),
            Overlap {
                dice: 0.0,
                iou: 0.0
            }
        );
    }

    #[test]
    fn mean_and_std() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }
}
