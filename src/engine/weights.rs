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
        return Err(CheckpointError::NotSam3 {
            path: path.to_path_buf(),
            reason: format!(
                "none of its {} tensors is named detector_model.* (expected facebook/sam3's \
                 model.safetensors)",
                summary.tensors
            ),
        });
    }
    Ok(summary)
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
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| invalid(format!("file too short ({file_bytes} bytes) for a header")))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES || header_len.saturating_add(8) > file_bytes {
        return Err(invalid(format!(
            "header length {header_len} does not fit a {file_bytes}-byte file"
        )));
    }
    let mut header = Vec::new();
    file.take(header_len)
        .read_to_end(&mut header)
        .map_err(read_err)?;
    Ok((header, file_bytes))
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
}
