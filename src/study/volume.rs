//! Whole-series volumes: decoded image values and label volumes, both stored column-fastest
//! (`index = i + columns · (j + rows · k)`), the order NIfTI stores voxels in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::study::geometry::{GeometryIssue, VolumeGeometry};
use crate::study::{LabelMap, Pixels, Result, Series, SeriesKind, StudyError, dicom, raster};

/// A decoded grayscale series: physical values (HU for CT) on the series' grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageVolume {
    /// (columns, rows, slices).
    pub dims: [usize; 3],
    /// `dims[0] · dims[1] · dims[2]` values, column fastest.
    pub values: Vec<f32>,
    pub geometry: Option<VolumeGeometry>,
    pub issues: Vec<GeometryIssue>,
    pub modality: Option<String>,
}

/// A label volume (0 = background) on a series' grid, column fastest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelVolume {
    /// (columns, rows, slices).
    pub dims: [usize; 3],
    pub labels: Vec<u16>,
}

impl LabelVolume {
    /// An all-background volume.
    pub fn new(dims: [usize; 3]) -> Self {
        let len = dims.iter().product();
        Self {
            dims,
            labels: vec![0; len],
        }
    }

    /// Stacks per-slice label maps (in the series' slice order); every map must be
    /// `width × height`.
    pub fn from_slices(maps: &[LabelMap]) -> Option<Self> {
        let first = maps.first()?;
        let (w, h) = (first.width, first.height);
        if maps
            .iter()
            .any(|m| (m.width, m.height) != (w, h) || m.labels.len() != first.labels.len())
        {
            return None;
        }
        let dims = [
            usize::try_from(w).ok()?,
            usize::try_from(h).ok()?,
            maps.len(),
        ];
        let labels = maps.iter().flat_map(|m| m.labels.iter().copied()).collect();
        Some(Self { dims, labels })
    }

    /// The label map of slice `k`.
    pub fn slice(&self, k: usize) -> Option<LabelMap> {
        let per = self.dims[0].checked_mul(self.dims[1])?;
        let start = per.checked_mul(k)?;
        let labels = self.labels.get(start..start.checked_add(per)?)?.to_vec();
        Some(LabelMap {
            width: u32::try_from(self.dims[0]).ok()?,
            height: u32::try_from(self.dims[1]).ok()?,
            labels,
        })
    }
}

pub(crate) fn load_volume(series: &Series) -> Result<ImageVolume> {
    let width = usize::try_from(series.width).unwrap_or(0);
    let height = usize::try_from(series.height).unwrap_or(0);
    let per_slice = width * height;
    let dims = [width, height, series.frames.len()];
    let mut values = vec![0.0f32; per_slice * series.frames.len()];
    // Frames of one file are decoded together so multi-frame objects are opened once.
    let mut by_file: BTreeMap<&PathBuf, Vec<(usize, u32)>> = BTreeMap::new();
    for (k, f) in series.frames.iter().enumerate() {
        by_file.entry(&f.path).or_default().push((k, f.frame));
    }
    for (path, wanted) in by_file {
        let frame_ids: Vec<u32> = wanted.iter().map(|&(_, f)| f).collect();
        let slices = match series.kind {
            SeriesKind::Raster => vec![raster::load_raster(path)?],
            SeriesKind::Dicom => dicom::decode_frames(path, &frame_ids)?,
        };
        for (&(k, _), slice) in wanted.iter().zip(slices) {
            if (slice.width, slice.height) != (series.width, series.height) {
                return Err(StudyError::SizeMismatch {
                    path: path.clone(),
                    expected_width: series.width,
                    expected_height: series.height,
                    found_width: slice.width,
                    found_height: slice.height,
                });
            }
            let Pixels::Gray(gray) = slice.pixels else {
                return Err(StudyError::UnsupportedPixelFormat {
                    path: path.clone(),
                    reason: "colour images do not form a scalar volume".to_owned(),
                });
            };
            let dst = values
                .get_mut(k * per_slice..(k + 1) * per_slice)
                .filter(|d| d.len() == gray.len());
            let Some(dst) = dst else {
                return Err(StudyError::PixelDataLength {
                    path: path.clone(),
                    expected: per_slice,
                    found: gray.len(),
                });
            };
            dst.copy_from_slice(&gray);
        }
    }
    tracing::debug!(slices = dims[2], "volume decoded");
    Ok(ImageVolume {
        dims,
        values,
        geometry: series.geometry.clone(),
        issues: series.issues.clone(),
        modality: series.modality.clone(),
    })
}
