//! Errors of the engine layer.

use std::path::PathBuf;

pub use super::device::DeviceError;

/// What went wrong in the engine, with enough context for the user to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The weights file could not be opened or read.
    #[error("could not read the SAM3 checkpoint {}", path.display())]
    ReadCheckpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a safetensors checkpoint (bad header, truncated, wrong format).
    #[error("{} is not a valid safetensors checkpoint: {reason}", path.display())]
    InvalidCheckpoint { path: PathBuf, reason: String },
    /// A valid safetensors file, but not SAM3's.
    #[error("{} is a safetensors file but not a SAM3 checkpoint: {reason}", path.display())]
    NotSam3 { path: PathBuf, reason: String },
}
