//! M2C Annotator: few-shot medical image annotation with a frozen SAM3 model prompted by a
//! learned concept embedding ("Mask to Concept"). See README.md and the module docs.
//!
//! Dependency direction (enforced by `tests/engine/layering.rs`): `app → engine → concept → model`,
//! `app → annotation → study`, `engine → study`, `cli → engine, concept, annotation, study`
//! (the CLI reads and writes concept files and computes metrics directly).

pub mod annotation;
pub mod app;
pub mod cli;
pub mod concept;
pub mod engine;
pub mod model;
pub mod parity;
pub mod study;
