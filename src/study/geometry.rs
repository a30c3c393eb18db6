//! Patient geometry of a stack of slices: the `patient_from_voxel` affine (DICOM LPS, mm),
//! spacing and the checks that decide whether slices form one regular grid.
//!
//! Voxel indices are `(i, j, k)` = (column, row, slice), i.e. `i` runs along a DICOM row
//! (ImageOrientationPatient's first triplet) and `j` down a column (the second triplet).
//! PixelSpacing is (row spacing, column spacing) = (Δj, Δi) as in PS3.3 C.7.6.2.1.1.
//! Slices are ordered along the normal `n = row × col` by `ImagePositionPatient · n`.

use std::fmt;

/// A 3-vector in patient space (LPS, mm) or a direction.
pub type Vec3 = [f64; 3];
/// A row-major 4×4 homogeneous transform.
pub type Affine = [[f64; 4]; 4];

/// Largest angle between the slice step and the slice normal that still counts as untilted.
pub const TILT_TOLERANCE_DEG: f64 = 0.01;
/// Slice steps may differ by `max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_REL × mean)`.
pub const SPACING_TOLERANCE_MM: f64 = 0.05;
/// Relative part of the spacing tolerance.
pub const SPACING_TOLERANCE_REL: f64 = 0.01;
/// Direction cosines that differ by more than this are different orientations.
pub const ORIENTATION_TOLERANCE: f64 = 1e-4;

/// Where one slice lies: ImagePositionPatient and ImageOrientationPatient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlicePlacement {
    /// Centre of the first transmitted pixel, LPS mm.
    pub position: Vec3,
    /// Unit vector along a row (increasing column index).
    pub row_dir: Vec3,
    /// Unit vector down a column (increasing row index).
    pub col_dir: Vec3,
}

impl SlicePlacement {
    /// Builds a placement from IPP and the six IOP cosines; `None` if the cosines are not two
    /// (nearly) orthonormal vectors.
    pub fn new(position: Vec3, orientation: [f64; 6]) -> Option<Self> {
        let [a, b, c, d, e, f] = orientation;
        let row_dir = normalize([a, b, c])?;
        let col_dir = normalize([d, e, f])?;
        if !position.iter().all(|v| v.is_finite()) || dot(row_dir, col_dir).abs() > 1e-3 {
            return None;
        }
        Some(Self {
            position,
            row_dir,
            col_dir,
        })
    }

    /// Unit normal `row × col`.
    pub fn normal(&self) -> Vec3 {
        cross(self.row_dir, self.col_dir)
    }

    /// Position along the normal, the sort key for stacking.
    pub fn distance_along_normal(&self) -> f64 {
        dot(self.position, self.normal())
    }
}

/// Something that keeps a set of slices from being one regular grid.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GeometryIssue {
    /// Slice positions move sideways as well as along the normal (CT gantry tilt).
    GantryTilt { degrees: f64 },
    /// The distance between neighbouring slices varies.
    UnevenSpacing { min_mm: f64, max_mm: f64 },
    /// Two or more slices share a position.
    DuplicatePositions { count: usize },
    /// The slices do not share one ImageOrientationPatient.
    OrientationChanges,
    /// Some slices carry no position/orientation.
    MissingPlacement { count: usize },
}

impl fmt::Display for GeometryIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GantryTilt { degrees } => write!(f, "gantry tilt {degrees:.2}°"),
            Self::UnevenSpacing { min_mm, max_mm } => {
                write!(f, "uneven slice spacing {min_mm:.3}–{max_mm:.3} mm")
            }
            Self::DuplicatePositions { count } => {
                write!(f, "{count} slices share a position")
            }
            Self::OrientationChanges => write!(f, "orientation changes within the series"),
            Self::MissingPlacement { count } => {
                write!(f, "{count} slices lack position or orientation")
            }
        }
    }
}

/// The grid of a volume in patient space.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeGeometry {
    /// Grid size (columns, rows, slices).
    pub dims: [usize; 3],
    /// Voxel size (Δi, Δj, Δk) in mm; Δk is the length of the slice step vector.
    pub spacing_mm: Vec3,
    /// LPS mm from voxel index `(i, j, k, 1)`.
    pub patient_from_voxel: Affine,
}

impl VolumeGeometry {
    /// NIfTI world (RAS mm) from voxel index: `diag(-1, -1, 1, 1) · patient_from_voxel`.
    pub fn ras_from_voxel(&self) -> Affine {
        let mut m = self.patient_from_voxel;
        for row in m.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
        m
    }

