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
}
