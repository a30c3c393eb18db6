//! The edit journal: every accepted edit is appended as one checksummed record, written and
//! synced before the edit is acknowledged.
//!
//! File layout (`journal.m2cj`, integers little-endian):
//! - header: the magic `M2CJRNL1`, then the `u64` generation of the snapshot it follows;
//! - records: `u32` payload length, `u32` CRC-32 of the payload, payload;
//! - payload: `u32` JSON length, a JSON list of ops, then the deflated tile blobs they point at
//!   (see `record.rs`).
//!
//! A crash can tear only the last record. Opening keeps every record up to the first one that
//! is short or fails its checksum, reports the rest, copies it aside and truncates it: never
//! fatal. A journal whose generation is older than the snapshot was already compacted into it
//! (the crash came between the two renames) and is discarded.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::document::SetOp;
use super::error::{AnnotationError, Result};
use super::record::{decode_payload, encode_record, read_u32};
use super::snapshot::{sync_dir, write_atomic};

pub(crate) const JOURNAL_FILE: &str = "journal.m2cj";
const MAGIC: &[u8; 8] = b"M2CJRNL1";
const HEADER_LEN: usize = 16;
/// Larger lengths can only come from a torn or corrupt length field.
const MAX_RECORD_BYTES: usize = 1 << 30;

/// What opening a project found in its journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Records replayed on top of the snapshot.
    pub records_replayed: usize,
    /// Ops in replayed records that could not be applied (they are skipped).
    pub ops_rejected: usize,
    /// Bytes after the last good record that were dropped (a torn last record).
    pub dropped_bytes: u64,
    /// Why the dropped bytes were not a record.
    pub dropped_reason: Option<String>,
    /// Where the dropped bytes were copied, for inspection.
    pub dropped_copy: Option<PathBuf>,
    /// The journal predated the snapshot (already compacted into it) and was discarded.
    pub stale_journal_discarded: bool,
}

impl RecoveryReport {
    /// Whether anything was dropped or skipped.
    pub fn lost_anything(&self) -> bool {
        self.dropped_bytes > 0 || self.ops_rejected > 0
    }
}

/// An open journal, positioned at its end.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    len: u64,
    /// A failed append could not be cut off again: later records would follow garbage, so
    /// the project must compact (snapshot everything) before journaling again.
    poisoned: bool,
}

