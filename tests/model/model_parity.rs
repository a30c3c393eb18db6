//! Parity of the burn SAM3 detector with HF transformers 5.17 on the `tiny` preset.
//!
//! Reference tensors: the committed `tests/fixtures/sam3-tiny` (made by
//! `tests/reference/make_reference.py --preset tiny`; `committed_fixtures_agree_with_shared`
//! checks them against `shared/fixtures/sam3-tiny` when that folder is present). Each stage starts from the *reference* input of that stage, so a
//! failure points at one component. The stages live in `m2c::parity` (shared with
//! `m2c parity`); this file asserts that each one compares exactly the tensors listed here and
//! that every one is within tolerance. Every test runs on burn's CPU backend (flex) and, when a
//! wgpu adapter exists, on wgpu too (required when `M2C_REQUIRE_GPU_ADAPTER=1`, as in CI).
//! Tolerance: max abs error ≤ 1e-4 on every element (activations are O(1)–O(15)).
// Helpers outside #[test] fns panic on broken fixtures on purpose.
#![allow(clippy::expect_used)]

use crate::common;

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use m2c::engine::device::{cpu_device, wgpu_device};
use m2c::model::{ModelError, Sam3, Sam3Config, WeightPrecision};
use m2c::parity::{self, Comparison, Fixtures};

/// Max abs error allowed everywhere.
const ATOL: f32 = 1e-4;

fn fixture_dir() -> PathBuf {
    common::tiny_fixture_dir()
}

fn fixtures() -> Fixtures {
    Fixtures::new(&fixture_dir())
}

/// The devices to check: flex always, wgpu when an adapter exists.
fn devices() -> Vec<(&'static str, Device)> {
    let mut out = vec![("flex", cpu_device())];
    match wgpu_device() {
        Ok(device) => out.push(("wgpu", device)),
        Err(e) => {
            assert!(
                std::env::var_os("M2C_REQUIRE_GPU_ADAPTER").is_none(),
                "wgpu required but unavailable: {e}"
            );
            eprintln!("SKIP wgpu part: {e}");
        }
    }
    out
}

/// Asserts that a stage compared exactly `names`, in order, each within [`ATOL`]; the message
/// names the device and the worst element.
fn check_all(device: &str, comparisons: &[Comparison], names: &[String]) {
    let got: Vec<&str> = comparisons.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(got, names, "[{device}] tensors compared");
    for c in comparisons {
        eprintln!(
            "[{device}] {}: max abs err {:.3e}, rel {:.3e}",
            c.name,
            c.max_abs_err,
            c.max_rel_err()
        );
        assert_eq!(c.absent, None, "[{device}] {}: reference missing", c.name);
        assert_eq!(
            c.actual_shape, c.expected_shape,
            "[{device}] {}: shape",
            c.name
        );
        assert!(
            c.within(ATOL),
            "[{device}] {}: max abs err {:e} (index, actual, expected: {:?}) exceeds atol {ATOL:e}",
            c.name,
            c.max_abs_err,
            c.worst
        );
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn tiny_model(fx: &Fixtures, device: &Device) -> Sam3 {
    let config = fx.config().expect("tiny config");
    assert_eq!(
        config,
        Sam3Config::tiny(),
        "sam3_config.json differs from the tiny preset"
    );
    fx.model(device).expect("tiny checkpoint")
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    eprintln!("{what}: {:.2} s", start.elapsed().as_secs_f64());
    out
}

/// Largest |committed − shared| allowed between the two fixture folders. Measured: 0 (all 651
/// tensors bit-identical with the pinned reference stack, see tests/reference/README.md); the
/// slack covers a regeneration on another CPU, where oneDNN may round differently.
const FIXTURE_AGREEMENT: f64 = 1e-6;

/// The tensors of one safetensors file: name → (dtype, shape, raw little-endian bytes).
type RawTensors = std::collections::BTreeMap<String, (String, Vec<u64>, Vec<u8>)>;

/// Reads a safetensors file without interpreting the values: an 8-byte little-endian header
/// length, a JSON header (name → dtype, shape, data_offsets), then the data.
fn raw_safetensors(path: &std::path::Path) -> RawTensors {
    let bytes = std::fs::read(path).expect("fixture file");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).expect("safetensors header");
    let data = &bytes[8 + len..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, info)| {
            let dtype = info["dtype"].as_str().expect("dtype").to_owned();
            let dims = |v: &serde_json::Value| -> Vec<u64> {
                v.as_array()
                    .expect("array")
                    .iter()
                    .map(|d| d.as_u64().expect("integer"))
                    .collect()
            };
            let shape = dims(&info["shape"]);
            let offsets = dims(&info["data_offsets"]);
            let values = data[offsets[0] as usize..offsets[1] as usize].to_vec();
            (name, (dtype, shape, values))
        })
        .collect()
}

