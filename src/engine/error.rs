//! Errors of the engine layer: [`CheckpointError`] for the weights file (checked in milliseconds,
//! before anything loads) and [`EngineError`] for every failure of the engine, with the job, the
//! image and the path it concerns. Out of memory and a lost device get their own variants and
//! [`Remedy`]s, so the app can say what to do next instead of printing a backend's text.
//!
//! A GPU allocation failure or a lost device surfaces in burn's runtimes as a panic or an error
//! message, not as a type: [`recognise`] reads the message (the same recognition `m2c bench`
//! uses for its rows).

use std::path::PathBuf;
use std::sync::Arc;

pub use super::device::DeviceError;

/// Identifies a submitted job in the events it produces.
pub type JobId = u64;

/// The weights file is missing, unreadable or not SAM3's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
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
    /// SAM3's tensors, but not of the size its config describes.
    #[error(
        "{} does not match its config {config}: {reason} (use the config.json that came with \
         the weights, or remove it to use the full-size SAM3)",
        path.display()
    )]
    ConfigMismatch {
        path: PathBuf,
        config: String,
        reason: String,
    },
}

/// What a job was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Task {
    Load,
    Encode,
    Learn,
    Predict,
    Forget,
    SegmentBox,
    Configure,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Load => "loading SAM3",
            Self::Encode => "encoding images",
            Self::Learn => "learning the concept",
            Self::Predict => "predicting",
            Self::Forget => "dropping cached features",
            Self::SegmentBox => "segmenting the box",
            Self::Configure => "changing the engine's settings",
        })
    }
}

/// What went wrong in the engine, with enough context for the user to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The weights file is missing, truncated or not a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// Reference fixtures of `m2c parity`.
    #[error(transparent)]
    Parity(#[from] crate::parity::ParityError),
    /// An image of the study could not be read.
    #[error(transparent)]
    Study(#[from] crate::study::StudyError),
    /// Concept search, a concept file or its training masks.
    #[error(transparent)]
    Concept(#[from] crate::concept::ConceptError),
    /// A model job arrived before any model was loaded.
    #[error("no SAM3 model is loaded; choose the weights file in Settings (or pass --weights)")]
    NoModel,
    /// The tokenizer produced an id the model's text embedding does not have.
    #[error(
        "prompt {text:?} gives token id {id}, outside the model's text vocabulary of {vocab} \
         (tokenizer: {tokenizer})"
    )]
    TokenOutOfVocabulary {
        text: String,
        id: i64,
        vocab: usize,
        tokenizer: String,
    },
    #[error("cannot read image {path}")]
    ReadImage {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// A training mask could not be read (the caller's loader failed).
    #[error("cannot read the training mask of image {key:?}")]
    ReadMask {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The compute device could not allocate what the job needs.
    #[error("the compute device ran out of memory ({message})")]
    OutOfMemory { message: String },
    /// The GPU driver dropped the device (reset, hang, unplugged); nothing more runs on it.
    #[error("the compute device was lost ({message})")]
    DeviceLost { message: String },
    /// The CPU thread pool could not be started.
    #[error(transparent)]
    ComputeThreads(#[from] super::compute::ComputePoolError),
    /// A computation panicked for another reason.
    #[error("the compute engine failed: {message}")]
    Crashed { message: String },
    /// A failure while working on one image.
    #[error("image {key:?}")]
    Image {
        key: String,
        #[source]
        source: Box<EngineError>,
    },
    /// A failure of a job of the engine thread (what [`super::Event::Failed`] carries).
    #[error("{task} (job {job})")]
    Job {
        job: JobId,
        task: Task,
        #[source]
        source: Box<EngineError>,
    },
}

/// The kind of a failure, as far as the user's options go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    OutOfMemory,
    DeviceLost,
    Other,
}

/// What the user can do about a failure, most helpful first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Learn from fewer images per search (each searched image's features stay resident).
    FewerImages,
    /// Hold the weights in f16 (half their memory).
    HalfPrecisionWeights,
    /// Compute on the CPU (system memory instead of the GPU's).
    CpuBackend,
    /// Load the model again on a fresh device.
    ReloadDevice,
}

impl Remedy {
    /// A short label for a button.
    pub fn label(self) -> &'static str {
        match self {
            Self::FewerImages => "Learn from fewer images",
            Self::HalfPrecisionWeights => "Use f16 weights",
            Self::CpuBackend => "Use the CPU",
            Self::ReloadDevice => "Reload the device",
        }
    }

    /// One sentence on what it does.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::FewerImages => {
                "searches on half as many labelled images (the most recently labelled first)"
            }
            Self::HalfPrecisionWeights => "holds SAM3's weights in 16-bit floats: half the memory",
            Self::CpuBackend => "computes in system memory; slower, but rarely runs out",
            Self::ReloadDevice => "opens the device again and reloads SAM3",
        }
    }
}

/// Whether a backend's message describes running out of memory or losing the device.
pub fn recognise(message: &str) -> Failure {
    let lower = message.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if any(&[
        "out of memory",
        "outofmemory",
        "memory allocation",
        "allocation failed",
        "can't allocate",
    ]) {
        Failure::OutOfMemory
    } else if any(&[
        "device lost",
        "devicelost",
        "device is lost",
        "lost device",
        "device has been lost",
    ]) {
        Failure::DeviceLost
    } else {
        Failure::Other
    }
}

/// The text of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned())
}

