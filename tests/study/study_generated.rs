//! Generated DICOM files cover the decode paths of the real corpus on a fresh clone:
//! the three uncompressed transfer syntaxes, signed 16-bit with rescale, MONOCHROME1, RGB,
//! palette colour, Enhanced multi-frame geometry and 1-bit segmentation frames.

use crate::dicom_gen;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use m2c::study::{self, Pixels, WindowLevel, default_window, window};

fn gray(slice: &study::Slice) -> &[f32] {
    match &slice.pixels {
        Pixels::Gray(v) => v,
        Pixels::Rgb8(_) => panic!("expected gray"),
    }
}

#[test]
fn uncompressed_transfer_syntaxes_decode_the_same_signed_values() {
    let dir = tempfile::tempdir().unwrap();
    let values = [-2000, -1, 0, 1, 2047, 32767];
    for (i, ts) in [
        dicom_gen::EXPLICIT_LE,
        dicom_gen::IMPLICIT_LE,
        dicom_gen::EXPLICIT_BE,
    ]
    .iter()
    .enumerate()
    {
        let mut obj = dicom_gen::image(2, 3, "MR", &format!("1.2.5.{i}"), &format!("1.2.5.{i}.1"));
        dicom_gen::set_pixels_16(&mut obj, &values, 16, true);
        dicom_gen::set_rescale(&mut obj, 0.5, 10.0);
        dicom_gen::put_str(&mut obj, tags::WINDOW_CENTER, VR::DS, "100");
        dicom_gen::put_str(&mut obj, tags::WINDOW_WIDTH, VR::DS, "50");
        dicom_gen::write(obj, &dir.path().join(format!("mr{i}.dcm")), ts);
    }
    let found = study::discover(dir.path());
    assert_eq!(found.series.len(), 3, "{:?}", found.skipped);
    for series in &found.series {
        let slice = series.load_slice(0).unwrap();
        let want: Vec<f32> = values.iter().map(|&v| v as f32 * 0.5 + 10.0).collect();
        assert_eq!(gray(&slice), want.as_slice(), "{:?}", series.encodings);
        // Non-CT: the file's window is the default.
        assert_eq!(default_window(&slice), WindowLevel::new(100.0, 50.0));
    }
}

#[test]
fn monochrome1_is_inverted_for_display_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut obj = dicom_gen::image(1, 2, "CR", "1.2.6", "1.2.6.1");
    dicom_gen::put_str(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME1",
    );
    dicom_gen::set_pixels_16(&mut obj, &[0, 4095], 12, false);
    dicom_gen::write(obj, &dir.path().join("cr.dcm"), dicom_gen::EXPLICIT_LE);
    let slice = study::discover(dir.path()).series[0].load_slice(0).unwrap();
    assert!(slice.monochrome1);
    assert_eq!(gray(&slice), &[0.0, 4095.0]);
    let shown = window::gray8_from_slice(&slice, WindowLevel::from_range(0.0, 4095.0));
    assert_eq!(shown, vec![255, 0]);
}

#[test]
fn rgb_and_palette_colour_decode_to_rgb8() {
    let dir = tempfile::tempdir().unwrap();
    let mut rgb = dicom_gen::image(1, 2, "US", "1.2.7", "1.2.7.1");
    dicom_gen::set_pixels_8(&mut rgb, vec![255, 0, 0, 0, 0, 255], 3, "RGB");
    dicom_gen::write(rgb, &dir.path().join("rgb.dcm"), dicom_gen::EXPLICIT_LE);

    let mut pal = dicom_gen::image(1, 3, "US", "1.2.8", "1.2.8.1");
    dicom_gen::set_pixels_8(&mut pal, vec![0, 1, 2], 1, "PALETTE COLOR");
    // Three 16-bit entries per channel, first mapped value 0.
    for (desc, data, entries) in [
        (
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            [0xFFFFu16, 0, 0],
        ),
        (
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            [0, 0xFFFF, 0],
        ),
        (
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            [0, 0, 0x8000],
        ),
    ] {
        pal.put(DataElement::new(
            desc,
            VR::US,
            PrimitiveValue::U16(vec![3, 0, 16].into()),
        ));
        pal.put(DataElement::new(
            data,
            VR::OW,
            PrimitiveValue::U16(entries.to_vec().into()),
        ));
    }
    dicom_gen::write(pal, &dir.path().join("pal.dcm"), dicom_gen::EXPLICIT_LE);

    let found = study::discover(dir.path());
    assert_eq!(found.series.len(), 2, "{:?}", found.skipped);
    let pal = found.series[0].load_slice(0).unwrap();
    assert_eq!(
        pal.pixels,
        Pixels::Rgb8(vec![255, 0, 0, 0, 255, 0, 0, 0, 128])
    );
    let rgb = found.series[1].load_slice(0).unwrap();
    assert_eq!(rgb.pixels, Pixels::Rgb8(vec![255, 0, 0, 0, 0, 255]));
    assert_eq!(found.series[1].samples_per_pixel, 3);
}