/// The committed fixtures (`tests/fixtures/sam3-tiny`, our generator) and the shared ones
/// (`shared/fixtures/sam3-tiny`, the steering repo's) hold the same tensors, names, shapes and
/// dtypes, with values within [`FIXTURE_AGREEMENT`], and equal configs. Skips without `shared/`.
#[test]
fn committed_fixtures_agree_with_shared() {
    let Some(shared) = common::shared_path("fixtures/sam3-tiny") else {
        return;
    };
    let ours = fixture_dir();
    let files = |dir: &std::path::Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir)
            .expect("fixture folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".safetensors"))
            .collect()
    };
    let names = files(&ours);
    assert_eq!(names, files(&shared), "safetensors files");
    assert_eq!(names.len(), 9, "{names:?}");
    let (mut compared, mut identical, mut worst) = (0usize, 0usize, 0.0f64);
    for file in &names {
        let a = raw_safetensors(&ours.join(file));
        let b = raw_safetensors(&shared.join(file));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{file}: tensor names"
        );
        for (name, (dtype, shape, bytes)) in &a {
            let (dtype_b, shape_b, bytes_b) = &b[name];
            assert_eq!((dtype, shape), (dtype_b, shape_b), "{file} {name}");
            compared += 1;
            if bytes == bytes_b {
                identical += 1;
                continue;
            }
            // Only float tensors may differ, and only in rounding.
            assert_eq!(dtype, "F32", "{file} {name}: {dtype} values differ");
            let f32s = |raw: &[u8]| -> Vec<f32> {
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            let err = f32s(bytes)
                .iter()
                .zip(f32s(bytes_b))
                .map(|(x, y)| (f64::from(*x) - f64::from(y)).abs())
                .fold(0.0, f64::max);
            worst = worst.max(err);
            assert!(
                err <= FIXTURE_AGREEMENT,
                "{file} {name}: max abs diff {err:e} exceeds {FIXTURE_AGREEMENT:e}"
            );
        }
    }
    eprintln!("{compared} tensors, {identical} bit-identical, max abs diff {worst:e}");
    let config = |dir: &std::path::Path| Sam3Config::from_file(&dir.join("sam3_config.json"));
    assert_eq!(
        config(&ours).expect("committed config"),
        config(&shared).expect("shared config")
    );
}

#[test]
fn preprocessing_matches_reference() {
    let fx = fixtures();
    let got = parity::preprocessing(&fx).expect("preprocessing");
    check_all("cpu", &got, &names(&["pixel_values[0]", "pixel_values[1]"]));
}

#[test]
fn vision_backbone_matches_reference() {
    let fx = fixtures();
    let mut expected = names(&["vision.embeddings", "vision.pre_layernorm"]);
    expected.extend((0..4).map(|i| format!("vision.layer{i}")));
    expected.push("vision.backbone_output".to_owned());
    for (name, device) in devices() {
        let model = tiny_model(&fx, &device);
        let got = timed(&format!("[{name}] backbone"), || {
            parity::vision_backbone(&fx, &model, &device).expect("backbone")
        });
        check_all(name, &got, &expected);
    }
}

#[test]
fn neck_matches_reference() {
    let fx = fixtures();
    let expected: Vec<String> = (0..4)
        .flat_map(|i| [format!("vision.fpn{i}"), format!("vision.fpn_pos{i}")])
        .collect();
    for (name, device) in devices() {
        let model = tiny_model(&fx, &device);
        let got = timed(&format!("[{name}] neck"), || {
            parity::neck(&fx, &model, &device).expect("neck")
        });
        check_all(name, &got, &expected);
    }
}

#[test]
fn text_encoder_matches_reference() {
    let fx = fixtures();
    for (name, device) in devices() {
        let model = tiny_model(&fx, &device);
        let got = parity::text_encoder(&fx, &model, &device).expect("text");
        check_all(
            name,
            &got,
            &names(&["text.encoder_last_hidden_state", "text.features"]),
        );
    }
}

