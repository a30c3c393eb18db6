//! Labels out and in: DICOM SEG, NIfTI and PNG exports of a project read by independent
//! readers (pydicom and highdicom agree on segments, masks and plane positions; dciodvfy finds
//! no error), imports that bring the same labels back, and bad input (a SEG of another
//! series, a truncated SEG, a NIfTI or PNG of another size) refused with the file and the
//! mismatch named while the project stays as it was.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers panic on setup failure"
)]

use crate::common;
use crate::labels;

use std::path::{Path, PathBuf};

use m2c::annotation::{
    AnnotationError, ExportFormat, ExportRequest, ImportRequest, ItemId, Project, ReviewState,
    SegExportOptions, SegmentCoding, StudyProject, Tool, export_labels, import_labels,
    open_study_project,
};
use m2c::study::seg::{self, AlgorithmType, Code, M2C_UID_ROOT, SegOptions};
use m2c::study::{self, MaskEncoding, Series, StudyError};

use labels::{annotate_three_ways, ct_study, discover_one, fresh_project, oblique, state};

const SEG_CHECK: &str = r#"
import glob, json, os, sys
import numpy as np, pydicom, highdicom as hd
seg_path, src_dir, exp_path = sys.argv[1:4]
exp = json.load(open(exp_path))
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
srcs = [pydicom.dcmread(p) for p in glob.glob(os.path.join(src_dir, "*.dcm"))]
srcs = [s for s in srcs if s.SOPClassUID != SEG]
iop = np.array(srcs[0].ImageOrientationPatient, float)
normal = np.cross(iop[:3], iop[3:])
srcs.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal)))
uids = [s.SOPInstanceUID for s in srcs]

ds = pydicom.dcmread(seg_path)
assert ds.SOPClassUID == SEG and ds.Modality == "SEG", ds.SOPClassUID
assert ds.SegmentationType == "BINARY" and ds.BitsAllocated == 1
assert ds.StudyInstanceUID == srcs[0].StudyInstanceUID
assert ds.FrameOfReferenceUID == srcs[0].FrameOfReferenceUID
root = exp["uid_root"] + "."
assert ds.SeriesInstanceUID.startswith(root) and ds.SOPInstanceUID.startswith(root)
ref = ds.ReferencedSeriesSequence[0]
assert ref.SeriesInstanceUID == srcs[0].SeriesInstanceUID
assert {r.ReferencedSOPInstanceUID for r in ref.ReferencedInstanceSequence} <= set(uids)
if exp["deidentified"]:
    assert str(ds.PatientName) == "" and ds.PatientID == "", (ds.PatientName, ds.PatientID)
    assert ds.PatientIdentityRemoved == "YES"
    for kw in ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate"):
        assert ds.get(kw, "") == "", kw
else:
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
               "StudyID", "StudyDate"):
        assert str(ds.get(kw) or "") == str(srcs[0].get(kw) or ""), kw
    assert "PatientIdentityRemoved" not in ds
for kw in ("OtherPatientIDsSequence", "PatientAddress", "InstitutionName", "OperatorsName"):
    assert kw not in ds, kw

seg = hd.seg.segread(seg_path)
segs = exp["segments"]
nseg = len(segs)
assert seg.number_of_segments == nseg
for i, s in enumerate(segs, 1):
    d = seg.get_segment_description(i)
    assert d.segment_label == s["label"], (d.segment_label, s)
    assert d.algorithm_type.value == s["type"], (d.algorithm_type, s)
    cat, typ = d.segmented_property_category, d.segmented_property_type
    assert [cat.scheme_designator, cat.value] == s["category"], cat
    assert [typ.scheme_designator, typ.value] == s["property"], typ
    rgb = hd.color.CIELabColor.from_dicom_value(d.RecommendedDisplayCIELabValue).to_rgb()
    assert max(abs(int(a) - b) for a, b in zip(rgb, s["colour"])) <= 1, (rgb, s["colour"])
    if s["type"] != "MANUAL":
        alg = d.algorithm_identification[0]
        assert alg.AlgorithmName == s["algorithm"], alg.AlgorithmName
        assert alg.AlgorithmVersion == s["version"], alg.AlgorithmVersion
        assert s["concept"] in alg.AlgorithmParameters, alg.AlgorithmParameters

