//! Reading a Segmentation instance and placing its frames on the slices of a series.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, Tag};

use super::cielab::srgb_from_scaled_lab;
use super::source::SourceSeries;
use super::{Algorithm, AlgorithmType, Code, SEGMENTATION_STORAGE, SegFrame, SegmentDescription};
use crate::study::dicom::{self, floats, text, trim, uint};
use crate::study::{Pixels, Result, Series, StudyError};

/// Largest distance (mm) between a frame's ImagePositionPatient and a slice's for the frame
/// to lie on that slice, when a segmentation has no Source Image references.
pub const POSITION_TOLERANCE_MM: f64 = 0.01;

/// `SegmentationType` of a read object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentationType {
    Binary,
    /// Fractional values 0..=`max` (probability or occupancy); read thresholded at `max / 2`.
    Fractional {
        max: u32,
    },
}

/// Where one frame of a segmentation belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct SegFrameInfo {
    pub segment: u16,
    /// Referenced SOP Instance UID of its source image, if the object gives one.
    pub source_sop: Option<String>,
    /// Referenced Frame Number in a multi-frame source (1-based).
    pub source_frame: Option<u32>,
    /// ImagePositionPatient of the frame, LPS mm.
    pub position: Option<[f64; 3]>,
}

/// A segmentation read from a file: its segments and frames (masks thresholded).
#[derive(Debug, Clone)]
pub struct SegFile {
    pub path: PathBuf,
    pub rows: u32,
    pub columns: u32,
    pub segmentation_type: SegmentationType,
    pub segments: Vec<SegmentDescription>,
    pub frame_of_reference: Option<String>,
    /// SeriesInstanceUIDs of the Referenced Series Sequence.
    pub referenced_series: Vec<String>,
    pub frames: Vec<SegFrameInfo>,
    /// One bit-packed mask per frame (slice unknown until matched).
    masks: Vec<SegFrame>,
}

impl SegFile {
    /// Frame `i` as 0/1 bytes, row-major.
    pub fn mask(&self, i: usize) -> Option<Vec<u8>> {
        self.masks.get(i).map(SegFrame::to_mask)
    }
}

/// One frame placed on a slice of the series (a segment number, a slice, the mask).
pub type MatchedFrame = SegFrame;