/// The tensors the detector stage compares for a scenario.
fn detector_names(scenario: &str, with_boxes: bool) -> Vec<String> {
    let mut keys = Vec::new();
    if with_boxes {
        keys.push("geometry.features");
    }
    keys.extend([
        "encoder.prompt_features",
        "encoder.layer0",
        "encoder.layer1",
        "decoder.layer0",
        "decoder.layer1",
        "decoder.presence_logits_all",
        "scoring.all_pred_logits",
        "mask_decoder.prompt_cross_attn_out",
        "mask_decoder.mask_embeddings",
        "out.pred_boxes",
        "decoder.intermediate_hidden_states",
        "decoder.reference_boxes",
        "out.pred_masks",
        "out.semantic_seg",
    ]);
    if !with_boxes {
        keys.extend(["mask_decoder.pixel_embed", "mask_decoder.instance_embeds"]);
    }
    keys.extend(["out.pred_logits", "out.presence_logits"]);
    keys.iter().map(|k| format!("{scenario}:{k}")).collect()
}

#[test]
fn text_prompt_detector_matches_reference() {
    let fx = fixtures();
    for (name, device) in devices() {
        let model = tiny_model(&fx, &device);
        let got = timed(&format!("[{name}] decode det_text"), || {
            parity::detector(
                &fx,
                &model,
                &device,
                "det_text.safetensors",
                vec![Vec::new(), Vec::new()],
            )
            .expect("decode")
        });
        check_all(name, &got, &detector_names("det_text", false));
    }
}

#[test]
fn box_prompt_detector_matches_reference() {
    let fx = fixtures();
    let lists = fx.exemplar_boxes().expect("boxes");
    assert_eq!(lists.len(), 2, "images with box prompts");
    for (name, device) in devices() {
        let model = tiny_model(&fx, &device);
        let got = timed(&format!("[{name}] decode det_text_box"), || {
            parity::detector(
                &fx,
                &model,
                &device,
                "det_text_box.safetensors",
                lists.clone(),
            )
            .expect("decode")
        });
        check_all(name, &got, &detector_names("det_text_box", true));
    }
}

#[test]
fn end_to_end_from_pixels_and_tokens_matches_reference() {
    let fx = fixtures();
    for (name, device) in devices() {
        let model = tiny_model(&fx, &device);
        let got = timed(&format!("[{name}] end to end"), || {
            parity::end_to_end(&fx, &model, &device).expect("end to end")
        });
        let expected: Vec<String> = [
            "pred_logits",
            "pred_boxes",
            "presence_logits",
            "pred_masks",
            "semantic_seg",
        ]
        .iter()
        .map(|k| format!("e2e:out.{k}"))
        .collect();
        check_all(name, &got, &expected);
    }
}

#[test]
fn gradient_wrt_text_features_matches_reference() {
    let fx = fixtures();
    for (name, plain) in devices() {
        let got = timed(&format!("[{name}] losses and backward"), || {
            parity::gradient(&fx, &plain).expect("gradient")
        });
        check_all(
            name,
            &got,
            &names(&[
                "grad.loss_mask",
                "grad.loss_total",
                "grad.d_loss_mask_d_text_features",
                "grad.d_loss_total_d_text_features",
            ]),
        );
    }
}

#[test]
fn rejects_truncated_and_foreign_checkpoints() {
    let dir = fixture_dir();
    let device = cpu_device();
    let config = Sam3Config::tiny();
    let tmp = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(dir.join("sam3_model.safetensors")).expect("checkpoint");
    let truncated = tmp.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let err =
        Sam3::load(&config, &truncated, WeightPrecision::F32, &device).expect_err("truncated file");
    assert!(
        matches!(
            err,
            ModelError::ReadCheckpoint { .. } | ModelError::IncompatibleCheckpoint { .. }
        ),
        "{err}"
    );
    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").expect("write");
    let err =
        Sam3::load(&config, &garbage, WeightPrecision::F32, &device).expect_err("garbage file");
    assert!(matches!(err, ModelError::ReadCheckpoint { .. }), "{err}");
    // Fewer decoder layers: the file has unexpected tensors.
    let mut fewer = config.clone();
    fewer.detr_decoder_config.num_layers = 1;
    let err = Sam3::load(
        &fewer,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        &device,
    )
    .expect_err("extra layer");
    let ModelError::IncompatibleCheckpoint { unexpected, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        unexpected
            .iter()
            .any(|k| k.starts_with("detr_decoder.layers.1.")),
        "{err}"
    );
    // More queries: shapes differ.
    let mut wider = config.clone();
    wider.detr_decoder_config.num_queries = 11;
    let err = Sam3::load(
        &wider,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        &device,
    )
    .expect_err("shape");
    let ModelError::IncompatibleCheckpoint { mismatched, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        mismatched
            .iter()
            .any(|m| m.key == "detr_decoder.query_embed.weight"),
        "{err}"
    );
    // More text layers: tensors missing.
    let mut deeper = config;
    deeper.text_config.num_hidden_layers = 3;
    let err = Sam3::load(
        &deeper,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        &device,
    )
    .expect_err("missing");
    let ModelError::IncompatibleCheckpoint { missing, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        missing.iter().any(|k| k.contains("encoder.layers.2.")),
        "{err}"
    );
}