rows, cols = ds.Rows, ds.Columns
want = np.array(exp["masks"], dtype=np.uint8).reshape(len(uids), nseg, rows, cols)
want = want.transpose(0, 2, 3, 1)
px = seg.get_pixels_by_source_instance(
    source_sop_instance_uids=uids, segment_numbers=list(range(1, nseg + 1)),
    assert_missing_frames_are_empty=True)
assert px.shape == want.shape, (px.shape, want.shape)
assert np.array_equal(px.astype(np.uint8), want), np.argwhere(px != want)[:5]
occupied = int(want.reshape(len(uids), rows * cols, nseg).any(axis=1).sum())
assert int(ds.NumberOfFrames) == occupied, (ds.NumberOfFrames, occupied)

for fg in ds.PerFrameFunctionalGroupsSequence:
    src = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
    k = uids.index(src)
    got = np.array(fg.PlanePositionSequence[0].ImagePositionPatient, float)
    assert np.abs(got - np.array(srcs[k].ImagePositionPatient, float)).max() <= 1e-6, (k, got)

if exp["regular"]:
    # highdicom's own geometry: every slice of its volume lies at a source slice's position
    # and holds our masks there.
    vol = seg.get_volume()
    positions = [np.array(s.ImagePositionPatient, float) for s in srcs]
    arr = np.asarray(vol.array)
    if arr.ndim == 3:
        arr = arr[..., None]
    for k in range(vol.spatial_shape[0]):
        pos = np.array(vol.get_plane_position(k)[0].ImagePositionPatient, float)
        match = [j for j, p in enumerate(positions) if np.abs(p - pos).max() <= 1e-4]
        assert len(match) == 1, (k, pos)
        assert np.array_equal(arr[k].astype(np.uint8), want[match[0]]), k
print("pydicom + highdicom ok:", int(ds.NumberOfFrames), "frames,", nseg, "segments")
"#;

/// What SEG_CHECK expects of `path`: the project's masks per slice and segment, and each
/// segment's description.
fn expectation(
    p: &mut Project,
    ids: &[ItemId],
    segments: &[serde_json::Value],
    values: &[u8],
    deidentified: bool,
    regular: bool,
) -> serde_json::Value {
    let mut masks: Vec<u8> = Vec::new();
    for &id in ids {
        let size = p.item(id).unwrap().size();
        for &value in values {
            match p.mask(id, value).unwrap() {
                Some(m) => masks.extend_from_slice(m.as_bytes()),
                None => masks.extend(std::iter::repeat_n(0, size.area())),
            }
        }
    }
    serde_json::json!({
        "uid_root": M2C_UID_ROOT, "deidentified": deidentified, "regular": regular,
        "segments": segments, "masks": masks,
    })
}

fn check_with_readers(seg_path: &Path, src_dir: &Path, expect: &serde_json::Value) {
    let Some(errors) = labels::dciodvfy_errors(seg_path) else {
        return;
    };
    assert!(errors.is_empty(), "dciodvfy: {errors:#?}");
    if labels::python_readers().is_none() {
        return;
    }
    let exp_path = seg_path.with_extension("expect.json");
    std::fs::write(&exp_path, expect.to_string()).unwrap();
    let out = labels::run_python(SEG_CHECK, &[seg_path, src_dir, &exp_path]);
    eprint!("{out}");
}

fn seg_request(folder: &Path, deidentify: bool) -> ExportRequest {
    ExportRequest {
        format: ExportFormat::Seg,
        seg: SegExportOptions {
            object: SegOptions {
                deidentify,
                ..SegOptions::default()
            },
            ..SegExportOptions::default()
        },
        folder: folder.to_path_buf(),
        ..ExportRequest::default()
    }
}

fn export(opened: &mut StudyProject, series: &Series, request: &ExportRequest) -> PathBuf {
    let summary = export_labels(
        &mut opened.project,
        std::slice::from_ref(series),
        &opened.items,
        request,
        &|_, _| {},
    )
    .unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    let [path] = summary.written.as_slice() else {
        panic!("one file expected: {summary:?}");
    };
    path.clone()
}

