//! Finding the SAM3 checkpoint on disk and checking, from its header alone, that it is one.
//!
//! The checkpoint is gated on Hugging Face (`facebook/sam3`), so it is never bundled or
//! downloaded: the user downloads `model.safetensors` and either passes `--weights PATH`, sets
//! `M2C_WEIGHTS`, or puts it in one of the folders [`default_locations`] lists. Reading the
//! header is cheap (a few MB at most) and catches the wrong file before a long load.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::error::CheckpointError;
use super::paths::{home_dir, m2c_data_dir};
use crate::model::Sam3Config;

/// Environment variable naming the checkpoint file or its folder.
pub const WEIGHTS_ENV: &str = "M2C_WEIGHTS";
/// The file name Hugging Face uses for the checkpoint.
pub const CHECKPOINT_FILE: &str = "model.safetensors";
/// Safetensors headers larger than this are refused as corrupt (the real one is ~200 kB).
const MAX_HEADER_BYTES: u64 = 64 * 1024 * 1024;

/// Where we looked and what we found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsSearch {
    /// Every candidate, in the order tried.
    pub looked: Vec<PathBuf>,
    /// The first candidate that exists as a file.
    pub found: Option<PathBuf>,
}

/// The per-user folders searched when neither `--weights` nor `M2C_WEIGHTS` is given:
/// the app's data folder (`~/.local/share/m2c/sam3/` on Linux) and the Hugging Face cache
/// (`$HF_HOME/hub/models--facebook--sam3/snapshots/*/`, default `~/.cache/huggingface`).
pub fn default_locations() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(data) = m2c_data_dir() {
        out.push(data.join("sam3").join(CHECKPOINT_FILE));
    }
    let hf_home = std::env::var_os("HF_HOME")
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".cache").join("huggingface")));
    if let Some(hf) = hf_home {
        let snapshots = hf
            .join("hub")
            .join("models--facebook--sam3")
            .join("snapshots");
        let mut snaps: Vec<PathBuf> = std::fs::read_dir(&snapshots)
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        snaps.sort();
        if snaps.is_empty() {
            out.push(snapshots.join("<revision>").join(CHECKPOINT_FILE));
        }
        out.extend(snaps.into_iter().map(|s| s.join(CHECKPOINT_FILE)));
    }
    out
}

/// Looks for the checkpoint: `explicit` (a file, or a folder holding `model.safetensors`)
/// first, then `M2C_WEIGHTS`, then [`default_locations`]. An explicit path is the only
/// candidate when given, so a typo is reported instead of silently using another file.
pub fn locate(explicit: Option<&Path>) -> WeightsSearch {
    let candidates: Vec<PathBuf> = if let Some(p) = explicit {
        vec![as_file(p)]
    } else if let Some(env) = std::env::var_os(WEIGHTS_ENV).filter(|v| !v.is_empty()) {
        vec![as_file(Path::new(&env))]
    } else {
        default_locations()
    };
    let found = candidates.iter().find(|p| p.is_file()).cloned();
    WeightsSearch {
        looked: candidates,
        found,
    }
}

fn as_file(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join(CHECKPOINT_FILE)
    } else {
        p.to_path_buf()
    }
}

/// What the header of a checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSummary {
    pub path: PathBuf,
    pub file_bytes: u64,
    pub tensors: usize,
    /// Tensors of the SAM3 detector (`detector_model.*` in the HF release).
    pub detector_tensors: usize,
    /// Tensors of the interactive SAM2-style head (`tracker_model.*`, `tracker_neck.*`).
    pub tracker_tensors: usize,
    /// Count of tensors per stored dtype (e.g. `F32`, `BF16`).
    pub dtypes: BTreeMap<String, usize>,
    /// A bare `Sam3Model` export (SAM3's module names without the `detector_model.` prefix,
    /// as the test fixtures): the loader accepts these.
    pub bare: bool,
    /// The config the tensors were checked against ([`check_checkpoint`]), in words.
    pub config: Option<String>,
}

