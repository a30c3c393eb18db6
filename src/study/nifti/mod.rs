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

mod header;
mod read;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use self::header::{DataType, Intent, header_bytes};
pub use self::read::{GRID_TOLERANCE_MM, read_label_volume, read_sidecar};

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
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    fn sidecar_path_replaces_nifti_suffix() {
        assert_eq!(sidecar_path(Path::new("o/l.nii.gz")), Path::new("o/l.json"));
        assert_eq!(sidecar_path(Path::new("l.nii")), Path::new("l.json"));
    }
}
