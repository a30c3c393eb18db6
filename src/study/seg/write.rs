//! Writing a BINARY Segmentation instance for a DICOM series (PS3.3 A.51, C.8.20).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use super::cielab::scaled_lab_from_srgb;
use super::source::{SourceFrame, SourceSeries};
use super::uid::{M2C_UID_ROOT, new_uid, validate_uid_root};
use super::{AlgorithmType, Code, SEGMENTATION_STORAGE, SegFrame, SegmentDescription};
use crate::study::geometry::SlicePlacement;
use crate::study::nifti::write_atomic;
use crate::study::{Result, Series, StudyError};

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Choices for the written object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegOptions {
    /// Root of the new Series, SOP Instance and Dimension Organization UIDs.
    pub uid_root: String,
    /// Copy no patient or study attribute from the source (they are written empty, as the
    /// IOD requires them present) and mark the object `PatientIdentityRemoved`. The study,
    /// series, instance and frame of reference UIDs of the source are kept, so the object
    /// still refers to its images.
    pub deidentify: bool,
    pub series_number: i32,
    pub series_description: String,
    /// `ContentLabel` (CS: at most 16 of A–Z, 0–9, space and underscore).
    pub content_label: String,
    pub content_description: String,
    /// `ContentCreatorName` (person name); not written when de-identifying.
    pub content_creator: Option<String>,
}

impl Default for SegOptions {
    fn default() -> Self {
        Self {
            uid_root: M2C_UID_ROOT.to_owned(),
            deidentify: false,
            series_number: 900,
            series_description: "M2C labels".to_owned(),
            content_label: "M2C_LABELS".to_owned(),
            content_description: "Labels made with M2C Annotator".to_owned(),
            content_creator: None,
        }
    }
}

/// What [`write_seg`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegWritten {
    pub path: PathBuf,
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    pub frames: usize,
    pub segments: usize,
    pub bytes: u64,
}