/// Reads and checks the safetensors header of `path` without reading the tensors: valid
/// JSON, offsets inside the file (a truncated download fails here), and SAM3 names present.
pub fn inspect_checkpoint(path: &Path) -> Result<CheckpointSummary, CheckpointError> {
    let invalid = |reason: String| CheckpointError::InvalidCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let (header, file_bytes) = read_header(path)?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| invalid(format!("header is not JSON: {e}")))?;
    let Some(entries) = json.as_object() else {
        return Err(invalid("header is not a JSON object".to_owned()));
    };
    let data_bytes = file_bytes - 8 - header.len() as u64;
    let mut summary = CheckpointSummary {
        path: path.to_path_buf(),
        file_bytes,
        tensors: 0,
        detector_tensors: 0,
        tracker_tensors: 0,
        dtypes: BTreeMap::new(),
        bare: false,
        config: None,
    };
    for (name, info) in entries {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(|d| d.as_str());
        let end = info
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(serde_json::Value::as_u64);
        let (Some(dtype), Some(end)) = (dtype, end) else {
            return Err(invalid(format!(
                "tensor {name:?} lacks dtype or data_offsets"
            )));
        };
        if end > data_bytes {
            return Err(invalid(format!(
                "tensor {name:?} ends at byte {end} but the file holds {data_bytes} data bytes \
                 (truncated download?)"
            )));
        }
        summary.tensors += 1;
        *summary.dtypes.entry(dtype.to_owned()).or_default() += 1;
        if name.starts_with("detector_model.") {
            summary.detector_tensors += 1;
        } else if name.starts_with("tracker_model.") || name.starts_with("tracker_neck.") {
            summary.tracker_tensors += 1;
        }
    }
    if summary.detector_tensors == 0 {
        let names: Vec<&str> = entries
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "__metadata__")
            .collect();
        return Err(CheckpointError::NotSam3 {
            path: path.to_path_buf(),
            reason: match foreign_model(&names) {
                Some(model) => format!(
                    "its {} tensors are named like {model}'s; M2C needs SAM3's \
                     (facebook/sam3 model.safetensors)",
                    summary.tensors
                ),
                None => format!(
                    "none of its {} tensors is named detector_model.* (expected facebook/sam3's \
                     model.safetensors)",
                    summary.tensors
                ),
            },
        });
    }
    Ok(summary)
}

/// Top-level modules of a bare HF `Sam3Model` checkpoint (no `detector_model.` prefix).
pub const BARE_SAM3_PREFIXES: &[&str] = &["vision_encoder.", "detr_decoder.", "text_encoder."];

/// Which other model a checkpoint's tensor names belong to, when recognisable.
fn foreign_model(names: &[&str]) -> Option<&'static str> {
    let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    let contains = |part: &str| names.iter().any(|n| n.contains(part));
    if has("image_encoder.trunk.")
        || has("sam_mask_decoder.")
        || has("memory_attention.")
        || (has("prompt_encoder.") && has("mask_decoder.") && !has("detr_decoder."))
    {
        Some("SAM 2")
    } else if has("image_encoder.blocks.") && has("prompt_encoder.") {
        Some("SAM (Segment Anything 1)")
    } else if has("model.layers.") || has("transformer.h.") || contains("lm_head") {
        Some("a language model")
    } else if has("encoder.layer.") || has("bert.") {
        Some("a BERT-style encoder")
    } else {
        None
    }
}

