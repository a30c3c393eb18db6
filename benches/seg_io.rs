//! DICOM SEG export and import of a 140-slice study with 3 labels on every slice (420 frames
//! of 512², the largest such object), on a synthetic CT series written once into a temporary
//! folder (values are made up; no patient data). Prints the size of the written SEG.
#![allow(clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use m2c::annotation::{
    Edit, ExportFormat, ExportRequest, ImageSize, ImportRequest, Mask, Project, ProjectOptions,
    Provenance, StudyProject, default_class, export_labels, import_labels, open_study_project,
};
use m2c::study::{self, Series};

const SLICES: usize = 140;
const SIDE: u16 = 512;

fn main() {
    divan::main();
}

fn put(obj: &mut InMemDicomObject, tag: dicom_core::Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn write_series(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let pixels: Vec<u16> = (0..usize::from(SIDE) * usize::from(SIDE))
        .map(|i| (i % 1000) as u16)
        .collect();
    for k in 0..SLICES {
        let mut obj = InMemDicomObject::new_empty();
        put(
            &mut obj,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::CT_IMAGE_STORAGE,
        );
        put(
            &mut obj,
            tags::SOP_INSTANCE_UID,
            VR::UI,
            &format!("1.2.826.0.1.3680043.10.543.900.{}", k + 1),
        );
        put(
            &mut obj,
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.543.901",
        );
        put(
            &mut obj,
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.543.902",
        );
        put(
            &mut obj,
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.543.903",
        );
        put(&mut obj, tags::MODALITY, VR::CS, "CT");
        put(&mut obj, tags::PATIENT_NAME, VR::PN, "Bench^Synthetic");
        put(&mut obj, tags::PATIENT_ID, VR::LO, "BENCH-1");
        put(
            &mut obj,
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            &format!("-128\\-128\\{}", k as f64 * 1.25),
        );
        put(
            &mut obj,
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            "1\\0\\0\\0\\1\\0",
        );
        put(&mut obj, tags::PIXEL_SPACING, VR::DS, "0.5\\0.5");
        put(&mut obj, tags::SLICE_THICKNESS, VR::DS, "1.25");
        put(
            &mut obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2",
        );
        for (tag, v) in [
            (tags::SAMPLES_PER_PIXEL, 1u16),
            (tags::ROWS, SIDE),
            (tags::COLUMNS, SIDE),
            (tags::BITS_ALLOCATED, 16),
            (tags::BITS_STORED, 12),
            (tags::HIGH_BIT, 11),
            (tags::PIXEL_REPRESENTATION, 0),
        ] {
            obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        }
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(pixels.clone().into()),
        ));
        let file = obj
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
            .unwrap();
        file.write_to_file(dir.join(format!("ct{:03}.dcm", k + 1)))
            .unwrap();
    }
}

fn disc(size: ImageSize, cx: f32, cy: f32, r: f32) -> Mask {
    let mut bytes = vec![0u8; size.area()];
    for y in 0..size.height {
        for x in 0..size.width {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            bytes[(y * size.width + x) as usize] = u8::from(dx * dx + dy * dy <= r * r);
        }
    }
    Mask::from_bytes(size, bytes).unwrap()
}

/// The study, its series and a project with 3 labels on every slice.
struct Fixture {
    _dir: tempfile::TempDir,
    study: std::path::PathBuf,
    series: Vec<Series>,
    opened: StudyProject,
    seg: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let study_dir = dir.path().join("ct");
    write_series(&study_dir);
    let series = study::discover(&study_dir).series;
    let mut opened = open_study_project(&study_dir, &series, None, None).unwrap();
    let size = ImageSize::new(u32::from(SIDE), u32::from(SIDE)).unwrap();
    let mut masks = Vec::new();
    for (k, &item) in opened.items[0].iter().enumerate() {
        let t = k as f32;
        masks.push((item, 1, disc(size, 256.0, 256.0, 60.0 + t * 0.5)));
        masks.push((item, 2, disc(size, 150.0 + t, 300.0, 30.0)));
        masks.push((item, 3, disc(size, 350.0, 150.0 + t, 20.0)));
    }
    opened
        .project
        .apply(Edit::ImportMasks {
            classes: (2..=3).map(default_class).collect(),
            masks,
            provenance: Provenance::manual(m2c::annotation::Tool::Brush),
        })
        .unwrap();
    opened.project.save().unwrap();
    let seg = dir.path().join("seg");
    let summary = export(&mut opened, &series, &seg);
    let path = summary.written[0].clone();
    let bytes = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "SEG of {SLICES} slices × 3 labels: {} frames of {SIDE}², {bytes} bytes ({:.1} MiB)",
        SLICES * 3,
        bytes as f64 / (1 << 20) as f64
    );
    Fixture {
        _dir: dir,
        study: study_dir,
        series,
        opened,
        seg: path,
    }
}

fn export(
    opened: &mut StudyProject,
    series: &[Series],
    folder: &Path,
) -> m2c::annotation::ExportSummary {
    let request = ExportRequest {
        format: ExportFormat::Seg,
        folder: folder.to_path_buf(),
        ..ExportRequest::default()
    };
    export_labels(
        &mut opened.project,
        series,
        &opened.items,
        &request,
        &|_, _| {},
    )
    .unwrap()
}

#[divan::bench(sample_count = 5)]
fn seg_export_140_slices_3_labels(bencher: divan::Bencher) {
    let mut f = fixture();
    let out = f.seg.parent().unwrap().join("bench");
    bencher.bench_local(|| export(&mut f.opened, &f.series, &out));
}

#[divan::bench(sample_count = 5)]
fn seg_import_140_slices_3_labels(bencher: divan::Bencher) {
    let f = fixture();
    let mut n = 0;
    bencher
        .with_inputs(|| {
            n += 1;
            let dir = f.seg.parent().unwrap().join(format!("import-{n}.m2c"));
            let project = Project::create(&dir, Some(&f.study), ProjectOptions::default()).unwrap();
            open_study_project(&f.study, &f.series, None, Some(project)).unwrap()
        })
        .bench_local_values(|mut opened: StudyProject| {
            let request = ImportRequest {
                path: f.seg.clone(),
                ..ImportRequest::default()
            };
            import_labels(&mut opened.project, &f.series, &opened.items, &request).unwrap()
        });
}
