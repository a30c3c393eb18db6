//! Concept files (`.m2c`): a learned embedding φ with everything needed to reuse it safely —
//! base prompt, which SAM3 checkpoint it belongs to, hashes of the training masks, the search
//! hyperparameters and a format version. JSON, so a concept can be inspected and diffed; f32
//! values round-trip exactly (serde_json prints the shortest exact representation).
//!
//! Saving writes a temporary file beside the target and renames it, so a crash never leaves a
//! half-written concept.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::ConceptError;

/// Version written by this build; files with a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;

/// Where the learnable offset is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingSite {
    /// On the text encoder's input token embeddings (32 × 1024): the authors' code.
    TextInput,
    /// On the projected text tokens (32 × 256): the paper figure's variant, for ablation.
    ProjectedText,
}

/// Optimiser settings of the search that produced φ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    pub steps: u32,
    pub lr_start: f64,
    pub lr_end: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub seed: u64,
    /// The authors' training transform: each image squashed to a random square (480–992 of
    /// 1008, step 32, scaled to the model's input) and padded at a random offset, drawn once
    /// per search from `seed`. Off by default (the plain squash, as at inference).
    #[serde(default)]
    pub resize_augment: bool,
}

impl Default for SearchSettings {
    /// The authors' values (m2c-method.md §2.3).
    fn default() -> Self {
        Self {
            steps: 60,
            lr_start: 5e-4,
            lr_end: 5e-6,
            weight_decay: 0.0,
            grad_clip: 1.0,
            seed: 123,
            resize_augment: false,
        }
    }
}

/// A learned concept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptFile {
    pub format_version: u32,
    /// Human name of the concept (e.g. the label class).
    pub name: String,
    /// Base prompt whose token embeddings φ is added to.
    pub base_text: String,
    pub site: EmbeddingSite,
    /// Shape of φ: `[tokens, width]`.
    pub shape: [usize; 2],
    /// φ, row-major.
    pub phi: Vec<f32>,
    /// Identity of the SAM3 checkpoint φ was learned with (see [`checkpoint_id`]).
    pub checkpoint: String,
    /// SHA-256 of each training mask (hex), in training order.
    pub training_masks: Vec<String>,
    pub settings: SearchSettings,
    /// Loss after the last step, if the search finished.
    pub final_loss: Option<f32>,
}

impl ConceptFile {
    /// Writes the file atomically (temporary file + rename).
    pub fn save(&self, path: &Path) -> Result<(), ConceptError> {
        let write_err = |source| ConceptError::WriteConcept {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec(self).map_err(|e| write_err(std::io::Error::other(e)))?;
        let tmp = temp_path(path);
        let mut f = std::fs::File::create(&tmp).map_err(write_err)?;
        f.write_all(&json).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    /// Reads and validates a concept file (version, shape).
    pub fn load(path: &Path) -> Result<Self, ConceptError> {
        let bytes = std::fs::read(path).map_err(|source| ConceptError::ReadConcept {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| ConceptError::InvalidConcept {
            path: path.to_path_buf(),
            reason,
        };
        let file: ConceptFile =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if file.format_version > FORMAT_VERSION {
            return Err(invalid(format!(
                "format version {} is newer than this build understands ({FORMAT_VERSION})",
                file.format_version
            )));
        }
        let expected = file.shape[0].checked_mul(file.shape[1]);
        if expected != Some(file.phi.len()) {
            return Err(invalid(format!(
                "shape {:?} does not match {} values",
                file.shape,
                file.phi.len()
            )));
        }
        if let Some(bad) = file.phi.iter().find(|v| !v.is_finite()) {
            return Err(invalid(format!("non-finite value {bad} in the embedding")));
        }
        Ok(file)
    }

    /// Loads a concept for use with the checkpoint `loaded` (its [`checkpoint_id`]); refuses a
    /// concept learned with another checkpoint.
    pub fn load_for_checkpoint(path: &Path, loaded: &str) -> Result<Self, ConceptError> {
        let file = Self::load(path)?;
        if file.checkpoint != loaded {
            return Err(ConceptError::CheckpointMismatch {
                path: path.to_path_buf(),
                learned: file.checkpoint,
                loaded: loaded.to_owned(),
            });
        }
        Ok(file)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// SHA-256 (hex) of bytes: a training mask's identity.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Identity of a checkpoint from its safetensors header and size: cheap (no 3 GB read) and
/// changes with any renamed, reshaped or re-typed tensor. `sha256:<hex>` of
/// `size || header`.
pub fn checkpoint_id(header: &[u8], file_bytes: u64) -> String {
    let mut h = Sha256::new();
    h.update(file_bytes.to_le_bytes());
    h.update(header);
    let digest = h.finalize();
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concept() -> ConceptFile {
        ConceptFile {
            format_version: FORMAT_VERSION,
            name: "polyp".into(),
            base_text: "A polyp in a colonoscopy image".into(),
            site: EmbeddingSite::TextInput,
            shape: [2, 3],
            phi: vec![0.1, -1e-7, 3.4028235e38, 0.0, 1.0 / 3.0, -2.5],
            checkpoint: checkpoint_id(b"{}", 10),
            training_masks: vec![sha256_hex(b"mask")],
            settings: SearchSettings::default(),
            final_loss: Some(1.25),
        }
    }

    #[test]
    fn round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("polyp.m2c");
        let c = concept();
        c.save(&path).unwrap();
        assert_eq!(ConceptFile::load(&path).unwrap(), c);
        assert!(!dir.path().join("polyp.m2c.tmp").exists());
    }

    #[test]
    fn refuses_another_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.m2c");
        concept().save(&path).unwrap();
        let other = checkpoint_id(b"{\"x\":1}", 10);
        let err = ConceptFile::load_for_checkpoint(&path, &other).unwrap_err();
        assert!(matches!(err, ConceptError::CheckpointMismatch { .. }));
        assert!(err.to_string().contains("learn the concept again"), "{err}");
        assert!(ConceptFile::load_for_checkpoint(&path, &concept().checkpoint).is_ok());
    }

    #[test]
    fn rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.m2c");
        let mut c = concept();
        c.phi.pop();
        c.save(&path).unwrap();
        assert!(matches!(
            ConceptFile::load(&path),
            Err(ConceptError::InvalidConcept { .. })
        ));
        let mut c = concept();
        c.format_version = FORMAT_VERSION + 1;
        c.save(&path).unwrap();
        assert!(
            ConceptFile::load(&path)
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(
            ConceptFile::load(&path),
            Err(ConceptError::InvalidConcept { .. })
        ));
    }
}