/// [`inspect_checkpoint`], also accepting a bare `Sam3Model` export, then checked against the
/// config the engine would load it with (`config`, else the folder's `config.json`, else the
/// full preset): the widths and layer counts of the tensors must be the config's. Reads only
/// the header and the config (milliseconds): what `m2c doctor` and the Settings dialog say,
/// and what the engine checks before a long load.
pub fn check_checkpoint(
    path: &Path,
    config: Option<&Path>,
) -> Result<CheckpointSummary, CheckpointError> {
    let mut summary = match inspect_checkpoint(path) {
        Ok(summary) => summary,
        Err(not_sam3 @ CheckpointError::NotSam3 { .. }) => {
            let tensors = header_tensors(path)?;
            let bare = BARE_SAM3_PREFIXES
                .iter()
                .all(|p| tensors.keys().any(|n| n.starts_with(p)));
            if !bare {
                return Err(not_sam3);
            }
            let mut summary = inspect_bare(path)?;
            summary.bare = true;
            summary
        }
        Err(e) => return Err(e),
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    let beside = folder.join("config.json");
    let (sam3_config, source) = match config {
        Some(c) => (read_config(path, c)?, c.display().to_string()),
        None if beside.is_file() => (read_config(path, &beside)?, beside.display().to_string()),
        None => (
            Sam3Config::full(),
            "the built-in full-size preset".to_owned(),
        ),
    };
    let tensors = header_tensors(path)?;
    if let Some(reason) = config_disagreement(&tensors, &sam3_config) {
        return Err(CheckpointError::ConfigMismatch {
            path: path.to_path_buf(),
            config: source,
            reason,
        });
    }
    summary.config = Some(source);
    Ok(summary)
}

fn read_config(weights: &Path, config: &Path) -> Result<Sam3Config, CheckpointError> {
    Sam3Config::from_file(config).map_err(|e| CheckpointError::ConfigMismatch {
        path: weights.to_path_buf(),
        config: config.display().to_string(),
        reason: format!("the config cannot be read: {e}"),
    })
}

/// The summary of a bare `Sam3Model` file: every tensor counts as the detector's.
fn inspect_bare(path: &Path) -> Result<CheckpointSummary, CheckpointError> {
    let (header, file_bytes) = read_header(path)?;
    let tensors = header_tensors(path)?;
    let mut dtypes = BTreeMap::new();
    let json: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
    for info in json
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| (k != "__metadata__").then_some(v))
    {
        if let Some(d) = info.get("dtype").and_then(serde_json::Value::as_str) {
            *dtypes.entry(d.to_owned()).or_default() += 1;
        }
    }
    Ok(CheckpointSummary {
        path: path.to_path_buf(),
        file_bytes,
        tensors: tensors.len(),
        detector_tensors: tensors.len(),
        tracker_tensors: 0,
        dtypes,
        bare: true,
        config: None,
    })
}

/// Tensor name (without `detector_model.`) → shape, from the header.
fn header_tensors(path: &Path) -> Result<BTreeMap<String, Vec<u64>>, CheckpointError> {
    let (header, _) = read_header(path)?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| CheckpointError::InvalidCheckpoint {
            path: path.to_path_buf(),
            reason: format!("header is not JSON: {e}"),
        })?;
    Ok(json
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let name = k.strip_prefix("detector_model.").unwrap_or(k).to_owned();
            let shape = v
                .get("shape")
                .and_then(serde_json::Value::as_array)
                .map(|dims| dims.iter().filter_map(serde_json::Value::as_u64).collect())
                .unwrap_or_default();
            (name, shape)
        })
        .collect())
}

