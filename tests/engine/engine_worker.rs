//! The engine thread on the tiny random-weight SAM3 (CPU): load, learn with progress, predict
//! with one event per image, cancellation of running and queued jobs, failures that leave the
//! engine serving, and a memory limit that fails a too-large encode, search or prediction with
//! a typed out-of-memory error and its remedies while the engine keeps serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use m2c::concept::file::{EmbeddingSite, SearchSettings};
use m2c::engine::concept::{ConceptSpec, OwnedRgb, PredictOptions};
use m2c::engine::device::{DevicePreference, plan_for};
use m2c::engine::inference::Segmenter;
use m2c::engine::settings::Precision;
use m2c::engine::worker::{
    Engine, Event, ImageInput, ImageSource, JobId, Request, Stage, TrainingSample,
};
use m2c::engine::{EngineError, Failure, Remedy, Task};

const WAIT: Duration = Duration::from_secs(300);

/// A generated image with a bright disc, and the disc's mask.
fn sample(key: &str, w: usize, h: usize) -> TrainingSample {
    let (cx, cy, r) = (w as f32 * 0.4, h as f32 * 0.5, h as f32 * 0.25);
    let inside = |x: usize, y: usize| (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r;
    let mut data = Vec::with_capacity(w * h * 3);
    let mut mask = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let m = inside(x, y);
            mask.push(m);
            data.extend(if m {
                [230, 120, 110]
            } else {
                [(x % 200) as u8, (y % 150) as u8, 60]
            });
        }
    }
    TrainingSample {
        input: ImageInput {
            key: key.to_owned(),
            source: ImageSource::Rgb(Arc::new(OwnedRgb {
                width: w,
                height: h,
                data,
            })),
        },
        mask: Arc::new(mask),
    }
}

fn spec(steps: u32) -> ConceptSpec {
    ConceptSpec {
        name: "disc".to_owned(),
        base_text: "a disc".to_owned(),
        site: EmbeddingSite::TextInput,
        settings: SearchSettings {
            steps,
            lr_start: 5e-2,
            ..SearchSettings::default()
        },
    }
}

/// Every event of `job` up to and including its end.
fn drain(engine: &mut Engine, job: JobId) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let event = engine.recv_timeout(WAIT).expect("engine answers");
        assert_eq!(event.job(), job, "events of one job at a time: {event:?}");
        let end = matches!(event, Event::Finished { .. } | Event::Failed { .. });
        out.push(event);
        if end {
            return out;
        }
    }
}

fn load(engine: &mut Engine, weights: &Path) {
    let job = engine.submit(Request::Load {
        weights: weights.to_owned(),
        config: None,
        plan: plan_for(DevicePreference::Cpu),
        precision: Precision::F32,
    });
    let events = drain(engine, job);
    assert!(
        matches!(&events[0], Event::Loaded { checkpoint, .. } if checkpoint.starts_with("sha256:")),
        "{events:?}"
    );
    assert!(matches!(
        events[1],
        Event::Finished {
            cancelled: false,
            ..
        }
    ));
}

#[test]
fn learns_with_progress_then_predicts_every_image() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = common::tiny_checkpoint(tmp.path()) else {
        return;
    };
    let mut engine = Engine::spawn();
    load(&mut engine, &weights);
    let training = vec![sample("a", 120, 90), sample("b", 90, 110)];
    let job = engine.submit(Request::Learn {
        spec: spec(4),
        training: training.clone(),
        warm_start: None,
    });
    let events = drain(&mut engine, job);
    let encoding = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Progress {
                    stage: Stage::Encoding { total: 2, .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(encoding, 2, "{events:?}");
    let steps: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress {
                stage: Stage::Searching(p),
                ..
            } => Some(p.step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4]);
    let Some(Event::Learned {
        concept,
        losses,
        cancelled: false,
        ..
    }) = events.iter().find(|e| matches!(e, Event::Learned { .. }))
    else {
        panic!("no result: {events:?}");
    };
    assert_eq!(losses.len(), 4);
    assert_eq!(concept.training_masks.len(), 2);
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            cancelled: false,
            ..
        })
    ));

    // predict on the two cached images and a new one; one event per image, in order
    let mut images: Vec<ImageInput> = training.iter().map(|t| t.input.clone()).collect();
    images.push(sample("c", 70, 60).input);
    let job = engine.submit(Request::Predict {
        concept: concept.clone(),
        images,
        options: PredictOptions {
            threshold: 0.0,
            ..PredictOptions::default()
        },
    });
    let events = drain(&mut engine, job);
    let predicted: Vec<(&str, usize, usize)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Predicted {
                key, prediction, ..
            } => Some((key.as_str(), prediction.width, prediction.height)),
            _ => None,
        })
        .collect();
    assert_eq!(
        predicted,
        vec![("a", 120, 90), ("b", 90, 110), ("c", 70, 60)]
    );
    for e in &events {
        if let Event::Predicted { prediction, .. } = e {
            assert_eq!(prediction.mask.len(), prediction.width * prediction.height);
            assert_eq!(prediction.probability.len(), prediction.mask.len());
            // threshold 0 keeps all 10 queries, so the box-exemplar pass ran
            assert_eq!(prediction.instances.len(), 10);
            assert!(prediction.consistency_mask.is_some());
        }
    }
}

