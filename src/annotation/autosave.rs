//! The edit journal: every accepted edit is appended as one checksummed record, written and
//! synced before the edit is acknowledged.
//!
//! File layout (`journal.m2cj`, integers little-endian):
//! - header: the magic `M2CJRNL1`, then the `u64` generation of the journal;
//! - records: `u32` payload length, `u32` CRC-32 of the payload, payload;
//! - payload: `u32` JSON length, a JSON list of ops, then the deflated tile blobs they point at
//!   (see `record.rs`).
//!
//! Which records follow the snapshot: a journal whose generation equals the snapshot's was
//! started for it, and all its records are replayed. A snapshot written while edits went on
//! (compaction runs off the UI thread) names the journal it was taken from and the offset it
//! covers ([`JournalRef`]); that journal is replayed from there. Any other journal was
//! already compacted into the snapshot and is discarded. Records are absolute ("set this to
//! that"), so replaying from an earlier offset than needed would still give the same result.
//!
//! A crash can tear only the last record. Opening keeps every record up to the first one that
//! is short or fails its checksum, reports the rest, copies it aside and truncates it: never
//! fatal.

use std::fs;
use std::path::{Path, PathBuf};

use super::document::SetOp;
use super::error::{AnnotationError, Result};
use super::record::{decode_payload, encode_record, read_u32};
use super::storage::Storage;

pub(crate) const JOURNAL_FILE: &str = "journal.m2cj";
const MAGIC: &[u8; 8] = b"M2CJRNL1";
pub(crate) const HEADER_LEN: usize = 16;
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

/// The journal a snapshot was taken from, and the byte offset up to which its records are in
/// the snapshot (stored in `snapshot.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct JournalRef {
    pub(crate) generation: u64,
    pub(crate) offset: u64,
}

/// What is in the journal file on disk: its records after the replay point and their extent.
struct Parsed {
    records: Vec<Vec<SetOp>>,
    /// Length of the valid prefix (header and whole records).
    valid_len: usize,
    generation: u64,
}

/// An open journal, positioned at its end.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: fs::File,
    generation: u64,
    len: u64,
    /// A failed append could not be cut off again: later records would follow garbage, so
    /// the project must compact (snapshot everything) before journaling again.
    poisoned: bool,
    /// Whether the folder entry of this journal is known durable.
    dir_synced: bool,
}

impl Journal {
    /// Starts an empty journal for `generation`, replacing any old one atomically.
    pub(crate) fn create(storage: &dyn Storage, root: &Path, generation: u64) -> Result<Self> {
        Self::create_with_tail(storage, root, generation, &[])
    }

