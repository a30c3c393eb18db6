//! The model tests, one binary (`cargo test --test model`): every module below was
//! its own test binary once; each linked burn, wgpu and egui, which on 2 cores cost minutes.

#[path = "../common/mod.rs"]
mod common;

mod concept_search;
mod model_f16;
mod model_group_norm;
mod model_parity;
mod shaders;
mod tokenizer;
mod tracker_head;