#[test]
fn cancelling_stops_a_running_search_and_skips_a_queued_job() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = common::tiny_checkpoint(tmp.path()) else {
        return;
    };
    let mut engine = Engine::spawn();
    load(&mut engine, &weights);
    let long = engine.submit(Request::Learn {
        spec: spec(100_000),
        training: vec![sample("a", 100, 80)],
        warm_start: None,
    });
    let queued = engine.submit(Request::Learn {
        spec: spec(3),
        training: vec![sample("b", 100, 80)],
        warm_start: None,
    });
    engine.cancel(queued);
    // wait for the long search to be under way, then stop it
    loop {
        let event = engine.recv_timeout(WAIT).expect("progress");
        if matches!(
            event,
            Event::Progress {
                stage: Stage::Searching(_),
                ..
            }
        ) {
            break;
        }
    }
    engine.cancel(long);
    let mut events = Vec::new();
    while let Some(event) = engine.recv_timeout(WAIT) {
        let done = matches!(event, Event::Finished { job, .. } if job == queued);
        events.push(event);
        if done {
            break;
        }
    }
    let learned = events.iter().find_map(|e| match e {
        Event::Learned {
            job,
            losses,
            cancelled,
            ..
        } if *job == long => Some((losses.len(), *cancelled)),
        _ => None,
    });
    let (steps, cancelled) = learned.expect("the cancelled search still reports its φ");
    assert!(cancelled && steps < 100_000, "{steps} steps");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Finished { job, cancelled: true } if *job == long))
    );
    // the queued job produced nothing but its cancelled end
    let of_queued: Vec<&Event> = events.iter().filter(|e| e.job() == queued).collect();
    assert!(
        matches!(
            of_queued.as_slice(),
            [Event::Finished {
                cancelled: true,
                ..
            }]
        ),
        "{of_queued:?}"
    );
}

#[test]
fn failures_are_reported_and_the_engine_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let mut engine = Engine::spawn();
    let job = engine.submit(Request::Learn {
        spec: spec(1),
        training: vec![sample("a", 40, 30)],
        warm_start: None,
    });
    let events = drain(&mut engine, job);
    assert!(
        matches!(&events[..], [Event::Failed { error, .. }] if error.message().contains("no SAM3 model is loaded")),
        "{events:?}"
    );
    let garbage = tmp.path().join("model.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let job = engine.submit(Request::Load {
        weights: garbage,
        config: None,
        plan: plan_for(DevicePreference::Cpu),
        precision: Precision::F32,
    });
    let events = drain(&mut engine, job);
    assert!(
        matches!(&events[..], [Event::Failed { error, .. }] if error.message().contains("not a valid safetensors checkpoint")),
        "{events:?}"
    );
    assert!(engine.is_running());
    // a mask that does not fit its image is refused, not a crash
    let Some(weights) = common::tiny_checkpoint(tmp.path()) else {
        return;
    };
    load(&mut engine, &weights);
    let mut bad = sample("a", 40, 30);
    bad.mask = Arc::new(vec![true; 10]);
    let job = engine.submit(Request::Learn {
        spec: spec(1),
        training: vec![bad],
        warm_start: None,
    });
    let events = drain(&mut engine, job);
    assert!(
        matches!(events.last(), Some(Event::Failed { error, .. }) if error.message().contains("invalid training masks")),
        "{events:?}"
    );
}