impl EngineError {
    /// A caught panic: out of memory, device lost, or a crash.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        Self::from_message(panic_message(payload))
    }

    /// A backend's message, recognised.
    pub fn from_message(message: String) -> Self {
        match recognise(&message) {
            Failure::OutOfMemory => Self::OutOfMemory { message },
            Failure::DeviceLost => Self::DeviceLost { message },
            Failure::Other => Self::Crashed { message },
        }
    }

    /// This error as a failure on image `key`.
    #[must_use]
    pub fn on_image(self, key: &str) -> Self {
        Self::Image {
            key: key.to_owned(),
            source: Box::new(self),
        }
    }

    /// This error as the failure of `job`, doing `task`; an out-of-memory or device-lost failure
    /// reported only in words (a model error's text) becomes its own variant.
    #[must_use]
    pub fn in_job(self, job: JobId, task: Task) -> Self {
        let recognised = match self.failure() {
            Failure::Other => self,
            _ if matches!(
                self.innermost(),
                Self::OutOfMemory { .. } | Self::DeviceLost { .. }
            ) =>
            {
                self
            }
            _ => self.reclassified(),
        };
        Self::Job {
            job,
            task,
            source: Box::new(recognised),
        }
    }

    /// The same context around an [`EngineError::OutOfMemory`] or [`EngineError::DeviceLost`]
    /// made from the innermost error's message.
    fn reclassified(self) -> Self {
        match self {
            Self::Image { key, source } => Self::Image {
                key,
                source: Box::new(source.reclassified()),
            },
            Self::Job { job, task, source } => Self::Job {
                job,
                task,
                source: Box::new(source.reclassified()),
            },
            other => Self::from_message(chain(&other)),
        }
    }

    /// The error under the job and image context.
    pub fn innermost(&self) -> &Self {
        match self {
            Self::Image { source, .. } | Self::Job { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// The job that failed, when known.
    pub fn job(&self) -> Option<JobId> {
        match self {
            Self::Job { job, .. } => Some(*job),
            Self::Image { source, .. } => source.job(),
            _ => None,
        }
    }

    /// What the failed job was doing, when known.
    pub fn task(&self) -> Option<Task> {
        match self {
            Self::Job { task, .. } => Some(*task),
            Self::Image { source, .. } => source.task(),
            _ => None,
        }
    }

    /// The image being worked on, when the failure concerns one.
    pub fn image(&self) -> Option<&str> {
        match self {
            Self::Image { key, .. } => Some(key),
            Self::Job { source, .. } => source.image(),
            _ => None,
        }
    }

    /// Out of memory, device lost, or something else (read from the text where the backend
    /// gives no type).
    pub fn failure(&self) -> Failure {
        match self.innermost() {
            Self::OutOfMemory { .. } => Failure::OutOfMemory,
            Self::DeviceLost { .. } => Failure::DeviceLost,
            Self::Model(_) | Self::Concept(_) | Self::Crashed { .. } | Self::Device(_) => {
                recognise(&chain(self.innermost()))
            }
            _ => Failure::Other,
        }
    }

    /// What the user can do about it, most helpful first (empty: fix the input instead).
    pub fn remedies(&self) -> Vec<Remedy> {
        match self.failure() {
            Failure::OutOfMemory => {
                let mut out = Vec::new();
                if self.task() == Some(Task::Learn) {
                    out.push(Remedy::FewerImages);
                }
                out.extend([Remedy::HalfPrecisionWeights, Remedy::CpuBackend]);
                out
            }
            Failure::DeviceLost => vec![Remedy::ReloadDevice, Remedy::CpuBackend],
            Failure::Other => Vec::new(),
        }
    }

    /// The error and its causes, one clause each, for a message to the user.
    pub fn message(&self) -> String {
        chain(self)
    }
}

/// An error shared between an event and whoever keeps it (status line, panel).
pub type SharedError = Arc<EngineError>;

/// The error and its causes, one clause each.
fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_out_of_memory_and_device_lost_messages() {
        assert_eq!(
            recognise("Buffer allocation: Out of memory"),
            Failure::OutOfMemory
        );
        assert_eq!(
            recognise("An IO error happened\ncan't allocate buffer of size: 859963392"),
            Failure::OutOfMemory
        );
        assert_eq!(recognise("Parent device is lost"), Failure::DeviceLost);
        assert_eq!(recognise("shape mismatch"), Failure::Other);
    }

    #[test]
    fn context_is_kept_and_words_become_variants() {
        let model = crate::model::ModelError::InvalidInput {
            reason: "reading masks: Out of memory".to_owned(),
        };
        let err = EngineError::from(model)
            .on_image("img3.png")
            .in_job(7, Task::Learn);
        assert_eq!(err.job(), Some(7));
        assert_eq!(err.task(), Some(Task::Learn));
        assert_eq!(err.image(), Some("img3.png"));
        assert!(matches!(err.innermost(), EngineError::OutOfMemory { .. }));
        assert_eq!(
            err.remedies(),
            [
                Remedy::FewerImages,
                Remedy::HalfPrecisionWeights,
                Remedy::CpuBackend
            ]
        );
        let message = err.message();
        assert!(
            message.starts_with(
                "learning the concept (job 7): image \"img3.png\": the compute \
                                 device ran out of memory"
            ),
            "{message}"
        );

        let lost =
            EngineError::from_message("wgpu: Device lost".to_owned()).in_job(2, Task::Predict);
        assert_eq!(lost.remedies(), [Remedy::ReloadDevice, Remedy::CpuBackend]);
        let plain = EngineError::NoModel.in_job(1, Task::Predict);
        assert!(plain.remedies().is_empty());
        assert!(matches!(plain.innermost(), EngineError::NoModel));
    }
}
