//! Helpers for the label export/import tests: a synthetic CT study with patient attributes
//! (made-up values, no real person), a project with three labels made three ways, a snapshot
//! of a project's state to prove a refused import changed nothing, and the independent
//! readers (pydicom, highdicom, dciodvfy).
#![allow(dead_code)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_core::VR;
use dicom_dictionary_std::tags;
use m2c::annotation::{
    Brush, Edit, ItemId, LabelClass, Mask, Project, ProjectOptions, Provenance, ReviewState,
    StudyProject, Tool, default_class, open_study_project,
};
use m2c::study::{self, Series};

use crate::dicom_gen;

pub const STUDY_UID: &str = "1.2.826.0.1.3680043.10.543.1";
pub const FRAME_OF_REFERENCE: &str = "1.2.826.0.1.3680043.10.543.2";
pub const PATIENT_NAME: &str = "Synthetic^Test";
pub const PATIENT_ID: &str = "SYN-0001";

/// A CT series of `n` slices (`width × height`, 0.7 × 0.6 mm pixels, 2.5 mm apart) in the
/// orientation `iop`, written to `dir` with made-up patient and study attributes.
pub fn ct_study(
    dir: &Path,
    series_uid: &str,
    n: usize,
    width: u16,
    height: u16,
    iop: [f64; 6],
) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let normal = {
        let (r, c) = ([iop[0], iop[1], iop[2]], [iop[3], iop[4], iop[5]]);
        [
            r[1] * c[2] - r[2] * c[1],
            r[2] * c[0] - r[0] * c[2],
            r[0] * c[1] - r[1] * c[0],
        ]
    };
    (0..n)
        .map(|k| {
            let mut obj = dicom_gen::image(
                height,
                width,
                "CT",
                series_uid,
                &format!("{series_uid}.{}", k + 1),
            );
            let put = |o: &mut _, tag, vr, v: &str| dicom_gen::put_str(o, tag, vr, v);
            put(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, STUDY_UID);
            put(
                &mut obj,
                tags::FRAME_OF_REFERENCE_UID,
                VR::UI,
                FRAME_OF_REFERENCE,
            );
            put(&mut obj, tags::PATIENT_NAME, VR::PN, PATIENT_NAME);
            put(&mut obj, tags::PATIENT_ID, VR::LO, PATIENT_ID);
            put(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, "19700101");
            put(&mut obj, tags::PATIENT_SEX, VR::CS, "O");
            put(&mut obj, tags::STUDY_DATE, VR::DA, "20240102");
            put(&mut obj, tags::STUDY_TIME, VR::TM, "101500");
            put(&mut obj, tags::ACCESSION_NUMBER, VR::SH, "ACC-1");
            put(&mut obj, tags::STUDY_ID, VR::SH, "S1");
            put(&mut obj, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
            put(&mut obj, tags::SLICE_THICKNESS, VR::DS, "2.5");
            put(
                &mut obj,
                tags::INSTANCE_NUMBER,
                VR::IS,
                &format!("{}", k + 1),
            );
            let ipp = [
                -40.0 + 2.5 * k as f64 * normal[0],
                30.0 + 2.5 * k as f64 * normal[1],
                -12.0 + 2.5 * k as f64 * normal[2],
            ];
            dicom_gen::set_geometry(&mut obj, ipp, iop, [0.6, 0.7]);
            dicom_gen::set_rescale(&mut obj, 1.0, -1024.0);
            let values: Vec<i32> = (0..usize::from(width) * usize::from(height))
                .map(|i| (i % 97) as i32 + 20 * k as i32)
                .collect();
            dicom_gen::set_pixels_16(&mut obj, &values, 12, false);
            let path = dir.join(format!("ct{:03}.dcm", k + 1));
            dicom_gen::write(obj, &path, dicom_gen::EXPLICIT_LE);
            path
        })
        .collect()
}

/// 30° about the patient's z axis: an oblique plane, so positions and orientation are not
/// axis-aligned.
pub fn oblique() -> [f64; 6] {
    let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
    [c, s, 0.0, -s, c, 0.0]
}

pub fn discover_one(dir: &Path) -> Series {
    let mut found = study::discover(dir);
    assert_eq!(found.series.len(), 1, "skipped: {:?}", found.skipped);
    found.series.remove(0)
}

pub fn disc(size: m2c::annotation::ImageSize, centre: [f32; 2], radius: f32) -> Mask {
    let mut bytes = vec![0u8; size.area()];
    for y in 0..size.height {
        for x in 0..size.width {
            let (dx, dy) = (x as f32 - centre[0], y as f32 - centre[1]);
            if dx * dx + dy * dy <= radius * radius {
                bytes[(y * size.width + x) as usize] = 1;
            }
        }
    }
    Mask::from_bytes(size, bytes).unwrap()
}

pub fn class(value: u8, name: &str) -> LabelClass {
    LabelClass {
        name: name.to_owned(),
        ..default_class(value)
    }
}

