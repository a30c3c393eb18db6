//! New DICOM UIDs under a root.
//!
//! [`M2C_UID_ROOT`] is `2.25.` followed by the decimal value of a UUID generated once for this
//! project (ISO/IEC 9834-8: a UUID-derived OID arc belongs to whoever generated the UUID, so
//! no registration is needed and arcs below it are ours to assign). A site with its own
//! registered root can use that instead ([`SegOptions::uid_root`](super::SegOptions)). The
//! last component is 18 decimal digits from a SHA-256 of the time, the process, a counter and
//! the calling thread: unique in practice, never derived from patient data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

/// The M2C Annotator UID root (`2.25.<UUID 131eeee9-ccc1-4b28-8c6e-7b143ba495b4>`).
pub const M2C_UID_ROOT: &str = "2.25.25415946562685600947394964138674656692";

/// Longest UID DICOM allows (PS3.5 9.1).
const MAX_UID_LEN: usize = 64;
/// The generated component: 18 digits, first one non-zero.
const SUFFIX_DIGITS: usize = 18;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Checks that `root` is a UID prefix new UIDs can be made under: digits and dots, no empty
/// component, no leading zero, and room for the generated component within 64 characters.
pub fn validate_uid_root(root: &str) -> Result<(), String> {
    if root.len() + 1 + SUFFIX_DIGITS > MAX_UID_LEN {
        return Err(format!(
            "UID root is {} characters; at most {} leave room for a unique suffix",
            root.len(),
            MAX_UID_LEN - 1 - SUFFIX_DIGITS
        ));
    }
    for part in root.split('.') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("UID root component {part:?} is not a number"));
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(format!("UID root component {part:?} has a leading zero"));
        }
    }
    Ok(())
}

/// A new UID under `root` (which [`validate_uid_root`] should have accepted).
pub fn new_uid(root: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.update(format!("{:?}", std::thread::current().id()).as_bytes());
    let digest = hasher.finalize();
    let mut word = [0u8; 8];
    word.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    let low = 100_000_000_000_000_000u64; // 10^17
    let value = low + u64::from_le_bytes(word) % (9 * low);
    format!("{root}.{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_uids_are_valid_distinct_and_under_the_root() {
        validate_uid_root(M2C_UID_ROOT).unwrap();
        let a = new_uid(M2C_UID_ROOT);
        let b = new_uid(M2C_UID_ROOT);
        assert_ne!(a, b);
        assert!(a.len() <= MAX_UID_LEN, "{a}");
        let suffix = a.strip_prefix(&format!("{M2C_UID_ROOT}.")).unwrap();
        assert_eq!(suffix.len(), SUFFIX_DIGITS);
        assert!(!suffix.starts_with('0'));
    }

    #[test]
    fn bad_roots_are_refused_with_the_reason() {
        assert!(validate_uid_root("1.2.840.99999").is_ok());
        assert!(
            validate_uid_root("1.2.03")
                .unwrap_err()
                .contains("leading zero")
        );
        assert!(validate_uid_root("1..2").is_err());
        assert!(validate_uid_root("1.2.a").is_err());
        assert!(validate_uid_root(&"1.".repeat(30)).is_err());
    }
}