fn segment(label: &str, kind: &str, colour: [u8; 3]) -> serde_json::Value {
    serde_json::json!({
        "label": label, "type": kind, "colour": colour,
        "category": ["SCT", "85756007"], "property": ["SCT", "85756007"],
        "algorithm": "M2C SAM3 concept search", "version": "sha256:0123abcd",
        "concept": "concept-7f3a",
    })
}

#[test]
fn seg_of_an_oblique_series_is_valid_for_pydicom_highdicom_and_dciodvfy() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    ct_study(
        &study,
        "1.2.826.0.1.3680043.10.543.10",
        6,
        16,
        12,
        oblique(),
    );
    let series = discover_one(&study);
    let mut opened = open_study_project(&study, std::slice::from_ref(&series), None, None).unwrap();
    annotate_three_ways(&mut opened);
    let colours: Vec<[u8; 3]> = (1..=3)
        .map(|v| opened.project.class(v).unwrap().colour)
        .collect();
    let segments = [
        segment("Liver", "MANUAL", colours[0]),
        segment("Lesion", "SEMIAUTOMATIC", colours[1]),
        segment("Vessel", "AUTOMATIC", colours[2]),
    ];
    let ids = opened.items[0].clone();
    for deidentify in [false, true] {
        let out = dir.path().join(format!("out-{deidentify}"));
        let path = export(&mut opened, &series, &seg_request(&out, deidentify));
        assert_eq!(path, out.join("ct001_seg.dcm"));
        let read = seg::read_seg(&path).unwrap();
        assert_eq!(read.frames.len(), 5, "slice 0 is empty and omitted");
        let expect = expectation(
            &mut opened.project,
            &ids,
            &segments,
            &[1, 2, 3],
            deidentify,
            true,
        );
        check_with_readers(&path, &study, &expect);
    }
}

/// Segments compared across files: everything but the UIDs.
fn segment_keys(file: &seg::SegFile) -> Vec<String> {
    file.segments.iter().map(|s| format!("{s:?}")).collect()
}

/// Frames compared across files: segment, source image, position and pixels.
fn frame_keys(file: &seg::SegFile) -> Vec<String> {
    let mut keys: Vec<String> = file
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{f:?} {:?}", file.mask(i)))
        .collect();
    keys.sort();
    keys
}

#[test]
fn a_seg_exported_imported_and_exported_again_has_the_same_frames_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    ct_study(
        &study,
        "1.2.826.0.1.3680043.10.543.20",
        7,
        20,
        14,
        oblique(),
    );
    let series = discover_one(&study);
    let mut first = open_study_project(&study, std::slice::from_ref(&series), None, None).unwrap();
    annotate_three_ways(&mut first);
    // A user-chosen code for one label is kept in the project and written.
    let mut request = seg_request(&dir.path().join("a"), false);
    request.seg.codes.insert(
        1,
        SegmentCoding {
            category: Code::new("SCT", "123037004", "Anatomical Structure"),
            property_type: Code::new("SCT", "10200004", "Liver"),
            imported: None,
        },
    );
    let seg_a = export(&mut first, &series, &request);
    assert_eq!(
        first.project.segment_codings().unwrap()[&1]
            .property_type
            .meaning,
        "Liver"
    );
    drop(first);

    let mut second = fresh_project(
        &dir.path().join("second.m2c"),
        &study,
        std::slice::from_ref(&series),
    );
    let before_classes = second.project.classes().count();
    let summary = import_labels(
        &mut second.project,
        std::slice::from_ref(&series),
        &second.items,
        &ImportRequest {
            path: seg_a.clone(),
            ..ImportRequest::default()
        },
    )
    .unwrap();
    assert_eq!(summary.series, vec![1]);
    assert_eq!(summary.masks, 5);
    assert_eq!(summary.new_classes, vec!["Liver", "Lesion", "Vessel"]);
    assert_eq!(second.project.classes().count(), before_classes + 3);
    // Imported masks are labelled work: Corrected, tool Import, the file named.
    let item = second.items[0][1];
    let info = second.project.item(item).unwrap();
    assert_eq!(info.state(), ReviewState::Corrected);
    let liver = second
        .project
        .classes()
        .find(|c| c.name == "Liver")
        .unwrap()
        .value;
    let prov = info.provenance(liver).unwrap();
    assert_eq!(prov.created.tool, Tool::Import);
    assert_eq!(prov.created.source.as_deref(), Some("ct001_seg.dcm"));
    // One undo step takes the whole import back.
    assert!(second.project.undo().unwrap());
    assert_eq!(second.project.classes().count(), before_classes);
    assert!(second.project.redo().unwrap());

    let seg_b = export(
        &mut second,
        &series,
        &seg_request(&dir.path().join("b"), false),
    );
    let (a, b) = (
        seg::read_seg(&seg_a).unwrap(),
        seg::read_seg(&seg_b).unwrap(),
    );
    assert_eq!(segment_keys(&a), segment_keys(&b));
    assert_eq!(frame_keys(&a), frame_keys(&b));
    assert_eq!(a.segments[0].property_type.meaning, "Liver");
    assert_eq!(
        a.segments
            .iter()
            .map(|s| s.algorithm_type)
            .collect::<Vec<_>>(),
        [
            AlgorithmType::Manual,
            AlgorithmType::Semiautomatic,
            AlgorithmType::Automatic
        ]
    );
}

