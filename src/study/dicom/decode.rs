//! Pixel decoding: dicom-pixeldata for everything it supports, plus the two cases it does not
//! handle that matter for annotation: 1-bit Segmentation objects (bit-packed native data) and
//! PALETTE COLOR. Values come out after the modality LUT (slope/intercept → HU) and before any
//! VOI window, as f32, so 16-bit precision is kept until display.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, Tag};
use dicom_pixeldata::{
    ConvertOptions, DecodedPixelData, ModalityLutOption, PixelDecoder as _, VoiLutOption,
};

use super::syntax::{can_decode, is_native, transfer_syntax_name};
use super::{text, trim, uint};
use crate::study::window::WindowLevel;
use crate::study::{Pixels, Result, SeriesKind, Slice, StudyError};

/// Imaging attributes of a fully read object.
struct ImageInfo {
    rows: u32,
    columns: u32,
    frames: u32,
    samples_per_pixel: u16,
    bits_allocated: u16,
    bits_stored: u16,
    photometric: String,
    modality: Option<String>,
    transfer_syntax: String,
}

impl ImageInfo {
    fn read(path: &Path, obj: &DefaultDicomObject) -> Result<Self> {
        let missing = |attribute| StudyError::MissingAttribute {
            path: path.to_path_buf(),
            attribute,
        };
        let small = |tag: Tag, name: &'static str| -> Result<u16> {
            let v = uint(obj, tag).ok_or_else(|| missing(name))?;
            u16::try_from(v).map_err(|_| StudyError::InvalidAttribute {
                path: path.to_path_buf(),
                attribute: name,
                reason: format!("{v} is out of range"),
            })
        };
        let rows = uint(obj, tags::ROWS).ok_or_else(|| missing("Rows"))?;
        let columns = uint(obj, tags::COLUMNS).ok_or_else(|| missing("Columns"))?;
        if rows == 0 || columns == 0 {
            return Err(StudyError::ZeroSizedImage {
                path: path.to_path_buf(),
                width: columns,
                height: rows,
            });
        }
        let bits_allocated = small(tags::BITS_ALLOCATED, "BitsAllocated")?;
        Ok(Self {
            rows,
            columns,
            frames: uint(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1),
            samples_per_pixel: small(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel").unwrap_or(1),
            bits_allocated,
            bits_stored: small(tags::BITS_STORED, "BitsStored").unwrap_or(bits_allocated),
            photometric: text(obj, tags::PHOTOMETRIC_INTERPRETATION)
                .unwrap_or_else(|| "MONOCHROME2".to_owned()),
            modality: text(obj, tags::MODALITY),
            transfer_syntax: trim(obj.meta().transfer_syntax()),
        })
    }

    fn pixels_per_frame(&self) -> usize {
        usize::try_from(u64::from(self.rows) * u64::from(self.columns)).unwrap_or(usize::MAX)
    }

    /// Bytes of native pixel data the whole object needs.
    fn native_len(&self) -> usize {
        let samples = (self.pixels_per_frame() as u128)
            * u128::from(self.frames)
            * u128::from(self.samples_per_pixel);
        let bytes = if self.bits_allocated == 1 {
            samples.div_ceil(8)
        } else {
            samples * u128::from(self.bits_allocated / 8)
        };
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    fn slice(&self, pixels: Pixels, file_windows: Vec<WindowLevel>) -> Slice {
        Slice {
            width: self.columns,
            height: self.rows,
            pixels,
            monochrome1: self.photometric == "MONOCHROME1",
            modality: self.modality.clone(),
            file_windows,
            bits_stored: self.bits_stored,
            kind: SeriesKind::Dicom,
        }
    }
}

/// Decodes `frames` (indices into the file's frames) of one DICOM file, opening it once.
pub(crate) fn decode_frames(path: &Path, frames: &[u32]) -> Result<Vec<Slice>> {
    super::guard::check(path, super::Extent::Whole)?;
    let obj = dicom_object::open_file(path).map_err(|source| StudyError::ParseDicom {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let info = ImageInfo::read(path, &obj)?;
    if let Some(&frame) = frames.iter().find(|&&f| f >= info.frames) {
        return Err(StudyError::FrameOutOfRange {
            path: path.to_path_buf(),
            frame,
            frames: info.frames,
        });
    }
    let Some(pixel_data) = obj.get(tags::PIXEL_DATA) else {
        return Err(StudyError::MissingPixelData {
            path: path.to_path_buf(),
        });
    };
    let ts = info.transfer_syntax.as_str();
    if !can_decode(ts) {
        return Err(StudyError::UnsupportedTransferSyntax {
            path: path.to_path_buf(),
            uid: ts.to_owned(),
            name: transfer_syntax_name(ts).to_owned(),
        });
    }
    let unsupported = |reason: String| StudyError::UnsupportedPixelFormat {
        path: path.to_path_buf(),
        reason,
    };
    if is_native(ts) {
        let found = pixel_data.to_bytes().map(|b| b.len()).unwrap_or(0);
        let expected = info.native_len();
        if found < expected {
            return Err(StudyError::PixelDataLength {
                path: path.to_path_buf(),
                expected,
                found,
            });
        }
    }
    match info.bits_allocated {
        1 if is_native(ts) => return bit_packed(path, &info, pixel_data, frames),
        1 => return Err(unsupported("encapsulated 1-bit pixel data".to_owned())),
        8 | 16 => {}
        bits => return Err(unsupported(format!("BitsAllocated {bits}"))),
    }
    if ts == "1.2.840.10008.1.2.4.51" && info.bits_stored > 8 {
        // jpeg-decoder has no 12-bit (extended, lossy) support; GDCM would be needed.
        return Err(unsupported(format!(
            "{}-bit lossy JPEG (JPEG Extended)",
            info.bits_stored
        )));
    }
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        decode_with_pixeldata(&obj, &info, frames)
    }));
    match decoded {
        Ok(Ok(slices)) => Ok(slices),
        Ok(Err((frame, source))) => Err(StudyError::DecodePixelData {
            path: path.to_path_buf(),
            frame,
            source: Box::new(source),
        }),
        Err(_) => Err(unsupported("the decoder panicked on this file".to_owned())),
    }
}

