//! Concept search on the tiny SAM3 fixture (random weights, `tests/fixtures/sam3-tiny`), on
//! burn's CPU backend (flex): the gradient of the authors' loss with respect to φ against
//! central finite differences, a 60-step search that must cut the loss, cancellation and warm
//! start. Uses the committed fixtures, so it never skips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test setup panics on broken fixtures"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use burn::store::{ModuleStore as _, SafetensorsStore, bridge};
use burn::tensor::{Device, Int, Tensor, TensorData};
use m2c::concept::file::{EmbeddingSite, SearchSettings};
use m2c::concept::search::SearchPlan;
use m2c::concept::{
    BasePrompt, BinaryMask, ConceptError, ImageTargets, SearchControl, SearchProblem, search,
};
use m2c::engine::device::{cpu_device, wgpu_device};
use m2c::model::{Sam3, Sam3Config, WeightPrecision};

const SIZE: usize = 168;
/// Tolerances of the gradient checks (see the tests; measured errors in their comments).
/// Per coordinate, relative to the largest gradient entry: measured ≤ 3.1e-3 (f32 rounding of
/// the loss, ≈1e-4 on O(100), divided by 2ε). An error in any term that moves the gradient by
/// 1 % of its largest entry fails.
const TOL_COORD: f32 = 1e-2;
/// Along the gradient, relative: measured ≤ 3.3e-4 (one decoder layer), 1.2e-3 (both).
const TOL_DIR: f32 = 2e-3;
const TOL_DIR_FULL: f32 = 1e-2;

fn fixture_dir() -> PathBuf {
    common::tiny_fixture_dir()
}

fn read(dir: &Path, name: &str) -> TensorData {
    let mut store = SafetensorsStore::from_file(dir.join("inputs.safetensors"));
    let tensor = store
        .get_tensor(name)
        .expect("readable fixture")
        .expect(name);
    bridge::to_data(tensor).expect("fixture data")
}

/// Discs (cx, cy, r) in model pixels as a binary mask at model resolution.
fn discs(list: &[(f32, f32, f32)]) -> Vec<bool> {
    (0..SIZE * SIZE)
        .map(|i| {
            let (x, y) = ((i % SIZE) as f32 + 0.5, (i / SIZE) as f32 + 0.5);
            list.iter()
                .any(|&(cx, cy, r)| (x - cx).powi(2) + (y - cy).powi(2) <= r * r)
        })
        .collect()
}

/// Number of real tokens in the base prompt (fixture prompt 0).
fn real_tokens(dir: &Path) -> usize {
    let mask: Vec<i64> = read(dir, "attention_mask")
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    mask[..16].iter().filter(|&&v| v == 1).count()
}

/// The fixture's two images, prompt 0 as the base text, and synthetic targets: one disc on
/// image 0, two discs on image 1.
fn problem(dir: &Path, device: &Device, site: EmbeddingSite) -> SearchProblem {
    problem_with(dir, device, site, None)
}