    /// Patient position (LPS mm) of a voxel index.
    pub fn patient_from_index(&self, ijk: Vec3) -> Vec3 {
        let m = &self.patient_from_voxel;
        let mut out = [0.0; 3];
        for (r, o) in out.iter_mut().enumerate() {
            *o = m[r][0] * ijk[0] + m[r][1] * ijk[1] + m[r][2] * ijk[2] + m[r][3];
        }
        out
    }

    /// A grid without patient placement (photos, 2D images without geometry): world
    /// coordinates are voxel indices (1 mm "spacing", identity affine). Lets 2D label maps be
    /// written as NIfTI; readers will not place them in a patient.
    pub fn unit_grid(dims: [usize; 3]) -> Self {
        let mut patient_from_voxel = [[0.0; 4]; 4];
        for (i, row) in patient_from_voxel.iter_mut().enumerate() {
            if let Some(v) = row.get_mut(i) {
                *v = 1.0;
            }
        }
        Self {
            dims,
            spacing_mm: [1.0; 3],
            patient_from_voxel,
        }
    }

    /// A single slice (or a 2D image with spacing only): the slice axis is the normal, with
    /// `thickness_mm` as its length.
    pub fn single_slice(
        placement: &SlicePlacement,
        width: usize,
        height: usize,
        pixel_spacing: [f64; 2],
        thickness_mm: f64,
    ) -> Self {
        let step = scale(placement.normal(), thickness_mm);
        Self::from_axes(placement, [width, height, 1], pixel_spacing, step)
    }

    fn from_axes(
        first: &SlicePlacement,
        dims: [usize; 3],
        pixel_spacing: [f64; 2],
        step: Vec3,
    ) -> Self {
        let [row_spacing, col_spacing] = pixel_spacing;
        let ci = scale(first.row_dir, col_spacing);
        let cj = scale(first.col_dir, row_spacing);
        let p = first.position;
        let patient_from_voxel = [
            [ci[0], cj[0], step[0], p[0]],
            [ci[1], cj[1], step[1], p[1]],
            [ci[2], cj[2], step[2], p[2]],
            [0.0, 0.0, 0.0, 1.0],
        ];
        Self {
            dims,
            spacing_mm: [col_spacing, row_spacing, norm(step)],
            patient_from_voxel,
        }
    }
}

/// Checks a stack of placements, already sorted along the normal, and builds its geometry.
///
/// The slice axis is the mean step `(last − first) / (n − 1)`, so the first and last slices are
/// exact even with tilt (the affine is then sheared). Issues are returned rather than hidden;
/// callers decide whether an approximate grid is acceptable. `None` when no grid can be built
/// at all (missing placements, changing orientation, a single slice with duplicates).
pub fn stack_geometry(
    placements: &[Option<SlicePlacement>],
    width: usize,
    height: usize,
    pixel_spacing: [f64; 2],
    thickness_mm: f64,
) -> (Option<VolumeGeometry>, Vec<GeometryIssue>) {
    let missing = placements.iter().filter(|p| p.is_none()).count();
    if missing > 0 {
        return (
            None,
            vec![GeometryIssue::MissingPlacement { count: missing }],
        );
    }
    let known: Vec<&SlicePlacement> = placements.iter().flatten().collect();
    let (Some(first), Some(last)) = (known.first(), known.last()) else {
        return (None, Vec::new());
    };
    let same_orientation = known.iter().all(|p| {
        max_abs_diff(p.row_dir, first.row_dir) < ORIENTATION_TOLERANCE
            && max_abs_diff(p.col_dir, first.col_dir) < ORIENTATION_TOLERANCE
    });
    if !same_orientation {
        return (None, vec![GeometryIssue::OrientationChanges]);
    }
    let n_slices = known.len();
    if n_slices == 1 {
        let geom = VolumeGeometry::single_slice(first, width, height, pixel_spacing, thickness_mm);
        return (Some(geom), Vec::new());
    }
    let mut issues = Vec::new();
    let normal = first.normal();
    let gaps: Vec<f64> = known
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some(dot(sub(b.position, a.position), normal)),
            _ => None,
        })
        .collect();
    let duplicates = gaps.iter().filter(|g| g.abs() < 1e-3).count();
    if duplicates > 0 {
        issues.push(GeometryIssue::DuplicatePositions {
            count: duplicates + 1,
        });
    }
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let max_gap = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    if max_gap - min_gap > SPACING_TOLERANCE_MM.max(SPACING_TOLERANCE_REL * mean_gap.abs()) {
        issues.push(GeometryIssue::UnevenSpacing {
            min_mm: min_gap,
            max_mm: max_gap,
        });
    }
    let span = sub(last.position, first.position);
    let step = scale(span, 1.0 / (n_slices - 1) as f64);
    if let Some(step_dir) = normalize(step) {
        let cos = dot(step_dir, normal).abs().min(1.0);
        let degrees = cos.acos().to_degrees();
        if degrees > TILT_TOLERANCE_DEG {
            issues.push(GeometryIssue::GantryTilt { degrees });
        }
    }
    let dims = [width, height, n_slices];
    let geom = VolumeGeometry::from_axes(first, dims, pixel_spacing, step);
    (Some(geom), issues)
}