type DecodeResult<T> = std::result::Result<T, (u32, dicom_pixeldata::Error)>;

fn decode_with_pixeldata(
    obj: &DefaultDicomObject,
    info: &ImageInfo,
    frames: &[u32],
) -> DecodeResult<Vec<Slice>> {
    // One frame: decode only that frame. Several: decode the object once.
    let first = frames.first().copied().unwrap_or(0);
    let single = frames.len() == 1;
    let decoded = if single {
        obj.decode_pixel_data_frame(first).map_err(|e| (first, e))?
    } else {
        obj.decode_pixel_data().map_err(|e| (first, e))?
    };
    let windows: Vec<WindowLevel> = decoded
        .window()
        .ok()
        .flatten()
        .unwrap_or_default()
        .iter()
        .filter(|w| w.width > 0.0 && w.width.is_finite() && w.center.is_finite())
        .map(|w| WindowLevel::new(w.center, w.width))
        .collect();
    let palette = (info.photometric == "PALETTE COLOR")
        .then(|| Palette::read(obj))
        .flatten();
    frames
        .iter()
        .map(|&f| {
            let idx = if single { 0 } else { f };
            let pixels =
                convert_frame(&decoded, idx, info, palette.as_ref()).map_err(|e| (f, e))?;
            Ok(info.slice(pixels, windows.clone()))
        })
        .collect()
}

fn convert_frame(
    decoded: &DecodedPixelData<'_>,
    idx: u32,
    info: &ImageInfo,
    palette: Option<&Palette>,
) -> std::result::Result<Pixels, dicom_pixeldata::Error> {
    if decoded.samples_per_pixel() == 3 || info.samples_per_pixel == 3 {
        let options = ConvertOptions::new().force_8bit();
        let image = decoded.to_dynamic_image_with_options(idx, &options)?;
        return Ok(Pixels::Rgb8(image.to_rgb8().into_raw()));
    }
    if let Some(palette) = palette {
        let raw_options = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
        let indices: Vec<u16> = decoded.to_vec_frame_with_options(idx, &raw_options)?;
        return Ok(Pixels::Rgb8(palette.apply(&indices)));
    }
    let options = ConvertOptions::new()
        .with_modality_lut(ModalityLutOption::Default)
        .with_voi_lut(VoiLutOption::Identity);
    Ok(Pixels::Gray(
        decoded.to_vec_frame_with_options(idx, &options)?,
    ))
}

/// 1-bit native pixel data (DICOM SEG): frames are packed back to back, least significant bit
/// first (PS3.5 8.1.1). Values are 0.0 / 1.0.
fn bit_packed(
    path: &Path,
    info: &ImageInfo,
    pixel_data: &dicom_object::mem::InMemElement,
    frames: &[u32],
) -> Result<Vec<Slice>> {
    let bytes = pixel_data
        .to_bytes()
        .map_err(|_| StudyError::MissingPixelData {
            path: path.to_path_buf(),
        })?;
    let per_frame = info.pixels_per_frame();
    frames
        .iter()
        .map(|&f| {
            let start = per_frame.saturating_mul(usize::try_from(f).unwrap_or(usize::MAX));
            let values = (start..start.saturating_add(per_frame))
                .map(|bit| {
                    let byte = bytes.get(bit / 8).copied().unwrap_or(0);
                    f32::from((byte >> (bit % 8)) & 1)
                })
                .collect();
            Ok(info.slice(Pixels::Gray(values), vec![WindowLevel::new(0.5, 1.0)]))
        })
        .collect()
}

/// PALETTE COLOR lookup tables (PS3.3 C.7.6.3.1.5), reduced to 8 bits per channel.
struct Palette {
    first_mapped: i64,
    channels: [Vec<u8>; 3],
}

impl Palette {
    fn read(obj: &InMemDicomObject) -> Option<Self> {
        let channel = |desc: Tag, data: Tag| -> Option<(i64, Vec<u8>)> {
            let d = obj.get(desc)?.to_multi_int::<i64>().ok()?;
            let (first, bits) = (*d.get(1)?, *d.get(2)?);
            let words = obj.get(data)?.to_multi_int::<u16>().ok()?;
            let table = if bits > 8 {
                words.iter().map(|w| w.to_be_bytes()[0]).collect()
            } else {
                // 8-bit entries are packed two per 16-bit word, low byte first.
                words.iter().flat_map(|w| w.to_le_bytes()).collect()
            };
            Some((first, table))
        };
        let (first_mapped, red) = channel(
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?;
        let (_, green) = channel(
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?;
        let (_, blue) = channel(
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?;
        Some(Self {
            first_mapped,
            channels: [red, green, blue],
        })
    }

    /// Values below the first mapped value take the first entry, above the table the last.
    fn apply(&self, indices: &[u16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(indices.len() * 3);
        for &v in indices {
            let i = (i64::from(v) - self.first_mapped).max(0);
            for table in &self.channels {
                let last = table.len().saturating_sub(1);
                let at = usize::try_from(i).unwrap_or(last).min(last);
                out.push(table.get(at).copied().unwrap_or(0));
            }
        }
        out
    }
}
