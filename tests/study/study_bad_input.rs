//! Bad input gives typed errors that name the file, never a panic: empty files, wrong magic,
//! truncated DICOM (a value cut short is a declared length past the end of the file) and PNG,
//! missing pixel data, sizes that change within a series, zero-sized images.

use crate::dicom_gen;

use std::path::Path;

use dicom_dictionary_std::tags;
use m2c::study::{self, StudyError};

fn only_skip(dir: &Path) -> StudyError {
    let mut found = study::discover(dir);
    assert!(found.series.is_empty(), "{:?}", found.series);
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    found.skipped.remove(0)
}

fn small_ct(path: &Path, series: &str, sop: &str, rows: u16) {
    let mut obj = dicom_gen::image(rows, 3, "CT", series, sop);
    dicom_gen::set_pixels_16(&mut obj, &vec![7; 3 * rows as usize], 12, false);
    dicom_gen::write(obj, path, dicom_gen::EXPLICIT_LE);
}

#[test]
fn empty_file_is_an_empty_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.dcm");
    std::fs::write(&path, b"").unwrap();
    let err = only_skip(dir.path());
    assert!(
        matches!(&err, StudyError::EmptyFile { path: p } if p == &path),
        "{err}"
    );
    assert!(err.to_string().ends_with("empty.dcm"));
}

#[test]
fn wrong_magic_is_not_an_image_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.dcm"), vec![b'x'; 300]).unwrap();
    std::fs::write(dir.path().join("fake.png"), b"hello, not a png").unwrap();
    std::fs::write(dir.path().join("short.dcm"), b"DICM").unwrap();
    let found = study::discover(dir.path());
    assert!(found.series.is_empty());
    let reasons: Vec<String> = found
        .skipped
        .iter()
        .map(|e| match e {
            StudyError::NotAnImage { reason, .. } => reason.clone(),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "the .png extension does not match the file's content",
            "no DICM marker at byte 128",
            "too short for a DICOM file (4 bytes)",
        ]
    );
}

#[test]
fn truncated_dicom_fails_with_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.dcm");
    small_ct(&full, "1.2.3", "1.2.3.1", 200);
    let bytes = std::fs::read(&full).unwrap();
    std::fs::remove_file(&full).unwrap();
    // Cut inside the meta group, inside the data set, and inside the pixel data.
    for cut in [140, 300, bytes.len() - 500] {
        let path = dir.path().join(format!("cut{cut}.dcm"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let found = study::discover(&path);
        let err = match (found.skipped.into_iter().next(), found.series.first()) {
            (Some(err), _) => err,
            (None, Some(series)) => series.load_slice(0).expect_err("truncated pixel data"),
            (None, None) => panic!("nothing reported for cut {cut}"),
        };
        assert_eq!(err.path(), path, "cut {cut}: {err}");
        assert!(
            matches!(
                err,
                StudyError::ParseDicom { .. }
                    | StudyError::PixelDataLength { .. }
                    | StudyError::DeclaredLengthExceedsFile { .. }
            ),
            "cut {cut}: {err:?}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn missing_pixel_data_is_reported_when_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nopix.dcm");
    let mut obj = dicom_gen::image(2, 2, "CT", "1.2.3", "1.2.3.1");
    dicom_gen::put_u16(&mut obj, tags::BITS_ALLOCATED, 16);
    dicom_gen::write(obj, &path, dicom_gen::EXPLICIT_LE);
    let found = study::discover(dir.path());
    let err = found.series[0].load_slice(0).unwrap_err();
    assert!(
        matches!(&err, StudyError::MissingPixelData { path: p } if p == &path),
        "{err}"
    );
}

#[test]
fn rows_that_change_within_a_series_are_a_size_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    small_ct(&dir.path().join("a.dcm"), "1.2.3", "1.2.3.1", 4);
    small_ct(&dir.path().join("b.dcm"), "1.2.3", "1.2.3.2", 4);
    let odd = dir.path().join("c.dcm");
    small_ct(&odd, "1.2.3", "1.2.3.3", 5);
    let found = study::discover(dir.path());
    assert_eq!(found.series.len(), 1);
    assert_eq!(found.series[0].len(), 2);
    let [err] = found.skipped.as_slice() else {
        panic!("{:?}", found.skipped)
    };
    assert!(
        matches!(err, StudyError::SizeMismatch { path, expected_height: 4, found_height: 5, .. } if path == &odd),
        "{err}"
    );
}

#[test]
fn zero_sized_dicom_and_png_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.dcm");
    small_ct(&path, "1.2.3", "1.2.3.1", 0);
    let err = only_skip(dir.path());
    assert!(
        matches!(
            err,
            StudyError::ZeroSizedImage {
                width: 3,
                height: 0,
                ..
            }
        ),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    // A PNG whose IHDR says 0 × 0 (hand-made: encoders refuse to write one).
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let ihdr = [b"IHDR".as_slice(), &[0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0]].concat();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    std::fs::write(dir.path().join("zero.png"), png).unwrap();
    let err = only_skip(dir.path());
    assert!(
        matches!(
            err,
            StudyError::ZeroSizedImage { .. } | StudyError::DecodeImage { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_png_fails_to_decode_but_a_1x1_png_loads() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.png");
    image::GrayImage::from_raw(1, 1, vec![42])
        .unwrap()
        .save(&one)
        .unwrap();
    let big = dir.path().join("big.png");
    let noisy: Vec<u8> = (0..64 * 64)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    image::GrayImage::from_raw(64, 64, noisy)
        .unwrap()
        .save(&big)
        .unwrap();
    let bytes = std::fs::read(&big).unwrap();
    std::fs::write(&big, &bytes[..bytes.len() / 2]).unwrap();
    let found = study::discover(dir.path());
    assert_eq!(found.series.len(), 2, "{:?}", found.skipped);
    let err = found.series[0].load_slice(0).unwrap_err();
    assert!(
        matches!(&err, StudyError::DecodeImage { path, .. } if path == &big),
        "{err}"
    );
    let slice = found.series[1].load_slice(0).unwrap();
    assert_eq!((slice.width, slice.height), (1, 1));
    assert_eq!(slice.pixels, study::Pixels::Gray(vec![42.0]));
}

#[test]
fn missing_paths_are_read_errors_not_panics() {
    let found = study::discover(Path::new("definitely/not/here"));
    assert!(matches!(
        found.skipped.as_slice(),
        [StudyError::ReadFile { .. }]
    ));
}