/// Records every parameter as (HF key, PyTorch shape) without materialising it.
#[derive(Default)]
struct HfLayout {
    path: Vec<String>,
    containers: Vec<String>,
    shapes: std::collections::BTreeMap<String, Vec<usize>>,
}

impl burn::module::ModuleVisitor for HfLayout {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_owned());
        self.containers.push(container_type.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let mut shape = param.lazy_shape().to_vec();
        let owner = self
            .containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:"))
            .cloned()
            .unwrap_or_default();
        let mut path = self.path.clone();
        if let Some(last) = path.last_mut() {
            match (owner.as_str(), last.as_str()) {
                ("Struct:Linear", "weight") => shape.reverse(),
                ("Struct:LayerNorm" | "Struct:GroupNorm", "gamma") => *last = "weight".to_owned(),
                ("Struct:LayerNorm" | "Struct:GroupNorm", "beta") => *last = "bias".to_owned(),
                _ => {}
            }
        }
        self.shapes.insert(
            path.join(".").replace("scale_layers_", "scale_layers."),
            shape,
        );
    }
}

/// The full preset builds exactly the tensors (names and shapes) of HF `Sam3Model`, i.e. the
/// `detector_model.*` part of `facebook/sam3` (listing: `design/sam3-hf-state-dict.txt` §B).
#[test]
fn full_preset_matches_hf_checkpoint_layout() {
    use burn::module::Module as _;
    let Some(listing) = common::shared_path("design/sam3-hf-state-dict.txt") else {
        return;
    };
    let text = std::fs::read_to_string(listing).expect("listing");
    let expected: std::collections::BTreeMap<String, Vec<usize>> = text
        .lines()
        .skip_while(|line| !line.starts_with("SECTION B."))
        .skip(1)
        .take_while(|line| !line.starts_with("SECTION C."))
        .filter(|line| !line.starts_with('#') && !line.starts_with('='))
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let key = fields.next()?.to_owned();
            let dims = fields.next()?.trim_matches(|c| c == '[' || c == ']');
            let shape = dims
                .split(", ")
                .filter(|d| !d.is_empty())
                .map(|d| d.parse().expect("dim"))
                .collect();
            Some((key, shape))
        })
        .collect();
    assert_eq!(expected.len(), 1468, "listing section B");
    let model = Sam3Config::full().init(&cpu_device());
    let mut layout = HfLayout::default();
    model.visit(&mut layout);
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !layout.shapes.contains_key(*k))
        .collect();
    let extra: Vec<&String> = layout
        .shapes
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    let wrong: Vec<(&String, &Vec<usize>, &Vec<usize>)> = expected
        .iter()
        .filter_map(|(k, e)| layout.shapes.get(k).filter(|a| *a != e).map(|a| (k, a, e)))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "missing {missing:?}\nextra {extra:?}\nwrong {wrong:?}"
    );
}

/// The tracker tensors compared by `parity::tracker` (scenario C, `tracker_box`).
fn tracker_names() -> Vec<String> {
    let mut keys: Vec<String> = (0..4).map(|i| format!("tracker.fpn{i}")).collect();
    keys.extend(
        [
            "tracker.image_embeddings0",
            "tracker.image_embeddings1",
            "tracker.image_embeddings2",
            "tracker.image_positional_embeddings",
            "tracker.sparse_embeddings",
            "tracker.dense_embeddings",
            "tracker.transformer_queries",
            "tracker.transformer_keys",
        ]
        .map(str::to_owned),
    );
    keys.extend(tracker_output_names());
    keys.iter().map(|k| format!("tracker_box:{k}")).collect()
}