/// Reads a DICOM Segmentation file (BINARY, or FRACTIONAL thresholded at half its maximum).
pub fn read_seg(path: &Path) -> Result<SegFile> {
    let obj = dicom::open_whole(path)?;
    let not_seg = |reason: String| StudyError::NotASegmentation {
        path: path.to_path_buf(),
        reason,
    };
    let class = text(&obj, tags::SOP_CLASS_UID).unwrap_or_default();
    if class != SEGMENTATION_STORAGE {
        return Err(not_seg(if class.is_empty() {
            "no SOP Class UID".to_owned()
        } else {
            format!("SOP class {class} is not Segmentation Storage")
        }));
    }
    let missing = |attribute| StudyError::MissingAttribute {
        path: path.to_path_buf(),
        attribute,
    };
    let rows = uint(&obj, tags::ROWS).ok_or_else(|| missing("Rows"))?;
    let columns = uint(&obj, tags::COLUMNS).ok_or_else(|| missing("Columns"))?;
    if rows == 0 || columns == 0 {
        return Err(StudyError::ZeroSizedImage {
            path: path.to_path_buf(),
            width: columns,
            height: rows,
        });
    }
    let n_frames = uint(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    let kind = text(&obj, tags::SEGMENTATION_TYPE).unwrap_or_default();
    let segmentation_type = match kind.as_str() {
        "BINARY" => SegmentationType::Binary,
        "FRACTIONAL" => SegmentationType::Fractional {
            max: uint(&obj, tags::MAXIMUM_FRACTIONAL_VALUE)
                .filter(|m| *m > 0)
                .ok_or_else(|| missing("MaximumFractionalValue"))?,
        },
        other => {
            return Err(StudyError::UnsupportedPixelFormat {
                path: path.to_path_buf(),
                reason: format!("SegmentationType {other:?} (BINARY and FRACTIONAL are read)"),
            });
        }
    };
    let segments = read_segments(path, &obj)?;
    let frames = (0..n_frames)
        .map(|i| frame_info(&obj, i, segments.len()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| missing("ReferencedSegmentNumber"))?;
    if let Some(bad) = frames
        .iter()
        .find(|f| !segments.iter().any(|s| s.number == f.segment))
    {
        return Err(StudyError::InvalidAttribute {
            path: path.to_path_buf(),
            attribute: "ReferencedSegmentNumber",
            reason: format!("segment {} is not in the Segment Sequence", bad.segment),
        });
    }
    let masks = read_masks(
        path,
        &obj,
        rows,
        columns,
        n_frames,
        segmentation_type,
        &frames,
    )?;
    let referenced_series = items(&obj, tags::REFERENCED_SERIES_SEQUENCE)
        .iter()
        .filter_map(|i| text(i, tags::SERIES_INSTANCE_UID))
        .collect();
    Ok(SegFile {
        path: path.to_path_buf(),
        rows,
        columns,
        segmentation_type,
        segments,
        frame_of_reference: text(&obj, tags::FRAME_OF_REFERENCE_UID),
        referenced_series,
        frames,
        masks,
    })
}

fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    obj.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    items(obj, tag).first()
}

fn read_code(obj: &InMemDicomObject, tag: Tag) -> Option<Code> {
    let item = first_item(obj, tag)?;
    Some(Code {
        scheme: text(item, tags::CODING_SCHEME_DESIGNATOR)?,
        value: text(item, tags::CODE_VALUE)
            .or_else(|| text(item, tags::LONG_CODE_VALUE))
            .or_else(|| text(item, tags::URN_CODE_VALUE))?,
        meaning: text(item, tags::CODE_MEANING).unwrap_or_default(),
    })
}

fn read_segments(path: &Path, obj: &InMemDicomObject) -> Result<Vec<SegmentDescription>> {
    let list = items(obj, tags::SEGMENT_SEQUENCE);
    if list.is_empty() {
        return Err(StudyError::MissingAttribute {
            path: path.to_path_buf(),
            attribute: "SegmentSequence",
        });
    }
    list.iter()
        .map(|s| {
            let number = uint(s, tags::SEGMENT_NUMBER)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(StudyError::MissingAttribute {
                    path: path.to_path_buf(),
                    attribute: "SegmentNumber",
                })?;
            let lab = s
                .get(tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE)
                .and_then(|e| e.to_multi_int::<u16>().ok())
                .and_then(|v| <[u16; 3]>::try_from(v.get(..3)?).ok());
            let algorithm_type = text(s, tags::SEGMENT_ALGORITHM_TYPE)
                .and_then(|t| AlgorithmType::parse(&t))
                .unwrap_or(AlgorithmType::Manual);
            let ident = first_item(s, tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE);
            let name = text(s, tags::SEGMENT_ALGORITHM_NAME)
                .or_else(|| ident.and_then(|i| text(i, tags::ALGORITHM_NAME)));
            let algorithm = name.map(|name| Algorithm {
                name,
                version: ident
                    .and_then(|i| text(i, tags::ALGORITHM_VERSION))
                    .unwrap_or_default(),
                parameters: ident.and_then(|i| text(i, tags::ALGORITHM_PARAMETERS)),
                family: ident
                    .and_then(|i| read_code(i, tags::ALGORITHM_FAMILY_CODE_SEQUENCE))
                    .unwrap_or_else(Code::artificial_intelligence),
            });
            Ok(SegmentDescription {
                number,
                label: text(s, tags::SEGMENT_LABEL).unwrap_or_else(|| format!("Segment {number}")),
                colour: lab.map_or([128, 128, 128], srgb_from_scaled_lab),
                category: read_code(s, tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE)
                    .unwrap_or_else(Code::tissue),
                property_type: read_code(s, tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE)
                    .unwrap_or_else(Code::tissue),
                algorithm_type,
                algorithm,
                description: text(s, tags::SEGMENT_DESCRIPTION),
            })
        })
        .collect()
}

/// The functional group item `group_seq` of frame `i`: per-frame first, then shared.
fn group(obj: &InMemDicomObject, i: usize, group_seq: Tag) -> Option<&InMemDicomObject> {
    let from = |fg: Tag, index: usize| first_item(items(obj, fg).get(index)?, group_seq);
    from(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, i)
        .or_else(|| from(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, 0))
}

fn frame_info(obj: &InMemDicomObject, i: usize, n_segments: usize) -> Option<SegFrameInfo> {
    let segment = group(obj, i, tags::SEGMENT_IDENTIFICATION_SEQUENCE)
        .and_then(|g| uint(g, tags::REFERENCED_SEGMENT_NUMBER))
        .and_then(|n| u16::try_from(n).ok())
        // A single-segment object may leave the frames unassigned.
        .or((n_segments == 1).then_some(1))?;
    let source = group(obj, i, tags::DERIVATION_IMAGE_SEQUENCE)
        .and_then(|d| first_item(d, tags::SOURCE_IMAGE_SEQUENCE));
    let position = group(obj, i, tags::PLANE_POSITION_SEQUENCE)
        .and_then(|p| floats(p, tags::IMAGE_POSITION_PATIENT))
        .and_then(|v| <[f64; 3]>::try_from(v.get(..3)?).ok());
    Some(SegFrameInfo {
        segment,
        source_sop: source.and_then(|s| text(s, tags::REFERENCED_SOP_INSTANCE_UID)),
        source_frame: source.and_then(|s| uint(s, tags::REFERENCED_FRAME_NUMBER)),
        position,
    })
}

fn read_masks(
    path: &Path,
    obj: &dicom_object::DefaultDicomObject,
    rows: u32,
    columns: u32,
    n_frames: usize,
    kind: SegmentationType,
    frames: &[SegFrameInfo],
) -> Result<Vec<SegFrame>> {
    let per = rows as usize * columns as usize;
    let native = matches!(
        trim(obj.meta().transfer_syntax()).as_str(),
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2"
    );
    let pixel_data = obj
        .get(tags::PIXEL_DATA)
        .ok_or(StudyError::MissingPixelData {
            path: path.to_path_buf(),
        })?;
    let frame = |i: usize, mask: &[u8]| {
        let segment = frames.get(i).map_or(1, |f| f.segment);
        // An empty frame packs to nothing; keep it as an all-zero mask of the right size.
        SegFrame::from_mask(segment, 0, columns, rows, mask)
            .unwrap_or_else(|| SegFrame::empty(segment, columns, rows))
    };
    let bits_allocated = uint(obj, tags::BITS_ALLOCATED).unwrap_or(0);
    match (kind, native, bits_allocated) {
        (SegmentationType::Binary, true, 1) => {
            let bytes = pixel_data
                .to_bytes()
                .map_err(|_| StudyError::MissingPixelData {
                    path: path.to_path_buf(),
                })?;
            let expected = (per * n_frames).div_ceil(8);
            if bytes.len() < expected {
                return Err(StudyError::PixelDataLength {
                    path: path.to_path_buf(),
                    expected,
                    found: bytes.len(),
                });
            }
            if per.is_multiple_of(8) {
                // Every frame starts on a byte: take its packed bits as they are.
                let frame_bytes = per / 8;
                return Ok((0..n_frames)
                    .map(|i| {
                        let bits = bytes
                            .get(i * frame_bytes..(i + 1) * frame_bytes)
                            .map_or_else(|| vec![0; frame_bytes], <[u8]>::to_vec);
                        let segment = frames.get(i).map_or(1, |f| f.segment);
                        SegFrame::from_packed(segment, 0, columns, rows, bits)
                    })
                    .collect());
            }
            Ok((0..n_frames)
                .map(|i| {
                    let mask: Vec<u8> = (i * per..(i + 1) * per)
                        .map(|bit| bytes.get(bit / 8).map_or(0, |b| (b >> (bit % 8)) & 1))
                        .collect();
                    frame(i, &mask)
                })
                .collect())
        }
        (SegmentationType::Fractional { .. }, _, 8) | (SegmentationType::Binary, false, 8) => {
            // Values through the regular decoder (native or compressed), thresholded.
            let threshold = match kind {
                SegmentationType::Fractional { max } => f64::from(max) / 2.0,
                SegmentationType::Binary => 0.5,
            };
            let all: Vec<u32> = (0..u32::try_from(n_frames).unwrap_or(u32::MAX)).collect();
            let slices = dicom::decode_frames(path, &all)?;
            Ok(slices
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mask: Vec<u8> = match &s.pixels {
                        Pixels::Gray(v) => v
                            .iter()
                            .map(|&x| u8::from(f64::from(x) >= threshold))
                            .collect(),
                        Pixels::Rgb8(_) => Vec::new(),
                    };
                    frame(i, &mask)
                })
                .collect())
        }
        (_, _, bits) => Err(StudyError::UnsupportedPixelFormat {
            path: path.to_path_buf(),
            reason: format!("segmentation with BitsAllocated {bits} in this transfer syntax"),
        }),
    }
}

