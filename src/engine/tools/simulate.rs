//! The active annotation loop, simulated with ground truth as the human (m2c-method.md §5):
//! label a few → search → predict the pool → HUE → auto-accept the easy ones → flag the
//! hardest for correction → re-search, one report per round.
//!
//! Two strategies:
//! - [`Strategy::WarmStart`] (default): one concept, re-searched every round on *all* labels so
//!   far, starting from the previous round's φ. Pool images use the latest concept.
//! - [`Strategy::ExpertCascade`] (the authors' code): every round searches a new concept from
//!   zeros on that round's new labels only and appends it to a library; an image's mask comes
//!   from the first expert whose prediction is easy, else from the expert with the lowest HUE.
//!
//! Rules kept from the authors: round 1 labels `shots` random images; each round's easy/hard
//! split uses that round's concept; easy images are auto-accepted with that mask and leave the
//! pool; the `flag` hard images with the highest HUE are labelled next. Human-labelled images
//! count as Dice = IoU = 1 in the per-round metric, the others use their current mask. The
//! loop stops after `rounds` rounds or when the pool is empty. Unlike the authors (unseeded
//! `random.sample`), the first pick is seeded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::concept::SearchControl;
use crate::concept::metrics::{mean_std, overlap};
use crate::concept::uncertainty::HueScore;
use crate::engine::concept::{CachedImage, ConceptSpec, OwnedRgb, PredictOptions, TrainingImage};
use crate::engine::error::EngineError;
use crate::engine::inference::Segmenter;

/// How concepts are learned across rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    WarmStart,
    ExpertCascade,
}

/// Settings of a simulated loop.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopConfig {
    /// Images labelled at random before round 1.
    pub shots: usize,
    /// Rounds to run at most.
    pub rounds: usize,
    /// Hard images flagged for correction after each round.
    pub flag: usize,
    pub strategy: Strategy,
    /// Seed of the first pick.
    pub seed: u64,
    pub spec: ConceptSpec,
    pub predict: PredictOptions,
}

/// One image of the simulation: its cached features and its ground truth.
#[derive(Debug, Clone)]
pub struct LoopImage {
    pub image: CachedImage,
    /// Ground truth at the image's size, row-major.
    pub truth: Vec<bool>,
    /// The pixels, kept only when the search uses the resize augmentation.
    pub pixels: Option<OwnedRgb>,
}

/// What one round did.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundReport {
    /// 1-based.
    pub round: usize,
    /// Images labelled by the (simulated) human so far.
    pub labelled: usize,
    /// Images auto-accepted so far.
    pub auto_accepted: usize,
    /// Images still in the pool after this round's auto-accepts.
    pub pool: usize,
    /// Mean and standard deviation over all images (labelled ones count as 1).
    pub dice: (f64, f64),
    pub iou: (f64, f64),
    /// Mean Dice of the auto-accepted images against the truth (`None` when there are none).
    pub auto_accepted_dice: Option<f64>,
    /// Loss after the last step of this round's search.
    pub final_loss: Option<f32>,
    pub search_time: Duration,
    pub predict_time: Duration,
}

#[derive(Debug, Clone)]
enum State {
    Pool,
    Labelled,
    /// Accepted without review, with the mask it was accepted with.
    AutoAccepted(Vec<bool>),
}

/// A prediction kept for the metric and the cascade: the mask and its score.
#[derive(Debug, Clone)]
struct Kept {
    mask: Vec<bool>,
    hue: HueScore,
}