/// Labels of every item by class name, keyed by item key (for projects whose class values
/// differ).
fn named_maps(p: &mut Project) -> Vec<(String, Vec<String>)> {
    let names: std::collections::BTreeMap<u16, String> = p
        .classes()
        .map(|c| (u16::from(c.value), c.name.clone()))
        .collect();
    label_maps(p)
        .into_iter()
        .map(|(key, labels)| {
            let named = labels
                .iter()
                .map(|v| names.get(v).cloned().unwrap_or_default())
                .collect();
            (key, named)
        })
        .collect()
}

/// Labels of every item, keyed by item key.
fn label_maps(p: &mut Project) -> Vec<(String, Vec<u16>)> {
    (0..p.items().len())
        .map(|i| {
            let key = p.items()[i].key().to_owned();
            let id = p.find_item(&key).unwrap();
            (key, p.label_map(id).unwrap().labels)
        })
        .collect()
}

fn import_into(
    opened: &mut StudyProject,
    series: &[Series],
    path: &Path,
) -> m2c::annotation::ImportSummary {
    import_labels(
        &mut opened.project,
        series,
        &opened.items,
        &ImportRequest {
            path: path.to_path_buf(),
            ..ImportRequest::default()
        },
    )
    .unwrap()
}

#[test]
fn nifti_and_png_exports_import_back_to_the_same_labels() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    ct_study(
        &study,
        "1.2.826.0.1.3680043.10.543.30",
        6,
        16,
        12,
        oblique(),
    );
    let series = vec![discover_one(&study)];
    let mut first = open_study_project(&study, &series, None, None).unwrap();
    annotate_three_ways(&mut first);
    let want = label_maps(&mut first.project);
    let nifti = export(
        &mut first,
        &series[0],
        &ExportRequest {
            format: ExportFormat::Nifti,
            folder: dir.path().join("nii"),
            ..ExportRequest::default()
        },
    );
    let png_dir = dir.path().join("png");
    export_labels(
        &mut first.project,
        &series,
        &first.items,
        &ExportRequest {
            format: ExportFormat::Png,
            encoding: MaskEncoding::LabelValues,
            folder: png_dir.clone(),
            ..ExportRequest::default()
        },
        &|_, _| {},
    )
    .unwrap();
    drop(first);
    for (name, path) in [("nifti", nifti), ("png", png_dir)] {
        let mut back = fresh_project(&dir.path().join(format!("{name}.m2c")), &study, &series);
        let summary = import_into(&mut back, &series, &path);
        assert_eq!(summary.items, 5, "{name}: {}", summary.line());
        let got = label_maps(&mut back.project);
        assert_eq!(got, want, "{name}");
        // Names and colours come back from the NIfTI sidecar.
        if name == "nifti" {
            let names: Vec<String> = back.project.classes().map(|c| c.name.clone()).collect();
            assert_eq!(names, ["Liver", "Lesion", "Vessel"]);
        }
    }
}