/// The first way the tensors contradict `config` (widths, patch size, vocabulary, layer
/// counts), in words; `None` when they agree on all of them.
fn config_disagreement(
    tensors: &BTreeMap<String, Vec<u64>>,
    config: &Sam3Config,
) -> Option<String> {
    let vit = &config.vision_config.backbone_config;
    let text = &config.text_config;
    let to64 = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    let shape = |name: &str| tensors.get(name).map(Vec::as_slice);
    let mut problems = Vec::new();
    let patch = "vision_encoder.backbone.embeddings.patch_embeddings.projection.weight";
    match shape(patch) {
        Some([width, _, p, _]) => {
            if *width != to64(vit.hidden_size) {
                problems.push(format!(
                    "the image encoder is {width} wide, the config says {}",
                    vit.hidden_size
                ));
            }
            if *p != to64(vit.patch_size) {
                problems.push(format!(
                    "its patches are {p} pixels, the config says {}",
                    vit.patch_size
                ));
            }
        }
        _ => problems.push(format!("it has no {patch} of four dimensions")),
    }
    let token = "text_encoder.text_model.embeddings.token_embedding.weight";
    match shape(token) {
        Some([vocab, width]) => {
            if *vocab != to64(text.vocab_size) || *width != to64(text.hidden_size) {
                problems.push(format!(
                    "the text embedding is {vocab} × {width}, the config says {} × {}",
                    text.vocab_size, text.hidden_size
                ));
            }
        }
        _ => problems.push(format!("it has no {token} of two dimensions")),
    }
    let layer_counts = [
        (
            "vision_encoder.backbone.layers.",
            vit.num_hidden_layers,
            "image encoder",
        ),
        (
            "text_encoder.text_model.encoder.layers.",
            text.num_hidden_layers,
            "text encoder",
        ),
        (
            "detr_encoder.layers.",
            config.detr_encoder_config.num_layers,
            "DETR encoder",
        ),
        (
            "detr_decoder.layers.",
            config.detr_decoder_config.num_layers,
            "DETR decoder",
        ),
    ];
    for (prefix, expected, what) in layer_counts {
        let found = layers_under(tensors, prefix);
        if found != expected {
            problems.push(format!(
                "the {what} has {found} layers, the config says {expected}"
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// How many numbered layers `prefix<N>.` the names hold (highest N + 1).
fn layers_under(tensors: &BTreeMap<String, Vec<u64>>, prefix: &str) -> usize {
    tensors
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
        .map(|n| n.saturating_add(1))
        .max()
        .unwrap_or(0)
}

/// What a file that is not safetensors appears to be, from its first bytes.
fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    let text = String::from_utf8_lossy(&head[..head.len().min(64)]).to_ascii_lowercase();
    let text = text.trim_start();
    if head.get(4..8) == Some(b"ftyp") {
        Some("an MP4/MOV video")
    } else if starts(b"RIFF") {
        Some("a RIFF file (an AVI video or WAV sound)")
    } else if starts(&[0x1a, 0x45, 0xdf, 0xa3]) {
        Some("a Matroska/WebM video")
    } else if starts(b"PK\x03\x04") {
        Some("a ZIP archive (a PyTorch .pt/.bin checkpoint is one; M2C reads safetensors)")
    } else if head.first() == Some(&0x80) && head.get(1).is_some_and(|v| (2..=5).contains(v)) {
        Some("a Python pickle (a PyTorch checkpoint; M2C reads safetensors)")
    } else if starts(b"GGUF") {
        Some("a GGUF model file")
    } else if starts(b"\x89PNG") || starts(&[0xff, 0xd8, 0xff]) {
        Some("an image")
    } else if head.get(128..132) == Some(b"DICM") {
        Some("a DICOM file")
    } else if text.starts_with("version https://git-lfs") {
        Some("a Git LFS pointer (the real file was not downloaded: run git lfs pull)")
    } else if text.starts_with("<!doctype") || text.starts_with("<html") {
        Some(
            "a web page (the download saved an error or login page: accept the licence on Hugging Face and download again)",
        )
    } else if text.starts_with('{') {
        Some("a JSON file (a config.json, not the weights?)")
    } else {
        None
    }
}

/// Identity of the checkpoint at `path`: `sha256:` of its size and safetensors header (see
/// `concept::file::checkpoint_id`). Reads only the header, so it is cheap for a 3 GB file and
/// changes with any renamed, reshaped or re-typed tensor.
pub fn checkpoint_identity(path: &Path) -> Result<String, CheckpointError> {
    let (header, file_bytes) = read_header(path)?;
    Ok(crate::concept::file::checkpoint_id(&header, file_bytes))
}

/// The tensor names in the safetensors header of `path` (`__metadata__` left out), sorted.
/// Reads only the header; lets a caller tell a bare `Sam3Model` file (no `detector_model.`
/// prefix, which the loader accepts) from another model's checkpoint.
pub fn checkpoint_tensor_names(path: &Path) -> Result<Vec<String>, CheckpointError> {
    let (header, _) = read_header(path)?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| CheckpointError::InvalidCheckpoint {
            path: path.to_path_buf(),
            reason: format!("header is not JSON: {e}"),
        })?;
    let mut names: Vec<String> = json
        .as_object()
        .map(|o| o.keys().filter(|k| *k != "__metadata__").cloned().collect())
        .unwrap_or_default();
    names.sort();
    Ok(names)
}

/// The safetensors header bytes of `path` (the JSON after the 8-byte length) and the file size.
fn read_header(path: &Path) -> Result<(Vec<u8>, u64), CheckpointError> {
    let read_err = |source| CheckpointError::ReadCheckpoint {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |reason: String| CheckpointError::InvalidCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let file_bytes = file.metadata().map_err(read_err)?.len();
    if file.metadata().map_err(read_err)?.is_dir() {
        return Err(invalid("it is a folder".to_owned()));
    }
    let mut head = Vec::with_capacity(136);
    (&mut file)
        .take(136)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let what = |fallback: String| match sniff(&head) {
        Some(kind) => format!("it is {kind}"),
        None => fallback,
    };
    let Some(len_bytes) = head.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return Err(invalid(what(format!(
            "file too short ({file_bytes} bytes) for a header"
        ))));
    };
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES || header_len.saturating_add(8) > file_bytes {
        return Err(invalid(what(format!(
            "header length {header_len} does not fit a {file_bytes}-byte file"
        ))));
    }
    let mut header = head.get(8..).map(<[u8]>::to_vec).unwrap_or_default();
    header.truncate(usize::try_from(header_len).unwrap_or(usize::MAX));
    let rest = header_len.saturating_sub(header.len() as u64);
    file.take(rest).read_to_end(&mut header).map_err(read_err)?;
    if header.first() != Some(&b'{') {
        return Err(invalid(what(
            "its header is not a JSON object (not a safetensors file)".to_owned(),
        )));
    }
    Ok((header, file_bytes))
}

/// The committed tiny SAM3 fixture laid out as a user would: `model.safetensors` (its
/// tensors' names with `detector_model.` in front when `prefixed`) and, with `config`, the
/// fixture's config as `config.json` beside it.
#[cfg(test)]
pub(crate) fn tiny_checkpoint_folder(dir: &Path, prefixed: bool, config: bool) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sam3-tiny");
    let bytes = std::fs::read(fixtures.join("sam3_model.safetensors")).unwrap();
    let len = usize::try_from(u64::from_le_bytes(bytes[..8].try_into().unwrap())).unwrap();
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let renamed: serde_json::Map<String, serde_json::Value> = header
        .into_iter()
        .map(|(k, v)| {
            let k = if prefixed && k != "__metadata__" {
                format!("detector_model.{k}")
            } else {
                k
            };
            (k, v)
        })
        .collect();
    let header = serde_json::to_vec(&renamed).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[8 + len..]);
    let path = dir.join(CHECKPOINT_FILE);
    std::fs::write(&path, out).unwrap();
    if config {
        std::fs::copy(fixtures.join("sam3_config.json"), dir.join("config.json")).unwrap();
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn write_safetensors(dir: &Path, names: &[&str], truncate_by: usize) -> PathBuf {
        let mut header = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            header.insert(
                (*n).to_owned(),
                serde_json::json!({"dtype": "F32", "shape": [2], "data_offsets": [i * 8, i * 8 + 8]}),
            );
        }
        let header = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
        let path = dir.join("model.safetensors");
        let mut f = File::create(&path).unwrap();
        f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
        f.write_all(&header).unwrap();
        f.write_all(&vec![0u8; names.len() * 8 - truncate_by])
            .unwrap();
        path
    }

    #[test]
    fn accepts_a_sam3_header_and_counts_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(
            dir.path(),
            &["detector_model.a", "detector_model.b", "tracker_model.c"],
            0,
        );
        let s = inspect_checkpoint(&path).unwrap();
        assert_eq!(
            (s.tensors, s.detector_tensors, s.tracker_tensors),
            (3, 2, 1)
        );
        assert_eq!(s.dtypes.get("F32"), Some(&3));
    }

    #[test]
    fn rejects_truncated_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(dir.path(), &["detector_model.a", "detector_model.b"], 3);
        let err = inspect_checkpoint(&path).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn rejects_other_models_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(dir.path(), &["encoder.layer.0.weight"], 0);
        assert!(matches!(
            inspect_checkpoint(&path),
            Err(CheckpointError::NotSam3 { .. })
        ));
        let junk = dir.path().join("junk.bin");
        std::fs::write(&junk, b"PK\x03\x04 this is a zip").unwrap();
        assert!(matches!(
            inspect_checkpoint(&junk),
            Err(CheckpointError::InvalidCheckpoint { .. })
        ));
        assert!(matches!(
            inspect_checkpoint(&dir.path().join("missing.safetensors")),
            Err(CheckpointError::ReadCheckpoint { .. })
        ));
    }

    #[test]
    fn explicit_path_is_the_only_candidate_and_folders_mean_model_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let s = locate(Some(dir.path()));
        assert_eq!(s.looked, vec![dir.path().join(CHECKPOINT_FILE)]);
        assert_eq!(s.found, None);
        let path = write_safetensors(dir.path(), &["detector_model.a"], 0);
        assert_eq!(locate(Some(dir.path())).found, Some(path));
    }

    #[test]
    fn files_that_are_not_safetensors_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 4] = [
            (
                b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
                "MP4/MOV video",
            ),
            (
                b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3\n",
                "Git LFS pointer",
            ),
            (
                b"<!DOCTYPE html><html><body>Access denied</body></html>",
                "web page",
            ),
            (b"\x80\x02}q\x00(X\x06\x00\x00\x00weights", "Python pickle"),
        ];
        for (bytes, what) in cases {
            let path = dir.path().join("model.safetensors");
            std::fs::write(&path, bytes).unwrap();
            let err = inspect_checkpoint(&path).unwrap_err();
            assert!(matches!(err, CheckpointError::InvalidCheckpoint { .. }));
            assert!(err.to_string().contains(what), "{err}");
        }
    }

    #[test]
    fn sam2_names_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(
            dir.path(),
            &[
                "image_encoder.trunk.blocks.0.attn.qkv.weight",
                "sam_mask_decoder.transformer.layers.0.norm1.weight",
                "memory_attention.layers.0.self_attn.q_proj.weight",
            ],
            0,
        );
        let err = check_checkpoint(&path, None).unwrap_err();
        assert!(matches!(err, CheckpointError::NotSam3 { .. }));
        assert!(err.to_string().contains("SAM 2"), "{err}");
    }

    #[test]
    fn the_tiny_checkpoint_is_usable_with_its_config_and_not_without() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_checkpoint_folder(dir.path(), false, true);
        let summary = check_checkpoint(&path, None).unwrap();
        assert!(summary.bare);
        assert_eq!(summary.tensors, 394);
        assert!(summary.config.unwrap().ends_with("config.json"));
        // The same file against the full-size preset: the widths say why.
        std::fs::remove_file(dir.path().join("config.json")).unwrap();
        let err = check_checkpoint(&path, None).unwrap_err();
        assert!(
            matches!(err, CheckpointError::ConfigMismatch { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("full-size preset"), "{text}");
        assert!(
            text.contains("image encoder is 96 wide, the config says 1024"),
            "{text}"
        );
        // Prefixed names (as in the hub's file) work alike.
        let prefixed = tempfile::tempdir().unwrap();
        let path = tiny_checkpoint_folder(prefixed.path(), true, true);
        let summary = check_checkpoint(&path, None).unwrap();
        assert!(!summary.bare);
        assert_eq!(summary.detector_tensors, 394);
    }

    #[test]
    fn a_config_that_disagrees_with_the_tensors_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_checkpoint_folder(dir.path(), false, true);
        let config_path = dir.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        config["vision_config"]["backbone_config"]["num_hidden_layers"] = 6.into();
        config["text_config"]["vocab_size"] = 1000.into();
        std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        let err = check_checkpoint(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("image encoder has 4 layers, the config says 6"),
            "{err}"
        );
        assert!(
            err.contains("text embedding is 512 × 80, the config says 1000 × 80"),
            "{err}"
        );
        std::fs::write(&config_path, b"{ not json").unwrap();
        let err = check_checkpoint(&path, None).unwrap_err().to_string();
        assert!(err.contains("config cannot be read"), "{err}");
    }
}