/// Runs the loop; `on_round` sees each report as it is made. `cancel` stops it between
/// rounds (and within a search, between steps).
pub fn run_loop(
    segmenter: &Segmenter,
    images: &[LoopImage],
    config: &LoopConfig,
    cancel: &Arc<AtomicBool>,
    mut on_round: impl FnMut(&RoundReport),
) -> Result<Vec<RoundReport>, EngineError> {
    let n = images.len();
    let mut state = vec![State::Pool; n];
    // Per image, the predictions of each expert (cascade) or of the latest concept (warm).
    let mut predictions: Vec<Vec<Kept>> = vec![Vec::new(); n];
    let mut new_labels = seeded_pick(n, config.shots.max(1), config.seed);
    let mut phi: Option<Vec<f32>> = None;
    let mut reports = Vec::new();
    for round in 1..=config.rounds.max(1) {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        for &i in &new_labels {
            state[i] = State::Labelled;
        }
        let training_ids: Vec<usize> = match config.strategy {
            Strategy::WarmStart => (0..n)
                .filter(|&i| matches!(state[i], State::Labelled))
                .collect(),
            Strategy::ExpertCascade => new_labels.clone(),
        };
        let training: Vec<TrainingImage<'_>> = training_ids
            .iter()
            .map(|&i| TrainingImage {
                image: &images[i].image,
                mask: &images[i].truth,
                pixels: images[i].pixels.as_ref(),
            })
            .collect();
        let warm = match config.strategy {
            Strategy::WarmStart => phi.as_deref(),
            Strategy::ExpertCascade => None,
        };
        let control = SearchControl {
            cancel: Arc::clone(cancel),
            progress: None,
        };
        let start = Instant::now();
        let learned = segmenter.learn(&config.spec, &training, warm, &control)?;
        let search_time = start.elapsed();
        if learned.outcome.cancelled {
            break;
        }
        phi = Some(learned.concept.phi.clone());
        let prepared = segmenter.prepare(&learned.concept)?;
        let start = Instant::now();
        let mut hard = Vec::new();
        for i in 0..n {
            if !matches!(state[i], State::Pool) {
                continue;
            }
            let p = segmenter.predict(&prepared, &images[i].image, &config.predict)?;
            let kept = Kept {
                mask: p.mask,
                hue: p.hue,
            };
            if config.strategy == Strategy::WarmStart {
                predictions[i].clear();
            }
            predictions[i].push(kept.clone());
            if kept.hue.easy {
                state[i] = State::AutoAccepted(kept.mask);
            } else {
                hard.push((i, kept.hue.score));
            }
        }
        let predict_time = start.elapsed();
        let truths: Vec<&[bool]> = images.iter().map(|i| i.truth.as_slice()).collect();
        let report = evaluate(
            &truths,
            &state,
            &predictions,
            round,
            learned.concept.final_loss,
            search_time,
            predict_time,
        );
        on_round(&report);
        reports.push(report);
        // The hardest first; ties by index keep the order reproducible.
        hard.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        new_labels = hard.iter().take(config.flag).map(|&(i, _)| i).collect();
        if new_labels.is_empty() {
            break;
        }
    }
    Ok(reports)
}

/// A loop running on its own thread (see [`spawn_loop`]).
#[derive(Debug)]
pub struct LoopHandle {
    /// One report per round, as it is made.
    pub rounds: std::sync::mpsc::Receiver<RoundReport>,
    cancel: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Vec<RoundReport>, EngineError>>,
}

impl LoopHandle {
    /// Asks the loop to stop (between rounds, or between the steps of a search).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for the loop to end; every round's report.
    pub fn join(self) -> Result<Vec<RoundReport>, EngineError> {
        self.thread
            .join()
            .unwrap_or_else(|panic| Err(EngineError::from_panic(&*panic)))
    }
}

/// Runs [`run_loop`] off the caller's thread: the model and the images move to the loop's
/// thread, reports come back on a channel as rounds end.
pub fn spawn_loop(
    segmenter: Segmenter,
    images: Vec<LoopImage>,
    config: LoopConfig,
) -> Result<LoopHandle, EngineError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let thread = std::thread::Builder::new()
        .name("m2c-loop".to_owned())
        .spawn(move || {
            run_loop(&segmenter, &images, &config, &flag, |r| {
                // A dropped receiver only means nobody is watching.
                let _ = tx.send(r.clone());
            })
        })
        .map_err(|e| EngineError::Crashed {
            message: format!("could not start the loop thread: {e}"),
        })?;
    Ok(LoopHandle {
        rounds: rx,
        cancel,
        thread,
    })
}

/// The cascade's choice: the first easy prediction, else the one with the lowest score.
fn cascade(predictions: &[Kept]) -> Option<&Kept> {
    predictions.iter().find(|k| k.hue.easy).or_else(|| {
        predictions
            .iter()
            .min_by(|a, b| a.hue.score.total_cmp(&b.hue.score))
    })
}