/// Writes one BINARY Segmentation instance at `path` (atomically) for the DICOM `series`.
///
/// `segments` must be numbered 1..=n in order; each frame names a segment and a slice of the
/// series (display order) and must be `series.width × series.height`. Frames are written
/// ordered by segment, then slice. Fails before writing anything when the series is not DICOM,
/// lacks slice positions, or the input is inconsistent.
pub fn write_seg(
    path: &Path,
    series: &Series,
    segments: &[SegmentDescription],
    frames: &[SegFrame],
    options: &SegOptions,
) -> Result<SegWritten> {
    let invalid = |reason: String| StudyError::SegInvalidInput {
        path: path.to_path_buf(),
        reason,
    };
    validate_uid_root(&options.uid_root).map_err(&invalid)?;
    check_input(series, segments, frames).map_err(&invalid)?;
    if frames.is_empty() {
        return Err(StudyError::SegNothingToWrite {
            path: path.to_path_buf(),
        });
    }
    let source = SourceSeries::read(series)?;
    let mut order: Vec<&SegFrame> = frames.iter().collect();
    order.sort_by_key(|f| (f.segment, f.slice));
    let placed: Vec<(&SegFrame, &SourceFrame, SlicePlacement)> = order
        .iter()
        .map(|f| {
            let src = source.frames.get(f.slice)?;
            Some((*f, src, src.placement?))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| StudyError::SegNeedsGeometry {
            path: source.first_path.clone(),
        })?;
    let (Some(spacing), Some(frame_of_reference)) =
        (source.pixel_spacing, source.frame_of_reference.clone())
    else {
        return Err(StudyError::SegNeedsGeometry {
            path: source.first_path.clone(),
        });
    };
    let thickness = source
        .slice_thickness
        .or_else(|| series.geometry.as_ref().map(|g| g.spacing_mm[2]))
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(1.0);

    let now = Timestamp::now();
    let series_uid = new_uid(&options.uid_root);
    let sop_uid = new_uid(&options.uid_root);
    let dimension_uid = new_uid(&options.uid_root);
    let mut obj = InMemDicomObject::new_empty();
    put(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(&mut obj, tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY");
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE);
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
    put_patient_and_study(&mut obj, &source, options.deidentify);
    put(&mut obj, tags::CONTENT_DATE, VR::DA, &now.date);
    put(&mut obj, tags::CONTENT_TIME, VR::TM, &now.time);
    put(&mut obj, tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, "+0000");
    if !options.deidentify {
        put(&mut obj, tags::SERIES_DATE, VR::DA, &now.date);
        put(&mut obj, tags::SERIES_TIME, VR::TM, &now.time);
    }
    put(&mut obj, tags::MODALITY, VR::CS, "SEG");
    put(&mut obj, tags::MANUFACTURER, VR::LO, "M2C Annotator");
    put(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &options.series_description,
    );
    put(
        &mut obj,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        "M2C Annotator",
    );
    put(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "m2c");
    put(
        &mut obj,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        env!("CARGO_PKG_VERSION"),
    );
    put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
    put(
        &mut obj,
        tags::SERIES_NUMBER,
        VR::IS,
        &options.series_number.to_string(),
    );
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(
        &mut obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        &frame_of_reference,
    );
    put(&mut obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    obj.put(referenced_series(&source, &placed));
    put_image_pixel(&mut obj, series);
    put(&mut obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put(&mut obj, tags::SEGMENTATION_TYPE, VR::CS, "BINARY");
    put(
        &mut obj,
        tags::CONTENT_LABEL,
        VR::CS,
        &content_label(&options.content_label),
    );
    put(
        &mut obj,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        &options.content_description,
    );
    let creator = options
        .content_creator
        .as_deref()
        .filter(|_| !options.deidentify)
        .unwrap_or("");
    put(&mut obj, tags::CONTENT_CREATOR_NAME, VR::PN, creator);
    obj.put(seq(
        tags::SEGMENT_SEQUENCE,
        segments.iter().map(segment_item).collect(),
    ));
    put_dimensions(&mut obj, &dimension_uid);
    obj.put(seq(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![shared_group(&placed, spacing, thickness)],
    ));
    let same_orientation = same_orientation(&placed);
    obj.put(seq(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        placed
            .iter()
            .map(|(f, src, p)| frame_group(f, src, p, !same_orientation))
            .collect(),
    ));
    put(
        &mut obj,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &placed.len().to_string(),
    );
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pack_frames(placed.iter().map(|(f, _, _)| *f))),
    ));

    let bytes = encode(path, obj, &options.uid_root)?;
    write_atomic(path, &bytes)?;
    tracing::info!(
        frames = placed.len(),
        segments = segments.len(),
        "segmentation written"
    );
    Ok(SegWritten {
        path: path.to_path_buf(),
        sop_instance_uid: sop_uid,
        series_instance_uid: series_uid,
        frames: placed.len(),
        segments: segments.len(),
        bytes: bytes.len() as u64,
    })
}

fn check_input(
    series: &Series,
    segments: &[SegmentDescription],
    frames: &[SegFrame],
) -> std::result::Result<(), String> {
    for (i, s) in segments.iter().enumerate() {
        if usize::from(s.number) != i + 1 {
            return Err(format!(
                "segment {} is number {}; segments must be numbered 1, 2, … in order",
                i + 1,
                s.number
            ));
        }
        if s.algorithm_type != AlgorithmType::Manual && s.algorithm.is_none() {
            return Err(format!(
                "segment {} is {} but names no algorithm",
                s.number,
                s.algorithm_type.as_str()
            ));
        }
    }
    for f in frames {
        if f.segment == 0 || usize::from(f.segment) > segments.len() {
            return Err(format!(
                "a frame refers to segment {}, which is not described",
                f.segment
            ));
        }
        if f.slice >= series.len() {
            return Err(format!(
                "a frame is on slice {} but the series has {}",
                f.slice + 1,
                series.len()
            ));
        }
        if (f.width, f.height) != (series.width, series.height) {
            return Err(format!(
                "a frame is {}×{} but the series is {}×{}",
                f.width, f.height, series.width, series.height
            ));
        }
    }
    let mut keys: Vec<(u16, usize)> = frames.iter().map(|f| (f.segment, f.slice)).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w.first() == w.get(1)) {
        return Err("two frames share a segment and a slice".to_owned());
    }
    Ok(())
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn put_u16(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn item(elements: impl FnOnce(&mut InMemDicomObject)) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    elements(&mut obj);
    obj
}

fn code_item(code: &Code) -> InMemDicomObject {
    item(|o| {
        put(o, tags::CODE_VALUE, VR::SH, &code.value);
        put(o, tags::CODING_SCHEME_DESIGNATOR, VR::SH, &code.scheme);
        put(o, tags::CODE_MEANING, VR::LO, &code.meaning);
    })
}

/// DS text of a number: at most 16 characters (PS3.5 6.2).
fn ds(v: f64) -> String {
    for precision in (0..=10).rev() {
        let s = format!("{v:.precision$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        };
        if s.len() <= 16 {
            return if s == "-0" { "0".to_owned() } else { s };
        }
    }
    format!("{v:.3e}")
}

fn ds_multi(values: &[f64]) -> String {
    values.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

/// Attributes copied from the source as a derived object carries them: the patient (name,
/// id, issuer, birth date, sex) and the study (UID, date, time, referring physician, id,
/// accession number, description). De-identified: only the study UID, the rest empty.
fn put_patient_and_study(obj: &mut InMemDicomObject, source: &SourceSeries, deidentify: bool) {
    const COPIED: [(Tag, VR, bool); 11] = [
        // (tag, VR, type 2: written empty when absent or de-identified)
        (tags::PATIENT_NAME, VR::PN, true),
        (tags::PATIENT_ID, VR::LO, true),
        (tags::ISSUER_OF_PATIENT_ID, VR::LO, false),
        (tags::PATIENT_BIRTH_DATE, VR::DA, true),
        (tags::PATIENT_SEX, VR::CS, true),
        (tags::STUDY_DATE, VR::DA, true),
        (tags::STUDY_TIME, VR::TM, true),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN, true),
        (tags::STUDY_ID, VR::SH, true),
        (tags::ACCESSION_NUMBER, VR::SH, true),
        (tags::STUDY_DESCRIPTION, VR::LO, false),
    ];
    for (tag, vr, required) in COPIED {
        let value = (!deidentify)
            .then(|| crate::study::dicom::text(&source.first, tag))
            .flatten();
        match value {
            Some(v) => put(obj, tag, vr, &v),
            None if required => put(obj, tag, vr, ""),
            None => {}
        }
    }
    put(obj, tags::STUDY_INSTANCE_UID, VR::UI, &source.study_uid);
    if deidentify {
        put(obj, tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES");
        put(
            obj,
            tags::DEIDENTIFICATION_METHOD,
            VR::LO,
            "M2C: no patient or study attribute copied; UIDs kept",
        );
    }
}

/// Referenced Series Sequence: the source series and the instances the frames derive from.
fn referenced_series(
    source: &SourceSeries,
    placed: &[(&SegFrame, &SourceFrame, SlicePlacement)],
) -> DataElement<InMemDicomObject> {
    let mut instances: Vec<(&str, &str)> = placed
        .iter()
        .map(|(_, s, _)| (s.sop_class.as_str(), s.sop_instance.as_str()))
        .collect();
    instances.sort_unstable();
    instances.dedup();
    let referenced = instances
        .into_iter()
        .map(|(class, instance)| {
            item(|o| {
                put(o, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
                put(o, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance);
            })
        })
        .collect();
    seq(
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![item(|o| {
            put(o, tags::SERIES_INSTANCE_UID, VR::UI, &source.series_uid);
            o.put(seq(tags::REFERENCED_INSTANCE_SEQUENCE, referenced));
        })],
    )
}

fn put_image_pixel(obj: &mut InMemDicomObject, series: &Series) {
    put_u16(obj, tags::SAMPLES_PER_PIXEL, 1);
    put(obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_u16(
        obj,
        tags::ROWS,
        u16::try_from(series.height).unwrap_or(u16::MAX),
    );
    put_u16(
        obj,
        tags::COLUMNS,
        u16::try_from(series.width).unwrap_or(u16::MAX),
    );
    put_u16(obj, tags::BITS_ALLOCATED, 1);
    put_u16(obj, tags::BITS_STORED, 1);
    put_u16(obj, tags::HIGH_BIT, 0);
    put_u16(obj, tags::PIXEL_REPRESENTATION, 0);
}

/// `ContentLabel` as CS allows: upper case, A–Z 0–9 space and underscore, at most 16.
fn content_label(label: &str) -> String {
    let cleaned: String = label
        .to_uppercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(16)
        .collect();
    if cleaned.trim().is_empty() {
        "M2C_LABELS".to_owned()
    } else {
        cleaned
    }
}

/// LO values hold at most 64 characters.
fn lo(text: &str) -> String {
    text.chars().take(64).collect()
}

fn segment_item(s: &SegmentDescription) -> InMemDicomObject {
    item(|o| {
        put_u16(o, tags::SEGMENT_NUMBER, s.number);
        put(o, tags::SEGMENT_LABEL, VR::LO, &lo(&s.label));
        if let Some(d) = &s.description {
            put(o, tags::SEGMENT_DESCRIPTION, VR::ST, d);
        }
        put(
            o,
            tags::SEGMENT_ALGORITHM_TYPE,
            VR::CS,
            s.algorithm_type.as_str(),
        );
        if let Some(a) = &s.algorithm {
            put(o, tags::SEGMENT_ALGORITHM_NAME, VR::LO, &lo(&a.name));
            o.put(seq(
                tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
                vec![item(|alg| {
                    alg.put(seq(
                        tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
                        vec![code_item(&a.family)],
                    ));
                    put(alg, tags::ALGORITHM_NAME, VR::LO, &lo(&a.name));
                    put(alg, tags::ALGORITHM_VERSION, VR::LO, &lo(&a.version));
                    if let Some(p) = &a.parameters {
                        put(alg, tags::ALGORITHM_PARAMETERS, VR::LT, p);
                    }
                })],
            ));
        }
        o.put(seq(
            tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
            vec![code_item(&s.category)],
        ));
        o.put(seq(
            tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
            vec![code_item(&s.property_type)],
        ));
        o.put(DataElement::new(
            tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
            VR::US,
            PrimitiveValue::U16(scaled_lab_from_srgb(s.colour).to_vec().into()),
        ));
    })
}

/// Two dimensions, as readers expect of a SEG: the segment number, then the frame's position.
fn put_dimensions(obj: &mut InMemDicomObject, uid: &str) {
    obj.put(seq(
        tags::DIMENSION_ORGANIZATION_SEQUENCE,
        vec![item(|o| {
            put(o, tags::DIMENSION_ORGANIZATION_UID, VR::UI, uid)
        })],
    ));
    let dimension = |index: Tag, group: Tag, label: &str| {
        item(|o| {
            put(o, tags::DIMENSION_ORGANIZATION_UID, VR::UI, uid);
            o.put(DataElement::new(
                tags::DIMENSION_INDEX_POINTER,
                VR::AT,
                PrimitiveValue::Tags(vec![index].into()),
            ));
            o.put(DataElement::new(
                tags::FUNCTIONAL_GROUP_POINTER,
                VR::AT,
                PrimitiveValue::Tags(vec![group].into()),
            ));
            put(o, tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label);
        })
    };
    obj.put(seq(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dimension(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "ReferencedSegmentNumber",
            ),
            dimension(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "ImagePositionPatient",
            ),
        ],
    ));
}

fn same_orientation(placed: &[(&SegFrame, &SourceFrame, SlicePlacement)]) -> bool {
    let Some((_, _, first)) = placed.first() else {
        return true;
    };
    placed.iter().all(|(_, _, p)| {
        (0..3).all(|i| {
            (p.row_dir[i] - first.row_dir[i]).abs() < 1e-6
                && (p.col_dir[i] - first.col_dir[i]).abs() < 1e-6
        })
    })
}

fn orientation(p: &SlicePlacement) -> String {
    let [a, b, c] = p.row_dir;
    let [d, e, f] = p.col_dir;
    ds_multi(&[a, b, c, d, e, f])
}

fn shared_group(
    placed: &[(&SegFrame, &SourceFrame, SlicePlacement)],
    spacing: [f64; 2],
    thickness: f64,
) -> InMemDicomObject {
    item(|o| {
        o.put(seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![item(|m| {
                put(m, tags::SLICE_THICKNESS, VR::DS, &ds(thickness));
                put(m, tags::PIXEL_SPACING, VR::DS, &ds_multi(&spacing));
            })],
        ));
        if same_orientation(placed)
            && let Some((_, _, p)) = placed.first()
        {
            o.put(seq(
                tags::PLANE_ORIENTATION_SEQUENCE,
                vec![item(|m| {
                    put(m, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, &orientation(p))
                })],
            ));
        }
    })
}

fn frame_group(
    frame: &SegFrame,
    source: &SourceFrame,
    placement: &SlicePlacement,
    own_orientation: bool,
) -> InMemDicomObject {
    item(|o| {
        o.put(seq(
            tags::DERIVATION_IMAGE_SEQUENCE,
            vec![item(|d| {
                d.put(seq(
                    tags::DERIVATION_CODE_SEQUENCE,
                    vec![code_item(&Code::new("DCM", "113076", "Segmentation"))],
                ));
                d.put(seq(
                    tags::SOURCE_IMAGE_SEQUENCE,
                    vec![item(|s| {
                        put(s, tags::REFERENCED_SOP_CLASS_UID, VR::UI, &source.sop_class);
                        put(
                            s,
                            tags::REFERENCED_SOP_INSTANCE_UID,
                            VR::UI,
                            &source.sop_instance,
                        );
                        if let Some(n) = source.frame_number {
                            put(s, tags::REFERENCED_FRAME_NUMBER, VR::IS, &n.to_string());
                        }
                        // The frame is on its source's pixel grid.
                        put(s, tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES");
                        s.put(seq(
                            tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                            vec![code_item(&Code::new(
                                "DCM",
                                "121322",
                                "Source image for image processing operation",
                            ))],
                        ));
                    })],
                ));
            })],
        ));
        let index = u32::try_from(frame.slice + 1).unwrap_or(u32::MAX);
        o.put(seq(
            tags::FRAME_CONTENT_SEQUENCE,
            vec![item(|c| {
                c.put(DataElement::new(
                    tags::DIMENSION_INDEX_VALUES,
                    VR::UL,
                    PrimitiveValue::U32(vec![u32::from(frame.segment), index].into()),
                ));
            })],
        ));
        o.put(seq(
            tags::PLANE_POSITION_SEQUENCE,
            vec![item(|p| {
                put(
                    p,
                    tags::IMAGE_POSITION_PATIENT,
                    VR::DS,
                    &ds_multi(&placement.position),
                );
            })],
        ));
        if own_orientation {
            o.put(seq(
                tags::PLANE_ORIENTATION_SEQUENCE,
                vec![item(|p| {
                    put(
                        p,
                        tags::IMAGE_ORIENTATION_PATIENT,
                        VR::DS,
                        &orientation(placement),
                    )
                })],
            ));
        }
        o.put(seq(
            tags::SEGMENT_IDENTIFICATION_SEQUENCE,
            vec![item(|s| {
                put_u16(s, tags::REFERENCED_SEGMENT_NUMBER, frame.segment)
            })],
        ));
    })
}

/// Frames back to back at bit level (PS3.5 8.1.1: no padding between frames of 1-bit data),
/// padded to an even number of bytes.
fn pack_frames<'a>(frames: impl Iterator<Item = &'a SegFrame>) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut bit = 0usize;
    for f in frames {
        let pixels = f.pixels();
        if bit.is_multiple_of(8) {
            let bytes = f.packed();
            out.truncate(bit / 8);
            out.extend_from_slice(bytes.get(..pixels.div_ceil(8)).unwrap_or(bytes));
        } else {
            out.resize((bit + pixels).div_ceil(8), 0);
            for i in (0..pixels).filter(|&i| f.get(i)) {
                let at = bit + i;
                if let Some(byte) = out.get_mut(at / 8) {
                    *byte |= 1 << (at % 8);
                }
            }
        }
        bit += pixels;
        out.truncate(bit.div_ceil(8));
    }
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// The Part 10 bytes of `obj`: preamble, file meta group, explicit VR little endian data set.
fn encode(path: &Path, obj: InMemDicomObject, uid_root: &str) -> Result<Vec<u8>> {
    let encode_error = |source: Box<dyn std::error::Error + Send + Sync>| StudyError::EncodeDicom {
        path: path.to_path_buf(),
        source,
    };
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_VR_LE)
        .implementation_class_uid(format!("{uid_root}.1"))
        .implementation_version_name(format!("M2C_{}", env!("CARGO_PKG_VERSION")));
    let file = obj.with_meta(meta).map_err(|e| encode_error(Box::new(e)))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| encode_error(Box::new(e)))?;
    Ok(bytes)
}

/// Export time in UTC as DICOM DA and TM.
struct Timestamp {
    date: String,
    time: String,
}

impl Timestamp {
    fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        Self {
            date: format!("{y:04}{m:02}{d:02}"),
            time: format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
        }
    }
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(0.5), "0.5");
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(-123.456_789_012_345), "-123.4567890123");
        assert!(ds(-123.456_789_012_345).len() <= 16);
        assert_eq!(ds(1.0 / 3.0), "0.3333333333");
    }

    #[test]
    fn frames_are_packed_back_to_back_at_bit_level() {
        // 3×3 frames: the second starts at bit 9.
        let a = SegFrame::from_mask(1, 0, 3, 3, &[1, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
        let b = SegFrame::from_mask(1, 1, 3, 3, &[1, 1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            pack_frames([&a, &b].into_iter()),
            vec![0b0000_0001, 0b0000_0111, 0, 0]
        );
    }

    #[test]
    fn dates_follow_the_gregorian_calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn content_labels_are_valid_code_strings() {
        assert_eq!(content_label("liver seg-1"), "LIVER SEG_1");
        assert_eq!(content_label("ä"), "_");
        assert_eq!(content_label("  "), "M2C_LABELS");
        assert_eq!(content_label("abcdefghijklmnopqrstuvwxyz").len(), 16);
    }
}
