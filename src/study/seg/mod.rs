//! DICOM Segmentation objects (PS3.3 A.51, `SegmentationType` BINARY) written for, and read
//! back onto, a DICOM series.
//!
//! Writing ([`write_seg`]): one segment per label (number, label, CIELab display colour,
//! category and type codes, algorithm type and identification), one bit-packed frame per
//! non-empty (segment, slice), and the multi-frame functional groups that place each frame:
//! Plane Position copied from its source slice, Plane Orientation, Pixel Measures, and
//! Derivation Image with a Source Image reference to the slice's SOP instance. The object sits
//! in the source's study and frame of reference and lists the referenced series; it gets new
//! Series, SOP Instance and Dimension Organization UIDs under a UID root (ours by default, see
//! [`M2C_UID_ROOT`]). Patient and study attributes are copied from the source as a derived
//! object carries them, and not at all with [`SegOptions::deidentify`].
//!
//! Reading ([`read_seg`], [`match_to_series`]): a BINARY or FRACTIONAL (thresholded at half
//! the maximum value) segmentation, its segments, and the frames mapped onto the slices of a
//! series by their Source Image references, or by plane position in the same frame of
//! reference when the object has none. A segmentation made on another series, of another
//! size, or truncated is refused with the reason.
//!
//! Identifiers never appear in error messages: they name counts, sizes and the file.

mod cielab;
mod read;
mod source;
mod uid;
mod write;

use std::fmt;

pub use cielab::{lab_from_srgb, scaled_lab_from_srgb, srgb_from_scaled_lab};
pub use read::{MatchedFrame, SegFile, SegFrameInfo, SegmentationType, match_to_series, read_seg};
pub use uid::{M2C_UID_ROOT, new_uid, validate_uid_root};
pub use write::{SegOptions, SegWritten, write_seg};

use crate::study::LabelVolume;

/// SOP Class UID of Segmentation Storage.
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// A coded concept (PS3.3 Table 8.8-1): coding scheme, code value and meaning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Code {
    pub scheme: String,
    pub value: String,
    pub meaning: String,
}

impl Code {
    pub fn new(scheme: &str, value: &str, meaning: &str) -> Self {
        Self {
            scheme: scheme.to_owned(),
            value: value.to_owned(),
            meaning: meaning.to_owned(),
        }
    }

    /// SNOMED-CT 85756007 "Tissue": the default category and type of a segment.
    pub fn tissue() -> Self {
        Self::new("SCT", "85756007", "Tissue")
    }

    /// DCM 123110 "Artificial Intelligence" (CID 7162): the algorithm family of SAM3 results.
    pub fn artificial_intelligence() -> Self {
        Self::new("DCM", "123110", "Artificial Intelligence")
    }

    /// Parses `SCHEME:VALUE:MEANING` (the meaning may contain colons), e.g.
    /// `SCT:10200004:Liver`. `None` when a part is empty.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ':');
        let (scheme, value, meaning) = (parts.next()?, parts.next()?, parts.next()?);
        let (scheme, value, meaning) = (scheme.trim(), value.trim(), meaning.trim());
        if scheme.is_empty() || value.is_empty() || meaning.is_empty() {
            return None;
        }
        Some(Self::new(scheme, value, meaning))
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.scheme, self.value, self.meaning)
    }
}

/// How a segment was made (`SegmentAlgorithmType`, PS3.3 C.8.20.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlgorithmType {
    /// Drawn by hand.
    Manual,
    /// Computed, then reviewed or edited by a person.
    Semiautomatic,
    /// Computed and not reviewed.
    Automatic,
}

impl AlgorithmType {
    /// The DICOM code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "MANUAL",
            Self::Semiautomatic => "SEMIAUTOMATIC",
            Self::Automatic => "AUTOMATIC",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "MANUAL" => Some(Self::Manual),
            "SEMIAUTOMATIC" => Some(Self::Semiautomatic),
            "AUTOMATIC" => Some(Self::Automatic),
            _ => None,
        }
    }
}

/// The algorithm behind a computed segment: `SegmentAlgorithmName` and the Segmentation
/// Algorithm Identification Sequence (PS3.3 Algorithm Identification Macro: family, name,
/// version, parameters).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Algorithm {
    /// `SegmentAlgorithmName` and `AlgorithmName`, e.g. "M2C SAM3 concept search".
    pub name: String,
    /// `AlgorithmVersion` (LO, at most 64 characters), e.g. the checkpoint hash.
    pub version: String,
    /// `AlgorithmParameters` (LT), e.g. the concept ids and checkpoint hashes used.
    pub parameters: Option<String>,
    pub family: Code,
}

/// One segment: what the frames of one label mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDescription {
    /// `SegmentNumber`, 1..=n in order: [`write_seg`] requires the numbers 1, 2, … n.
    pub number: u16,
    pub label: String,
    /// sRGB display colour; written as `RecommendedDisplayCIELabValue`.
    pub colour: [u8; 3],
    pub category: Code,
    pub property_type: Code,
    pub algorithm_type: AlgorithmType,
    /// Required for computed segments (`SegmentAlgorithmName`).
    pub algorithm: Option<Algorithm>,
    pub description: Option<String>,
}

/// One frame to write: the pixels of `segment` on slice `slice` of the source series,
/// bit-packed row-major, least significant bit first (as the Pixel Data of a BINARY SEG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegFrame {
    pub segment: u16,
    pub slice: usize,
    pub width: u32,
    pub height: u32,
    bits: Vec<u8>,
}

