//! Errors of concept search, scoring and concept files.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConceptError {
    /// The assignment of queries to instances could not be computed.
    #[error("query matching failed: {0}")]
    Matching(String),
    #[error("could not read concept file {}", path.display())]
    ReadConcept {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write concept file {}", path.display())]
    WriteConcept {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid concept file: {reason}", path.display())]
    InvalidConcept { path: PathBuf, reason: String },
    /// The concept was learned with another SAM3 checkpoint: its embedding means nothing here.
    #[error(
        "concept {} was learned with SAM3 checkpoint {learned} but the loaded checkpoint is \
         {loaded}; learn the concept again with this checkpoint",
        path.display()
    )]
    CheckpointMismatch {
        path: PathBuf,
        learned: String,
        loaded: String,
    },
    /// The frozen SAM3 model refused its input.
    #[error("SAM3 model: {0}")]
    Model(#[from] crate::model::ModelError),
    /// A concept embedding has the wrong shape or holds non-finite values.
    #[error("invalid concept embedding: {reason}")]
    InvalidEmbedding { reason: String },
    /// Training masks that cannot serve as targets (size mismatch, nothing labelled).
    #[error("invalid training masks: {reason}")]
    InvalidTargets { reason: String },
    /// Tensor values could not be read back from the device.
    #[error("reading {what} from the device: {reason}")]
    ReadBack { what: &'static str, reason: String },
    /// The loss (or its gradient) became NaN or infinite.
    #[error("concept search diverged at step {step}: loss {loss}")]
    NonFiniteLoss { step: usize, loss: f32 },
    /// The search settings cannot be used.
    #[error("invalid search settings: {reason}")]
    InvalidSettings { reason: String },
}
