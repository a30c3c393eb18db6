//! `ModelError`: everything that can go wrong while building or loading the SAM3 model.
//!
//! Forward passes do not return errors: shapes are validated when the config and the checkpoint
//! are loaded, so a shape failure inside a forward pass is a bug and asserts.

use std::path::PathBuf;

use burn::store::SafetensorsStoreError;

/// A tensor whose shape in the checkpoint differs from the one the config implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorMismatch {
    /// Checkpoint key after prefix stripping and remapping (module path).
    pub key: String,
    /// Shape the module expects.
    pub expected: Vec<usize>,
    /// Shape found in the file.
    pub actual: Vec<usize>,
}

/// Errors from config parsing, checkpoint loading and input validation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The config file could not be read.
    #[error("cannot read model config {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid JSON or lacks a required section.
    #[error("cannot parse model config {path}")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The config parsed but describes a model this implementation cannot build.
    #[error("unsupported model config: {reason}")]
    InvalidConfig { reason: String },
    /// The checkpoint is not a readable safetensors file (missing, truncated, wrong format).
    #[error("cannot read checkpoint {path}")]
    ReadCheckpoint {
        path: PathBuf,
        #[source]
        source: SafetensorsStoreError,
    },
    /// The checkpoint does not match the model: tensors missing, unexpected or mis-shaped.
    #[error(
        "checkpoint does not match the model ({} missing, {} unexpected, {} mis-shaped, {} unreadable): \
         missing {}; unexpected {}; mis-shaped {}; unreadable {} — {path}",
        missing.len(), unexpected.len(), mismatched.len(), failed.len(),
        preview(missing), preview(unexpected), preview_mismatch(mismatched), preview(failed)
    )]
    IncompatibleCheckpoint {
        path: PathBuf,
        /// Module tensors with no counterpart in the file.
        missing: Vec<String>,
        /// File tensors (of the detector) that no module tensor uses.
        unexpected: Vec<String>,
        /// Tensors present in both with different shapes.
        mismatched: Vec<TensorMismatch>,
        /// Tensors that could not be decoded or converted (message per tensor).
        failed: Vec<String>,
    },
    /// The checkpoint holds no weights of the interactive (tracker) head, e.g. a bare
    /// `Sam3Model` file: box prompts need the hub checkpoint or a `Sam3TrackerModel` file.
    #[error(
        "checkpoint {path} has no tracker weights (no `tracker_model.*` / `prompt_encoder.*` \
         tensors): box prompts need the full facebook/sam3 checkpoint or a Sam3TrackerModel file"
    )]
    NoTrackerWeights { path: PathBuf },
    /// A caller-supplied input has the wrong shape or content.
    #[error("invalid model input: {reason}")]
    InvalidInput { reason: String },
    /// The tokenizer files could not be read or parsed.
    #[error("cannot load tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
}

/// The first few names of a list, for error messages.
fn preview(items: &[String]) -> String {
    const SHOWN: usize = 8;
    if items.is_empty() {
        return "none".to_owned();
    }
    let head: Vec<&str> = items.iter().take(SHOWN).map(String::as_str).collect();
    if items.len() > SHOWN {
        format!("[{}, … +{}]", head.join(", "), items.len() - SHOWN)
    } else {
        format!("[{}]", head.join(", "))
    }
}

fn preview_mismatch(items: &[TensorMismatch]) -> String {
    let described: Vec<String> = items
        .iter()
        .map(|m| format!("{} {:?} (expected {:?})", m.key, m.actual, m.expected))
        .collect();
    preview(&described)
}