#[test]
fn study_slices_are_decoded_on_the_engine_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = common::tiny_checkpoint(tmp.path()) else {
        return;
    };
    let study_dir = tmp.path().join("study");
    std::fs::create_dir(&study_dir).unwrap();
    for k in 0..2u32 {
        image::GrayImage::from_fn(64, 48, |x, y| image::Luma([((x * 3 + y * k) % 255) as u8]))
            .save(study_dir.join(format!("s{k}.png")))
            .unwrap();
    }
    // each raster file is a one-slice series
    let found = m2c::study::discover(&study_dir);
    let all: Vec<Arc<m2c::study::Series>> = found.series.into_iter().map(Arc::new).collect();
    assert_eq!(all.len(), 2);
    let mut engine = Engine::spawn();
    load(&mut engine, &weights);
    let mask: Vec<bool> = (0..64 * 48)
        .map(|i| (i % 64) > 20 && (i % 64) < 40)
        .collect();
    let training = all
        .iter()
        .enumerate()
        .map(|(k, series)| TrainingSample {
            input: ImageInput {
                key: format!("s{k}"),
                source: ImageSource::Slice {
                    series: Arc::clone(series),
                    index: 0,
                    window: None,
                },
            },
            mask: Arc::new(mask.clone()),
        })
        .collect();
    let job = engine.submit(Request::Learn {
        spec: spec(2),
        training,
        warm_start: None,
    });
    let events = drain(&mut engine, job);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Learned { losses, .. } if losses.len() == 2)),
        "{events:?}"
    );
    // a slice that does not exist fails with the study's message, naming the job, what it
    // was doing and the image
    let job = engine.submit(Request::Learn {
        spec: spec(1),
        training: vec![TrainingSample {
            input: ImageInput {
                key: "gone".to_owned(),
                source: ImageSource::Slice {
                    series: Arc::clone(&all[0]),
                    index: 7,
                    window: None,
                },
            },
            mask: Arc::new(mask),
        }],
        warm_start: None,
    });
    let events = drain(&mut engine, job);
    assert!(
        matches!(events.last(), Some(Event::Failed { error, .. }) if error.message().contains("frame")),
        "{events:?}"
    );
    let Some(Event::Failed { error, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(error.job(), Some(job));
    assert_eq!(error.task(), Some(Task::Learn));
    assert_eq!(error.image(), Some("gone"));
    assert_eq!(error.failure(), Failure::Other);
    assert!(error.remedies().is_empty(), "{error:?}");
}

/// A box on an image: the interactive head when the checkpoint has it, else the detector.
fn box_source(weights: &Path) -> (String, Option<usize>) {
    let mut engine = Engine::spawn();
    let job = engine.submit(Request::Load {
        weights: weights.to_owned(),
        config: None,
        plan: plan_for(DevicePreference::Cpu),
        precision: Precision::F32,
    });
    let events = drain(&mut engine, job);
    let Event::Loaded { description, .. } = &events[0] else {
        panic!("{events:?}");
    };
    let description = description.clone();
    let input = sample("a", 90, 70).input;
    let mut answers = Vec::new();
    // twice on one image: the second box reuses the cached features
    for b in [[20.0, 15.0, 60.0, 50.0], [10.0, 10.0, 40.0, 30.0]] {
        let job = engine.submit(Request::SegmentBox {
            input: input.clone(),
            box_xyxy: b,
        });
        let events = drain(&mut engine, job);
        let Some(Event::BoxSegmented { key, result, .. }) = events.first() else {
            panic!("{events:?}");
        };
        assert_eq!(key, "a");
        answers.push(result.as_ref().map(|r| {
            assert_eq!((r.width, r.height), (90, 70));
            assert_eq!(r.mask.len(), 90 * 70);
            assert!(r.mask.iter().any(|&m| m));
            (r.source, r.mask.iter().filter(|&&m| m).count())
        }));
    }
    let sources: Vec<&str> = answers.iter().flatten().map(|a| a.0).collect();
    (
        format!("{description} | {sources:?}"),
        answers.first().cloned().flatten().map(|a| a.1),
    )
}

#[test]
fn boxes_use_the_interactive_head_when_the_checkpoint_has_it() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = common::tiny_checkpoint_with_tracker(tmp.path()) else {
        return;
    };
    let (what, _) = box_source(&weights);
    eprintln!("{what}");
    assert!(what.contains("box tool: SAM3 interactive head"), "{what}");
    // the tiny head returns a non-empty mask for both boxes
    assert!(
        what.ends_with("[\"SAM3 interactive head\", \"SAM3 interactive head\"]"),
        "{what}"
    );
    let plain = tempfile::tempdir().unwrap();
    let weights = common::tiny_checkpoint(plain.path()).unwrap();
    let (what, _) = box_source(&weights);
    assert!(what.contains("box tool: SAM3 detector"), "{what}");
    assert!(!what.contains("\"SAM3 interactive head\""), "{what}");
}