/// Three labels made three ways on a series of at least 6 slices: "Liver" (1) painted by
/// hand on slices 1–2, "Lesion" (2) predicted by a concept and accepted on slices 3–4,
/// "Vessel" (3) predicted and not reviewed on slice 5. Slice 0 stays empty.
pub fn annotate_three_ways(opened: &mut StudyProject) {
    let p = &mut opened.project;
    let ids = opened.items[0].clone();
    p.set_class(class(1, "Liver")).unwrap();
    p.set_class(class(2, "Lesion")).unwrap();
    p.set_class(class(3, "Vessel")).unwrap();
    let brush = Brush {
        radius_px: 3.0,
        erase: false,
    };
    for (k, x) in [(1usize, 6.0f32), (2, 9.0)] {
        p.begin_stroke(ids[k], 1, brush).unwrap();
        p.stroke_to([x, 5.0]).unwrap();
        p.stroke_to([x + 4.0, 8.0]).unwrap();
        p.end_stroke().unwrap();
    }
    let size = p.item(ids[3]).unwrap().size();
    let model = Provenance::model(
        Tool::ConceptSearch,
        Some("concept-7f3a".to_owned()),
        Some("sha256:0123abcd".to_owned()),
    );
    for (k, centre) in [(3usize, [8.0, 6.0]), (4, [10.0, 7.0])] {
        p.apply(Edit::SetPrediction {
            item: ids[k],
            masks: vec![(2, disc(size, centre, 3.5))],
            state: ReviewState::Flagged,
            provenance: model.clone(),
        })
        .unwrap();
        p.apply(Edit::AcceptPrediction { item: ids[k] }).unwrap();
    }
    p.apply(Edit::SetPrediction {
        item: ids[5],
        masks: vec![(3, disc(size, [4.0, 4.0], 2.5))],
        state: ReviewState::Predicted,
        provenance: model,
    })
    .unwrap();
}

/// A project for `study` in `dir` (not the default folder beside the study), with the items
/// of `series` registered as the app registers them.
pub fn fresh_project(dir: &Path, study: &Path, series: &[Series]) -> StudyProject {
    let project = Project::create(dir, Some(study), ProjectOptions::default()).unwrap();
    open_study_project(study, series, None, Some(project)).unwrap()
}

/// Everything a user could see changed in a project: classes, and per item its state,
/// provenance and masks.
pub fn state(p: &mut Project) -> String {
    let mut out = format!("{:?}\n", p.classes().collect::<Vec<_>>());
    let ids: Vec<ItemId> = (0..p.items().len())
        .map(|i| p.find_item(p.items()[i].key()).unwrap())
        .collect();
    for id in ids {
        let item = p.item(id).unwrap();
        let provenance: Vec<_> = (1..=u8::MAX).filter_map(|c| item.provenance(c)).collect();
        out += &format!("{} {:?} {:?}\n", item.key(), item.state(), provenance);
        for (class, mask) in p.masks(id).unwrap() {
            out += &format!("  {class}: {:?}\n", crc(mask.as_bytes()));
        }
    }
    out += &format!("undo {:?}\n", p.undo_steps().0);
    out
}

fn crc(bytes: &[u8]) -> u64 {
    bytes.iter().enumerate().fold(0u64, |h, (i, &b)| {
        h.wrapping_mul(31)
            .wrapping_add(u64::from(b) * (i as u64 + 1))
    })
}

/// Whether the independent readers must be present: CI sets `M2C_REQUIRE_DICOM_TOOLS=1`
/// (`.ci/run` installs them), so a missing reader fails there instead of skipping.
fn required() -> bool {
    std::env::var_os("M2C_REQUIRE_DICOM_TOOLS").is_some_and(|v| v == "1")
}

/// `python3` with pydicom, highdicom and numpy, or `None` with a skip message.
pub fn python_readers() -> Option<()> {
    let ok = Command::new("python3")
        .args(["-c", "import pydicom, highdicom, numpy, nibabel"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !required(),
            "python3 with pydicom, highdicom, numpy and nibabel is required"
        );
        eprintln!(
            "SKIP: python3 with pydicom/highdicom/numpy/nibabel not available (pip install highdicom nibabel)"
        );
    }
    ok.then_some(())
}

/// Runs `script` with `args`; panics with its output when it fails.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// dciodvfy's verdict on `path`: its error lines (empty when valid), or `None` with a skip
/// message when dicom3tools is not installed.
pub fn dciodvfy_errors(path: &Path) -> Option<Vec<String>> {
    let out = match Command::new("dciodvfy").arg(path).output() {
        Ok(out) => out,
        Err(_) => {
            assert!(!required(), "dciodvfy (Debian dicom3tools) is required");
            eprintln!("SKIP: dciodvfy not installed (apt-get install dicom3tools)");
            return None;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("dciodvfy {}:\n{text}", path.display());
    Some(
        text.lines()
            .filter(|l| l.starts_with("Error"))
            .map(str::to_owned)
            .collect(),
    )
}