fn evaluate(
    truths: &[&[bool]],
    state: &[State],
    predictions: &[Vec<Kept>],
    round: usize,
    final_loss: Option<f32>,
    search_time: Duration,
    predict_time: Duration,
) -> RoundReport {
    let (mut dice, mut iou, mut auto_dice) = (Vec::new(), Vec::new(), Vec::new());
    let (mut labelled, mut auto_accepted, mut pool) = (0, 0, 0);
    for ((&truth, st), preds) in truths.iter().zip(state).zip(predictions) {
        let o = match st {
            State::Labelled => {
                labelled += 1;
                dice.push(1.0);
                iou.push(1.0);
                continue;
            }
            State::AutoAccepted(mask) => {
                auto_accepted += 1;
                let o = overlap(mask, truth);
                auto_dice.push(o.dice);
                o
            }
            State::Pool => {
                pool += 1;
                match cascade(preds) {
                    Some(k) => overlap(&k.mask, truth),
                    None => overlap(&vec![false; truth.len()], truth),
                }
            }
        };
        dice.push(o.dice);
        iou.push(o.iou);
    }
    RoundReport {
        round,
        labelled,
        auto_accepted,
        pool,
        dice: mean_std(&dice),
        iou: mean_std(&iou),
        auto_accepted_dice: (!auto_dice.is_empty()).then(|| mean_std(&auto_dice).0),
        final_loss,
        search_time,
        predict_time,
    }
}

/// `k` distinct indices out of `0..n`, reproducible from `seed` (partial Fisher–Yates driven
/// by SplitMix64).
pub fn seeded_pick(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let k = k.min(n);
    for i in 0..k {
        let span = (n - i) as u64;
        let j = i + usize::try_from(next() % span).unwrap_or(0);
        order.swap(i, j);
    }
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_pick_is_distinct_reproducible_and_seed_dependent() {
        let a = seeded_pick(50, 5, 7);
        assert_eq!(a, seeded_pick(50, 5, 7));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 5);
        assert!(a.iter().all(|&i| i < 50));
        assert_ne!(a, seeded_pick(50, 5, 8));
        assert_eq!(seeded_pick(3, 10, 1).len(), 3);
        assert!(seeded_pick(0, 2, 1).is_empty());
    }

    fn kept(score: f32, easy: bool, fg: bool) -> Kept {
        Kept {
            mask: vec![fg],
            hue: HueScore {
                entropy: 0.0,
                consistency_iou: 0.0,
                score,
                empty: false,
                easy,
            },
        }
    }

    #[test]
    fn cascade_takes_the_first_easy_expert_else_the_lowest_score() {
        let preds = [
            kept(0.9, false, false),
            kept(0.5, true, true),
            kept(0.1, true, false),
        ];
        assert!(cascade(&preds).unwrap().mask[0]);
        let preds = [
            kept(0.9, false, false),
            kept(0.3, false, true),
            kept(1.5, false, false),
        ];
        assert!(cascade(&preds).unwrap().mask[0]);
        assert!(cascade(&[]).is_none());
    }

    #[test]
    fn labelled_images_count_as_perfect_and_auto_accepted_use_their_mask() {
        let truths: [&[bool]; 3] = [&[true, false], &[true, true], &[true, false]];
        let state = [
            State::Labelled,
            State::AutoAccepted(vec![true, false]), // Dice 2/3, IoU 1/2
            State::Pool,
        ];
        let mut pool_pred = kept(0.9, false, true);
        pool_pred.mask = vec![true, false]; // perfect
        let preds = vec![Vec::new(), Vec::new(), vec![pool_pred]];
        let r = evaluate(
            &truths,
            &state,
            &preds,
            2,
            None,
            Duration::ZERO,
            Duration::ZERO,
        );
        assert_eq!((r.labelled, r.auto_accepted, r.pool), (1, 1, 1));
        assert!(
            (r.dice.0 - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-9,
            "{r:?}"
        );
        assert!((r.iou.0 - (1.0 + 0.5 + 1.0) / 3.0).abs() < 1e-9, "{r:?}");
        assert!((r.auto_accepted_dice.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    }
}
