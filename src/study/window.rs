//! VOI windowing: physical values (after the modality LUT, e.g. HU) → 8-bit RGB for display and
//! for the model.
//!
//! Order of operations, as in dicom-pixeldata's `ConvertOptions`: the modality LUT
//! (RescaleSlope/Intercept) is applied when a slice is decoded, so a [`Slice`] already holds
//! physical values; the window is applied here, last, and only then is the bit depth reduced.
//! The window function is DICOM's `LINEAR_EXACT` (PS3.3 C.11.2.1.3.2):
//! `y = ((x − c) / w + 0.5) · 255`, clamped, rounded; a full-range window on 8-bit data is the
//! identity. MONOCHROME1 is inverted after windowing.

use serde::{Deserialize, Serialize};

use crate::study::{Pixels, SeriesKind, Slice};

/// Window centre and width, in the slice's physical units (HU for CT).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowLevel {
    pub center: f64,
    pub width: f64,
}

impl WindowLevel {
    pub const fn new(center: f64, width: f64) -> Self {
        Self { center, width }
    }

    /// The window spanning `[lo, hi]` exactly.
    pub fn from_range(lo: f64, hi: f64) -> Self {
        Self {
            center: (lo + hi) / 2.0,
            width: (hi - lo).max(f64::EPSILON),
        }
    }

    /// `(lo, hi)`: values at or below `lo` map to 0, at or above `hi` to 255.
    pub fn range(&self) -> (f64, f64) {
        let half = self.width.max(f64::EPSILON) / 2.0;
        (self.center - half, self.center + half)
    }
}

/// Named CT windows (centre/width in HU) used by radiologists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WindowPreset {
    /// 40 / 400: abdomen and neck soft tissue; the default for CT.
    SoftTissue,
    /// 40 / 80: brain parenchyma.
    Brain,
    /// −600 / 1500: lung parenchyma.
    Lung,
    /// 400 / 1800: bone.
    Bone,
    /// 60 / 160: liver lesions.
    Liver,
}

impl WindowPreset {
    pub const ALL: [WindowPreset; 5] = [
        Self::SoftTissue,
        Self::Brain,
        Self::Lung,
        Self::Bone,
        Self::Liver,
    ];

    pub fn window(self) -> WindowLevel {
        match self {
            Self::SoftTissue => WindowLevel::new(40.0, 400.0),
            Self::Brain => WindowLevel::new(40.0, 80.0),
            Self::Lung => WindowLevel::new(-600.0, 1500.0),
            Self::Bone => WindowLevel::new(400.0, 1800.0),
            Self::Liver => WindowLevel::new(60.0, 160.0),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::SoftTissue => "Soft tissue",
            Self::Brain => "Brain",
            Self::Lung => "Lung",
            Self::Bone => "Bone",
            Self::Liver => "Liver",
        }
    }
}

/// The window a slice is shown and sent to the model with until the user changes it.
///
/// - CT: [`WindowPreset::SoftTissue`] (40/400 HU), whatever the file suggests, so that model
///   inputs are comparable across scanners.
/// - Other DICOM grayscale: the file's first WindowCenter/Width, else the slice's min–max.
/// - Grayscale raster images (PNG, ...): the full range of the stored bit depth (identity for
///   8-bit).
/// - Colour slices: irrelevant (colour is not windowed); the 8-bit range is returned.
pub fn default_window(slice: &Slice) -> WindowLevel {
    if slice.modality.as_deref() == Some("CT") {
        return WindowPreset::SoftTissue.window();
    }
    if let Some(w) = slice.file_windows.first() {
        return *w;
    }
    match &slice.pixels {
        Pixels::Gray(values) if slice.kind == SeriesKind::Dicom => min_max_window(values),
        _ => {
            let bits = i32::from(slice.bits_stored.clamp(1, 16));
            WindowLevel::from_range(0.0, f64::from(2f32.powi(bits) - 1.0))
        }
    }
}

/// A window spanning the finite values of `values` (width ≥ 1).
pub fn min_max_window(values: &[f32]) -> WindowLevel {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return WindowLevel::new(0.0, 1.0);
    }
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    WindowLevel::from_range(lo, hi.max(lo + 1.0))
}