fn tracker_output_names() -> Vec<String> {
    ["multimask", "single"]
        .iter()
        .flat_map(|mode| {
            ["pred_masks", "iou_scores", "object_score_logits"]
                .map(|t| format!("tracker.{mode}.{t}"))
        })
        .collect()
}

/// Scenario C (`tracker_box`): tracker neck, high-resolution path, prompt encoder, two-way
/// transformer, multimask and single-mask outputs, each from the reference input of its stage;
/// then from pixels through the detector's backbone (one ViT pass for both heads).
/// Tolerance: max abs ≤ 1e-4 ([`ATOL`]) on every element.
#[test]
fn tracker_box_matches_reference() {
    let fx = fixtures();
    if !fx.has_tracker() {
        eprintln!("SKIP tracker: no tracker files in {}", fx.dir.display());
        return;
    }
    assert_eq!(
        fx.tracker_config().expect("tracker config"),
        m2c::model::Sam3TrackerConfig::tiny(),
        "sam3_tracker_config.json differs from the tiny preset"
    );
    let e2e: Vec<String> = tracker_output_names()
        .iter()
        .map(|k| format!("tracker_e2e:{k}"))
        .collect();
    for (name, device) in devices() {
        let model = tiny_model(&fx, &device);
        let tracker = fx.tracker_model(&device).expect("tracker checkpoint");
        let got = timed(&format!("[{name}] tracker"), || {
            parity::tracker(&fx, &tracker, &device).expect("tracker")
        });
        check_all(name, &got, &tracker_names());
        let got = timed(&format!("[{name}] tracker end to end"), || {
            parity::tracker_end_to_end(&fx, &model, &tracker, &device).expect("tracker e2e")
        });
        check_all(name, &got, &e2e);
    }
}

/// The full tracker preset builds exactly the tensors (names and shapes) of HF
/// `Sam3TrackerModel` minus the shared backbone (listing: `design/sam3-hf-state-dict.txt` §C),
/// i.e. what `tracker_model.*` / `tracker_neck.*` of `facebook/sam3` provide.
#[test]
fn full_tracker_preset_matches_hf_checkpoint_layout() {
    use burn::module::Module as _;
    let Some(listing) = common::shared_path("design/sam3-hf-state-dict.txt") else {
        return;
    };
    let text = std::fs::read_to_string(listing).expect("listing");
    let expected: std::collections::BTreeMap<String, Vec<usize>> = text
        .lines()
        .skip_while(|line| !line.starts_with("SECTION C."))
        .skip(1)
        .take_while(|line| !line.starts_with("SECTION D."))
        .filter(|line| !line.starts_with('#') && !line.starts_with('='))
        .filter(|line| !line.starts_with("vision_encoder.backbone."))
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let key = fields.next()?.to_owned();
            let dims = fields.next()?.trim_matches(|c| c == '[' || c == ']');
            let shape = dims
                .split(", ")
                .filter(|d| !d.is_empty())
                .map(|d| d.parse().expect("dim"))
                .collect();
            Some((key, shape))
        })
        .collect();
    assert_eq!(
        expected.len(),
        685 - 516,
        "listing section C without the backbone"
    );
    let tracker = m2c::model::Sam3TrackerConfig::full().init(&cpu_device());
    let mut layout = HfLayout::default();
    tracker.visit(&mut layout);
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !layout.shapes.contains_key(*k))
        .collect();
    let extra: Vec<&String> = layout
        .shapes
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    let wrong: Vec<(&String, &Vec<usize>, &Vec<usize>)> = expected
        .iter()
        .filter_map(|(k, e)| layout.shapes.get(k).filter(|a| *a != e).map(|a| (k, a, e)))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "missing {missing:?}\nextra {extra:?}\nwrong {wrong:?}"
    );
}

