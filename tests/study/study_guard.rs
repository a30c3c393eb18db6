//! Declared-length guard: a DICOM element, item or fragment whose length runs past the end of
//! the file is refused with `StudyError::DeclaredLengthExceedsFile` naming the file, before
//! dicom-parser reserves (and zero-fills) the declared length. Valid files are not affected.

use crate::dicom_gen;

use std::io::{Read, Write};
use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use m2c::study::{self, StudyError};

const TOP: &[u8] = b"m2c-guard-top-level!";
const NESTED: &[u8] = b"m2c-guard-in-a-sequence!";
const TOP_TAG: Tag = Tag(0x0029, 0x1010);
const NESTED_TAG: Tag = Tag(0x0031, 0x1010);
const HUGE: u32 = 0xFFFF_FFF0;
const DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";

/// A 4 × 5 CT image with a private OB value at top level and another inside an item of
/// Referenced Image Sequence, as written in `transfer_syntax`.
fn fixture(dir: &Path, transfer_syntax: &str) -> Vec<u8> {
    let mut obj = dicom_gen::image(4, 5, "CT", "1.2.40", "1.2.40.1");
    dicom_gen::set_pixels_16(&mut obj, &(0..20).collect::<Vec<_>>(), 12, false);
    obj.put(DataElement::new(TOP_TAG, VR::OB, PrimitiveValue::from(TOP)));
    let item = InMemDicomObject::from_element_iter([DataElement::new(
        NESTED_TAG,
        VR::OB,
        PrimitiveValue::from(NESTED),
    )]);
    obj.put(DataElement::new(
        tags::REFERENCED_IMAGE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    let path = dir.join("fixture.dcm");
    dicom_gen::write(obj, &path, transfer_syntax);
    let bytes = std::fs::read(&path);
    let _ = std::fs::remove_file(&path);
    bytes.unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn find(bytes: &[u8], what: &[u8]) -> usize {
    bytes
        .windows(what.len())
        .position(|w| w == what)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(what)))
}

/// Sets the 32-bit length field just before `value` to `len`; returns the offset of the
/// element header (tag, then a long-form VR in explicit VR, then the length).
fn patch_length(bytes: &mut [u8], value: &[u8], len: u32, big_endian: bool, explicit: bool) -> u64 {
    let at = find(bytes, value) - 4;
    let len = if big_endian {
        len.to_be_bytes()
    } else {
        len.to_le_bytes()
    };
    bytes[at..at + 4].copy_from_slice(&len);
    (at - if explicit { 8 } else { 4 }) as u64
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn assert_overrun(err: &StudyError, path: &Path, tag: Tag, offset: u64, file_len: u64) {
    let StudyError::DeclaredLengthExceedsFile {
        path: p,
        tag: t,
        offset: o,
        declared,
        available,
    } = err
    else {
        panic!(
            "{}: expected DeclaredLengthExceedsFile, got {err:?}",
            path.display()
        );
    };
    assert_eq!((p.as_path(), *t, *o), (path, tag, offset), "{err}");
    assert_eq!(*declared, u64::from(HUGE), "{err}");
    assert!(*available < file_len, "{err}");
    assert!(
        err.to_string().ends_with(&path.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("{tag}")), "{err}");
}

#[test]
fn huge_length_inside_and_outside_a_sequence_is_refused_in_every_uncompressed_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let rss_before = peak_rss_mib();
    for (ts, big_endian, explicit) in [
        (dicom_gen::EXPLICIT_LE, false, true),
        (dicom_gen::IMPLICIT_LE, false, false),
        (dicom_gen::EXPLICIT_BE, true, true),
    ] {
        let bytes = fixture(dir.path(), ts);
        // The unpatched file opens and decodes.
        let good = dir.path().join("good.dcm");
        std::fs::write(&good, &bytes).unwrap();
        let found = study::discover(&good);
        assert!(found.skipped.is_empty(), "{ts}: {:?}", found.skipped);
        let slice = found.series[0].load_slice(0).unwrap();
        assert_eq!((slice.width, slice.height), (5, 4));
        std::fs::remove_file(&good).unwrap();

        for (value, tag, name) in [(TOP, TOP_TAG, "top"), (NESTED, NESTED_TAG, "nested")] {
            let mut bad = bytes.clone();
            let offset = patch_length(&mut bad, value, HUGE, big_endian, explicit);
            let path = dir.path().join(format!("{name}-{ts}.dcm"));
            std::fs::write(&path, &bad).unwrap();
            let found = study::discover(&path);
            assert!(found.series.is_empty(), "{name} {ts}");
            let [err] = found.skipped.as_slice() else {
                panic!("{name} {ts}: {:?}", found.skipped);
            };
            assert_overrun(err, &path, tag, offset, bad.len() as u64);
            std::fs::remove_file(&path).unwrap();
        }
    }
    // Refused before dicom-parser reserves and zero-fills 4 GB.
    if let (Some(before), Some(after)) = (rss_before, peak_rss_mib()) {
        assert!(
            after < before + 512,
            "peak RSS grew from {before} to {after} MiB"
        );
    }
}

#[test]
fn huge_fragment_length_is_refused_when_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<u16> = (0..20).map(|v| v * 100).collect();
    let mut obj = dicom_gen::image(4, 5, "CT", "1.2.41", "1.2.41.1");
    dicom_gen::set_pixels_16(&mut obj, &[], 16, false);
    dicom_gen::set_encapsulated(&mut obj, vec![dicom_gen::rle_frame_16(&words)]);
    let path = dir.path().join("rle.dcm");
    dicom_gen::write(obj, &path, dicom_gen::RLE_LOSSLESS);
    let mut bytes = std::fs::read(&path).unwrap();
    // The fragment starts with the RLE header: 2 segments, the first at byte 64.
    let fragment = find(&bytes, &[2, 0, 0, 0, 64, 0, 0, 0]);
    bytes[fragment - 4..fragment].copy_from_slice(&HUGE.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    // The header pass stops before Pixel Data; decoding reads it and is refused.
    let found = study::discover(&path);
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let err = found.series[0].load_slice(0).unwrap_err();
    let item = Tag(0xFFFE, 0xE000);
    assert_overrun(&err, &path, item, (fragment - 8) as u64, bytes.len() as u64);
}

#[test]
fn huge_length_in_a_deflated_data_set_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture(dir.path(), DEFLATED_LE);
    let good = dir.path().join("good.dcm");
    std::fs::write(&good, &bytes).unwrap();
    let found = study::discover(&good);
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    found.series[0].load_slice(0).unwrap();

    // Meta group: preamble, DICM, (0002,0000) UL holding the group length.
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    let meta_end = 144 + group_length;
    let mut data_set = Vec::new();
    DeflateDecoder::new(&bytes[meta_end..])
        .read_to_end(&mut data_set)
        .unwrap();
    for (value, tag, name) in [(TOP, TOP_TAG, "top"), (NESTED, NESTED_TAG, "nested")] {
        let mut patched = data_set.clone();
        let offset = patch_length(&mut patched, value, HUGE, false, true);
        let mut encoder = DeflateEncoder::new(bytes[..meta_end].to_vec(), Compression::default());
        encoder.write_all(&patched).unwrap();
        let bad = encoder.finish().unwrap();
        let path = dir.path().join(format!("{name}-deflated.dcm"));
        std::fs::write(&path, &bad).unwrap();
        let found = study::discover(&path);
        let [err] = found.skipped.as_slice() else {
            panic!("{name}: {:?}", found.skipped);
        };
        // Offsets in a deflated data set count in the inflated bytes.
        assert_overrun(err, &path, tag, offset, u64::MAX);
    }
    // A stream that stops inflating (cut short) right after a header with a huge length.
    let mut patched = data_set.clone();
    let offset = patch_length(&mut patched, TOP, HUGE, false, true);
    let mut encoder = DeflateEncoder::new(bytes[..meta_end].to_vec(), Compression::none());
    encoder.write_all(&patched).unwrap();
    let mut cut = encoder.finish().unwrap();
    cut.truncate(meta_end + 5 + offset as usize + 12 + 4);
    let path = dir.path().join("cut-deflated.dcm");
    std::fs::write(&path, &cut).unwrap();
    let found = study::discover(&path);
    let [err] = found.skipped.as_slice() else {
        panic!("cut: {:?}", found.skipped);
    };
    assert_overrun(err, &path, TOP_TAG, offset, u64::MAX);
}

