//! NIfTI-1 writing (`.nii` or `.nii.gz`): label volumes (uint8/uint16, with a JSON sidecar)
//! and image volumes (int16 when every value is an integer in range, else float32), both with
//! the source series' affine converted from DICOM LPS to NIfTI RAS.
//!
//! A small writer of our own rather than the `nifti` crate's: it controls exactly which codes
//! are set and never panics on a sheared (gantry-tilted) affine. The layout follows
//! `nifti1.h`: a 348-byte little-endian header, 4 bytes of (empty) extension flag, data at
//! offset 352. `sform` (code 1, scanner anatomical) carries the exact affine, `qform` (code 1)
//! the same rotation as a quaternion; when the affine is sheared a quaternion cannot express
//! it, so `qform_code` is 0 and readers use the sform. Both the `nifti` crate and nibabel read
//! these files back in the tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::study::geometry::{Affine, Vec3, cross, dot, norm, normalize, scale};
use crate::study::mask_png::temp_path;
use crate::study::{ImageVolume, LabelVolume, Result, Series, StudyError, VolumeGeometry};

/// One label value's meaning, for the sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelInfo {
    pub value: u16,
    pub name: String,
    /// sRGB display colour.
    pub color: [u8; 3],
}

/// Where a label volume came from. Identifiers are absent unless the user opted in.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// Writing software and version, e.g. `m2c 0.1.0`.
    pub software: String,
    /// How the labels were made (e.g. "SAM3 concept search, reviewed").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_modality: Option<String>,
    /// (columns, rows, slices) of the source series.
    pub source_dims: [usize; 3],
    /// SeriesInstanceUID: only when the user opted in to identifiers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_series_uid: Option<String>,
}

impl Provenance {
    /// Provenance for labels drawn on `series`; the series UID is included only when
    /// `include_identifiers` is true.
    pub fn for_series(series: &Series, include_identifiers: bool) -> Self {
        Self {
            software: format!("m2c {}", env!("CARGO_PKG_VERSION")),
            method: None,
            source_modality: series.modality.clone(),
            source_dims: [
                usize::try_from(series.width).unwrap_or(0),
                usize::try_from(series.height).unwrap_or(0),
                series.frames.len(),
            ],
            source_series_uid: include_identifiers.then(|| series.key.clone()),
        }
    }
}

/// The JSON written next to a label volume: value → name and colour, plus provenance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LabelSidecar {
    pub labels: Vec<LabelInfo>,
    pub provenance: Provenance,
}

/// `x.nii.gz` / `x.nii` → `x.json`.
pub fn sidecar_path(nifti_path: &Path) -> PathBuf {
    let name = nifti_path.file_name().unwrap_or_default().to_string_lossy();
    let stem = name
        .strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))
        .unwrap_or(&name);
    nifti_path.with_file_name(format!("{stem}.json"))
}

impl Series {
    /// The grid to export this series (or labels drawn on it) with. Fails with
    /// [`StudyError::NoGeometry`] for 2D images and series without positions, and with
    /// [`StudyError::IrregularGeometry`] for tilt, uneven spacing or duplicates unless
    /// `allow_irregular` (tilt is then exact through a sheared sform; uneven spacing uses the
    /// mean step).
    pub fn export_geometry(&self, allow_irregular: bool) -> Result<&VolumeGeometry> {
        let path = self.first_path().map(Path::to_path_buf).unwrap_or_default();
        let Some(geometry) = &self.geometry else {
            return Err(StudyError::NoGeometry {
                path,
                reason: match self.issues.first() {
                    Some(issue) => issue.to_string(),
                    None => {
                        "no ImagePositionPatient/ImageOrientationPatient/PixelSpacing".to_owned()
                    }
                },
            });
        };
        if !self.issues.is_empty() && !allow_irregular {
            return Err(StudyError::IrregularGeometry {
                path,
                issues: self.issues.clone(),
            });
        }
        Ok(geometry)
    }
}

/// Writes a label volume (uint8 if every label ≤ 255, else uint16) and its JSON sidecar.
pub fn write_label_volume(
    path: &Path,
    labels: &LabelVolume,
    geometry: &VolumeGeometry,
    sidecar: &LabelSidecar,
) -> Result<()> {
    check_shape(path, labels.dims, labels.labels.len(), geometry)?;
    let max = labels.labels.iter().copied().max().unwrap_or(0);
    let (datatype, data): (DataType, Vec<u8>) = if max <= 255 {
        let bytes = labels
            .labels
            .iter()
            .map(|&v| u8::try_from(v).unwrap_or(u8::MAX))
            .collect();
        (DataType::U8, bytes)
    } else {
        let bytes = labels.labels.iter().flat_map(|v| v.to_le_bytes()).collect();
        (DataType::U16, bytes)
    };
    let header = header_bytes(path, geometry, datatype, Intent::Label)?;
    write_nifti(path, &header, &data)?;
    let json_path = sidecar_path(path);
    let json = serde_json::to_vec_pretty(sidecar).map_err(|source| StudyError::WriteSidecar {
        path: json_path.clone(),
        source,
    })?;
    write_atomic(&json_path, &json)?;
    tracing::info!(labels = sidecar.labels.len(), "label volume written");
    Ok(())
}

