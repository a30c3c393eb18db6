//! The study tests, one binary (`cargo test --test study`): every module below was
//! its own test binary once; each linked burn, wgpu and egui, which on 2 cores cost minutes.

#[path = "../common/mod.rs"]
mod common;
#[path = "../dicom_gen/mod.rs"]
mod dicom_gen;
#[path = "../labels/mod.rs"]
mod labels;

mod export_roundtrip;
mod labels_io;
mod study_bad_input;
mod study_generated;
mod study_guard;
mod study_io;