/// An 8-bit RGB image, row-major, `data.len() == 3 · width · height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8Image {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Applies `window` to a grayscale slice and replicates the result into R, G and B; colour
/// slices are returned unchanged. This is the image SAM3 receives (before its own resize and
/// normalisation) and the one the viewer shows.
pub fn rgb8_from_slice(slice: &Slice, window: WindowLevel) -> Rgb8Image {
    let data = match &slice.pixels {
        Pixels::Rgb8(rgb) => rgb.clone(),
        Pixels::Gray(values) => {
            let lut = WindowFn::new(window, slice.monochrome1);
            let mut out = Vec::with_capacity(values.len() * 3);
            for &v in values {
                let g = lut.apply(v);
                out.extend_from_slice(&[g, g, g]);
            }
            out
        }
    };
    Rgb8Image {
        width: slice.width,
        height: slice.height,
        data,
    }
}

/// Applies `window` to a grayscale slice giving one byte per pixel (colour slices are reduced
/// to luma, BT.601).
pub fn gray8_from_slice(slice: &Slice, window: WindowLevel) -> Vec<u8> {
    match &slice.pixels {
        Pixels::Gray(values) => {
            let lut = WindowFn::new(window, slice.monochrome1);
            values.iter().map(|&v| lut.apply(v)).collect()
        }
        Pixels::Rgb8(rgb) => rgb
            .chunks_exact(3)
            .map(|p| match p {
                [r, g, b] => {
                    let y = 0.299 * f32::from(*r) + 0.587 * f32::from(*g) + 0.114 * f32::from(*b);
                    to_u8(y)
                }
                _ => 0,
            })
            .collect(),
    }
}

/// The LINEAR_EXACT window as `scale · x + offset`, clamped to 0..=255.
struct WindowFn {
    scale: f32,
    offset: f32,
    invert: bool,
}

impl WindowFn {
    fn new(window: WindowLevel, invert: bool) -> Self {
        let width = window.width.max(f64::EPSILON);
        let scale = 255.0 / width;
        let offset = (0.5 - window.center / width) * 255.0;
        Self {
            scale: scale as f32,
            offset: offset as f32,
            invert,
        }
    }

    fn apply(&self, v: f32) -> u8 {
        let y = to_u8(v.mul_add(self.scale, self.offset));
        if self.invert { 255 - y } else { y }
    }
}

/// Rounds and saturates; NaN becomes 0.
fn to_u8(y: f32) -> u8 {
    if y.is_nan() {
        return 0;
    }
    // Saturating float→int cast after clamping: no truncation of file data is possible.
    y.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(values: Vec<f32>, modality: Option<&str>, bits: u16) -> Slice {
        Slice {
            width: u32::try_from(values.len()).unwrap(),
            height: 1,
            pixels: Pixels::Gray(values),
            monochrome1: false,
            modality: modality.map(str::to_owned),
            file_windows: Vec::new(),
            bits_stored: bits,
            kind: if modality.is_some() {
                SeriesKind::Dicom
            } else {
                SeriesKind::Raster
            },
        }
    }

    #[test]
    fn full_range_window_on_8_bit_is_identity() {
        let slice = gray((0..=255).map(|v| v as f32).collect(), None, 8);
        let w = default_window(&slice);
        assert_eq!(w, WindowLevel::new(127.5, 255.0));
        let out = gray8_from_slice(&slice, w);
        assert_eq!(out, (0..=255).collect::<Vec<u8>>());
    }

    #[test]
    fn ct_defaults_to_soft_tissue_and_clamps() {
        let mut slice = gray(vec![-1000.0, -160.0, 40.0, 240.0, 3000.0], Some("CT"), 12);
        slice.file_windows = vec![WindowLevel::new(400.0, 2000.0)];
        let w = default_window(&slice);
        assert_eq!(w, WindowLevel::new(40.0, 400.0));
        assert_eq!(gray8_from_slice(&slice, w), vec![0, 0, 128, 255, 255]);
        let rgb = rgb8_from_slice(&slice, w);
        assert_eq!(&rgb.data[6..9], &[128, 128, 128]);
    }

    #[test]
    fn monochrome1_is_inverted_after_windowing() {
        let mut slice = gray(vec![0.0, 255.0], Some("CR"), 8);
        slice.monochrome1 = true;
        let out = gray8_from_slice(&slice, WindowLevel::from_range(0.0, 255.0));
        assert_eq!(out, vec![255, 0]);
    }

    #[test]
    fn non_ct_uses_file_window_then_min_max() {
        let mut slice = gray(vec![10.0, 30.0, f32::NAN], Some("MR"), 16);
        assert_eq!(default_window(&slice), WindowLevel::new(20.0, 20.0));
        slice.file_windows = vec![WindowLevel::new(5.0, 2.0)];
        assert_eq!(default_window(&slice), WindowLevel::new(5.0, 2.0));
        assert_eq!(min_max_window(&[]), WindowLevel::new(0.0, 1.0));
    }
}
