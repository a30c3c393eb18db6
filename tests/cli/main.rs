//! The cli tests, one binary (`cargo test --test cli`): every module below was
//! its own test binary once; each linked burn, wgpu and egui, which on 2 cores cost minutes.

#[path = "../common/mod.rs"]
mod common;
#[path = "../dicom_gen/mod.rs"]
mod dicom_gen;

mod cli_bench;
mod cli_concept;
mod cli_eval;
mod cli_export_irregular;
mod cli_parity;
mod cli_segment;
mod cli_weights;
mod doctor;