/// The job's single failure event.
fn failure(events: &[Event]) -> Arc<EngineError> {
    match events.last() {
        Some(Event::Failed { error, .. }) => Arc::clone(error),
        _ => panic!("expected a failure: {events:?}"),
    }
}

fn set_limit(engine: &mut Engine, bytes: Option<u64>) {
    let job = engine.submit(Request::SetMemoryLimit { bytes });
    let events = drain(engine, job);
    assert!(matches!(events[..], [Event::Finished { .. }]), "{events:?}");
}

#[test]
fn a_memory_limit_fails_encode_search_and_prediction_cleanly_with_remedies() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(weights) = common::tiny_checkpoint(tmp.path()) else {
        return;
    };
    // What the engine estimates for this model (the same code it checks with).
    let (encode, features) = {
        let seg = Segmenter::load(&weights, None, &plan_for(DevicePreference::Cpu)).unwrap();
        (seg.encode_bytes_estimate(), seg.feature_bytes_estimate())
    };
    assert!(encode > features && features > 0);
    let mut engine = Engine::spawn();
    load(&mut engine, &weights);
    let four: Vec<TrainingSample> = (0..4).map(|i| sample(&format!("t{i}"), 60, 45)).collect();

    // Room for two images' features and one step, not for four.
    set_limit(&mut engine, Some(2 * features + encode));
    let job = engine.submit(Request::Learn {
        spec: spec(1),
        training: four.clone(),
        warm_start: None,
    });
    let error = failure(&drain(&mut engine, job));
    assert_eq!(error.failure(), Failure::OutOfMemory, "{}", error.message());
    assert_eq!(error.task(), Some(Task::Learn));
    assert!(
        error.message().contains("memory limit"),
        "{}",
        error.message()
    );
    assert_eq!(
        error.remedies(),
        vec![
            Remedy::FewerImages,
            Remedy::HalfPrecisionWeights,
            Remedy::CpuBackend
        ]
    );

    // The first remedy works: half as many images.
    let job = engine.submit(Request::Learn {
        spec: spec(1),
        training: four[..2].to_vec(),
        warm_start: None,
    });
    let events = drain(&mut engine, job);
    let Some(Event::Learned { concept, .. }) =
        events.iter().find(|e| matches!(e, Event::Learned { .. }))
    else {
        panic!("learning from fewer images fails: {events:?}");
    };
    let concept = concept.clone();

    // No room for even one encode: a new image fails to predict, typed, without remedy to
    // search on fewer images; an image already encoded still predicts.
    set_limit(&mut engine, Some(encode - 1));
    let fresh = sample("fresh", 50, 50).input;
    let job = engine.submit(Request::Predict {
        concept: concept.clone(),
        images: vec![fresh.clone()],
        options: PredictOptions::default(),
    });
    let error = failure(&drain(&mut engine, job));
    assert_eq!(error.failure(), Failure::OutOfMemory, "{}", error.message());
    assert_eq!(error.task(), Some(Task::Predict));
    assert_eq!(error.image(), Some("fresh"));
    assert_eq!(
        error.remedies(),
        vec![Remedy::HalfPrecisionWeights, Remedy::CpuBackend]
    );
    let job = engine.submit(Request::Predict {
        concept: concept.clone(),
        images: vec![four[0].input.clone()],
        options: PredictOptions::default(),
    });
    let events = drain(&mut engine, job);
    assert!(
        events.iter().any(|e| matches!(e, Event::Predicted { .. })),
        "a cached image needs no encode: {events:?}"
    );

    // Lifting the limit: everything works again.
    set_limit(&mut engine, None);
    let job = engine.submit(Request::Predict {
        concept,
        images: vec![fresh],
        options: PredictOptions::default(),
    });
    let events = drain(&mut engine, job);
    assert!(
        events.iter().any(|e| matches!(e, Event::Predicted { .. })),
        "{events:?}"
    );
    assert!(engine.is_running());
}
