//! Export round trips: series → NIfTI → independent readers (the `nifti` crate here, nibabel
//! and pydicom in Python when installed) agree on shape, affine (≤ 1e-4 mm), dtype and voxel
//! values; label volumes share the image affine and carry a sidecar; PNG masks reload
//! identical.

use crate::common;
use crate::dicom_gen;

use std::path::Path;
use std::process::Command;

use m2c::study::{self, LabelInfo, LabelMap, LabelSidecar, LabelVolume, MaskEncoding, Provenance};
use nifti::{IntoNdArray as _, NiftiObject as _, ReaderOptions};

const AFFINE_ATOL: f64 = 1e-4;

/// `python3` with nibabel (and numpy), or `None` with a skip message.
fn python_with(modules: &str) -> Option<()> {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: python3 with {modules} not available (pip install nibabel pydicom)");
    }
    ok.then_some(())
}

fn run_python(script: &str, args: &[&Path]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output();
    let Ok(out) = out else {
        panic!("python3 did not start: {out:?}");
    };
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "python check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks a NIfTI file against `expect.json`: shape, dtype, sform and qform affines, voxel
/// values (listed column-fastest) and the RAS position of given voxel indices.
const NIBABEL_CHECK: &str = r#"
import json, sys
import numpy as np, nibabel as nib
img = nib.load(sys.argv[1]); exp = json.load(open(sys.argv[2]))
data = np.asarray(img.dataobj)
assert list(data.shape) == exp["shape"], (data.shape, exp["shape"])
assert str(data.dtype) == exp["dtype"], data.dtype
aff = np.array(exp["affine"])
assert np.abs(img.affine - aff).max() <= 1e-4, img.affine
sform, scode = img.get_sform(coded=True)
qform, qcode = img.get_qform(coded=True)
assert int(scode) == 1 and int(qcode) == exp["qform_code"], (scode, qcode)
if qcode:
    assert np.abs(qform - aff).max() <= 1e-4, qform
want = np.array(exp["values"]).reshape(exp["shape"][::-1]).transpose()
assert np.array_equal(data, want.astype(data.dtype)), np.argwhere(data != want)[:5]
for ijk, ras in exp["points"]:
    got = img.affine @ np.array([*ijk, 1.0])
    assert np.abs(got[:3] - np.array(ras)).max() <= 1e-4, (ijk, got, ras)
if "intent" in exp:
    assert img.header.get_intent()[0] == exp["intent"], img.header.get_intent()
print("nibabel ok", data.shape, data.dtype)
"#;

fn lps_to_ras(p: [f64; 3]) -> [f64; 3] {
    [-p[0], -p[1], p[2]]
}

#[test]
fn generated_series_round_trips_through_nifti() {
    let dir = tempfile::tempdir().unwrap();
    // Oblique orientation (rotated 30° about z), so the affine has off-diagonal terms.
    let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
    let iop = [c, s, 0.0, -s, c, 0.0];
    let positions: Vec<[f64; 3]> = (0..3)
        .map(|k| [-10.0, 20.0, 1.5 * k as f64 - 7.0])
        .collect();
    dicom_gen::ct_series(dir.path(), "1.2.3.9", &positions, iop);
    let found = study::discover(dir.path());
    let series = &found.series[0];
    let geometry = series.export_geometry(false).unwrap();
    let volume = series.load_volume().unwrap();
    let out = dir.path().join("ct.nii.gz");
    study::write_image_volume(&out, &volume, geometry).unwrap();

    // Reader 1: the nifti crate.
    let obj = ReaderOptions::new().read_file(&out).unwrap();
    let h = obj.header();
    assert_eq!(&h.dim[..4], &[3, 5, 4, 3]);
    assert_eq!((h.datatype, h.sform_code, h.qform_code), (4, 1, 1));
    let ras = geometry.ras_from_voxel();
    for (r, row) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
        for (col, v) in row.iter().enumerate() {
            assert!(
                (f64::from(*v) - ras[r][col]).abs() <= AFFINE_ATOL,
                "srow {r},{col}"
            );
        }
    }
    let q = h.qform_affine::<f64>();
    for r in 0..3 {
        for col in 0..4 {
            assert!(
                (q[(r, col)] - ras[r][col]).abs() <= AFFINE_ATOL,
                "qform {r},{col}"
            );
        }
    }
    let data = obj.into_volume().into_ndarray::<f32>().unwrap();
    assert_eq!(data.shape(), &[5, 4, 3]);
    assert_eq!(data[[1, 2, 2]] as i32, dicom_gen::ct_value(1, 2, 2) - 1024);

    // Reader 2: nibabel.
    if python_with("nibabel, numpy").is_none() {
        return;
    }
    let points: Vec<_> = positions
        .iter()
        .enumerate()
        .map(|(k, p)| (vec![0.0, 0.0, k as f64], lps_to_ras(*p)))
        .collect();
    let expect = serde_json::json!({
        "shape": [5, 4, 3], "dtype": "int16", "affine": ras, "qform_code": 1,
        "values": volume.values, "points": points,
    });
    let exp_path = dir.path().join("expect.json");
    std::fs::write(&exp_path, expect.to_string()).unwrap();
    run_python(NIBABEL_CHECK, &[&out, &exp_path]);

    // Labels on the same grid: uint8, then uint16 when a label exceeds 255.
    let mut labels = LabelVolume::new(geometry.dims);
    labels.labels[7] = 1;
    labels.labels[59] = 2;
    let sidecar = LabelSidecar {
        labels: vec![
            LabelInfo {
                value: 1,
                name: "lesion".into(),
                color: [255, 0, 0],
            },
            LabelInfo {
                value: 2,
                name: "organ".into(),
                color: [0, 255, 0],
            },
        ],
        provenance: Provenance::for_series(series, false),
    };
    for (max, dtype) in [(2u16, "uint8"), (300, "uint16")] {
        labels.labels[59] = max;
        let lpath = dir.path().join(format!("labels{max}.nii.gz"));
        study::write_label_volume(&lpath, &labels, geometry, &sidecar).unwrap();
        let expect = serde_json::json!({
            "shape": [5, 4, 3], "dtype": dtype, "affine": ras, "qform_code": 1,
            "values": labels.labels, "points": points, "intent": "label",
        });
        std::fs::write(&exp_path, expect.to_string()).unwrap();
        run_python(NIBABEL_CHECK, &[&lpath, &exp_path]);
        let json = std::fs::read_to_string(study::sidecar_path(&lpath)).unwrap();
        let back: LabelSidecar = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sidecar);
        assert!(
            !json.contains("1.2.3.9"),
            "series UID must not be exported by default"
        );
    }
}