/// Tracker checkpoints that do not fit fail with typed errors listing the tensors.
#[test]
fn tracker_rejects_foreign_and_mismatched_checkpoints() {
    use m2c::model::{Sam3Tracker, Sam3TrackerConfig};
    let dir = fixture_dir();
    let device = cpu_device();
    let config = Sam3TrackerConfig::tiny();
    // the detector file has no tracker
    let err = Sam3Tracker::load(
        &config,
        &dir.join("sam3_model.safetensors"),
        WeightPrecision::F32,
        &device,
    )
    .expect_err("detector file");
    assert!(matches!(err, ModelError::NoTrackerWeights { .. }), "{err}");
    let tracker_file = dir.join("sam3_tracker_model.safetensors");
    if !tracker_file.is_file() {
        return;
    }
    // one two-way block fewer: the file's block 1 is unexpected
    let mut shallow = config.clone();
    shallow.mask_decoder_config.num_hidden_layers = 3;
    let err = Sam3Tracker::load(&shallow, &tracker_file, WeightPrecision::F32, &device)
        .expect_err("extra block");
    let ModelError::IncompatibleCheckpoint { missing, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        missing
            .iter()
            .any(|k| k.starts_with("mask_decoder.transformer.layers.2.")),
        "{err}"
    );
    // wider IoU head: shapes differ
    let mut wider = config;
    wider.mask_decoder_config.iou_head_hidden_dim = 32;
    let err =
        Sam3Tracker::load(&wider, &tracker_file, WeightPrecision::F32, &device).expect_err("shape");
    let ModelError::IncompatibleCheckpoint { mismatched, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        mismatched
            .iter()
            .any(|m| m.key.starts_with("mask_decoder.iou_prediction_head.")),
        "{err}"
    );
    // a truncated file is a read error
    let tmp = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(&tracker_file).expect("tracker file");
    let truncated = tmp.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let err = Sam3Tracker::load(
        &Sam3TrackerConfig::tiny(),
        &truncated,
        WeightPrecision::F32,
        &device,
    )
    .expect_err("truncated");
    assert!(matches!(err, ModelError::ReadCheckpoint { .. }), "{err}");
}

/// A safetensors file and how its tensor names change in the merged file.
type RenamedFile<'a> = (PathBuf, &'a dyn Fn(&str) -> String);

/// Renames the tensors of safetensors files and concatenates them into one file (header
/// rewritten, data blocks appended with shifted offsets): a stand-in for the hub checkpoint.
fn merged_safetensors(parts: &[RenamedFile<'_>], extra: &[(&str, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (path, rename) in parts {
        let bytes = std::fs::read(path).expect("safetensors file");
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("length")) as usize;
        let json: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
        let base = data.len() as u64;
        data.extend_from_slice(&bytes[8 + n..]);
        for (key, info) in json.as_object().expect("object") {
            if key == "__metadata__" {
                continue;
            }
            let mut info = info.clone();
            let offsets = info["data_offsets"].as_array().expect("offsets");
            let shifted: Vec<u64> = offsets
                .iter()
                .map(|v| v.as_u64().expect("u64") + base)
                .collect();
            info["data_offsets"] = serde_json::json!(shifted);
            header.insert(rename(key), info);
        }
    }
    for (key, values) in extra {
        let start = data.len() as u64;
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            (*key).to_owned(),
            serde_json::json!({"dtype": "F32", "shape": [values.len()], "data_offsets": [start, data.len() as u64]}),
        );
    }
    let mut text = serde_json::Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// A file laid out like `facebook/sam3` (`detector_model.*`, `tracker_neck.*`, `tracker_model.*`
/// with a video-only tensor) built from the fixture pair: the detector and the tracker both load
/// from it, and the tracker still matches the reference (CPU, tolerance [`ATOL`]).
#[test]
fn detector_and_tracker_load_from_a_hub_layout_checkpoint() {
    use m2c::model::Sam3Tracker;
    let fx = fixtures();
    if !fx.has_tracker() {
        return;
    }
    let detector = |k: &str| format!("detector_model.{k}");
    let tracker = |k: &str| match k.strip_prefix("vision_encoder.neck.") {
        Some(rest) => format!("tracker_neck.{rest}"),
        None => format!("tracker_model.{k}"),
    };
    let bytes = merged_safetensors(
        &[
            (fx.dir.join("sam3_model.safetensors"), &detector),
            (fx.dir.join("sam3_tracker_model.safetensors"), &tracker),
        ],
        &[("tracker_model.memory_encoder.fake.weight", vec![1.0, 2.0])],
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let hub = tmp.path().join("model.safetensors");
    std::fs::write(&hub, bytes).expect("write");
    let device = cpu_device();
    Sam3::load(&Sam3Config::tiny(), &hub, WeightPrecision::F32, &device).expect("detector");
    assert!(Sam3Tracker::file_has_weights(&hub).expect("header"));
    let model = Sam3Tracker::load(
        &fx.tracker_config().expect("config"),
        &hub,
        WeightPrecision::F32,
        &device,
    )
    .expect("tracker from the hub layout");
    let got = parity::tracker(&fx, &model, &device).expect("tracker");
    check_all("flex", &got, &tracker_names());
}
