//! `Project`: the document, its undo history and its autosave, behind one API for the app and
//! the CLI.
//!
//! Every accepted edit is applied in memory, recorded for undo, and appended to the journal
//! (synced) before the call returns; `Ok` means the edit is on disk. If the journal cannot be
//! written the edit stays in memory, queued, the call returns the error, and the next edit or
//! [`Project::flush`] retries. When the journal grows past a threshold it is compacted into a
//! new snapshot.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::autosave::{Journal, RecoveryReport};
use super::document::{Document, Item, ItemId, LabelClass, SetOp};
use super::error::{AnnotationError, Result};
use super::history::{Change, History, Stroke};
use super::mask::{ImageSize, Mask};
use super::snapshot;

const LOCK_FILE: &str = ".lock";

/// Tuning for a project session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectOptions {
    /// Memory the undo history may hold before the oldest steps are forgotten.
    pub undo_budget_bytes: usize,
    /// Journal size past which an edit also compacts the journal into a new snapshot.
    pub compact_after_journal_bytes: u64,
}

impl Default for ProjectOptions {
    fn default() -> Self {
        Self {
            undo_budget_bytes: 512 << 20,
            compact_after_journal_bytes: 16 << 20,
        }
    }
}

/// An open annotation project. Holds an exclusive lock on its folder until dropped.
#[derive(Debug)]
pub struct Project {
    pub(super) doc: Document,
    pub(super) history: History,
    pub(super) stroke: Option<Stroke>,
    /// `None` right after a snapshot whose fresh journal could not be created yet.
    journal: Option<Journal>,
    generation: u64,
    /// Records applied in memory but not yet in the journal (a failed append).
    pending: VecDeque<Vec<SetOp>>,
    options: ProjectOptions,
    recovery: RecoveryReport,
    _lock: File,
}

impl Project {
    /// Where a study's project goes by default: a sibling folder named `<study>.m2c`.
    pub fn default_dir_for_study(study: &Path) -> PathBuf {
        let mut name = study.file_name().unwrap_or_default().to_os_string();
        name.push(".m2c");
        study.with_file_name(name)
    }

