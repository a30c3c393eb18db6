//! Reading studies: every real DICOM file under `../shared/data/dicom` decodes (or fails with
//! its named error), the real CT series is grouped, ordered and its tilt reported, Kvasir JPEGs
//! load, and generated DICOM files cover the same paths on a fresh clone.

use crate::common;
use crate::dicom_gen;

use std::path::Path;

use m2c::study::{
    self, GeometryIssue, Pixels, SeriesKind, StudyError, WindowLevel, default_window,
    rgb8_from_slice,
};

/// Loads every frame of a one-file series; returns (frames, min, max) of gray values.
fn decode_all(path: &Path) -> Result<(usize, f32, f32, bool), StudyError> {
    let found = study::discover(path);
    if let Some(err) = found.skipped.into_iter().next() {
        return Err(err);
    }
    let Some(series) = found.series.first() else {
        panic!("no series found in {}", path.display());
    };
    let (mut lo, mut hi, mut colour) = (f32::INFINITY, f32::NEG_INFINITY, false);
    for k in 0..series.len() {
        let slice = series.load_slice(k)?;
        match &slice.pixels {
            Pixels::Gray(v) => {
                for &x in v {
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
            Pixels::Rgb8(_) => colour = true,
        }
        // The display/model image always has 3 bytes per pixel.
        let rgb = rgb8_from_slice(&slice, default_window(&slice));
        assert_eq!(rgb.data.len(), 3 * (slice.width * slice.height) as usize);
    }
    Ok((series.len(), lo, hi, colour))
}

#[test]
fn every_shared_dicom_file_decodes_or_fails_with_its_named_error() {
    let Some(dir) = common::shared_path("data/dicom") else {
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest");
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, format) = (cols[0], cols[1]);
        if format != "dicom" {
            continue;
        }
        let path = dir.join(file);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = decode_all(&path);
        match name.as_str() {
            // 12-bit lossy JPEG: jpeg-decoder cannot decode it (would need GDCM).
            "JPEG-lossy.dcm" | "JPGExtended.dcm" => {
                let err = result.expect_err("12-bit lossy JPEG should fail");
                assert!(
                    matches!(&err, StudyError::UnsupportedPixelFormat { path: p, .. } if p == &path),
                    "{name}: {err}"
                );
            }
            _ => {
                let (frames, lo, hi, colour) =
                    result.unwrap_or_else(|e| panic!("{name}: {e} ({:?})", e));
                let want_frames: usize = cols[6].parse().unwrap();
                assert_eq!(frames, want_frames, "{name}: frames");
                assert_eq!(
                    colour,
                    cols[8] != "MONOCHROME1" && cols[8] != "MONOCHROME2",
                    "{name}"
                );
                if !colour {
                    assert!(lo.is_finite() && hi >= lo, "{name}: {lo}..{hi}");
                }
                check_known_range(&name, lo, hi);
            }
        }
        checked += 1;
    }
    assert!(checked >= 59, "only {checked} DICOM files listed");
}

/// Value ranges cross-checked with pydicom (+ pylibjpeg) in rust-stack.md §3.
fn check_known_range(name: &str, lo: f32, hi: f32) {
    let expected = match name {
        "CT_small.dcm" => (-896.0, 1167.0),
        "MR_small.dcm"
        | "MR_small_RLE.dcm"
        | "MR_small_implicit.dcm"
        | "MR_small_bigendian.dcm"
        | "MR_small_jp2klossless.dcm"
        | "MR_small_jpeg_ls_lossless.dcm" => (127.0, 2145.0),
        "emri_small.dcm"
        | "emri_small_RLE.dcm"
        | "emri_small_jpeg_2k_lossless.dcm"
        | "emri_small_jpeg_ls_lossless.dcm" => (0.0, 467.0),
        "693_J2KI.dcm" => (-3995.0, 1812.0),
        "liver.dcm" | "liver_1frame.dcm" => (0.0, 1.0),
        _ => return,
    };
    assert_eq!((lo, hi), expected, "{name}: value range");
}

#[test]
fn ct_head_series_is_one_series_ordered_along_the_normal_with_tilt_reported() {
    let Some(dir) = common::shared_path("data/dicom/ct_head_series_ge") else {
        return;
    };
    let found = study::discover(&dir);
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let [series] = found.series.as_slice() else {
        panic!("expected one series, got {}", found.series.len());
    };
    assert_eq!((series.kind, series.len()), (SeriesKind::Dicom, 28));
    assert_eq!((series.width, series.height), (512, 512));
    let tilt = series.issues.iter().find_map(|i| match i {
        GeometryIssue::GantryTilt { degrees } => Some(*degrees),
        _ => None,
    });
    let tilt = tilt.expect("gantry tilt reported");
    assert!((tilt - 18.5).abs() < 0.5, "tilt {tilt}");
    assert!(
        series
            .issues
            .iter()
            .any(|i| matches!(i, GeometryIssue::UnevenSpacing { .. })),
        "{:?}",
        series.issues
    );
    assert!(matches!(
        series.export_geometry(false),
        Err(StudyError::IrregularGeometry { .. })
    ));
    assert!(series.export_geometry(true).is_ok());
    // HU: air near −1000, bone well above 1000; CT defaults to the soft-tissue window.
    let slice = series.load_slice(14).unwrap();
    assert_eq!(default_window(&slice), WindowLevel::new(40.0, 400.0));
    let Pixels::Gray(hu) = &slice.pixels else {
        panic!("CT should be gray")
    };
    let lo = hu.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = hu.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(lo <= -900.0 && hi >= 1000.0, "HU range {lo}..{hi}");
}

#[test]
fn kvasir_images_are_listed_and_decoded_as_rgb() {
    let Some(dir) = common::shared_path("data/kvasir") else {
        return;
    };
    let found = study::discover(&dir.join("images"));
    assert_eq!(found.series.len(), 200);
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    let header: Vec<&str> = manifest.lines().next().unwrap().split('\t').collect();
    let wcol = header.iter().position(|c| *c == "width").unwrap();
    let hcol = header.iter().position(|c| *c == "height").unwrap();
    let first: Vec<&str> = manifest.lines().nth(1).unwrap().split('\t').collect();
    let path = dir.join(first[0]);
    let series = found
        .series
        .iter()
        .find(|s| s.first_path() == Some(path.as_path()))
        .expect("manifest image discovered");
    let slice = series.load_slice(0).unwrap();
    assert_eq!(slice.width.to_string(), first[wcol]);
    assert_eq!(slice.height.to_string(), first[hcol]);
    assert!(matches!(slice.pixels, Pixels::Rgb8(_)));
}

#[test]
fn shared_folder_skips_non_images_with_reasons() {
    let Some(dir) = common::shared_path("data/dicom") else {
        return;
    };
    let found = study::discover(&dir);
    let nifti_skipped = found
        .skipped
        .iter()
        .filter(|e| matches!(e, StudyError::NotAnImage { reason, .. } if reason.contains("NIfTI")))
        .count();
    assert_eq!(nifti_skipped, 6);
    assert!(
        found
            .skipped
            .iter()
            .any(|e| e.path().ends_with("manifest.tsv"))
    );
}

#[test]
fn generated_series_is_grouped_and_sorted_by_position_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let z = [-5.0, -2.5, 0.0, 2.5];
    let paths = dicom_gen::ct_series(
        dir.path(),
        "1.2.826.0.1.3680043.2.1143.1",
        &dicom_gen::axial_positions(&z),
        dicom_gen::AXIAL,
    );
    let found = study::discover(dir.path());
    let [series] = found.series.as_slice() else {
        panic!("{:?}", found.series)
    };
    let order: Vec<_> = series.frames.iter().map(|f| f.path.clone()).collect();
    assert_eq!(order, paths, "slices must follow z, not file names");
    assert!(series.issues.is_empty(), "{:?}", series.issues);
    let geom = series.geometry.as_ref().unwrap();
    assert_eq!(geom.dims, [5, 4, 4]);
    assert_eq!(geom.spacing_mm, [0.8, 0.6, 2.5]);
    assert_eq!(geom.patient_from_index([1.0, 1.0, 3.0]), [-9.2, 20.6, 2.5]);
    // Signed 16-bit stored values plus the −1024 intercept.
    let volume = series.load_volume().unwrap();
    assert_eq!(
        volume.values[1 + 5 * 2 + 20 * 3] as i32,
        dicom_gen::ct_value(1, 2, 3) - 1024
    );
    assert_eq!(volume.values[0] as i32, -500 - 1024);
}

