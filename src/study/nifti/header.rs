//! The NIfTI-1 header (`nifti1.h`): 348 little-endian bytes plus the 4-byte extension flag,
//! and the quaternion (qform) form of an affine.

use std::path::Path;

use crate::study::geometry::{Affine, Vec3, cross, dot, norm, normalize, scale};
use crate::study::{Result, StudyError, VolumeGeometry};

#[derive(Clone, Copy)]
pub(super) enum DataType {
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
pub(super) enum Intent {
    None,
    Label,
}

/// Header bytes (348) plus the 4-byte empty extension flag.
pub(super) fn header_bytes(
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
}