pub(crate) fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn scale(a: Vec3, s: f64) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub(crate) fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// `a / |a|`, or `None` for a zero or non-finite vector.
pub(crate) fn normalize(a: Vec3) -> Option<Vec3> {
    let len = norm(a);
    (len.is_finite() && len > 1e-9).then(|| scale(a, 1.0 / len))
}

fn max_abs_diff(a: Vec3, b: Vec3) -> f64 {
    (0..3).fold(0.0, |m, i| m.max((a[i] - b[i]).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

    fn axial_at(x: f64, y: f64, z: f64) -> Option<SlicePlacement> {
        SlicePlacement::new([x, y, z], AXIAL)
    }

    #[test]
    fn regular_axial_stack_has_diagonal_affine() {
        let stack: Vec<_> = (0..4)
            .map(|k| axial_at(-10.0, 5.0, 2.5 * k as f64))
            .collect();
        let (geom, issues) = stack_geometry(&stack, 8, 6, [0.5, 0.7], 2.5);
        let geom = geom.unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(geom.dims, [8, 6, 4]);
        assert_eq!(geom.spacing_mm, [0.7, 0.5, 2.5]);
        assert_eq!(geom.patient_from_index([1.0, 2.0, 3.0]), [-9.3, 6.0, 7.5]);
        let ras = geom.ras_from_voxel();
        assert_eq!(ras[0], [-0.7, -0.0, -0.0, 10.0]);
        assert_eq!(ras[2], [0.0, 0.0, 2.5, 0.0]);
    }

    #[test]
    fn detects_gantry_tilt() {
        // 18.5° tilt: each 5 mm step along z also moves tan(18.5°)·5 mm along y.
        let dy = 18.5f64.to_radians().tan() * 5.0;
        let stack: Vec<_> = (0..5)
            .map(|k| axial_at(0.0, dy * k as f64, 5.0 * k as f64))
            .collect();
        let (geom, issues) = stack_geometry(&stack, 4, 4, [1.0, 1.0], 5.0);
        let [GeometryIssue::GantryTilt { degrees }] = issues.as_slice() else {
            panic!("expected a tilt, got {issues:?}");
        };
        assert!((degrees - 18.5).abs() < 1e-9);
        // The sheared affine still puts the last slice where it is.
        let last = geom.unwrap().patient_from_index([0.0, 0.0, 4.0]);
        assert!((last[1] - 4.0 * dy).abs() < 1e-9 && (last[2] - 20.0).abs() < 1e-9);
    }

    #[test]
    fn detects_uneven_spacing_and_duplicates() {
        let stack: Vec<_> = [0.0, 1.0, 2.0, 5.0, 5.0]
            .iter()
            .map(|&z| axial_at(0.0, 0.0, z))
            .collect();
        let (_, issues) = stack_geometry(&stack, 2, 2, [1.0, 1.0], 1.0);
        assert!(issues.contains(&GeometryIssue::DuplicatePositions { count: 2 }));
        assert!(issues.contains(&GeometryIssue::UnevenSpacing {
            min_mm: 0.0,
            max_mm: 3.0
        }));
    }

    #[test]
    fn rejects_changing_orientation_and_missing_positions() {
        let sag = SlicePlacement::new([0.0; 3], [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
        let (geom, issues) = stack_geometry(&[axial_at(0.0, 0.0, 0.0), sag], 2, 2, [1.0; 2], 1.0);
        assert!(geom.is_none());
        assert_eq!(issues, vec![GeometryIssue::OrientationChanges]);
        let (geom, issues) = stack_geometry(&[axial_at(0.0, 0.0, 0.0), None], 2, 2, [1.0; 2], 1.0);
        assert!(geom.is_none());
        assert_eq!(issues, vec![GeometryIssue::MissingPlacement { count: 1 }]);
    }

    #[test]
    fn rejects_degenerate_orientation() {
        assert!(SlicePlacement::new([0.0; 3], [0.0; 6]).is_none());
        assert!(SlicePlacement::new([0.0; 3], [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).is_none());
        assert!(SlicePlacement::new([f64::NAN, 0.0, 0.0], AXIAL).is_none());
    }
}
