//! Studies in, labels out: everything between files on disk and the pixels and labels the rest
//! of the app works with. This module depends on no other module of ours and on neither burn
//! nor egui; `annotation`, `engine`, `cli` and `app` may use it.
//!
//! Reading is two-phase. [`discover`] walks files and folders and reads only headers (DICOM up
//! to Pixel Data, raster images up to their size), groups DICOM by SeriesInstanceUID, orders
//! slices along the normal and checks geometry; files it cannot use are listed in
//! [`Study::skipped`] with a typed [`StudyError`]. Pixels are decoded on demand with
//! [`Series::load_slice`] / [`Series::load_volume`], as physical values (HU for CT) that keep
//! 16-bit precision until [`window::rgb8_from_slice`] turns them into the 8-bit RGB image the
//! viewer and SAM3 use. Writing: [`mask_png`] (one PNG per source image) and [`nifti`] (label
//! and image volumes with the source affine, plus a JSON sidecar).
//!
//! Patient identifiers (names, IDs, birth dates, UIDs) never appear in logs, errors or exported
//! files unless the caller opts in (see [`nifti::Provenance`]).

mod dicom;
mod discover;
pub mod error;
pub mod geometry;
pub mod mask_png;
pub mod nifti;
mod raster;
pub mod seg;
mod volume;
pub mod window;

use std::path::{Path, PathBuf};

pub use discover::{discover, discover_paths};
pub use error::{Result, StudyError};
pub use geometry::{GeometryIssue, SlicePlacement, VolumeGeometry};
pub use mask_png::{MaskEncoding, mask_path_for, read_mask_png, write_mask_png};
pub use nifti::{
    LabelInfo, LabelSidecar, Provenance, sidecar_path, write_image_volume, write_label_volume,
};
pub use volume::{ImageVolume, LabelVolume};
pub use window::{Rgb8Image, WindowLevel, WindowPreset, default_window, rgb8_from_slice};

/// What [`discover`] found: image series and the files it could not use.
#[derive(Debug, Default)]
pub struct Study {
    /// DICOM series (grouped by SeriesInstanceUID) and single raster images, in path order.
    pub series: Vec<Series>,
    /// Files that are not usable images, each with the reason.
    pub skipped: Vec<StudyError>,
}

/// Where a series came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeriesKind {
    /// One or more DICOM files sharing a SeriesInstanceUID.
    Dicom,
    /// One PNG, JPEG, TIFF or BMP image.
    Raster,
}

/// One frame of a series: a file and the frame index inside it (0 for single-frame files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRef {
    pub path: PathBuf,
    pub frame: u32,
}

/// A stack of same-sized frames, in display order (along the slice normal for DICOM with
/// geometry; by InstanceNumber, then path and frame, otherwise).
#[derive(Debug, Clone)]
pub struct Series {
    /// Grouping key: SeriesInstanceUID for DICOM (an identifier: do not show or export it
    /// without the user's consent), the path for raster images.
    pub key: String,
    pub kind: SeriesKind,
    /// DICOM Modality (CT, MR, US, ...); `None` for raster images.
    pub modality: Option<String>,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    pub frames: Vec<FrameRef>,
    /// Samples per pixel (1 gray, 3 colour).
    pub samples_per_pixel: u16,
    /// Transfer syntax names used by the series' files (DICOM), or the raster format.
    pub encodings: Vec<String>,
    /// Patient-space grid, when every frame has a position and orientation. Present even when
    /// `issues` is not empty (then it is an approximation: see [`GeometryIssue`]).
    pub geometry: Option<VolumeGeometry>,
    /// Why the frames do not form one regular grid, if they don't.
    pub issues: Vec<GeometryIssue>,
    /// In-plane pixel spacing (row spacing, column spacing) in mm, when known.
    pub pixel_spacing_mm: Option<[f64; 2]>,
}

impl Series {
    /// Number of frames (slices).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The first file of the series (for messages and default output names).
    pub fn first_path(&self) -> Option<&Path> {
        self.frames.first().map(|f| f.path.as_path())
    }

    /// Decodes slice `index` (display order) to physical values.
    pub fn load_slice(&self, index: usize) -> Result<Slice> {
        let Some(frame) = self.frames.get(index) else {
            let path = self.first_path().map(Path::to_path_buf).unwrap_or_default();
            return Err(StudyError::FrameOutOfRange {
                path,
                frame: u32::try_from(index).unwrap_or(u32::MAX),
                frames: u32::try_from(self.frames.len()).unwrap_or(u32::MAX),
            });
        };
        let slice = match self.kind {
            SeriesKind::Raster => raster::load_raster(&frame.path)?,
            SeriesKind::Dicom => {
                let mut slices = dicom::decode_frames(&frame.path, &[frame.frame])?;
                slices.pop().ok_or_else(|| StudyError::FrameOutOfRange {
                    path: frame.path.clone(),
                    frame: frame.frame,
                    frames: 0,
                })?
            }
        };
        self.check_size(&frame.path, &slice)?;
        Ok(slice)
    }

    /// Decodes every slice (each file is opened once) into one volume of physical values.
    pub fn load_volume(&self) -> Result<ImageVolume> {
        volume::load_volume(self)
    }

    fn check_size(&self, path: &Path, slice: &Slice) -> Result<()> {
        if (slice.width, slice.height) == (self.width, self.height) {
            return Ok(());
        }
        Err(StudyError::SizeMismatch {
            path: path.to_path_buf(),
            expected_width: self.width,
            expected_height: self.height,
            found_width: slice.width,
            found_height: slice.height,
        })
    }
}

/// Pixel values of one decoded slice, row-major, `width × height` pixels.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// Physical values after the modality LUT (HU for CT; stored values for MR, US, PNG ...).
    /// f32 holds every 16-bit stored value exactly.
    Gray(Vec<f32>),
    /// Interleaved 8-bit RGB (RGB, YBR and palette colour DICOM; colour raster images).
    Rgb8(Vec<u8>),
}

/// One decoded 2D image with what is needed to display it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub width: u32,
    pub height: u32,
    pub pixels: Pixels,
    /// MONOCHROME1: low values are bright; [`window`] inverts after windowing.
    pub monochrome1: bool,
    /// DICOM Modality, `None` for raster images.
    pub modality: Option<String>,
    /// WindowCenter/WindowWidth pairs from the file (physical units), first is the default.
    pub file_windows: Vec<WindowLevel>,
    /// Bits stored per sample (8 for JPEG/8-bit PNG, 16 for 16-bit PNG, 12 for most CT).
    pub bits_stored: u16,
    /// DICOM or raster image: decides the default window (see [`default_window`]).
    pub kind: SeriesKind,
}

/// A 2D label image (0 = background), row-major, `width × height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    pub width: u32,
    pub height: u32,
    pub labels: Vec<u16>,
}

impl LabelMap {
    /// An all-background map.
    pub fn new(width: u32, height: u32) -> Self {
        let len = usize::try_from(u64::from(width) * u64::from(height)).unwrap_or(0);
        Self {
            width,
            height,
            labels: vec![0; len],
        }
    }

    /// Label at `(x, y)`, `None` outside the image.
    pub fn get(&self, x: u32, y: u32) -> Option<u16> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let idx = usize::try_from(u64::from(y) * u64::from(self.width) + u64::from(x)).ok()?;
        self.labels.get(idx).copied()
    }
}