impl SegFrame {
    /// Packs a row-major `width × height` mask (non-zero = inside); `None` when the mask is
    /// empty (empty frames are not written) or its length is not `width · height`.
    pub fn from_mask(
        segment: u16,
        slice: usize,
        width: u32,
        height: u32,
        mask: &[u8],
    ) -> Option<Self> {
        let len = usize::try_from(u64::from(width) * u64::from(height)).ok()?;
        if mask.len() != len || !mask.iter().any(|&v| v != 0) {
            return None;
        }
        let mut bits = vec![0u8; len.div_ceil(8)];
        for (byte, chunk) in bits.iter_mut().zip(mask.chunks(8)) {
            for (k, &v) in chunk.iter().enumerate() {
                *byte |= u8::from(v != 0) << k;
            }
        }
        Some(Self {
            segment,
            slice,
            width,
            height,
            bits,
        })
    }

    /// A frame from bits already packed as [`SegFrame::from_mask`] packs them (the caller
    /// guarantees `⌈width · height / 8⌉` bytes with no bit set past the last pixel).
    pub(crate) fn from_packed(
        segment: u16,
        slice: usize,
        width: u32,
        height: u32,
        bits: Vec<u8>,
    ) -> Self {
        Self {
            segment,
            slice,
            width,
            height,
            bits,
        }
    }

    /// Sets every pixel that is set in `other` (same size).
    pub(crate) fn union(&mut self, other: &SegFrame) {
        self.bits
            .iter_mut()
            .zip(&other.bits)
            .for_each(|(a, b)| *a |= *b);
    }

    /// An all-background frame (kept only while reading, never written).
    pub(crate) fn empty(segment: u16, width: u32, height: u32) -> Self {
        let len = width as usize * height as usize;
        Self {
            segment,
            slice: 0,
            width,
            height,
            bits: vec![0; len.div_ceil(8)],
        }
    }

    /// Pixel `i` (row-major) is inside.
    pub fn get(&self, i: usize) -> bool {
        self.bits
            .get(i / 8)
            .is_some_and(|b| (b >> (i % 8)) & 1 == 1)
    }

    /// The mask as 0/1 bytes, row-major.
    pub fn to_mask(&self) -> Vec<u8> {
        let len = self.width as usize * self.height as usize;
        let mut out = Vec::with_capacity(self.bits.len() * 8);
        for &byte in &self.bits {
            out.extend((0..8).map(|k| (byte >> k) & 1));
        }
        out.truncate(len);
        out
    }

    /// Number of pixels inside.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub(crate) fn packed(&self) -> &[u8] {
        &self.bits
    }

    pub(crate) fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// Whether `path` is a DICOM file whose file meta group names Segmentation Storage (reads
/// at most 1 KiB; for sorting dropped files, not for validation).
pub fn is_segmentation_file(path: &std::path::Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(1024);
    let read = std::fs::File::open(path).and_then(|f| f.take(1024).read_to_end(&mut head));
    if read.is_err() || head.get(128..132) != Some(b"DICM".as_slice()) {
        return false;
    }
    let uid = SEGMENTATION_STORAGE.as_bytes();
    head.windows(uid.len() + 1)
        .any(|w| w.starts_with(uid) && w.last().is_some_and(|b| !b.is_ascii_digit() && *b != b'.'))
}

/// The frames of a label volume on a series' grid: for every `(label value, segment number)`
/// pair, one frame per slice where that value occurs.
pub fn frames_from_label_volume(labels: &LabelVolume, segments: &[(u16, u16)]) -> Vec<SegFrame> {
    let [w, h, d] = labels.dims;
    let (Ok(width), Ok(height)) = (u32::try_from(w), u32::try_from(h)) else {
        return Vec::new();
    };
    let per = w * h;
    let mut frames = Vec::new();
    for &(value, segment) in segments {
        for k in 0..d {
            let Some(slice) = labels.labels.get(k * per..(k + 1) * per) else {
                break;
            };
            let mask: Vec<u8> = slice.iter().map(|&v| u8::from(v == value)).collect();
            frames.extend(SegFrame::from_mask(segment, k, width, height, &mask));
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_scheme_value_and_meaning() {
        assert_eq!(
            Code::parse("SCT:10200004:Liver"),
            Some(Code::new("SCT", "10200004", "Liver"))
        );
        assert_eq!(
            Code::parse("99X: 1 :a: b").map(|c| c.meaning),
            Some("a: b".to_owned())
        );
        assert_eq!(Code::parse("SCT::Liver"), None);
        assert_eq!(Code::parse("SCT"), None);
        assert_eq!(Code::tissue().to_string(), "SCT:85756007:Tissue");
    }

    #[test]
    fn frames_pack_least_significant_bit_first_and_skip_empty_masks() {
        let mask = [1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0];
        let frame = SegFrame::from_mask(2, 5, 4, 3, &mask).unwrap();
        assert_eq!(frame.packed(), &[0b0000_1001, 0b0000_0011]);
        assert_eq!(frame.to_mask(), mask);
        assert_eq!(frame.count(), 4);
        assert!(SegFrame::from_mask(1, 0, 4, 3, &[0; 12]).is_none());
        assert!(SegFrame::from_mask(1, 0, 4, 3, &[1; 11]).is_none());
    }

    #[test]
    fn label_volumes_become_one_frame_per_segment_and_occupied_slice() {
        let mut labels = LabelVolume::new([3, 2, 4]);
        labels.labels[0] = 1; // slice 0
        labels.labels[6 * 2 + 1] = 2; // slice 2
        labels.labels[6 * 3 + 5] = 1; // slice 3
        let frames = frames_from_label_volume(&labels, &[(1, 1), (2, 2)]);
        let placed: Vec<(u16, usize)> = frames.iter().map(|f| (f.segment, f.slice)).collect();
        assert_eq!(placed, vec![(1, 0), (1, 3), (2, 2)]);
        assert!(frames[1].get(5) && !frames[1].get(0));
    }
}