#[test]
fn rle_and_jpeg_baseline_encapsulated_data_decode() {
    let dir = tempfile::tempdir().unwrap();
    // RLE: exact 16-bit values, signed, with rescale.
    let stored: Vec<i32> = (0..20).map(|i| i * 300 - 3000).collect();
    let mut rle = dicom_gen::image(4, 5, "CT", "1.2.11", "1.2.11.1");
    dicom_gen::set_pixels_16(&mut rle, &stored, 16, true);
    dicom_gen::set_rescale(&mut rle, 1.0, -1024.0);
    let words: Vec<u16> = stored.iter().map(|&v| v as u16).collect();
    dicom_gen::set_encapsulated(&mut rle, vec![dicom_gen::rle_frame_16(&words)]);
    dicom_gen::write(rle, &dir.path().join("rle.dcm"), dicom_gen::RLE_LOSSLESS);
    // JPEG baseline: an 8-bit gradient encoded by the image crate (lossy, so a tolerance).
    let (w, h) = (16u32, 8u32);
    let gradient: Vec<u8> = (0..w * h).map(|i| ((i % w) * 16) as u8).collect();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode(&gradient, w, h, image::ExtendedColorType::L8)
        .unwrap();
    let mut obj = dicom_gen::image(h as u16, w as u16, "XC", "1.2.12", "1.2.12.1");
    dicom_gen::set_pixels_8(&mut obj, Vec::new(), 1, "MONOCHROME2");
    dicom_gen::set_encapsulated(&mut obj, vec![jpeg]);
    dicom_gen::write(obj, &dir.path().join("jpeg.dcm"), dicom_gen::JPEG_BASELINE);

    let found = study::discover(dir.path());
    assert_eq!(found.series.len(), 2, "{:?}", found.skipped);
    let jpeg = found.series[0].load_slice(0).unwrap();
    assert_eq!(found.series[0].encodings, ["JPEG Baseline (Process 1)"]);
    // Quality 95 on a smooth ramp: every pixel within 8 gray levels.
    let worst = gray(&jpeg)
        .iter()
        .zip(&gradient)
        .map(|(a, b)| (a - f32::from(*b)).abs())
        .fold(0.0, f32::max);
    assert!(worst <= 8.0, "JPEG error {worst}");
    let rle = found.series[1].load_slice(0).unwrap();
    assert_eq!(found.series[1].encodings, ["RLE Lossless"]);
    let want: Vec<f32> = stored.iter().map(|&v| (v - 1024) as f32).collect();
    assert_eq!(gray(&rle), want.as_slice());
}

fn item(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

fn seq(tag: dicom_core::Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn ds(tag: dicom_core::Tag, values: &[f64]) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::DS, PrimitiveValue::from(dicom_gen::ds(values)))
}

#[test]
fn enhanced_multiframe_geometry_comes_from_functional_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, cols, frames) = (2u16, 3u16, 4usize);
    let mut obj = dicom_gen::image(rows, cols, "MR", "1.2.9", "1.2.9.1");
    dicom_gen::put_str(
        &mut obj,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &frames.to_string(),
    );
    let per_frame = [6.0, 0.0, 2.0, 4.0]
        .iter()
        .map(|&z| {
            item(vec![seq(
                tags::PLANE_POSITION_SEQUENCE,
                vec![item(vec![ds(tags::IMAGE_POSITION_PATIENT, &[0.0, 0.0, z])])],
            )])
        })
        .collect();
    obj.put(seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));
    let shared = item(vec![
        seq(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![item(vec![ds(
                tags::IMAGE_ORIENTATION_PATIENT,
                &dicom_gen::AXIAL,
            )])],
        ),
        seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![item(vec![
                ds(tags::PIXEL_SPACING, &[0.5, 0.25]),
                ds(tags::SLICE_THICKNESS, &[2.0]),
            ])],
        ),
    ]);
    obj.put(seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]));
    // Frame f is filled with the value f.
    let values: Vec<i32> = (0..frames).flat_map(|f| vec![f as i32; 6]).collect();
    dicom_gen::set_pixels_16(&mut obj, &values, 16, false);
    dicom_gen::write(
        obj,
        &dir.path().join("enhanced.dcm"),
        dicom_gen::EXPLICIT_LE,
    );

    let found = study::discover(dir.path());
    let series = &found.series[0];
    let order: Vec<u32> = series.frames.iter().map(|f| f.frame).collect();
    assert_eq!(order, [1, 2, 3, 0], "frames sorted by z = 0, 2, 4, 6");
    assert!(series.issues.is_empty(), "{:?}", series.issues);
    let geom = series.geometry.as_ref().unwrap();
    assert_eq!(geom.spacing_mm, [0.25, 0.5, 2.0]);
    let volume = series.load_volume().unwrap();
    assert_eq!(&volume.values[..6], &[1.0; 6]);
    assert_eq!(&volume.values[18..], &[0.0; 6]);
    assert_eq!(gray(&series.load_slice(3).unwrap()), &[0.0; 6]);
}

#[test]
fn one_bit_segmentation_frames_unpack_lsb_first() {
    let dir = tempfile::tempdir().unwrap();
    // 3 × 3 pixels × 2 frames = 18 bits, packed across the frame boundary.
    let mut obj = dicom_gen::image(3, 3, "SEG", "1.2.10", "1.2.10.1");
    dicom_gen::put_str(&mut obj, tags::NUMBER_OF_FRAMES, VR::IS, "2");
    dicom_gen::put_u16(&mut obj, tags::BITS_ALLOCATED, 1);
    dicom_gen::put_u16(&mut obj, tags::BITS_STORED, 1);
    dicom_gen::put_u16(&mut obj, tags::HIGH_BIT, 0);
    dicom_gen::put_u16(&mut obj, tags::PIXEL_REPRESENTATION, 0);
    // Frame 0: bits 0 and 8 set; frame 1: bits 9 and 17 (its first and last pixel).
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(vec![0b0000_0001u8, 0b0000_0011, 0b0000_0010, 0]),
    ));
    dicom_gen::write(obj, &dir.path().join("seg.dcm"), dicom_gen::EXPLICIT_LE);
    let series = &study::discover(dir.path()).series[0];
    let f0 = series.load_slice(0).unwrap();
    let f1 = series.load_slice(1).unwrap();
    assert_eq!(gray(&f0), &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    assert_eq!(gray(&f1), &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
}
