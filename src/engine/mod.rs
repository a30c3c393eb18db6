//! The engine: owns the compute device and (later) the SAM3 model, runs jobs off the UI
//! thread, and turns tensors into plain data (masks, scores, boxes) before anything reaches
//! the app. May use `concept`, `model` and `study`; never egui.
//!
//! Only [`device`] names a concrete burn backend.

pub mod concept;
pub mod device;
pub mod environment;
pub mod error;
pub mod inference;
pub mod paths;
pub mod settings;
pub mod tools;
pub mod weights;
pub mod worker;

pub use error::EngineError;