/// dicom-parser reads a binary value in whole numbers (an FL of 6 bytes reads 4), so the next
/// header starts inside the declared value. The guard follows the parser there: found by the
/// dicom_reader fuzz target.
#[test]
fn ragged_binary_value_is_followed_the_way_the_parser_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture(dir.path(), dicom_gen::EXPLICIT_LE);
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    let data_set = 144 + group_length;
    // (0009,1001) FL, 6 bytes: one float, then the first half of the header the parser reads
    // next, (0009,1002) OB with a huge length.
    let mut blob = vec![0x09, 0x00, 0x01, 0x10, b'F', b'L', 6, 0];
    blob.extend_from_slice(&1.0f32.to_le_bytes());
    blob.extend_from_slice(&[0x09, 0x00, 0x02, 0x10, b'O', b'B', 0, 0]);
    blob.extend_from_slice(&HUGE.to_le_bytes());
    let mut bad = bytes[..data_set].to_vec();
    bad.extend_from_slice(&blob);
    bad.extend_from_slice(&bytes[data_set..]);
    let path = dir.path().join("ragged.dcm");
    std::fs::write(&path, &bad).unwrap();
    let found = study::discover(&path);
    let [err] = found.skipped.as_slice() else {
        panic!("{:?}", found.skipped);
    };
    let offset = (data_set + 12) as u64;
    assert_overrun(err, &path, Tag(0x0009, 0x1002), offset, bad.len() as u64);
}