/// [`problem`], optionally keeping only the first `decoder_layers` decoder layers.
fn problem_with(
    dir: &Path,
    device: &Device,
    site: EmbeddingSite,
    decoder_layers: Option<usize>,
) -> SearchProblem {
    let config = Sam3Config::from_file(&dir.join("sam3_config.json")).expect("tiny config");
    let mut model = Sam3::load(
        &config,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        device,
    )
    .expect("tiny checkpoint");
    if let Some(n) = decoder_layers {
        model.detr_decoder.layers.truncate(n);
    }
    let pixels = Tensor::<4>::from_data(read(dir, "pixel_values").convert::<f32>(), device);
    let features = model.encode_image(pixels).expect("image features");
    let ids = Tensor::<2, Int>::from_data(read(dir, "input_ids").convert::<i64>(), device);
    let mask = Tensor::<2, Int>::from_data(read(dir, "attention_mask").convert::<i64>(), device);
    let base = BasePrompt::new(
        &model,
        ids.narrow(0, 0, 1),
        mask.narrow(0, 0, 1).equal_elem(1),
        site,
    )
    .expect("base prompt");
    let masks = [
        discs(&[(70.0, 80.0, 30.0)]),
        discs(&[(40.0, 50.0, 18.0), (120.0, 110.0, 25.0)]),
    ];
    let targets: Vec<ImageTargets> = masks
        .iter()
        .map(|m| {
            ImageTargets::from_mask(
                BinaryMask {
                    width: SIZE,
                    height: SIZE,
                    data: m,
                },
                SIZE,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(targets[1].len(), 2);
    SearchProblem::new(&model, base, features, &targets, device).expect("search problem")
}

/// Deterministic pseudo-random values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Central difference of the loss along `dir` (unit or not) with step `eps`.
fn central(problem: &SearchProblem, plan: &SearchPlan, phi: &[f32], dir: &[f32], eps: f32) -> f32 {
    let at = |s: f32| -> Vec<f32> { phi.iter().zip(dir).map(|(p, d)| p + s * d).collect() };
    let plus = problem.planned_loss(&at(eps), plan).unwrap();
    let minus = problem.planned_loss(&at(-eps), plan).unwrap();
    (plus - minus) / (2.0 * eps)
}

/// A generic point: small noise on the real rows (pads stay 0, as in a search).
fn generic_phi(problem: &SearchProblem, real: usize) -> Vec<f32> {
    let [t, w] = problem.phi_shape();
    let mut phi = noise(t * w, 7);
    for (i, v) in phi.iter_mut().enumerate() {
        *v = if i / w < real { 0.05 * *v } else { 0.0 };
    }
    phi
}

fn unit(v: &[f32]) -> (Vec<f32>, f32) {
    let norm = v.iter().map(|g| g * g).sum::<f32>().sqrt();
    (v.iter().map(|g| g / norm).collect(), norm)
}

/// Central-difference step: large enough that f32 rounding of a loss of O(10³) (≈1e-4)
/// contributes ≈1e-2 to a derivative, small enough that the O(ε²) truncation is below that
/// (measured: the estimates agree to 3 digits for ε from 2.5e-3 to 4e-2).
const EPS: f32 = 1e-2;

/// With one decoder layer every path from φ to the loss is differentiable (SAM3 detaches the
/// refined reference boxes only *between* decoder layers), so autodiff must agree with central
/// differences of the loss with the matching held fixed ([`MatchPlan`]).
#[test]
fn gradient_matches_finite_differences() {
    let dir = fixture_dir();
    let device = cpu_device();
    let real = real_tokens(&dir);
    for site in [EmbeddingSite::TextInput, EmbeddingSite::ProjectedText] {
        let problem = problem_with(&dir, &device, site, Some(1));
        let [t, w] = problem.phi_shape();
        let phi = generic_phi(&problem, real);
        let (loss, grad) = problem.loss_and_grad(&phi).unwrap();
        let plan = problem.plan(&phi).unwrap();
        assert_eq!(problem.planned_loss(&phi, &plan).unwrap(), loss);
        assert!(loss.is_finite() && loss > 0.0);
        if site == EmbeddingSite::TextInput {
            // Causal attention and the pad mask keep pad rows out of the loss.
            assert!(
                grad[real * w..].iter().all(|&g| g == 0.0),
                "pad rows got a gradient"
            );
        }
        // The coordinates with the largest gradients, two mid-ranked ones, and the gradient
        // direction itself.
        let mut order: Vec<usize> = (0..real * w).collect();
        order.sort_by(|&a, &b| grad[b].abs().total_cmp(&grad[a].abs()));
        let top = grad[order[0]].abs();
        let mut worst = 0.0f32;
        for &i in order.iter().take(4).chain(order.iter().skip(100).take(2)) {
            let mut e = vec![0.0; t * w];
            e[i] = 1.0;
            let fd = central(&problem, &plan, &phi, &e, EPS);
            let err = (fd - grad[i]).abs() / top;
            worst = worst.max(err);
            eprintln!(
                "{site:?} φ[{}, {}]: autodiff {:.5e}, central difference {fd:.5e}, error {err:.1e} of the largest",
                i / w,
                i % w,
                grad[i]
            );
        }
        let (dir_unit, norm) = unit(&grad);
        let fd = central(&problem, &plan, &phi, &dir_unit, EPS);
        let rel = (fd - norm).abs() / norm;
        eprintln!(
            "{site:?} loss {loss}: along the gradient autodiff {norm:.5e}, central difference {fd:.5e} (rel. error {rel:.1e})"
        );
        assert!(
            worst < TOL_COORD,
            "{site:?}: coordinate error {worst:e} of the largest gradient"
        );
        assert!(
            rel < TOL_DIR,
            "{site:?}: directional derivative off by {rel:e}"
        );
    }
}

/// The search's gradient (one image at a time, fusion encoder recomputed layer by layer) is
/// the gradient of one plain autodiff graph over the whole batch, to float rounding: largest
/// difference ≤ 1e-4 of the largest entry (measured ≤ 3.3e-7 on flex, 5.6e-7 on lavapipe), loss
/// within 1e-5 relative (measured ≤ 2.4e-7).
fn checkpointed_gradient_is_the_whole_graph_gradient(
    device: &Device,
    name: &str,
    cases: &[(EmbeddingSite, Option<usize>)],
) {
    let dir = fixture_dir();
    let real = real_tokens(&dir);
    for &(site, rows) in cases {
        let problem = match rows {
            None => problem(&dir, device, site),
            Some(r) => problem(&dir, device, site).with_score_rows(r),
        };
        assert_eq!(problem.images(), 2);
        let phi = generic_phi(&problem, real);
        let (loss, grad) = problem.loss_and_grad(&phi).unwrap();
        let (whole_loss, whole_grad) = problem.loss_and_grad_whole_graph(&phi).unwrap();
        let top = whole_grad.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        let diff = grad
            .iter()
            .zip(&whole_grad)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        let loss_rel = (loss - whole_loss).abs() / whole_loss.abs();
        eprintln!(
            "{name} {site:?}, blocks of {rows:?} rows: loss {loss} vs {whole_loss} (rel {loss_rel:.1e}); gradient max diff {diff:.2e} of largest {top:.3e} ({:.1e})",
            diff / top
        );
        assert!(top > 0.0, "{site:?}: zero gradient");
        assert!(loss_rel < 1e-5, "{site:?}: loss {loss} vs {whole_loss}");
        assert!(
            diff <= 1e-4 * top,
            "{site:?}: gradients differ by {diff:e} (largest entry {top:e})"
        );
    }
}

#[test]
fn checkpointed_gradient_is_the_whole_graph_gradient_on_the_cpu() {
    checkpointed_gradient_is_the_whole_graph_gradient(
        &cpu_device(),
        "flex",
        // One attention block (all 144 tokens), and blocks of 50, 50 and 44 query rows.
        &[
            (EmbeddingSite::TextInput, None),
            (EmbeddingSite::TextInput, Some(50)),
            (EmbeddingSite::ProjectedText, None),
            (EmbeddingSite::ProjectedText, Some(50)),
        ],
    );
}

#[test]
fn checkpointed_gradient_is_the_whole_graph_gradient_on_wgpu() {
    match wgpu_device() {
        // The default site in blocks only: lavapipe is slow, and the flex test covers the rest.
        Ok(device) => checkpointed_gradient_is_the_whole_graph_gradient(
            &device,
            "wgpu",
            &[(EmbeddingSite::TextInput, Some(50))],
        ),
        Err(e) => {
            assert!(
                std::env::var_os("M2C_REQUIRE_GPU_ADAPTER").is_none(),
                "wgpu required but unavailable: {e}"
            );
            eprintln!("SKIP wgpu part: {e}");
        }
    }
}

/// With both decoder layers, layer 2's queries see layer 1's boxes detached (as in SAM3), so
/// autodiff returns the gradient of that surrogate, not of the loss as a function: the two
/// differ by a few % per coordinate (measured) but agree along the gradient direction.
#[test]
fn gradient_of_the_full_decoder_follows_the_loss() {
    let dir = fixture_dir();
    let device = cpu_device();
    let problem = problem(&dir, &device, EmbeddingSite::TextInput);
    let phi = generic_phi(&problem, real_tokens(&dir));
    let (loss, grad) = problem.loss_and_grad(&phi).unwrap();
    let plan = problem.plan(&phi).unwrap();
    let (dir_unit, norm) = unit(&grad);
    let fd = central(&problem, &plan, &phi, &dir_unit, EPS);
    let rel = (fd - norm).abs() / norm;
    eprintln!(
        "full decoder, loss {loss}: along the gradient autodiff {norm:.5e}, central difference {fd:.5e} (rel. error {rel:.1e})"
    );
    assert!(rel < TOL_DIR_FULL, "directional derivative off by {rel:e}");
}

/// Learning rate of the search test. The authors' 5e-4 is for SAM3's trained CLIP token table
/// (entries of order 1e-2); the fixture's table is N(0, 1), ~100× larger, and Adam's step does
/// not scale with the gradient, so the same relative step needs ~100× the rate. At 5e-4 the
/// tiny model's loss moves by 3 % in 60 steps (measured 769 → 745).
const TEST_LR: f64 = 5e-2;

fn test_settings(steps: u32) -> SearchSettings {
    SearchSettings {
        steps,
        lr_start: TEST_LR,
        lr_end: TEST_LR / 100.0,
        ..SearchSettings::default()
    }
}

/// 60 steps (the authors' count) with the authors' schedule shape cut the loss by ≥ 3×
/// (measured 769 → 147, 5.2×).
#[test]
fn search_cuts_the_loss() {
    let dir = fixture_dir();
    let device = cpu_device();
    let problem = problem(&dir, &device, EmbeddingSite::TextInput);
    let (tx, rx) = mpsc::channel();
    let control = SearchControl {
        progress: Some(tx),
        ..SearchControl::default()
    };
    let start = Instant::now();
    let out = search(&problem, &test_settings(60), None, &control).unwrap();
    let ms_per_step = start.elapsed().as_secs_f64() * 1e3 / 60.0;
    let before = out.losses[0];
    let after = problem.loss(&out.phi).unwrap();
    eprintln!(
        "loss {before} → {after} ({:.1}×), {ms_per_step:.0} ms per step; every 10th: {:?}",
        before / after,
        out.losses.iter().step_by(10).collect::<Vec<_>>()
    );
    assert!(!out.cancelled);
    assert_eq!(out.losses.len(), 60);
    assert_eq!(out.shape, problem.phi_shape());
    assert!(
        before / after >= 3.0,
        "loss only went from {before} to {after}"
    );
    let events: Vec<_> = rx.try_iter().collect();
    assert_eq!(events.len(), 60);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.step == i + 1 && e.steps == 60)
    );
    assert_eq!(
        events.last().map(|e| e.eta),
        Some(std::time::Duration::ZERO)
    );
    assert_eq!(events[5].loss, out.losses[5]);
}

#[test]
fn cancellation_stops_between_steps() {
    let dir = fixture_dir();
    let device = cpu_device();
    let problem = problem(&dir, &device, EmbeddingSite::TextInput);
    let (tx, rx) = mpsc::channel::<m2c::concept::SearchProgress>();
    let control = SearchControl {
        progress: Some(tx),
        ..SearchControl::default()
    };
    let cancel = control.cancel.clone();
    let watcher = std::thread::spawn(move || {
        for event in rx {
            if event.step == 3 {
                cancel.store(true, Ordering::Relaxed);
            }
        }
    });
    let out = search(&problem, &test_settings(60), None, &control).unwrap();
    drop(control);
    watcher.join().unwrap();
    eprintln!("stopped after {} steps", out.losses.len());
    assert!(out.cancelled);
    assert!(
        (3..10).contains(&out.losses.len()),
        "{} steps",
        out.losses.len()
    );
    assert!(
        out.phi.iter().any(|&v| v != 0.0),
        "φ of the completed steps is returned"
    );

    // Cancelled before the first step: nothing runs, the start point comes back.
    let control = SearchControl::default();
    control.cancel.store(true, Ordering::Relaxed);
    let warm = vec![0.25; out.phi.len()];
    let none = search(&problem, &test_settings(60), Some(&warm), &control).unwrap();
    assert!(none.cancelled && none.losses.is_empty() && none.phi == warm);
}

#[test]
fn warm_start_continues_from_the_given_phi() {
    let dir = fixture_dir();
    let device = cpu_device();
    let problem = problem(&dir, &device, EmbeddingSite::TextInput);
    let control = SearchControl::default();
    let first = search(&problem, &test_settings(5), None, &control).unwrap();
    let second = search(&problem, &test_settings(3), Some(&first.phi), &control).unwrap();
    let at_first = problem.loss(&first.phi).unwrap();
    eprintln!(
        "cold start {}, after 5 steps {at_first}, warm start {:?}",
        first.losses[0], second.losses
    );
    assert_eq!(
        second.losses[0], at_first,
        "warm start begins at the given φ"
    );
    assert!(second.losses[0] < first.losses[0]);
    // Zero steps hand the warm start back unchanged.
    let idle = search(&problem, &test_settings(0), Some(&first.phi), &control).unwrap();
    assert_eq!(idle.phi, first.phi);
    // A warm start of the wrong shape is refused, not truncated.
    let short = &first.phi[1..];
    assert!(matches!(
        search(&problem, &test_settings(3), Some(short), &control),
        Err(ConceptError::InvalidEmbedding { .. })
    ));
}