    /// Creates a new project in `dir` (created if missing). Refuses to replace an existing
    /// project, and refuses a folder inside a read-only `study`.
    pub fn create(dir: &Path, study: Option<&Path>, options: ProjectOptions) -> Result<Self> {
        if dir.join(snapshot::SNAPSHOT_FILE).exists() {
            return Err(AnnotationError::ProjectExists {
                path: dir.to_path_buf(),
            });
        }
        if let Some(study) = study
            && is_inside_read_only(dir, study)
        {
            return Err(AnnotationError::ProjectInsideReadOnlyStudy {
                project: dir.to_path_buf(),
                study: study.to_path_buf(),
            });
        }
        fs::create_dir_all(dir).map_err(|source| AnnotationError::CreateProjectDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = lock(dir)?;
        // Re-check under the lock: another process may have created it meanwhile.
        if dir.join(snapshot::SNAPSHOT_FILE).exists() {
            return Err(AnnotationError::ProjectExists {
                path: dir.to_path_buf(),
            });
        }
        let mut doc = Document::new(dir, study.map(Path::to_path_buf));
        let journal = Journal::create(dir, 0)?;
        snapshot::write_empty(&mut doc)?;
        Ok(Self::assemble(
            doc,
            journal,
            0,
            options,
            RecoveryReport::default(),
            lock,
        ))
    }

    /// Opens a project: reads the snapshot (no masks: they load on first use) and replays the
    /// journal. A torn last record is dropped and described in [`Project::recovery`].
    pub fn open(dir: &Path, options: ProjectOptions) -> Result<Self> {
        if !dir.join(snapshot::SNAPSHOT_FILE).is_file() {
            return Err(AnnotationError::NotAProject {
                path: dir.to_path_buf(),
            });
        }
        let lock = lock(dir)?;
        let (mut doc, generation) = snapshot::read(dir)?;
        let (journal, records, mut report) = Journal::open(dir, generation)?;
        for record in &records {
            for op in record {
                if let Err(e) = doc.apply(op) {
                    tracing::debug!("skipping a journal op that does not apply: {e}");
                    report.ops_rejected += 1;
                }
            }
        }
        report.records_replayed = records.len();
        if report.lost_anything() {
            tracing::warn!(
                dropped_bytes = report.dropped_bytes,
                ops_rejected = report.ops_rejected,
                "recovered the project, dropping a damaged journal tail: {:?}",
                report.dropped_reason
            );
        }
        Ok(Self::assemble(
            doc, journal, generation, options, report, lock,
        ))
    }

    fn assemble(
        doc: Document,
        journal: Journal,
        generation: u64,
        options: ProjectOptions,
        recovery: RecoveryReport,
        lock: File,
    ) -> Self {
        Self {
            doc,
            history: History::new(options.undo_budget_bytes),
            stroke: None,
            journal: Some(journal),
            generation,
            pending: VecDeque::new(),
            options,
            recovery,
            _lock: lock,
        }
    }

    pub fn root(&self) -> &Path {
        &self.doc.root
    }

    /// The study this project annotates, as given at creation.
    pub fn study(&self) -> Option<&Path> {
        self.doc.study.as_deref()
    }

    /// What opening found in the journal (replayed records, dropped bytes).
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    pub fn items(&self) -> &[Item] {
        &self.doc.items
    }

    pub fn item(&self, id: ItemId) -> Option<&Item> {
        self.doc.items.get(id.index())
    }

    pub fn find_item(&self, key: &str) -> Option<ItemId> {
        self.doc.by_key.get(key).copied()
    }

    pub fn classes(&self) -> impl Iterator<Item = &LabelClass> {
        self.doc.classes.values()
    }

    pub fn class(&self, value: u8) -> Option<&LabelClass> {
        self.doc.classes.get(&value)
    }

    /// The item's masks by class value, loaded from disk on first use.
    pub fn masks(&mut self, item: ItemId) -> Result<&BTreeMap<u8, Mask>> {
        Ok(self.doc.masks(item)?)
    }

    /// One class's mask on an item (`None` if it was never drawn).
    pub fn mask(&mut self, item: ItemId, class: u8) -> Result<Option<&Mask>> {
        Ok(self.doc.masks(item)?.get(&class))
    }

    /// Drops an item's masks from memory if they are saved in the snapshot; returns whether it
    /// did. Undo steps keep working (they reload the masks).
    pub fn release_masks(&mut self, item: ItemId) -> bool {
        if self.stroke.as_ref().is_some_and(|s| s.item() == item) {
            return false;
        }
        match self.doc.items.get_mut(item.index()) {
            Some(it) if it.dirty.is_empty() && it.masks.is_some() => {
                it.masks = None;
                true
            }
            _ => false,
        }
    }

    /// Registers images or slices (key, width, height), journaled as one record. Known keys
    /// with the same size return their existing id.
    pub fn add_items<'a>(
        &mut self,
        items: impl IntoIterator<Item = (&'a str, u32, u32)>,
    ) -> Result<Vec<ItemId>> {
        let mut ids = Vec::new();
        let mut ops = Vec::new();
        let before = self.doc.items.len();
        for (key, width, height) in items {
            let added = ImageSize::new(width, height)
                .ok_or(AnnotationError::InvalidImageSize { width, height })
                .and_then(|size| Ok((self.doc.add_item(key, size)?, size)));
            let ((id, added), size) = match added {
                Ok(ok) => ok,
                Err(e) => {
                    // All or nothing: an item in memory but not in the journal would make
                    // later records refer to an item that a reopened project lacks.
                    for item in self.doc.items.drain(before..) {
                        self.doc.by_key.remove(&item.key);
                    }
                    return Err(e);
                }
            };
            if added {
                ops.push(SetOp::AddItem {
                    key: key.to_owned(),
                    size,
                });
            }
            ids.push(id);
        }
        if !ops.is_empty() {
            self.write_record(ops)?;
        }
        Ok(ids)
    }

    /// Registers one image or slice; see [`Project::add_items`].
    pub fn add_item(&mut self, key: &str, width: u32, height: u32) -> Result<ItemId> {
        let ids = self.add_items([(key, width, height)])?;
        ids.first()
            .copied()
            .ok_or(AnnotationError::InvalidImageSize { width, height })
    }

    pub(super) fn commit(&mut self, change: Change) -> Result<()> {
        let ops = change.forward();
        self.history.push(change);
        self.write_record(ops)
    }

    pub(super) fn write_record(&mut self, ops: Vec<SetOp>) -> Result<()> {
        self.pending.push_back(ops);
        self.flush()?;
        if self
            .journal
            .as_ref()
            .is_some_and(|j| j.len() > self.options.compact_after_journal_bytes)
            && let Err(e) = self.compact()
        {
            // The edit is already safe in the journal; compaction is retried on the next edit.
            tracing::warn!("journal compaction failed, will retry: {e}");
        }
        Ok(())
    }

    /// Whether every applied edit is on disk.
    pub fn is_saved(&self) -> bool {
        self.pending.is_empty() && self.journal.as_ref().is_some_and(|j| !j.is_poisoned())
    }

    /// Writes queued edits to the journal (after a failed append).
    pub fn flush(&mut self) -> Result<()> {
        if self.journal.as_ref().is_some_and(Journal::is_poisoned) {
            return self.compact();
        }
        let journal = match &mut self.journal {
            Some(j) => j,
            None => self
                .journal
                .insert(Journal::create(&self.doc.root, self.generation)?),
        };
        let mut failure = None;
        while let Some(ops) = self.pending.front() {
            if let Err(e) = journal.append(ops) {
                failure = Some((e, journal.is_poisoned()));
                break;
            }
            self.pending.pop_front();
        }
        match failure {
            None => Ok(()),
            // Later records would follow a damaged one: snapshot everything instead.
            Some((_, true)) => self.compact(),
            Some((e, false)) => Err(e),
        }
    }

    /// Writes a new snapshot of everything in memory and starts an empty journal.
    pub fn compact(&mut self) -> Result<()> {
        let next = self.generation + 1;
        snapshot::write(&mut self.doc, next)?;
        self.generation = next;
        self.pending.clear();
        self.journal = None;
        self.journal = Some(Journal::create(&self.doc.root, next)?);
        Ok(())
    }

    /// Ends any drag, then compacts: the project on disk is one snapshot and an empty journal.
    pub fn save(&mut self) -> Result<()> {
        self.end_stroke()?;
        self.compact()
    }

    /// Snapshot generation on disk (grows with each compaction).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = File::create(&path).map_err(|source| AnnotationError::LockProject {
        path: path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(AnnotationError::ProjectLocked { path }),
        Err(fs::TryLockError::Error(source)) => Err(AnnotationError::LockProject { path, source }),
    }
}

/// Whether `dir` lies inside `study` and the study folder is read-only.
fn is_inside_read_only(dir: &Path, study: &Path) -> bool {
    let (Ok(dir), Ok(study)) = (std::path::absolute(dir), fs::canonicalize(study)) else {
        return false;
    };
    let inside = dir.starts_with(&study)
        || std::path::absolute(&study).is_ok_and(|s| dir.starts_with(s))
        || nearest_existing(&dir).is_some_and(|d| d.starts_with(&study));
    inside && fs::metadata(&study).is_ok_and(|m| m.permissions().readonly())
}

/// The canonical form of `path`'s nearest existing ancestor (resolving symlinks).
fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().find_map(|p| fs::canonicalize(p).ok())
}