/// Places every frame of `seg` on a slice of `series`: through its Source Image reference
/// when the object has them, else by its position in the same frame of reference. Refuses a
/// segmentation of another size, one made on another series, and one with frames that match
/// no slice; frames of the same segment on one slice are merged.
pub fn match_to_series(seg: &SegFile, series: &Series) -> Result<Vec<MatchedFrame>> {
    if (seg.columns, seg.rows) != (series.width, series.height) {
        return Err(StudyError::SizeMismatch {
            path: seg.path.clone(),
            expected_width: series.width,
            expected_height: series.height,
            found_width: seg.columns,
            found_height: seg.rows,
        });
    }
    let source = SourceSeries::read(series)?;
    let by_reference = seg.frames.iter().any(|f| f.source_sop.is_some());
    let slices: Vec<Option<usize>> = if by_reference {
        let mut index: HashMap<(&str, Option<u32>), usize> = HashMap::new();
        for (k, s) in source.frames.iter().enumerate() {
            index.insert((s.sop_instance.as_str(), s.frame_number), k);
        }
        seg.frames
            .iter()
            .map(|f| {
                let sop = f.source_sop.as_deref()?;
                index
                    .get(&(sop, f.source_frame))
                    .or_else(|| index.get(&(sop, f.source_frame.or(Some(1)))))
                    .or_else(|| index.get(&(sop, None)))
                    .copied()
            })
            .collect()
    } else {
        let same_frame = match (&seg.frame_of_reference, &source.frame_of_reference) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        seg.frames
            .iter()
            .map(|f| {
                let p = f.position.filter(|_| same_frame)?;
                source.frames.iter().position(|s| {
                    s.placement.is_some_and(|sp| {
                        let d: f64 = (0..3).map(|i| (sp.position[i] - p[i]).powi(2)).sum();
                        d.sqrt() <= POSITION_TOLERANCE_MM
                    })
                })
            })
            .collect()
    };
    let matched = slices.iter().filter(|s| s.is_some()).count();
    if matched == 0 {
        return Err(StudyError::SegOtherSeries {
            path: seg.path.clone(),
            frames: seg.frames.len(),
        });
    }
    if matched < seg.frames.len() {
        return Err(StudyError::SegFramesUnmatched {
            path: seg.path.clone(),
            unmatched: seg.frames.len() - matched,
            frames: seg.frames.len(),
        });
    }
    let mut merged: BTreeMap<(u16, usize), SegFrame> = BTreeMap::new();
    for ((info, slice), mask) in seg.frames.iter().zip(&slices).zip(&seg.masks) {
        let Some(slice) = *slice else { continue };
        match merged.get_mut(&(info.segment, slice)) {
            Some(existing) => existing.union(mask),
            None => {
                let mut frame = mask.clone();
                frame.segment = info.segment;
                frame.slice = slice;
                merged.insert((info.segment, slice), frame);
            }
        }
    }
    Ok(merged.into_values().filter(|f| f.count() > 0).collect())
}
