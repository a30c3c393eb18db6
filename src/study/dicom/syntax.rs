//! Transfer syntax names and which ones this build can decode.
//!
//! The codecs come from dicom-pixeldata's features: `native` (uncompressed, deflate, RLE, JPEG
//! baseline/extended/lossless through jpeg-decoder), `openjp2` (JPEG 2000 and HTJ2K) and
//! `charls` (JPEG-LS). Video (MPEG, HEVC), JPEG XL and JPIP are not compiled in and are
//! reported as [`StudyError::UnsupportedTransferSyntax`](crate::study::StudyError) before any
//! decoding is attempted.

/// `(uid, name, decodable)` for every transfer syntax we name.
const SYNTAXES: &[(&str, &str, bool)] = &[
    ("1.2.840.10008.1.2", "Implicit VR Little Endian", true),
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian", true),
    (
        "1.2.840.10008.1.2.1.99",
        "Deflated Explicit VR Little Endian",
        true,
    ),
    ("1.2.840.10008.1.2.2", "Explicit VR Big Endian", true),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", true),
    (
        "1.2.840.10008.1.2.4.51",
        "JPEG Extended (Process 2 & 4)",
        true,
    ),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless (Process 14)", true),
    ("1.2.840.10008.1.2.4.70", "JPEG Lossless SV1", true),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", true),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", true),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", true),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000", true),
    ("1.2.840.10008.1.2.4.201", "HTJ2K Lossless", true),
    ("1.2.840.10008.1.2.4.202", "HTJ2K Lossless RPCL", true),
    ("1.2.840.10008.1.2.4.203", "HTJ2K", true),
    ("1.2.840.10008.1.2.5", "RLE Lossless", true),
    ("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Lossless", false),
    ("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2", false),
    ("1.2.840.10008.1.2.4.94", "JPIP Referenced", false),
    ("1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", false),
    ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile", false),
    ("1.2.840.10008.1.2.4.101", "MPEG2 High Profile", false),
    ("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264", false),
    ("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD", false),
    ("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 2D", false),
    ("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 3D", false),
    ("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo", false),
    ("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main", false),
    ("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10", false),
    ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", false),
    (
        "1.2.840.10008.1.2.4.111",
        "JPEG XL JPEG Recompression",
        false,
    ),
    ("1.2.840.10008.1.2.4.112", "JPEG XL", false),
];

/// Human-readable name of a transfer syntax UID (`"unknown"` if we don't know it).
pub(crate) fn transfer_syntax_name(uid: &str) -> &'static str {
    SYNTAXES
        .iter()
        .find(|(u, _, _)| *u == uid)
        .map_or("unknown", |(_, name, _)| name)
}

/// Whether this build has a decoder for the transfer syntax.
pub(crate) fn can_decode(uid: &str) -> bool {
    SYNTAXES.iter().any(|(u, _, ok)| *u == uid && *ok)
}

/// Whether the pixel data is stored uncompressed (native), so we can read it ourselves.
pub(crate) fn is_native(uid: &str) -> bool {
    matches!(
        uid,
        "1.2.840.10008.1.2"
            | "1.2.840.10008.1.2.1"
            | "1.2.840.10008.1.2.1.99"
            | "1.2.840.10008.1.2.2"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_support() {
        assert_eq!(transfer_syntax_name("1.2.840.10008.1.2.5"), "RLE Lossless");
        assert_eq!(transfer_syntax_name("1.2.3"), "unknown");
        assert!(can_decode("1.2.840.10008.1.2.4.80"));
        assert!(!can_decode("1.2.840.10008.1.2.4.102"));
        assert!(!can_decode("1.2.3"));
        assert!(is_native("1.2.840.10008.1.2.2") && !is_native("1.2.840.10008.1.2.5"));
    }
}