impl Journal {
    /// Starts an empty journal for `generation`, replacing any old one atomically.
    pub(crate) fn create(root: &Path, generation: u64) -> Result<Self> {
        let path = root.join(JOURNAL_FILE);
        let open_err = |source| AnnotationError::OpenJournal {
            path: path.clone(),
            source,
        };
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&generation.to_le_bytes());
        write_atomic(&path, &header)
            .and_then(|()| sync_dir(root))
            .map_err(open_err)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(open_err)?;
        Ok(Self {
            path,
            file,
            len: HEADER_LEN as u64,
            poisoned: false,
        })
    }

    /// Opens the journal that follows the snapshot of `generation` and returns the records to
    /// replay. A missing journal is a fresh, empty one.
    pub(crate) fn open(
        root: &Path,
        generation: u64,
    ) -> Result<(Self, Vec<Vec<SetOp>>, RecoveryReport)> {
        let path = root.join(JOURNAL_FILE);
        let mut report = RecoveryReport::default();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::create(root, generation)?, Vec::new(), report));
            }
            Err(source) => return Err(AnnotationError::OpenJournal { path, source }),
        };
        let header_gen = bytes
            .get(..HEADER_LEN)
            .filter(|h| h.starts_with(MAGIC))
            .and_then(|h| h.get(8..16))
            .and_then(|g| <[u8; 8]>::try_from(g).ok())
            .map(u64::from_le_bytes);
        let Some(header_gen) = header_gen else {
            report.dropped_bytes = bytes.len() as u64;
            report.dropped_reason = Some("journal header is missing or damaged".into());
            report.dropped_copy = save_copy(root, &bytes, generation);
            return Ok((Self::create(root, generation)?, Vec::new(), report));
        };
        if header_gen < generation {
            report.stale_journal_discarded = true;
            return Ok((Self::create(root, generation)?, Vec::new(), report));
        }
        let (records, valid_len, problem) = parse_records(&bytes);
        if let Some(reason) = problem {
            report.dropped_bytes = (bytes.len() - valid_len) as u64;
            report.dropped_reason = Some(reason);
            report.dropped_copy = bytes
                .get(valid_len..)
                .and_then(|tail| save_copy(root, tail, generation));
        }
        let open_err = |source| AnnotationError::OpenJournal {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(open_err)?;
        if report.dropped_bytes > 0 {
            file.set_len(valid_len as u64).map_err(open_err)?;
            file.sync_all().map_err(open_err)?;
        }
        let journal = Self {
            path,
            file,
            len: valid_len as u64,
            poisoned: false,
        };
        Ok((journal, records, report))
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Appends one record and syncs it to disk. On failure the partial record is cut off again
    /// (or, if that fails too, the journal is marked poisoned).
    pub(crate) fn append(&mut self, ops: &[SetOp]) -> Result<()> {
        let record = encode_record(ops);
        if record.len() > MAX_RECORD_BYTES {
            // Unreadable if written: the project snapshots everything instead.
            self.poisoned = true;
            return Err(AnnotationError::AppendJournal {
                path: self.path.clone(),
                source: std::io::Error::other("edit too large for one journal record"),
            });
        }
        let result = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += record.len() as u64;
                Ok(())
            }
            Err(source) => {
                if self.file.set_len(self.len).is_err() {
                    self.poisoned = true;
                }
                Err(AnnotationError::AppendJournal {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

/// Copies dropped journal bytes aside (best effort: the copy is for inspection only).
fn save_copy(root: &Path, bytes: &[u8], generation: u64) -> Option<PathBuf> {
    let stamp = super::document::now_unix_ms();
    let path = root.join(format!("journal-dropped-g{generation}-{stamp}.bin"));
    match fs::write(&path, bytes) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::debug!("could not keep a copy of dropped journal bytes at {path:?}: {e}");
            None
        }
    }
}

/// Splits the journal into records; returns them, the length of the valid prefix, and why
/// parsing stopped early (if it did).
fn parse_records(bytes: &[u8]) -> (Vec<Vec<SetOp>>, usize, Option<String>) {
    let mut records = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let Some(frame) = bytes.get(pos..pos + 8) else {
            return (records, pos, Some("record header cut short".into()));
        };
        let (len_bytes, crc_bytes) = frame.split_at(4);
        let len = read_u32(len_bytes) as usize;
        let crc = read_u32(crc_bytes);
        if len > MAX_RECORD_BYTES {
            return (
                records,
                pos,
                Some(format!("implausible record length {len}")),
            );
        }
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            return (records, pos, Some("record cut short".into()));
        };
        if crc32fast::hash(payload) != crc {
            return (records, pos, Some("record checksum mismatch".into()));
        }
        match decode_payload(payload) {
            Ok(ops) => records.push(ops),
            Err(reason) => return (records, pos, Some(reason)),
        }
        pos += 8 + len;
    }
    (records, pos, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::document::ItemId;
    use crate::annotation::mask::{ImageSize, TileData};

    fn sample_ops() -> Vec<SetOp> {
        let raw: Vec<u8> = (0..64 * 64).map(|i| u8::from(i % 3 == 0)).collect();
        vec![
            SetOp::AddItem {
                key: "a".into(),
                size: ImageSize::new(100, 100).unwrap(),
            },
            SetOp::Tiles {
                item: ItemId(0),
                class: 2,
                tiles: vec![(0, TileData::Raw(raw.into())), (1, TileData::Uniform(1))],
            },
            SetOp::Hue {
                item: ItemId(0),
                hue: Some(0.5),
            },
        ]
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), 3).unwrap();
        journal.append(&sample_ops()).unwrap();
        journal.append(&sample_ops()[2..]).unwrap();
        drop(journal);
        let (_, records, report) = Journal::open(dir.path(), 3).unwrap();
        assert_eq!(records, vec![sample_ops(), sample_ops()[2..].to_vec()]);
        assert_eq!(report, RecoveryReport::default());
    }

    #[test]
    fn a_torn_last_record_is_dropped_reported_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), 0).unwrap();
        journal.append(&sample_ops()).unwrap();
        let good_len = journal.len();
        journal.append(&sample_ops()).unwrap();
        drop(journal);
        let path = dir.path().join(JOURNAL_FILE);
        let full = fs::read(&path).unwrap();
        for cut in [good_len as usize + 3, full.len() - 1] {
            fs::write(&path, &full[..cut]).unwrap();
            let (mut journal, records, report) = Journal::open(dir.path(), 0).unwrap();
            assert_eq!(records.len(), 1);
            assert_eq!(report.dropped_bytes, cut as u64 - good_len);
            assert!(report.dropped_copy.as_ref().is_some_and(|p| p.exists()));
            journal.append(&sample_ops()[2..]).unwrap();
            drop(journal);
            let (_, records, report) = Journal::open(dir.path(), 0).unwrap();
            assert_eq!(records.len(), 2, "appends after a recovery are readable");
            assert_eq!(report.dropped_bytes, 0);
            fs::write(&path, &full).unwrap();
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), 0).unwrap();
        journal.append(&sample_ops()).unwrap();
        drop(journal);
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let (_, records, report) = Journal::open(dir.path(), 0).unwrap();
        assert!(records.is_empty());
        assert_eq!(
            report.dropped_reason.as_deref(),
            Some("record checksum mismatch")
        );
    }

    #[test]
    fn an_older_journal_is_discarded_as_already_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), 1).unwrap();
        journal.append(&sample_ops()).unwrap();
        drop(journal);
        let (_, records, report) = Journal::open(dir.path(), 2).unwrap();
        assert!(records.is_empty());
        assert!(report.stale_journal_discarded);
    }
}
