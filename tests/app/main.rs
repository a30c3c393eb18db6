//! The app tests, one binary (`cargo test --test app`): every module below was
//! its own test binary once; each linked burn, wgpu and egui, which on 2 cores cost minutes.

#[path = "../common/mod.rs"]
mod common;
#[path = "../dicom_gen/mod.rs"]
mod dicom_gen;
#[path = "../labels/mod.rs"]
mod labels;

mod app_annotate;
mod app_dicom;
mod app_first_run;
mod app_learn;
mod app_recent;
mod app_ui;
mod app_window;
mod heatmap_ui;
mod overlay_ui;
mod settings_ui;
mod soak;
mod weights_ui;
