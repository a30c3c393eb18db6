//! The engine: owns the compute device and the SAM3 model on its own thread ([`Engine`]), runs
//! jobs off the caller's thread, and turns tensors into plain data (masks, scores, boxes) before
//! anything reaches the app. May use `concept`, `model`, `parity` and `study`; never egui.
//!
//! The app uses only what this file re-exports: the [`Engine`] handle, its [`Request`]s and
//! [`Event`]s, [`ImageInput`]s, the results they carry, one [`EngineError`] with its
//! [`Remedy`]s, and the device and model settings. The submodules stay public for the command
//! line's tools ([`tools`]) and the tests.
//!
//! Only [`device`] names a concrete burn backend.

pub mod compute;
pub mod concept;
pub mod device;
pub mod environment;
pub mod error;
pub mod inference;
pub mod install;
pub mod paths;
pub mod settings;
pub mod tools;
pub mod weights;
pub mod worker;

pub use compute::{ComputePool, app_default_threads, available_cores};
pub use concept::{
    BoxSegmentation, ConceptFile, ConceptSpec, EmbeddingSite, OwnedRgb, PredictOptions, Prediction,
    SearchSettings, concept_id,
};
pub use device::{DevicePlan, DevicePreference, plan_for};
pub use environment::{EnvironmentReport, probe};
pub use error::{CheckpointError, EngineError, Failure, JobId, Remedy, SharedError, Task};
pub use install::{
    InstallError, InstallMode, InstallTarget, Installed, Placement, SAM3_DOWNLOAD_PAGE,
    SourceCheck, Tracker, check_source, human_bytes, install,
};
pub use paths::{m2c_config_dir, m2c_data_dir};
pub use settings::{ModelSettings, Precision, WeightsCheck, check_weights};
pub use worker::{Engine, Event, ImageInput, ImageSource, Request, Stage, TrainingSample, Waker};