#[test]
fn generated_tilted_and_uneven_series_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let dy = 10f64.to_radians().tan() * 3.0;
    let tilted: Vec<[f64; 3]> = (0..4)
        .map(|k| [0.0, dy * k as f64, 3.0 * k as f64])
        .collect();
    dicom_gen::ct_series(dir.path(), "1.2.3.4.1", &tilted, dicom_gen::AXIAL);
    let sub = dir.path().join("uneven");
    std::fs::create_dir(&sub).unwrap();
    dicom_gen::ct_series(
        &sub,
        "1.2.3.4.2",
        &dicom_gen::axial_positions(&[0.0, 1.0, 2.0, 6.0]),
        dicom_gen::AXIAL,
    );
    let found = study::discover(dir.path());
    assert_eq!(found.series.len(), 2);
    let issues: Vec<_> = found.series.iter().flat_map(|s| s.issues.clone()).collect();
    assert!(
        issues.iter().any(
            |i| matches!(i, GeometryIssue::GantryTilt { degrees } if (degrees - 10.0).abs() < 1e-6)
        ),
        "{issues:?}"
    );
    assert!(issues.iter().any(|i| matches!(i, GeometryIssue::UnevenSpacing { min_mm, max_mm } if *min_mm == 1.0 && *max_mm == 4.0)), "{issues:?}");
}