/// Asserts `result` is a refusal whose message (with its causes) names `file` and contains
/// every one of `words`, and that the project is unchanged.
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, AnnotationError>,
    file: &Path,
    words: &[&str],
    project: &mut Project,
    before: &str,
) {
    let err = result.expect_err("the import must be refused");
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(text.contains(&*name), "{text:?} should name {name}");
    for w in words {
        assert!(text.contains(w), "{text:?} should say {w:?}");
    }
    assert_eq!(
        state(project),
        before,
        "a refused import changed the project"
    );
}

#[test]
fn bad_label_files_are_refused_by_name_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    ct_study(
        &study,
        "1.2.826.0.1.3680043.10.543.40",
        6,
        16,
        12,
        oblique(),
    );
    let series = vec![discover_one(&study)];
    let mut opened = open_study_project(&study, &series, None, None).unwrap();
    annotate_three_ways(&mut opened);
    let good = export(
        &mut opened,
        &series[0],
        &seg_request(&dir.path().join("seg"), false),
    );

    // The same study layout and size, another series.
    let other_dir = dir.path().join("other");
    ct_study(
        &other_dir,
        "1.2.826.0.1.3680043.10.543.41",
        6,
        16,
        12,
        oblique(),
    );
    let other_series = discover_one(&other_dir);
    let mut other =
        open_study_project(&other_dir, std::slice::from_ref(&other_series), None, None).unwrap();
    annotate_three_ways(&mut other);
    let foreign = export(
        &mut other,
        &other_series,
        &seg_request(&dir.path().join("foreign"), false),
    );

    let truncated = dir.path().join("truncated_seg.dcm");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();

    let small_nii = dir.path().join("small_labels.nii.gz");
    let mut small = study::LabelVolume::new([8, 12, 6]);
    small.labels[3] = 1;
    study::write_label_volume(
        &small_nii,
        &small,
        &study::VolumeGeometry::unit_grid([8, 12, 6]),
        &study::LabelSidecar::default(),
    )
    .unwrap();

    let png_dir = dir.path().join("png");
    std::fs::create_dir_all(&png_dir).unwrap();
    let png = png_dir.join("ct003.png");
    image::GrayImage::from_pixel(15, 12, image::Luma([255u8]))
        .save(&png)
        .unwrap();

    let before = state(&mut opened.project);
    let cases: [(&Path, &[&str]); 4] = [
        (&foreign, &["another series"]),
        (&small_nii, &["size 8×12×6", "16×12×6"]),
        (&png, &["15x12", "16x12"]),
        (&truncated, &[]),
    ];
    for (file, words) in cases {
        let path = if file == png { png_dir.as_path() } else { file };
        let result = import_labels(
            &mut opened.project,
            &series,
            &opened.items,
            &ImportRequest {
                path: path.to_path_buf(),
                ..ImportRequest::default()
            },
        );
        assert_refused(result, file, words, &mut opened.project, &before);
    }
    // The truncated file is a typed read error, not a panic.
    let err = seg::read_seg(&truncated).unwrap_err();
    assert!(
        matches!(
            err,
            StudyError::ParseDicom { .. }
                | StudyError::DeclaredLengthExceedsFile { .. }
                | StudyError::PixelDataLength { .. }
        ),
        "{err:?}"
    );

    // A real SEG (dcmqi's liver) made for a CT that is not this series.
    if let Some(liver) = common::shared_path("data/dicom/pydicom/liver.dcm") {
        let result = import_labels(
            &mut opened.project,
            &series,
            &opened.items,
            &ImportRequest {
                path: liver.clone(),
                ..ImportRequest::default()
            },
        );
        assert_refused(result, &liver, &["512x512"], &mut opened.project, &before);
    }
}

