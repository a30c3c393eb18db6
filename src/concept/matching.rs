//! Hungarian matching of SAM3's queries to ground-truth instances, with the cost SAM3's
//! `BinaryHungarianMatcherV2` uses during concept search (m2c-method.md §2.4):
//! `2 · focal class cost + 5 · L1(cxcywh) + 2 · (−GIoU)`.
//!
//! Matching runs on detached values (CPU floats); the assignment it returns selects which
//! queries the differentiable loss supervises. The assignment itself is `pathfinding`'s
//! Kuhn–Munkres on integer costs (floats scaled by [`COST_SCALE`]).

use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;

use super::boxes::CxCyWh;
use super::error::ConceptError;

/// Weights of the matching cost terms (SAM3's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchCostWeights {
    pub class: f32,
    pub bbox_l1: f32,
    pub giou: f32,
    /// Focal cost α and γ.
    pub focal_alpha: f32,
    pub focal_gamma: f32,
}

impl Default for MatchCostWeights {
    fn default() -> Self {
        Self {
            class: 2.0,
            bbox_l1: 5.0,
            giou: 2.0,
            focal_alpha: 0.25,
            focal_gamma: 2.0,
        }
    }
}

/// Costs are rounded to integers after scaling by this factor: 1e-6 resolution on costs of
/// order 1–100, far below any difference that matters to the assignment.
pub const COST_SCALE: f32 = 1e6;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// DETR's focal classification cost of calling a query with logit `logit` positive:
/// `α (1−p)^γ (−ln p) − (1−α) p^γ (−ln(1−p))`.
pub fn focal_class_cost(logit: f32, alpha: f32, gamma: f32) -> f32 {
    const EPS: f32 = 1e-8;
    let p = sigmoid(logit);
    let pos = alpha * (1.0 - p).powf(gamma) * -(p + EPS).ln();
    let neg = (1.0 - alpha) * p.powf(gamma) * -(1.0 - p + EPS).ln();
    pos - neg
}

/// Cost matrix `[targets][queries]`.
pub fn cost_matrix(
    logits: &[f32],
    pred_boxes: &[CxCyWh],
    targets: &[CxCyWh],
    w: &MatchCostWeights,
) -> Vec<Vec<f32>> {
    let class: Vec<f32> = logits
        .iter()
        .map(|&l| focal_class_cost(l, w.focal_alpha, w.focal_gamma))
        .collect();
    targets
        .iter()
        .map(|t| {
            pred_boxes
                .iter()
                .zip(&class)
                .map(|(p, c)| {
                    w.class * c + w.bbox_l1 * p.l1(*t) - w.giou * p.to_xyxy().giou(t.to_xyxy())
                })
                .collect()
        })
        .collect()
}

/// One matched pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub query: usize,
    pub target: usize,
}

/// Assigns each target its own query minimising the total cost. Returns pairs sorted by
/// target. No targets → no pairs.
pub fn hungarian_match(
    logits: &[f32],
    pred_boxes: &[CxCyWh],
    targets: &[CxCyWh],
    weights: &MatchCostWeights,
) -> Result<Vec<Match>, ConceptError> {
    if logits.len() != pred_boxes.len() {
        return Err(ConceptError::Matching(format!(
            "{} logits but {} boxes",
            logits.len(),
            pred_boxes.len()
        )));
    }
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    if targets.len() > logits.len() {
        return Err(ConceptError::Matching(format!(
            "{} ground-truth instances but only {} queries",
            targets.len(),
            logits.len()
        )));
    }
    let costs = cost_matrix(logits, pred_boxes, targets, weights);
    let mut flat = Vec::with_capacity(targets.len() * logits.len());
    for row in &costs {
        for &c in row {
            if !c.is_finite() {
                return Err(ConceptError::Matching(format!(
                    "non-finite matching cost {c}"
                )));
            }
            flat.push((c * COST_SCALE).round() as i64);
        }
    }
    let matrix = Matrix::from_vec(targets.len(), logits.len(), flat)
        .map_err(|e| ConceptError::Matching(format!("{e:?}")))?;
    let (_, assignment) = kuhn_munkres_min(&matrix);
    Ok(assignment
        .into_iter()
        .enumerate()
        .map(|(target, query)| Match { query, target })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tries every injective assignment of targets to queries.
    fn brute_force(costs: &[Vec<f32>]) -> f32 {
        fn go(costs: &[Vec<f32>], t: usize, used: &mut Vec<bool>) -> f32 {
            if t == costs.len() {
                return 0.0;
            }
            let mut best = f32::INFINITY;
            for q in 0..costs[t].len() {
                if !used[q] {
                    used[q] = true;
                    best = best.min(costs[t][q] + go(costs, t + 1, used));
                    used[q] = false;
                }
            }
            best
        }
        go(costs, 0, &mut vec![false; costs[0].len()])
    }

    /// Small deterministic pseudo-random generator (no rand dependency needed).
    fn lcg(state: &mut u64) -> f32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 33) as f32) / (1u64 << 31) as f32
    }

    #[test]
    fn agrees_with_brute_force_on_random_small_cases() {
        let mut s = 7u64;
        for case in 0..200 {
            let queries = 2 + case % 6;
            let targets = 1 + case % queries.min(4);
            let mut rb = || CxCyWh {
                cx: 0.2 + 0.6 * lcg(&mut s),
                cy: 0.2 + 0.6 * lcg(&mut s),
                w: 0.05 + 0.3 * lcg(&mut s),
                h: 0.05 + 0.3 * lcg(&mut s),
            };
            let boxes: Vec<CxCyWh> = (0..queries).map(|_| rb()).collect();
            let gts: Vec<CxCyWh> = (0..targets).map(|_| rb()).collect();
            let logits: Vec<f32> = (0..queries).map(|_| 8.0 * lcg(&mut s) - 4.0).collect();
            let w = MatchCostWeights::default();
            let m = hungarian_match(&logits, &boxes, &gts, &w).unwrap();
            let costs = cost_matrix(&logits, &boxes, &gts, &w);
            let total: f32 = m.iter().map(|p| costs[p.target][p.query]).sum();
            let best = brute_force(&costs);
            assert!(
                (total - best).abs() < 1e-3,
                "case {case}: {total} vs optimum {best}"
            );
            let mut qs: Vec<usize> = m.iter().map(|p| p.query).collect();
            qs.dedup();
            assert_eq!(qs.len(), targets, "queries must be distinct");
        }
    }

    #[test]
    fn a_query_on_the_target_wins() {
        let t = CxCyWh {
            cx: 0.5,
            cy: 0.5,
            w: 0.2,
            h: 0.2,
        };
        let far = CxCyWh {
            cx: 0.1,
            cy: 0.1,
            w: 0.1,
            h: 0.1,
        };
        let m = hungarian_match(
            &[0.0, 0.0, 0.0],
            &[far, t, far],
            &[t],
            &MatchCostWeights::default(),
        )
        .unwrap();
        assert_eq!(
            m,
            vec![Match {
                query: 1,
                target: 0
            }]
        );
    }

    #[test]
    fn focal_cost_prefers_confident_queries() {
        assert!(focal_class_cost(4.0, 0.25, 2.0) < focal_class_cost(-4.0, 0.25, 2.0));
    }

    #[test]
    fn rejects_more_targets_than_queries() {
        let b = CxCyWh {
            cx: 0.5,
            cy: 0.5,
            w: 0.1,
            h: 0.1,
        };
        assert!(hungarian_match(&[0.0], &[b], &[b, b], &MatchCostWeights::default()).is_err());
    }
}
