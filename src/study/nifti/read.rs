//! Reading a NIfTI-1 label volume back onto a series' grid.
//!
//! The header is read first and checked against the series: same size, and the same voxel →
//! patient mapping within [`GRID_TOLERANCE_MM`] at every corner of the grid. A volume of
//! another size, spacing, orientation or position is refused with the reason; it is never
//! resampled. The sform is used when its code is set, else the qform (computed here from the
//! quaternion, refusing invalid values rather than panicking); a file with neither is refused.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use nifti::{IntoNdArray as _, NiftiHeader, NiftiObject as _, ReaderOptions};

use super::{LabelSidecar, sidecar_path};
use crate::study::geometry::{Affine, Vec3, dot, norm, normalize};
use crate::study::{LabelVolume, Result, StudyError, VolumeGeometry};

/// Largest distance (mm) between where the file and the series put a corner of the grid.
/// Covers float32 storage of the affine and the rounding of other writers' spacing.
pub const GRID_TOLERANCE_MM: f64 = 0.05;

/// Reads the label volume at `path` if it lies on `geometry`'s grid.
pub fn read_label_volume(path: &Path, geometry: &VolumeGeometry) -> Result<LabelVolume> {
    let read_error = |source| StudyError::ReadNifti {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let header = NiftiHeader::from_file(path).map_err(read_error)?;
    let dims = check_header(path, &header, geometry)?;
    let object = ReaderOptions::new().read_file(path).map_err(read_error)?;
    // Data read from a file must give errors, never panics: guard the crate's conversion.
    let data = catch_unwind(AssertUnwindSafe(|| {
        object.into_volume().into_ndarray::<f64>()
    }))
    .map_err(|_| StudyError::InvalidLabels {
        path: path.to_path_buf(),
        reason: "the voxel data could not be decoded".to_owned(),
    })?
    .map_err(read_error)?;
    let expected: usize = dims.iter().product();
    if data.len() != expected {
        return Err(StudyError::ShapeMismatch {
            path: path.to_path_buf(),
            dims,
            expected,
            found: data.len(),
        });
    }
    // The array is indexed (i, j, k[, t]); reversed, its logical order runs i fastest, the
    // order of LabelVolume.
    let mut labels = Vec::with_capacity(expected);
    for &v in data.reversed_axes().iter() {
        if !(v.is_finite() && v.fract() == 0.0 && (0.0..=65535.0).contains(&v)) {
            return Err(StudyError::InvalidLabels {
                path: path.to_path_buf(),
                reason: format!("voxel value {v} is not a label number (0–65535)"),
            });
        }
        // Checked above to be an integer in u16's range.
        labels.push(v as u16);
    }
    Ok(LabelVolume { dims, labels })
}

/// The JSON sidecar written with a label volume (names and colours), if there is one.
pub fn read_sidecar(nifti_path: &Path) -> Option<LabelSidecar> {
    let bytes = std::fs::read(sidecar_path(nifti_path)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Checks the header's size and mapping against `geometry`; returns the size.
fn check_header(path: &Path, h: &NiftiHeader, geometry: &VolumeGeometry) -> Result<[usize; 3]> {
    let mismatch = |reason: String| StudyError::GridMismatch {
        path: path.to_path_buf(),
        reason,
    };
    let rank = usize::from(h.dim[0]);
    let extra = h.dim.get(4..=rank.min(7)).unwrap_or(&[]);
    if !(1..=7).contains(&rank) || extra.iter().any(|&d| d > 1) {
        return Err(mismatch(format!(
            "a {rank}-dimensional image of size {:?}; a label volume has three dimensions",
            h.dim.get(1..=rank.min(7)).unwrap_or(&[])
        )));
    }
    let dim = |i: usize| if i <= rank { usize::from(h.dim[i]) } else { 1 };
    let dims = [dim(1), dim(2), dim(3)];
    if dims != geometry.dims {
        let [a, b, c] = dims;
        let [x, y, z] = geometry.dims;
        return Err(mismatch(format!(
            "size {a}×{b}×{c}, the series is {x}×{y}×{z}"
        )));
    }
    let ras = if h.sform_code > 0 {
        sform(h)
    } else if h.qform_code > 0 {
        qform(h).ok_or_else(|| mismatch("its qform is invalid".to_owned()))?
    } else {
        return Err(mismatch(
            "it has no patient orientation: sform and qform codes are both 0".to_owned(),
        ));
    };
    match grid_difference(&ras, geometry) {
        Some(reason) => Err(mismatch(reason)),
        None => Ok(dims),
    }
}

fn sform(h: &NiftiHeader) -> Affine {
    let row = |r: [f32; 4]| r.map(f64::from);
    [
        row(h.srow_x),
        row(h.srow_y),
        row(h.srow_z),
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// The qform affine of `nifti1.h` (quaternion b, c, d; a = √(1 − b² − c² − d²)), or `None`
/// for a non-unit quaternion or a negative spacing.
fn qform(h: &NiftiHeader) -> Option<Affine> {
    let [b, c, d] = [h.quatern_b, h.quatern_c, h.quatern_d].map(f64::from);
    let a2 = 1.0 - (b * b + c * c + d * d);
    let valid = a2.is_finite() && a2 > -1e-6;
    if !valid {
        return None;
    }
    let a = a2.max(0.0).sqrt();
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let [_, dx, dy, dz] = [h.pixdim[0], h.pixdim[1], h.pixdim[2], h.pixdim[3]].map(f64::from);
    if !(dx > 0.0 && dy > 0.0 && dz > 0.0) {
        return None;
    }
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let scale = [dx, dy, dz * qfac];
    let offset = [h.quatern_x, h.quatern_y, h.quatern_z].map(f64::from);
    let mut m = [[0.0; 4]; 4];
    for (row, (rot, off)) in m.iter_mut().zip(r.iter().zip(offset)) {
        for col in 0..3 {
            row[col] = rot[col] * scale[col];
        }
        row[3] = off;
    }
    m[3][3] = 1.0;
    Some(m)
}

fn apply(m: &Affine, ijk: Vec3) -> Vec3 {
    let mut out = [0.0; 3];
    for (r, o) in out.iter_mut().enumerate() {
        *o = m[r][0] * ijk[0] + m[r][1] * ijk[1] + m[r][2] * ijk[2] + m[r][3];
    }
    out
}

/// `None` when `ras` and the series' grid put every corner of the grid within
/// [`GRID_TOLERANCE_MM`]; else what differs (spacing, axis direction, or position).
fn grid_difference(ras: &Affine, geometry: &VolumeGeometry) -> Option<String> {
    let want = geometry.ras_from_voxel();
    let [nx, ny, nz] = geometry.dims.map(|d| d.saturating_sub(1) as f64);
    let corners = [0.0, nx].into_iter().flat_map(|i| {
        [0.0, ny]
            .into_iter()
            .flat_map(move |j| [0.0, nz].into_iter().map(move |k| [i, j, k]))
    });
    let worst = corners
        .map(|c| {
            let (a, b) = (apply(ras, c), apply(&want, c));
            norm([a[0] - b[0], a[1] - b[1], a[2] - b[2]])
        })
        .fold(0.0f64, f64::max);
    if worst <= GRID_TOLERANCE_MM {
        return None;
    }
    let column = |m: &Affine, c: usize| [m[0][c], m[1][c], m[2][c]];
    let names = ["columns", "rows", "slices"];
    let mut reasons = Vec::new();
    for (c, name) in names.iter().enumerate() {
        let (got, exp) = (column(ras, c), column(&want, c));
        let (gn, en) = (norm(got), norm(exp));
        if (gn - en).abs() > 1e-3 {
            reasons.push(format!(
                "{name} are {gn:.4} mm apart, the series' {en:.4} mm"
            ));
        }
        if let (Some(g), Some(e)) = (normalize(got), normalize(exp))
            && dot(g, e) < 1.0 - 1e-6
        {
            let angle = dot(g, e).clamp(-1.0, 1.0).acos().to_degrees();
            reasons.push(format!(
                "the {name} axis is turned {angle:.1}° from the series'"
            ));
        }
    }
    if reasons.is_empty() {
        reasons.push(format!("the grid is shifted by up to {worst:.2} mm"));
    }
    Some(reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axial() -> VolumeGeometry {
        let mut g = VolumeGeometry::unit_grid([4, 3, 2]);
        g.patient_from_voxel = [
            [0.5, 0.0, 0.0, -10.0],
            [0.0, 0.5, 0.0, 20.0],
            [0.0, 0.0, 2.0, 5.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        g.spacing_mm = [0.5, 0.5, 2.0];
        g
    }

    #[test]
    fn the_same_grid_passes_and_flips_shifts_and_spacings_are_named() {
        let g = axial();
        let ras = g.ras_from_voxel();
        assert_eq!(grid_difference(&ras, &g), None);
        let mut flipped = ras;
        for row in flipped.iter_mut().take(3) {
            row[0] = -row[0];
        }
        let reason = grid_difference(&flipped, &g).unwrap();
        assert!(reason.contains("columns axis is turned 180.0°"), "{reason}");
        let mut shifted = ras;
        shifted[2][3] += 1.0;
        assert!(
            grid_difference(&shifted, &g)
                .unwrap()
                .contains("shifted by up to 1.00 mm")
        );
        let mut coarse = ras;
        coarse[2][2] = 3.0;
        assert!(
            grid_difference(&coarse, &g)
                .unwrap()
                .contains("slices are 3.0000 mm apart")
        );
    }
}
