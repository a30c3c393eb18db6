//! An export refused for irregular geometry says how to export anyway: `m2c export` and
//! `m2c export-labels --format nifti` on a generated CT series with uneven slice spacing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::dicom_gen;

use std::process::Command;

fn m2c(data: &std::path::Path, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .args(args)
        .env("XDG_DATA_HOME", data)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn irregular_series_are_refused_with_the_flag_that_exports_them_anyway() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("uneven");
    std::fs::create_dir(&study).unwrap();
    dicom_gen::ct_series(
        &study,
        "1.2.3.4.2",
        &dicom_gen::axial_positions(&[0.0, 1.0, 2.0, 6.0]),
        dicom_gen::AXIAL,
    );
    let data = dir.path().join("data");
    let volume = dir.path().join("ct.nii.gz");
    let (code, text) = m2c(
        &data,
        &[
            "export".as_ref(),
            study.as_os_str(),
            "--out".as_ref(),
            volume.as_os_str(),
        ],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("irregular"), "{text}");
    assert!(text.contains("pass --allow-irregular"), "{text}");
    assert!(!volume.exists());
    let (code, text) = m2c(
        &data,
        &[
            "export".as_ref(),
            study.as_os_str(),
            "--out".as_ref(),
            volume.as_os_str(),
            "--allow-irregular".as_ref(),
        ],
    );
    assert_eq!(code, Some(0), "{text}");

    let out = dir.path().join("labels");
    let (code, text) = m2c(
        &data,
        &[
            "export-labels".as_ref(),
            study.as_os_str(),
            "--format".as_ref(),
            "nifti".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("hint: pass --allow-irregular"), "{text}");
}