    /// Starts a journal for `generation` holding `tail` (whole records copied from the journal
    /// it replaces), atomically replacing the old file.
    pub(crate) fn create_with_tail(
        storage: &dyn Storage,
        root: &Path,
        generation: u64,
        tail: &[u8],
    ) -> Result<Self> {
        let path = root.join(JOURNAL_FILE);
        let open_err = |source| AnnotationError::OpenJournal {
            path: path.clone(),
            source,
        };
        let mut bytes = Vec::with_capacity(HEADER_LEN + tail.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&generation.to_le_bytes());
        bytes.extend_from_slice(tail);
        // Written and opened under a temporary name, then renamed: once the rename is done
        // nothing can fail that would leave us holding the replaced file.
        let tmp = root.join(format!("{JOURNAL_FILE}.tmp"));
        let placed = (|| {
            let mut file = storage.create(&tmp)?;
            storage.write(&tmp, &mut file, &bytes)?;
            storage.sync(&tmp, &file)?;
            drop(file);
            let file = storage.open_append(&tmp)?;
            storage.rename(&tmp, &path)?;
            Ok(file)
        })();
        let file = match placed {
            Ok(file) => file,
            Err(source) => {
                let _ = storage.remove_file(&tmp);
                return Err(open_err(source));
            }
        };
        // Until the folder is synced the rename may not survive a power cut: the first append
        // syncs it before acknowledging anything.
        let dir_synced = match storage.sync_dir(root) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("could not sync the project folder after a new journal: {e}");
                false
            }
        };
        Ok(Self {
            path,
            file,
            generation,
            len: bytes.len() as u64,
            poisoned: false,
            dir_synced,
        })
    }

    /// Opens the journal that follows the snapshot of `generation` (taken from `follows`, if
    /// named) and returns the records to replay. A missing or stale journal is replaced by a
    /// fresh, empty one; a torn tail is copied aside and cut off.
    pub(crate) fn open(
        storage: &dyn Storage,
        root: &Path,
        generation: u64,
        follows: Option<JournalRef>,
    ) -> Result<(Self, Vec<Vec<SetOp>>, RecoveryReport)> {
        let path = root.join(JOURNAL_FILE);
        let mut report = RecoveryReport::default();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::create(storage, root, generation)?, Vec::new(), report));
            }
            Err(source) => return Err(AnnotationError::OpenJournal { path, source }),
        };
        let parsed = match parse(&bytes, generation, follows, &mut report) {
            Some(parsed) => parsed,
            None => {
                if report.dropped_bytes > 0 {
                    report.dropped_copy = save_copy(root, &bytes, generation);
                }
                return Ok((Self::create(storage, root, generation)?, Vec::new(), report));
            }
        };
        if report.dropped_bytes > 0 {
            report.dropped_copy = bytes
                .get(parsed.valid_len..)
                .and_then(|tail| save_copy(root, tail, generation));
        }
        let open_err = |source| AnnotationError::OpenJournal {
            path: path.clone(),
            source,
        };
        let file = storage.open_append(&path).map_err(open_err)?;
        if report.dropped_bytes > 0 {
            storage
                .set_len(&path, &file, parsed.valid_len as u64)
                .and_then(|()| storage.sync(&path, &file))
                .map_err(open_err)?;
        }
        let journal = Self {
            path,
            file,
            generation: parsed.generation,
            len: parsed.valid_len as u64,
            poisoned: false,
            dir_synced: true,
        };
        Ok((journal, parsed.records, report))
    }

    /// The records a read-only session replays: as [`Journal::open`], but nothing on disk
    /// is changed (no truncation, no copy, no new journal).
    pub(crate) fn read_only(
        root: &Path,
        generation: u64,
        follows: Option<JournalRef>,
    ) -> Result<(Vec<Vec<SetOp>>, RecoveryReport)> {
        let path = root.join(JOURNAL_FILE);
        let mut report = RecoveryReport::default();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), report));
            }
            Err(source) => return Err(AnnotationError::OpenJournal { path, source }),
        };
        let records = parse(&bytes, generation, follows, &mut report)
            .map(|p| p.records)
            .unwrap_or_default();
        Ok((records, report))
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Where this journal stands now, as a snapshot taken now would name it.
    pub(crate) fn position(&self) -> JournalRef {
        JournalRef {
            generation: self.generation,
            offset: self.len,
        }
    }

    /// The whole records after `offset` (as written by this session), for
    /// [`Journal::create_with_tail`].
    pub(crate) fn records_after(&self, offset: u64) -> Result<Vec<u8>> {
        let read_err = |source| AnnotationError::OpenJournal {
            path: self.path.clone(),
            source,
        };
        let bytes = fs::read(&self.path).map_err(read_err)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = usize::try_from(self.len).unwrap_or(usize::MAX);
        bytes.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
            read_err(std::io::Error::other(
                "the journal is shorter than this session wrote",
            ))
        })
    }

    /// Appends one record and syncs it to disk. On failure the partial record is cut off again
    /// (or, if that fails too, the journal is marked poisoned).
    pub(crate) fn append(&mut self, storage: &dyn Storage, ops: &[SetOp]) -> Result<()> {
        let record = encode_record(ops);
        if record.len() > MAX_RECORD_BYTES {
            // Unreadable if written: the project snapshots everything instead.
            self.poisoned = true;
            return Err(AnnotationError::AppendJournal {
                path: self.path.clone(),
                source: std::io::Error::other("edit too large for one journal record"),
            });
        }
        if !self.dir_synced {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            storage
                .sync_dir(dir)
                .map_err(|source| AnnotationError::AppendJournal {
                    path: self.path.clone(),
                    source,
                })?;
            self.dir_synced = true;
        }
        let result = storage
            .write(&self.path, &mut self.file, &record)
            .and_then(|()| storage.sync(&self.path, &self.file));
        match result {
            Ok(()) => {
                self.len += record.len() as u64;
                Ok(())
            }
            Err(source) => {
                if storage.set_len(&self.path, &self.file, self.len).is_err() {
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

/// Reads the header and decides which records follow the snapshot; `None` when the journal
/// is to be replaced (damaged header, or stale: already compacted into the snapshot).
fn parse(
    bytes: &[u8],
    generation: u64,
    follows: Option<JournalRef>,
    report: &mut RecoveryReport,
) -> Option<Parsed> {
    let header_gen = bytes
        .get(..HEADER_LEN)
        .filter(|h| h.starts_with(MAGIC))
        .and_then(|h| h.get(8..16))
        .and_then(|g| <[u8; 8]>::try_from(g).ok())
        .map(u64::from_le_bytes);
    let Some(header_gen) = header_gen else {
        report.dropped_bytes = bytes.len() as u64;
        report.dropped_reason = Some("journal header is missing or damaged".into());
        return None;
    };
    let start = if header_gen == generation {
        HEADER_LEN
    } else if let Some(from) = follows.filter(|f| f.generation == header_gen) {
        usize::try_from(from.offset).unwrap_or(usize::MAX)
    } else if header_gen < generation {
        report.stale_journal_discarded = true;
        return None;
    } else {
        // Newer than the snapshot (only by damage or by hand): its records are absolute, so
        // replaying them all is the safe reading.
        HEADER_LEN
    };
    // The snapshot covers records up to `start`; a journal shorter than that (it cannot be,
    // short of damage) has nothing after it.
    let start = start.clamp(HEADER_LEN, bytes.len().max(HEADER_LEN));
    let (records, valid_len, problem) = parse_records(bytes, start);
    if let Some(reason) = problem {
        report.dropped_bytes = (bytes.len() - valid_len) as u64;
        report.dropped_reason = Some(reason);
    }
    Some(Parsed {
        records,
        valid_len,
        generation: header_gen,
    })
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

/// Splits the journal from `start` (a record boundary) into records; returns them, the length
/// of the valid prefix, and why parsing stopped early (if it did).
fn parse_records(bytes: &[u8], start: usize) -> (Vec<Vec<SetOp>>, usize, Option<String>) {
    let mut records = Vec::new();
    let mut pos = start;
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
    use crate::annotation::storage::OsStorage;

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
        let mut journal = Journal::create(&OsStorage, dir.path(), 3).unwrap();
        journal.append(&OsStorage, &sample_ops()).unwrap();
        journal.append(&OsStorage, &sample_ops()[2..]).unwrap();
        drop(journal);
        let (_, records, report) = Journal::open(&OsStorage, dir.path(), 3, None).unwrap();
        assert_eq!(records, vec![sample_ops(), sample_ops()[2..].to_vec()]);
        assert_eq!(report, RecoveryReport::default());
    }

    #[test]
    fn a_torn_last_record_is_dropped_reported_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(&OsStorage, dir.path(), 0).unwrap();
        journal.append(&OsStorage, &sample_ops()).unwrap();
        let good_len = journal.len();
        journal.append(&OsStorage, &sample_ops()).unwrap();
        drop(journal);
        let path = dir.path().join(JOURNAL_FILE);
        let full = fs::read(&path).unwrap();
        for cut in [good_len as usize + 3, full.len() - 1] {
            fs::write(&path, &full[..cut]).unwrap();
            let (mut journal, records, report) =
                Journal::open(&OsStorage, dir.path(), 0, None).unwrap();
            assert_eq!(records.len(), 1);
            assert_eq!(report.dropped_bytes, cut as u64 - good_len);
            assert!(report.dropped_copy.as_ref().is_some_and(|p| p.exists()));
            journal.append(&OsStorage, &sample_ops()[2..]).unwrap();
            drop(journal);
            let (_, records, report) = Journal::open(&OsStorage, dir.path(), 0, None).unwrap();
            assert_eq!(records.len(), 2, "appends after a recovery are readable");
            assert_eq!(report.dropped_bytes, 0);
            fs::write(&path, &full).unwrap();
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(&OsStorage, dir.path(), 0).unwrap();
        journal.append(&OsStorage, &sample_ops()).unwrap();
        drop(journal);
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let (_, records, report) = Journal::open(&OsStorage, dir.path(), 0, None).unwrap();
        assert!(records.is_empty());
        assert_eq!(
            report.dropped_reason.as_deref(),
            Some("record checksum mismatch")
        );
    }

    #[test]
    fn an_older_journal_is_discarded_as_already_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(&OsStorage, dir.path(), 1).unwrap();
        journal.append(&OsStorage, &sample_ops()).unwrap();
        drop(journal);
        let (_, records, report) = Journal::open(&OsStorage, dir.path(), 2, None).unwrap();
        assert!(records.is_empty());
        assert!(report.stale_journal_discarded);
    }

    #[test]
    fn a_snapshot_taken_mid_journal_replays_only_what_came_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(&OsStorage, dir.path(), 4).unwrap();
        journal.append(&OsStorage, &sample_ops()).unwrap();
        let taken = journal.position();
        journal.append(&OsStorage, &sample_ops()[2..]).unwrap();
        drop(journal);
        // The snapshot of generation 5 was taken from journal 4 at `taken`.
        let (journal, records, report) =
            Journal::open(&OsStorage, dir.path(), 5, Some(taken)).unwrap();
        assert_eq!(records, vec![sample_ops()[2..].to_vec()]);
        assert!(!report.stale_journal_discarded);
        assert_eq!(journal.generation(), 4);
        // The records after that point move to a journal of generation 5.
        let tail = journal.records_after(taken.offset).unwrap();
        drop(journal);
        Journal::create_with_tail(&OsStorage, dir.path(), 5, &tail).unwrap();
        let (_, records, _) = Journal::open(&OsStorage, dir.path(), 5, Some(taken)).unwrap();
        assert_eq!(records, vec![sample_ops()[2..].to_vec()]);
        // A snapshot naming another journal makes this one stale.
        let other = JournalRef {
            generation: 3,
            offset: 16,
        };
        let (_, records, report) = Journal::open(&OsStorage, dir.path(), 6, Some(other)).unwrap();
        assert!(records.is_empty());
        assert!(report.stale_journal_discarded);
    }
}