/// pydicom reads the real (tilted, unevenly spaced) CT series independently: voxel values
/// equal `pixel_array · slope + intercept`, and the first and last slices sit at their
/// ImagePositionPatient (the sheared sform is exact there; spacing in between is uneven).
const PYDICOM_CHECK: &str = r#"
import glob, os, sys
import numpy as np, nibabel as nib, pydicom
img = nib.load(sys.argv[1]); data = np.asarray(img.dataobj)
dss = [pydicom.dcmread(p) for p in glob.glob(os.path.join(sys.argv[2], "*.dcm"))]
iop = np.array(dss[0].ImageOrientationPatient, float)
n = np.cross(iop[:3], iop[3:])
dss.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), n)))
assert data.shape == (dss[0].Columns, dss[0].Rows, len(dss)), data.shape
for k, ds in enumerate(dss):
    want = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.array_equal(data[:, :, k].T, want), k
for k in (0, len(dss) - 1):
    ras = np.array(dss[k].ImagePositionPatient, float) * [-1, -1, 1]
    got = img.affine @ [0, 0, k, 1]
    assert np.abs(got[:3] - ras).max() <= 1e-4, (k, got, ras)
sp = [float(v) for v in dss[0].PixelSpacing]
col_end = img.affine @ [dss[0].Columns - 1, 0, 0, 1]
want = (np.array(dss[0].ImagePositionPatient, float) + iop[:3] * sp[1] * (dss[0].Columns - 1)) * [-1, -1, 1]
assert np.abs(col_end[:3] - want).max() <= 1e-4, (col_end, want)
print("pydicom ok", data.shape)
"#;

#[test]
fn real_ct_series_exports_with_its_affine() {
    let Some(dir) = common::shared_path("data/dicom/ct_head_series_ge") else {
        return;
    };
    let series = study::discover(&dir).series.remove(0);
    let geometry = series.export_geometry(true).unwrap();
    let volume = series.load_volume().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("ct.nii.gz");
    study::write_image_volume(&out, &volume, geometry).unwrap();
    let h = ReaderOptions::new()
        .read_file(&out)
        .unwrap()
        .header()
        .clone();
    assert_eq!(&h.dim[..4], &[3, 512, 512, 28]);
    // Tilted: the sform is sheared, so the qform is marked unknown.
    assert_eq!((h.sform_code, h.qform_code), (1, 0));
    if python_with("nibabel, numpy, pydicom").is_none() {
        return;
    }
    run_python(PYDICOM_CHECK, &[&out, &dir]);
}

#[test]
fn png_masks_reload_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (37u32, 23u32);
    let labels: Vec<u16> = (0..w * h).map(|i| u16::try_from(i % 5).unwrap()).collect();
    let mask = LabelMap {
        width: w,
        height: h,
        labels,
    };
    let path = study::mask_path_for(
        Path::new("images/cju0qkwl35piu0993l0dewei2.jpg"),
        None,
        dir.path(),
    );
    study::write_mask_png(&path, &mask, MaskEncoding::LabelValues).unwrap();
    assert_eq!(study::read_mask_png(&path).unwrap(), mask);
    study::write_mask_png(&path, &mask, MaskEncoding::Binary).unwrap();
    let binary = study::read_mask_png(&path).unwrap();
    assert!(
        binary
            .labels
            .iter()
            .zip(&mask.labels)
            .all(|(b, m)| *b == if *m > 0 { 255 } else { 0 })
    );
    // The reloaded mask is also a valid raster image for discovery.
    let found = study::discover(&path);
    assert_eq!((found.series[0].width, found.series[0].height), (w, h));
}