/// Writes an image volume: int16 when every value is an integer in range (CT in HU), float32
/// otherwise (MR with fractional rescale). `geometry` is usually
/// [`Series::export_geometry`]'s.
pub fn write_image_volume(
    path: &Path,
    volume: &ImageVolume,
    geometry: &VolumeGeometry,
) -> Result<()> {
    check_shape(path, volume.dims, volume.values.len(), geometry)?;
    let fits_i16 = volume
        .values
        .iter()
        .all(|v| v.fract() == 0.0 && (-32768.0..=32767.0).contains(v));
    let (datatype, data): (DataType, Vec<u8>) = if fits_i16 {
        // Exact: every value was checked to be an integer within i16's range.
        let bytes = volume
            .values
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect();
        (DataType::I16, bytes)
    } else {
        let bytes = volume.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        (DataType::F32, bytes)
    };
    let header = header_bytes(path, geometry, datatype, Intent::None)?;
    write_nifti(path, &header, &data)?;
    tracing::info!(slices = volume.dims[2], "image volume written");
    Ok(())
}

fn check_shape(path: &Path, dims: [usize; 3], len: usize, geometry: &VolumeGeometry) -> Result<()> {
    let expected = dims.iter().product::<usize>();
    if dims != geometry.dims || len != expected || expected == 0 {
        return Err(StudyError::ShapeMismatch {
            path: path.to_path_buf(),
            dims: geometry.dims,
            expected: geometry.dims.iter().product(),
            found: len,
        });
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum DataType {
    U8,
    I16,
    U16,
    F32,
}

impl DataType {
    /// (NIfTI datatype code, bits per voxel).
    fn codes(self) -> (i16, i16) {
        match self {
            Self::U8 => (2, 8),
            Self::I16 => (4, 16),
            Self::F32 => (16, 32),
            Self::U16 => (512, 16),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Intent {
    None,
    Label,
}

/// Header bytes (348) plus the 4-byte empty extension flag.
fn header_bytes(
    path: &Path,
    geometry: &VolumeGeometry,
    datatype: DataType,
    intent: Intent,
) -> Result<Vec<u8>> {
    let mut h = vec![0u8; 352];
    let mut put = |offset: usize, bytes: &[u8]| {
        if let Some(dst) = h.get_mut(offset..offset + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    };
    let dim = |d: usize| {
        i16::try_from(d).map_err(|_| StudyError::ShapeMismatch {
            path: path.to_path_buf(),
            dims: geometry.dims,
            expected: 32767,
            found: d,
        })
    };
    let [nx, ny, nz] = [
        dim(geometry.dims[0])?,
        dim(geometry.dims[1])?,
        dim(geometry.dims[2])?,
    ];
    put(0, &348i32.to_le_bytes());
    put(38, b"r");
    for (i, d) in [3, nx, ny, nz, 1, 1, 1, 1].iter().enumerate() {
        put(40 + 2 * i, &d.to_le_bytes());
    }
    if intent == Intent::Label {
        put(68, &1002i16.to_le_bytes()); // NIFTI_INTENT_LABEL
        put(328, b"labels");
    }
    let (code, bitpix) = datatype.codes();
    put(70, &code.to_le_bytes());
    put(72, &bitpix.to_le_bytes());
    let ras = geometry.ras_from_voxel();
    let q = Qform::from_affine(&ras);
    let pixdim = [
        q.qfac,
        q.pixdim[0],
        q.pixdim[1],
        q.pixdim[2],
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for (i, p) in pixdim.iter().enumerate() {
        put(76 + 4 * i, &(*p as f32).to_le_bytes());
    }
    put(108, &352f32.to_le_bytes()); // vox_offset
    put(112, &1f32.to_le_bytes()); // scl_slope
    put(123, &[2]); // xyzt_units: mm
    put(148, b"m2c");
    put(252, &i16::from(q.exact).to_le_bytes()); // qform_code: scanner anat, or unknown
    put(254, &1i16.to_le_bytes()); // sform_code: scanner anat
    for (i, v) in q.quatern.iter().chain(&q.offset).enumerate() {
        put(256 + 4 * i, &(*v as f32).to_le_bytes());
    }
    for (r, row) in ras.iter().take(3).enumerate() {
        for (c, v) in row.iter().enumerate() {
            put(280 + 16 * r + 4 * c, &(*v as f32).to_le_bytes());
        }
    }
    put(344, b"n+1\0");
    Ok(h)
}

/// The quaternion form of an affine (nifti1_io.c `nifti_mat44_to_quatern`).
struct Qform {
    quatern: Vec3,
    offset: Vec3,
    pixdim: Vec3,
    qfac: f64,
    /// False when the affine is sheared and the quaternion is only its nearest rotation.
    exact: bool,
}

impl Qform {
    fn from_affine(m: &Affine) -> Self {
        let col = |c: usize| [m[0][c], m[1][c], m[2][c]];
        let (c0, c1, c2) = (col(0), col(1), col(2));
        let u0 = normalize(c0).unwrap_or([1.0, 0.0, 0.0]);
        let u1 = normalize(c1).unwrap_or([0.0, 1.0, 0.0]);
        let mut n = normalize(cross(u0, u1)).unwrap_or([0.0, 0.0, 1.0]);
        let u2 = normalize(c2).unwrap_or(n);
        let exact = dot(u0, u1).abs() < 1e-5 && (dot(u2, n).abs() - 1.0).abs() < 1e-5;
        if dot(u2, n) < 0.0 {
            n = scale(n, -1.0);
        }
        // Along the normal: the slice spacing even when the step is tilted.
        let pixdim = [norm(c0), norm(c1), dot(c2, n).abs()];
        let qfac = if dot(cross(u0, u1), n) < 0.0 {
            -1.0
        } else {
            1.0
        };
        let r3 = scale(n, qfac);
        let r = [
            [u0[0], u1[0], r3[0]],
            [u0[1], u1[1], r3[1]],
            [u0[2], u1[2], r3[2]],
        ];
        Self {
            quatern: quaternion(&r),
            offset: [m[0][3], m[1][3], m[2][3]],
            pixdim,
            qfac,
            exact,
        }
    }
}

/// (b, c, d) of the unit quaternion of a proper rotation matrix, with a ≥ 0.
fn quaternion(r: &[[f64; 3]; 3]) -> Vec3 {
    let [[r11, r12, r13], [r21, r22, r23], [r31, r32, r33]] = *r;
    let a = r11 + r22 + r33 + 1.0;
    let (a, b, c, d) = if a > 0.5 {
        let a = 0.5 * a.sqrt();
        (
            a,
            0.25 * (r32 - r23) / a,
            0.25 * (r13 - r31) / a,
            0.25 * (r21 - r12) / a,
        )
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            let b = 0.5 * xd.sqrt();
            (
                0.25 * (r32 - r23) / b,
                b,
                0.25 * (r12 + r21) / b,
                0.25 * (r13 + r31) / b,
            )
        } else if yd > 1.0 {
            let c = 0.5 * yd.sqrt();
            (
                0.25 * (r13 - r31) / c,
                0.25 * (r12 + r21) / c,
                c,
                0.25 * (r23 + r32) / c,
            )
        } else {
            let d = 0.5 * zd.sqrt();
            (
                0.25 * (r21 - r12) / d,
                0.25 * (r13 + r31) / d,
                0.25 * (r23 + r32) / d,
                d,
            )
        }
    };
    if a < 0.0 { [-b, -c, -d] } else { [b, c, d] }
}

fn write_nifti(path: &Path, header: &[u8], data: &[u8]) -> Result<()> {
    let gz = path.to_string_lossy().ends_with(".gz");
    let bytes = if gz {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(header)
            .and_then(|()| enc.write_all(data))
            .and_then(|()| enc.finish())
            .map_err(|source| StudyError::WriteFile {
                path: path.to_path_buf(),
                source,
            })?
    } else {
        [header, data].concat()
    };
    write_atomic(path, &bytes)
}

/// Writes to `<path>.tmp`, then renames.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let err = |source| StudyError::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        StudyError::WriteFile {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternion_of_identity_and_flips() {
        let id = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert_eq!(quaternion(&id), [0.0, 0.0, 0.0]);
        // 180° about z: LPS→RAS for an axial DICOM slice.
        let rz = [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
        assert_eq!(quaternion(&rz), [0.0, 0.0, 1.0]);
    }

    #[test]
    fn qform_flags_sheared_affine_and_keeps_slice_spacing() {
        let t = 0.3f64;
        let m = [
            [-0.5, 0.0, 0.0, 1.0],
            [0.0, -0.5, -2.0 * t.sin(), 2.0],
            [0.0, 0.0, 2.0 * t.cos(), 3.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let q = Qform::from_affine(&m);
        assert!(!q.exact);
        assert!((q.pixdim[2] - 2.0 * t.cos()).abs() < 1e-12);
        assert_eq!(q.offset, [1.0, 2.0, 3.0]);
        assert_eq!(q.qfac, 1.0);
    }

    #[test]
    fn sidecar_path_replaces_nifti_suffix() {
        assert_eq!(sidecar_path(Path::new("o/l.nii.gz")), Path::new("o/l.json"));
        assert_eq!(sidecar_path(Path::new("l.nii")), Path::new("l.json"));
    }
}
