//! The annotation tests, one binary (`cargo test --test annotation`): every module below was
//! its own test binary once; each linked burn, wgpu and egui, which on 2 cores cost minutes.

mod annotation_project;
mod autosave_crash;
mod project_faults;
