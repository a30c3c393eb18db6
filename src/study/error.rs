//! `StudyError`: everything that can fail between files on disk and pixels or labels.
//!
//! Each variant names the operation that failed, carries the file it concerns and keeps the
//! underlying error as `#[source]`. Messages say what failed first and put the path last; they
//! never contain patient identifiers (no attribute values other than sizes, UIDs of transfer
//! syntaxes and numbers).

use std::path::PathBuf;

use crate::study::geometry::GeometryIssue;

/// Result alias for the study module.
pub type Result<T, E = StudyError> = std::result::Result<T, E>;

/// Why reading a study or writing labels failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StudyError {
    /// The file or folder could not be opened, listed or read.
    #[error("could not read {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file has zero bytes.
    #[error("file is empty: {}", path.display())]
    EmptyFile { path: PathBuf },
    /// The file is not a DICOM file nor a supported raster image (PNG, JPEG, TIFF, BMP).
    #[error("not a supported image ({reason}): {}", path.display())]
    NotAnImage { path: PathBuf, reason: String },
    /// Another file holds the same SOP instance (the same image, e.g. in another transfer
    /// syntax); the first file in path order is kept.
    #[error("duplicate of the image in {}: {}", other.display(), path.display())]
    DuplicateInstance { path: PathBuf, other: PathBuf },
    /// The DICOM data set could not be parsed (truncated file, broken meta group, ...).
    #[error("could not parse DICOM data set: {}", path.display())]
    ParseDicom {
        path: PathBuf,
        #[source]
        source: Box<dicom_object::ReadError>,
    },
    /// A DICOM element, item or fragment declares more bytes than the file holds after its
    /// header: a truncated or crafted file. Checked before the DICOM parser allocates the
    /// declared length. `offset` is the header's byte offset in the file (in the inflated
    /// data set for deflated transfer syntaxes).
    #[error(
        "DICOM element {tag} at byte {offset} declares {declared} bytes but only {available} \
         follow: {}",
        path.display()
    )]
    DeclaredLengthExceedsFile {
        path: PathBuf,
        tag: dicom_object::Tag,
        offset: u64,
        declared: u64,
        available: u64,
    },
    /// A required DICOM attribute is absent.
    #[error("missing DICOM attribute {attribute}: {}", path.display())]
    MissingAttribute {
        path: PathBuf,
        attribute: &'static str,
    },
    /// A DICOM attribute is present but its value is unusable.
    #[error("invalid DICOM attribute {attribute} ({reason}): {}", path.display())]
    InvalidAttribute {
        path: PathBuf,
        attribute: &'static str,
        reason: String,
    },
    /// The object has no Pixel Data (7FE0,0010), e.g. a structured report or a KOS.
    #[error("no pixel data in DICOM object: {}", path.display())]
    MissingPixelData { path: PathBuf },
    /// Rows or columns are zero.
    #[error("image has zero size ({width}x{height}): {}", path.display())]
    ZeroSizedImage {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    /// No codec is compiled in for this transfer syntax.
    #[error("no decoder for transfer syntax {name} ({uid}): {}", path.display())]
    UnsupportedTransferSyntax {
        path: PathBuf,
        uid: String,
        name: String,
    },
    /// The pixel format (bits allocated, samples per pixel, photometric interpretation, or a
    /// codec variant such as 12-bit lossy JPEG) is not supported.
    #[error("unsupported pixel format ({reason}): {}", path.display())]
    UnsupportedPixelFormat { path: PathBuf, reason: String },
    /// The pixel data could not be decoded or converted.
    #[error("could not decode pixel data of frame {frame}: {}", path.display())]
    DecodePixelData {
        path: PathBuf,
        frame: u32,
        #[source]
        source: Box<dicom_pixeldata::Error>,
    },
    /// The pixel data is shorter than rows × columns × frames × samples require.
    #[error("pixel data too short: {found} bytes, expected {expected}: {}", path.display())]
    PixelDataLength {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    /// A frame index past the end of a multi-frame object or series.
    #[error("frame {frame} out of range (0..{frames}): {}", path.display())]
    FrameOutOfRange {
        path: PathBuf,
        frame: u32,
        frames: u32,
    },
    /// Rows/columns differ between the images of one series.
    #[error(
        "image size {found_width}x{found_height} differs from the series' \
         {expected_width}x{expected_height}: {}",
        path.display()
    )]
    SizeMismatch {
        path: PathBuf,
        expected_width: u32,
        expected_height: u32,
        found_width: u32,
        found_height: u32,
    },
    /// A raster image (PNG, JPEG, TIFF, BMP) could not be decoded.
    #[error("could not decode image: {}", path.display())]
    DecodeImage {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// The series has no usable patient geometry (no positions/orientation, or 2D images).
    #[error("series has no patient geometry ({reason}): {}", path.display())]
    NoGeometry { path: PathBuf, reason: String },
    /// The slices cannot be stacked into one regular grid (tilt, uneven spacing, ...) and the
    /// caller did not allow an approximate stack.
    #[error("series geometry is irregular ({}): {}", describe(issues), path.display())]
    IrregularGeometry {
        path: PathBuf,
        issues: Vec<GeometryIssue>,
    },
    /// Label or image data does not match the geometry it is written with.
    #[error("data has {found} values but the grid {dims:?} needs {expected}: {}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        dims: [usize; 3],
        expected: usize,
        found: usize,
    },
    /// Writing an output file failed.
    #[error("could not write {}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Encoding a PNG mask failed.
    #[error("could not encode PNG: {}", path.display())]
    EncodePng {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// A DICOM Segmentation needs a DICOM series (not raster images).
    #[error("a DICOM segmentation can only be made for a DICOM series: {}", path.display())]
    SegNeedsDicom { path: PathBuf },
    /// A DICOM Segmentation needs the position and orientation of every labelled slice.
    #[error(
        "a DICOM segmentation needs the slices' position, orientation, pixel spacing and frame \
         of reference, which this series lacks: {}",
        path.display()
    )]
    SegNeedsGeometry { path: PathBuf },
    /// Nothing is labelled: a segmentation without frames is not written.
    #[error("no labelled pixels to write: {}", path.display())]
    SegNothingToWrite { path: PathBuf },
    /// The segments or frames given to the writer do not fit together or the series.
    #[error("cannot write the segmentation ({reason}): {}", path.display())]
    SegInvalidInput { path: PathBuf, reason: String },
    /// The DICOM object could not be encoded.
    #[error("could not encode the DICOM object: {}", path.display())]
    EncodeDicom {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file is DICOM but not a Segmentation object.
    #[error("not a DICOM segmentation ({reason}): {}", path.display())]
    NotASegmentation { path: PathBuf, reason: String },
    /// None of the segmentation's frames refers to a slice of the open series.
    #[error(
        "the segmentation was made on another series: none of its {frames} frame(s) refers to \
         an image of the open series: {}",
        path.display()
    )]
    SegOtherSeries { path: PathBuf, frames: usize },
    /// Some frames of the segmentation refer to images outside the open series.
    #[error(
        "{unmatched} of the segmentation's {frames} frame(s) refer to images outside the open \
         series: {}",
        path.display()
    )]
    SegFramesUnmatched {
        path: PathBuf,
        unmatched: usize,
        frames: usize,
    },
    /// A NIfTI file could not be read.
    #[error("could not read the NIfTI file: {}", path.display())]
    ReadNifti {
        path: PathBuf,
        #[source]
        source: Box<nifti::NiftiError>,
    },
    /// A label volume is not on the series' grid; it is refused rather than resampled.
    #[error("the label volume is not on the series' grid ({reason}); it is not resampled: {}", path.display())]
    GridMismatch { path: PathBuf, reason: String },
    /// A label image holds values that are not label numbers.
    #[error("invalid label values ({reason}): {}", path.display())]
    InvalidLabels { path: PathBuf, reason: String },
    /// Serialising the label sidecar failed.
    #[error("could not write label sidecar: {}", path.display())]
    WriteSidecar {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl StudyError {
    /// The file or folder this error concerns.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::ReadFile { path, .. }
            | Self::EmptyFile { path }
            | Self::NotAnImage { path, .. }
            | Self::DuplicateInstance { path, .. }
            | Self::ParseDicom { path, .. }
            | Self::DeclaredLengthExceedsFile { path, .. }
            | Self::MissingAttribute { path, .. }
            | Self::InvalidAttribute { path, .. }
            | Self::MissingPixelData { path }
            | Self::ZeroSizedImage { path, .. }
            | Self::UnsupportedTransferSyntax { path, .. }
            | Self::UnsupportedPixelFormat { path, .. }
            | Self::DecodePixelData { path, .. }
            | Self::PixelDataLength { path, .. }
            | Self::FrameOutOfRange { path, .. }
            | Self::SizeMismatch { path, .. }
            | Self::DecodeImage { path, .. }
            | Self::NoGeometry { path, .. }
            | Self::IrregularGeometry { path, .. }
            | Self::ShapeMismatch { path, .. }
            | Self::WriteFile { path, .. }
            | Self::EncodePng { path, .. }
            | Self::WriteSidecar { path, .. }
            | Self::SegNeedsDicom { path }
            | Self::SegNeedsGeometry { path }
            | Self::SegNothingToWrite { path }
            | Self::SegInvalidInput { path, .. }
            | Self::EncodeDicom { path, .. }
            | Self::NotASegmentation { path, .. }
            | Self::SegOtherSeries { path, .. }
            | Self::SegFramesUnmatched { path, .. }
            | Self::ReadNifti { path, .. }
            | Self::GridMismatch { path, .. }
            | Self::InvalidLabels { path, .. } => path,
        }
    }
}

fn describe(issues: &[GeometryIssue]) -> String {
    let parts: Vec<String> = issues.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_operation_first_and_path_last() {
        let err = StudyError::EmptyFile {
            path: PathBuf::from("a/b.dcm"),
        };
        assert_eq!(err.to_string(), "file is empty: a/b.dcm");
        assert_eq!(err.path(), std::path::Path::new("a/b.dcm"));
    }
}
