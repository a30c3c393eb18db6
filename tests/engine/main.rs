//! The engine tests, one binary (`cargo test --test engine`): every module below was
//! its own test binary once; each linked burn, wgpu and egui, which on 2 cores cost minutes.

#[path = "../common/mod.rs"]
mod common;

mod engine_worker;
mod layering;
