//! DICOM files generated with dicom-object, so the reader's paths (series grouping and order,
//! tilt, uneven spacing, MONOCHROME1, signed 16-bit, RGB, palette, multi-frame, 1-bit, the
//! uncompressed transfer syntaxes, bad input) are covered on a fresh clone without
//! `../shared`. Values are synthetic; no identifiers are written.
#![allow(dead_code)]
// Test-only generator: a failure to build a fixture should abort the test loudly.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
pub const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

pub fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

pub fn put_u16(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

pub fn ds(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
    parts.join("\\")
}

/// A grayscale image object without pixel data: sizes, UIDs and modality only.
pub fn image(
    rows: u16,
    cols: u16,
    modality: &str,
    series_uid: &str,
    sop_uid: &str,
) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    put_str(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::CT_IMAGE_STORAGE,
    );
    put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
    put_str(&mut obj, tags::MODALITY, VR::CS, modality);
    put_str(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
    put_u16(&mut obj, tags::SAMPLES_PER_PIXEL, 1);
    put_str(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    put_u16(&mut obj, tags::ROWS, rows);
    put_u16(&mut obj, tags::COLUMNS, cols);
    obj
}

/// 16-bit pixel data (OW); `signed` sets PixelRepresentation 1.
pub fn set_pixels_16(obj: &mut InMemDicomObject, values: &[i32], bits_stored: u16, signed: bool) {
    put_u16(obj, tags::BITS_ALLOCATED, 16);
    put_u16(obj, tags::BITS_STORED, bits_stored);
    put_u16(obj, tags::HIGH_BIT, bits_stored - 1);
    put_u16(obj, tags::PIXEL_REPRESENTATION, u16::from(signed));
    let words: Vec<u16> = values.iter().map(|&v| v as u16).collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(words.into()),
    ));
}

/// 8-bit pixel data (OB), `samples` per pixel.
pub fn set_pixels_8(obj: &mut InMemDicomObject, values: Vec<u8>, samples: u16, photometric: &str) {
    put_u16(obj, tags::SAMPLES_PER_PIXEL, samples);
    put_str(obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric);
    if samples == 3 {
        put_u16(obj, tags::PLANAR_CONFIGURATION, 0);
    }
    put_u16(obj, tags::BITS_ALLOCATED, 8);
    put_u16(obj, tags::BITS_STORED, 8);
    put_u16(obj, tags::HIGH_BIT, 7);
    put_u16(obj, tags::PIXEL_REPRESENTATION, 0);
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(values),
    ));
}

pub fn set_geometry(obj: &mut InMemDicomObject, ipp: [f64; 3], iop: [f64; 6], spacing: [f64; 2]) {
    put_str(obj, tags::IMAGE_POSITION_PATIENT, VR::DS, &ds(&ipp));
    put_str(obj, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, &ds(&iop));
    put_str(obj, tags::PIXEL_SPACING, VR::DS, &ds(&spacing));
}

pub fn set_rescale(obj: &mut InMemDicomObject, slope: f64, intercept: f64) {
    put_str(obj, tags::RESCALE_SLOPE, VR::DS, &ds(&[slope]));
    put_str(obj, tags::RESCALE_INTERCEPT, VR::DS, &ds(&[intercept]));
}

pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";

/// Encapsulated pixel data: an empty basic offset table and one fragment per frame.
pub fn set_encapsulated(obj: &mut InMemDicomObject, fragments: Vec<Vec<u8>>) {
    let seq = dicom_core::value::PixelFragmentSequence::new(Vec::<u32>::new(), fragments);
    obj.put(DataElement::new(tags::PIXEL_DATA, VR::OB, seq));
}

/// DICOM RLE (PS3.5 Annex G) of one frame of 16-bit samples: two byte planes (high byte
/// first), each PackBits-coded as literal runs of at most 128 bytes.
pub fn rle_frame_16(values: &[u16]) -> Vec<u8> {
    let planes: Vec<Vec<u8>> = (0..2)
        .map(|plane| {
            let bytes: Vec<u8> = values.iter().map(|v| v.to_be_bytes()[plane]).collect();
            let mut seg = Vec::new();
            for chunk in bytes.chunks(128) {
                seg.push((chunk.len() - 1) as u8);
                seg.extend_from_slice(chunk);
            }
            if seg.len() % 2 == 1 {
                seg.push(0x80); // no-op run keeps segments even
            }
            seg
        })
        .collect();
    let mut header = [0u32; 16];
    header[0] = 2;
    header[1] = 64;
    header[2] = 64 + planes[0].len() as u32;
    let mut out: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    for plane in planes {
        out.extend(plane);
    }
    out
}

/// Writes `obj` as a Part 10 file with the given transfer syntax.
pub fn write(obj: InMemDicomObject, path: &Path, transfer_syntax: &str) {
    let sop = obj
        .get(tags::SOP_INSTANCE_UID)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches('\0').to_owned())
        .unwrap_or_else(|| "1.2.3".to_owned());
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(transfer_syntax)
                .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid(sop),
        )
        .expect("file meta");
    file.write_to_file(path).expect("write DICOM");
}

/// Stored value of voxel (i, j) in slice k of [`ct_series`].
pub fn ct_value(i: usize, j: usize, k: usize) -> i32 {
    (i as i32) * 10 + (j as i32) * 100 + (k as i32) * 1000 - 500
}

/// A CT series of `positions.len()` slices (cols × rows = 5 × 4, signed 16-bit, rescale
/// slope 1 / intercept −1024, spacing 0.8 × 0.6 mm). File names run in reverse of the slice
/// order so that sorting by name would be wrong. Returns the paths in slice order.
pub fn ct_series(
    dir: &Path,
    series_uid: &str,
    positions: &[[f64; 3]],
    iop: [f64; 6],
) -> Vec<PathBuf> {
    let (rows, cols) = (4usize, 5usize);
    let n = positions.len();
    positions
        .iter()
        .enumerate()
        .map(|(k, ipp)| {
            let mut obj = image(
                rows as u16,
                cols as u16,
                "CT",
                series_uid,
                &format!("{series_uid}.{k}"),
            );
            set_geometry(&mut obj, *ipp, iop, [0.6, 0.8]);
            set_rescale(&mut obj, 1.0, -1024.0);
            put_str(&mut obj, tags::SLICE_THICKNESS, VR::DS, "2");
            put_str(
                &mut obj,
                tags::INSTANCE_NUMBER,
                VR::IS,
                &format!("{}", n - k),
            );
            let values: Vec<i32> = (0..rows)
                .flat_map(|j| (0..cols).map(move |i| ct_value(i, j, k)))
                .collect();
            set_pixels_16(&mut obj, &values, 16, true);
            let path = dir.join(format!("img{:03}.dcm", n - k));
            write(obj, &path, EXPLICIT_LE);
            path
        })
        .collect()
}

/// Axial positions `z` at x = −10, y = 20.
pub fn axial_positions(z: &[f64]) -> Vec<[f64; 3]> {
    z.iter().map(|&z| [-10.0, 20.0, z]).collect()
}