/// highdicom writes a FRACTIONAL and a BINARY segmentation of the generated series (its own
/// writer, not ours); both import by their Source Image references, the fractional one
/// thresholded at half its maximum.
const HIGHDICOM_WRITE: &str = r#"
import glob, os, sys
import numpy as np, pydicom, highdicom as hd
from pydicom.sr.codedict import codes
src_dir, out_dir = sys.argv[1:3]
srcs = [pydicom.dcmread(p) for p in sorted(glob.glob(os.path.join(src_dir, "*.dcm")))]
iop = np.array(srcs[0].ImageOrientationPatient, float)
normal = np.cross(iop[:3], iop[3:])
srcs.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal)))
rows, cols = srcs[0].Rows, srcs[0].Columns
frac = np.zeros((len(srcs), rows, cols), np.float32)
frac[2, 2:6, 3:9] = 0.7     # above the threshold
frac[2, 8:10, 3:9] = 0.3    # below it
frac[4, 0:3, 0:4] = 1.0
desc = hd.seg.SegmentDescription(
    segment_number=1, segment_label="Tumour",
    segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
    algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
for kind, data in (("FRACTIONAL", frac), ("BINARY", (frac >= 0.5).astype(np.uint8))):
    seg = hd.seg.Segmentation(
        source_images=srcs, pixel_array=data, segmentation_type=kind,
        segment_descriptions=[desc], series_instance_uid=hd.UID(), series_number=7,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="highdicom", software_versions="1", device_serial_number="1")
    seg.save_as(os.path.join(out_dir, kind.lower() + ".dcm"))
print("highdicom wrote", out_dir)
"#;

#[test]
fn fractional_and_binary_segs_from_highdicom_import_by_reference() {
    if labels::python_readers().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    ct_study(
        &study,
        "1.2.826.0.1.3680043.10.543.50",
        6,
        16,
        12,
        oblique(),
    );
    let series = vec![discover_one(&study)];
    let out = dir.path().join("hd");
    std::fs::create_dir_all(&out).unwrap();
    labels::run_python(HIGHDICOM_WRITE, &[&study, &out]);
    let mut results = Vec::new();
    for name in ["fractional.dcm", "binary.dcm"] {
        let mut opened = fresh_project(&dir.path().join(format!("{name}.m2c")), &study, &series);
        let summary = import_into(&mut opened, &series, &out.join(name));
        assert_eq!((summary.items, summary.masks), (2, 2), "{}", summary.line());
        assert_eq!(summary.new_classes, vec!["Tumour"]);
        let maps = label_maps(&mut opened.project);
        let tumour = opened
            .project
            .classes()
            .find(|c| c.name == "Tumour")
            .unwrap()
            .value;
        let slice2 = &maps[2].1;
        let at = |x: usize, y: usize| slice2[y * 16 + x];
        assert_eq!(
            (at(3, 2), at(8, 5), at(3, 8), at(0, 0)),
            (u16::from(tumour), u16::from(tumour), 0, 0)
        );
        assert_eq!(slice2.iter().filter(|&&v| v > 0).count(), 4 * 6);
        results.push(maps);
    }
    assert_eq!(
        results[0], results[1],
        "fractional ≥ 0.5 equals the binary object"
    );
}

/// The real head CT (28 slices, 18.5° gantry tilt, uneven spacing): its SEG places every frame
/// at its tilted source slice (pydicom, highdicom by reference, dciodvfy), a SEG made for
/// another CT (dcmqi's liver) is refused, and a NIfTI export imports back to the same labels.
#[test]
fn the_tilted_real_ct_exports_and_imports_its_labels() {
    let Some(ct) = common::shared_path("data/dicom/ct_head_series_ge") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let series = vec![discover_one(&ct)];
    assert!(!series[0].issues.is_empty(), "the real CT is tilted");
    let mut opened = fresh_project(&dir.path().join("ct.m2c"), &ct, &series);
    let p = &mut opened.project;
    p.set_class(labels::class(1, "Label 1")).unwrap();
    p.set_class(labels::class(2, "Bleed")).unwrap();
    let brush = m2c::annotation::Brush {
        radius_px: 20.0,
        erase: false,
    };
    for (k, class, x) in [
        (3usize, 1u8, 200.0f32),
        (10, 1, 260.0),
        (10, 2, 300.0),
        (27, 2, 256.0),
    ] {
        let id = opened.items[0][k];
        p.begin_stroke(id, class, brush).unwrap();
        p.stroke_to([x, 250.0]).unwrap();
        p.stroke_to([x + 30.0, 270.0]).unwrap();
        p.end_stroke().unwrap();
    }
    let ids = opened.items[0].clone();
    let seg_path = export(
        &mut opened,
        &series[0],
        &seg_request(&dir.path().join("seg"), false),
    );
    let colours: Vec<[u8; 3]> = (1..=2)
        .map(|v| opened.project.class(v).unwrap().colour)
        .collect();
    let segments = [
        segment("Label 1", "MANUAL", colours[0]),
        segment("Bleed", "MANUAL", colours[1]),
    ];
    let expect = expectation(&mut opened.project, &ids, &segments, &[1, 2], false, false);
    check_with_readers(&seg_path, &ct, &expect);

    let before = state(&mut opened.project);
    if let Some(liver) = common::shared_path("data/dicom/pydicom/liver.dcm") {
        let result = import_labels(
            &mut opened.project,
            &series,
            &opened.items,
            &ImportRequest {
                path: liver.clone(),
                ..ImportRequest::default()
            },
        );
        assert_refused(
            result,
            &liver,
            &["another series"],
            &mut opened.project,
            &before,
        );
    }

    let want = label_maps(&mut opened.project);
    let nifti = export(
        &mut opened,
        &series[0],
        &ExportRequest {
            format: ExportFormat::Nifti,
            allow_irregular: true,
            folder: dir.path().join("nii"),
            ..ExportRequest::default()
        },
    );
    let mut back = fresh_project(&dir.path().join("back.m2c"), &ct, &series);
    let summary = import_into(&mut back, &series, &nifti);
    assert_eq!(summary.items, 3, "{}", summary.line());
    assert_eq!(label_maps(&mut back.project), want);
    // And the SEG imports back to the same labels too.
    let mut from_seg = fresh_project(&dir.path().join("seg.m2c"), &ct, &series);
    import_into(&mut from_seg, &series, &seg_path);
    assert_eq!(label_maps(&mut from_seg.project), want);
}

#[test]
fn the_cli_exports_and_imports_labels_on_the_project_the_window_uses() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("ct");
    ct_study(
        &study,
        "1.2.826.0.1.3680043.10.543.60",
        6,
        16,
        12,
        oblique(),
    );
    let series = vec![discover_one(&study)];
    let mut opened = open_study_project(&study, &series, None, None).unwrap();
    annotate_three_ways(&mut opened);
    let want = named_maps(&mut opened.project);
    drop(opened);
    let m2c = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_m2c"))
            .args(args)
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let out = dir.path().join("out");
    let (code, text) = m2c(&[
        "export-labels".as_ref(),
        study.as_os_str(),
        "--format".as_ref(),
        "seg".as_ref(),
        "--type".as_ref(),
        "2=SCT:108369006:Neoplasm".as_ref(),
        "--deidentify".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let seg_path = out.join("ct001_seg.dcm");
    let read = seg::read_seg(&seg_path).unwrap();
    assert_eq!(read.segments[1].property_type.meaning, "Neoplasm");
    assert_eq!(read.frames.len(), 5);

    // Import into another copy of the study (its own project beside it).
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&study).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let (code, text) = m2c(&[
        "import-labels".as_ref(),
        copy.as_os_str(),
        seg_path.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Imported 5 mask(s) on 5 image(s)"), "{text}");
    let copy_series = vec![discover_one(&copy)];
    let mut back = open_study_project(&copy, &copy_series, None, None).unwrap();
    assert_eq!(named_maps(&mut back.project), want);
    drop(back);

    // A bad file: refused with the file named, exit status non-zero.
    let bogus = dir.path().join("notes.txt");
    std::fs::write(&bogus, "not labels").unwrap();
    let (code, text) = m2c(&[
        "import-labels".as_ref(),
        copy.as_os_str(),
        bogus.as_os_str(),
    ]);
    assert_ne!(code, Some(0));
    assert!(text.contains("notes.txt"), "{text}");
}
