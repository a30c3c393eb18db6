//! `Project`: the document, its undo history and its autosave, behind one API for the app and
//! the CLI.
//!
//! Every accepted edit is applied in memory, recorded for undo, and appended to the journal
//! (synced) before the call returns; `Ok` means the edit is on disk. If the journal cannot be
//! written the edit stays in memory, queued, the call returns the error, and the next edit or
//! [`Project::flush`] retries. When the journal grows past a threshold it is compacted into a
//! new snapshot on a helper thread (PNG encoding included) while editing goes on; see
//! `autosave.rs` for how a snapshot names the journal records it covers.
//!
//! A project folder is edited by one session at a time: an exclusive lock on `.lock`, which
//! also says who holds it. A second session opens it read-only ([`Project::open_read_only`]).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::autosave::{Journal, JournalRef, RecoveryReport};
use super::document::{Document, Item, ItemId, LabelClass, SetOp};
use super::error::{AnnotationError, Result};
use super::history::{Change, History, Stroke};
use super::mask::{ImageSize, Mask};
use super::snapshot::{self, SnapshotJob};
use super::storage::{SharedStorage, os_storage};

const LOCK_FILE: &str = ".lock";
/// Extra tries (50 ms apart) at a lock that is taken.
const LOCK_ATTEMPTS: u32 = 6;
/// After a failed background compaction, none is started again for this long (the edits are
/// safe in the journal meanwhile).
const COMPACTION_BACKOFF: Duration = Duration::from_secs(5);

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

/// Whether this session may change the project on disk.
#[derive(Debug)]
enum Access {
    /// Holds the folder's lock until dropped.
    Writable { _lock: File },
    /// Another session holds the lock; why, in words.
    ReadOnly { reason: String },
}

/// A compaction running on a helper thread.
#[derive(Debug)]
struct InFlight {
    handle: JoinHandle<Option<(SnapshotJob, Result<()>)>>,
    meta: CompactionMeta,
}

/// What finishing a compaction needs besides its job.
#[derive(Debug, Clone)]
struct CompactionMeta {
    /// The journal position the snapshot covers.
    follows: Option<JournalRef>,
    /// Queued records (front of `pending`) that the snapshot holds.
    pending_covered: usize,
    /// `(item index, class)` of every mask the snapshot writes.
    touched: Vec<(usize, u8)>,
}

/// An open annotation project. Holds an exclusive lock on its folder until dropped (unless
/// opened read-only).
#[derive(Debug)]
pub struct Project {
    pub(super) doc: Document,
    pub(super) history: History,
    pub(super) stroke: Option<Stroke>,
    /// `None` only for a read-only session.
    journal: Option<Journal>,
    generation: u64,
    /// Records applied in memory but not yet in the journal (a failed append).
    pending: VecDeque<Vec<SetOp>>,
    options: ProjectOptions,
    recovery: RecoveryReport,
    storage: SharedStorage,
    compaction: Option<InFlight>,
    /// No background compaction starts before this (one failed).
    compaction_backoff: Option<Instant>,
    access: Access,
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
        Self::create_with_storage(dir, study, options, os_storage())
    }

    /// [`Project::create`] writing through `storage` (tests inject failing writes).
    pub fn create_with_storage(
        dir: &Path,
        study: Option<&Path>,
        options: ProjectOptions,
        storage: SharedStorage,
    ) -> Result<Self> {
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
        storage
            .create_dir_all(dir)
            .map_err(|source| AnnotationError::CreateProjectDir {
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
        let journal = Journal::create(&*storage, dir, 0)?;
        snapshot::write_empty(&mut doc, &*storage)?;
        Ok(Self::assemble(
            doc,
            Some(journal),
            0,
            options,
            RecoveryReport::default(),
            storage,
            Access::Writable { _lock: lock },
        ))
    }

    /// Opens a project: reads the snapshot (no masks: they load on first use) and replays the
    /// journal. A torn last record is dropped and described in [`Project::recovery`]. Fails
    /// with [`AnnotationError::ProjectLocked`] (naming the holder) when another session has
    /// it open; [`Project::open_read_only`] can still show it then.
    pub fn open(dir: &Path, options: ProjectOptions) -> Result<Self> {
        Self::open_with_storage(dir, options, os_storage())
    }

    /// [`Project::open`] writing through `storage` (tests inject failing writes).
    pub fn open_with_storage(
        dir: &Path,
        options: ProjectOptions,
        storage: SharedStorage,
    ) -> Result<Self> {
        if !dir.join(snapshot::SNAPSHOT_FILE).is_file() {
            return Err(AnnotationError::NotAProject {
                path: dir.to_path_buf(),
            });
        }
        let lock = lock(dir)?;
        let (mut doc, info) = snapshot::read(dir)?;
        let (journal, records, mut report) =
            Journal::open(&*storage, dir, info.generation, info.follows)?;
        replay(&mut doc, &records, &mut report);
        // Leftovers of a compaction that a crash interrupted.
        snapshot::sweep_unreferenced(&doc, &*storage);
        Ok(Self::assemble(
            doc,
            Some(journal),
            info.generation,
            options,
            report,
            storage,
            Access::Writable { _lock: lock },
        ))
    }

    /// Opens a project without its lock and without writing anything: the state on disk now
    /// (snapshot and journal, a torn tail ignored). Every edit is refused with
    /// [`AnnotationError::ReadOnly`] carrying `reason`, which should say why (usually the
    /// holder from [`AnnotationError::ProjectLocked`]). Items may still be registered (in
    /// memory only) so that a viewer can show every slice.
    pub fn open_read_only(dir: &Path, options: ProjectOptions, reason: String) -> Result<Self> {
        if !dir.join(snapshot::SNAPSHOT_FILE).is_file() {
            return Err(AnnotationError::NotAProject {
                path: dir.to_path_buf(),
            });
        }
        let (mut doc, info) = snapshot::read(dir)?;
        let (records, mut report) = Journal::read_only(dir, info.generation, info.follows)?;
        replay(&mut doc, &records, &mut report);
        Ok(Self::assemble(
            doc,
            None,
            info.generation,
            options,
            report,
            os_storage(),
            Access::ReadOnly { reason },
        ))
    }

    fn assemble(
        doc: Document,
        journal: Option<Journal>,
        generation: u64,
        options: ProjectOptions,
        recovery: RecoveryReport,
        storage: SharedStorage,
        access: Access,
    ) -> Self {
        Self {
            doc,
            history: History::new(options.undo_budget_bytes),
            stroke: None,
            journal,
            generation,
            pending: VecDeque::new(),
            options,
            recovery,
            storage,
            compaction: None,
            compaction_backoff: None,
            access,
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

    /// Why this session may not edit (another session holds the project), if it may not.
    pub fn read_only_reason(&self) -> Option<&str> {
        match &self.access {
            Access::Writable { .. } => None,
            Access::ReadOnly { reason } => Some(reason),
        }
    }

    /// Refuses a change in a read-only session.
    pub(super) fn ensure_writable(&self) -> Result<()> {
        match &self.access {
            Access::Writable { .. } => Ok(()),
            Access::ReadOnly { reason } => Err(AnnotationError::ReadOnly {
                reason: reason.clone(),
                path: self.doc.root.clone(),
            }),
        }
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
    pub fn masks(&mut self, item: ItemId) -> Result<&std::collections::BTreeMap<u8, Mask>> {
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
        // A snapshot being written holds newer masks than the files the item points at.
        if self
            .compaction
            .as_ref()
            .is_some_and(|c| c.meta.touched.iter().any(|(i, _)| *i == item.index()))
        {
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
    /// with the same size return their existing id. A read-only session registers them in
    /// memory only.
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
        if !ops.is_empty() && self.read_only_reason().is_none() {
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
        self.ensure_writable()?;
        self.poll_compaction();
        self.pending.push_back(ops);
        self.flush()?;
        self.compact_in_background_if_due();
        Ok(())
    }

    /// Whether every applied edit is on disk (always, for a read-only session: it has none).
    pub fn is_saved(&self) -> bool {
        match &self.journal {
            Some(j) => self.pending.is_empty() && !j.is_poisoned(),
            None => self.read_only_reason().is_some(),
        }
    }

    /// Writes queued edits to the journal (after a failed append). A journal that a failed
    /// write left damaged is replaced by a compaction first.
    pub fn flush(&mut self) -> Result<()> {
        if self.read_only_reason().is_some() {
            return Ok(());
        }
        self.poll_compaction();
        if self.journal.as_ref().is_some_and(Journal::is_poisoned) {
            return self.compact();
        }
        let storage = self.storage.clone();
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        let mut failure = None;
        while let Some(ops) = self.pending.front() {
            if let Err(e) = journal.append(&*storage, ops) {
                failure = Some((e, journal.is_poisoned()));
                break;
            }
            self.pending.pop_front();
            if let Some(c) = &mut self.compaction {
                c.meta.pending_covered = c.meta.pending_covered.saturating_sub(1);
            }
        }
        match failure {
            None => Ok(()),
            // Later records would follow a damaged one: snapshot everything instead.
            Some((_, true)) => self.compact(),
            Some((e, false)) => Err(e),
        }
    }

    /// Writes a new snapshot of everything in memory and starts an empty journal, on this
    /// thread (after any background compaction finished).
    pub fn compact(&mut self) -> Result<()> {
        self.ensure_writable()?;
        if let Some(Err(e)) = self.wait_for_compaction() {
            tracing::warn!("a background compaction failed; compacting again: {e}");
        }
        let (job, meta) = self.capture();
        let result = job.write(&*self.storage);
        self.finish_compaction(job, meta, result)
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

    /// Whether a compaction is running on its helper thread.
    pub fn is_compacting(&self) -> bool {
        self.compaction.is_some()
    }

    /// Finishes a background compaction that is done (call once per frame or so; edits do it
    /// too). Returns its outcome when one finished: a failure loses nothing (the journal
    /// still holds every edit) and is retried later.
    pub fn poll_compaction(&mut self) -> Option<Result<()>> {
        if !self.compaction.as_ref()?.handle.is_finished() {
            return None;
        }
        self.wait_for_compaction()
    }

    /// Waits for a background compaction, if one runs, and finishes it.
    pub fn wait_for_compaction(&mut self) -> Option<Result<()>> {
        let InFlight { handle, meta } = self.compaction.take()?;
        let outcome = match handle.join() {
            Ok(Some((job, result))) => self.finish_compaction(job, meta, result),
            Ok(None) | Err(_) => {
                // The thread died without handing the job back: its masks count as changed
                // again, and whatever it wrote is unreferenced (swept on the next open).
                for &(index, class) in &meta.touched {
                    if let Some(item) = self.doc.items.get_mut(index) {
                        item.dirty.insert(class);
                    }
                }
                self.compaction_backoff = Some(Instant::now() + COMPACTION_BACKOFF);
                Err(AnnotationError::CompactionFailed {
                    path: self.doc.root.clone(),
                })
            }
        };
        if let Err(e) = &outcome {
            tracing::warn!("journal compaction failed, will retry: {e}");
        }
        Some(outcome)
    }

    /// Starts a compaction on a helper thread when the journal has grown past the threshold
    /// (or a failed write damaged it), none runs, and none failed in the last few seconds.
    fn compact_in_background_if_due(&mut self) {
        let Some(journal) = &self.journal else {
            return;
        };
        let due = journal.len() > self.options.compact_after_journal_bytes || journal.is_poisoned();
        if !due
            || self.compaction.is_some()
            || self.compaction_backoff.is_some_and(|t| Instant::now() < t)
        {
            return;
        }
        let (job, meta) = self.capture();
        let storage = self.storage.clone();
        let (job_tx, job_rx) = mpsc::channel::<SnapshotJob>();
        let spawned = std::thread::Builder::new()
            .name("m2c-compaction".to_owned())
            .spawn(move || {
                let job = job_rx.recv().ok()?;
                let result = job.write(&*storage);
                Some((job, result))
            })
            .inspect_err(|e| {
                tracing::warn!("could not start the compaction thread, compacting here: {e}");
            })
            .ok();
        // Without a thread its receiver is gone and the job comes back: compact here then.
        match (job_tx.send(job), spawned) {
            (Ok(()), Some(handle)) => self.compaction = Some(InFlight { handle, meta }),
            (Ok(()), None) => {
                for &(index, class) in &meta.touched {
                    if let Some(item) = self.doc.items.get_mut(index) {
                        item.dirty.insert(class);
                    }
                }
            }
            (Err(mpsc::SendError(job)), _) => {
                let result = job.write(&*self.storage);
                if let Err(e) = self.finish_compaction(job, meta, result) {
                    tracing::warn!("journal compaction failed, will retry: {e}");
                }
            }
        }
    }

    /// Takes a snapshot job of the document as it is now (UI thread, no I/O).
    fn capture(&mut self) -> (SnapshotJob, CompactionMeta) {
        let follows = self.journal.as_ref().map(Journal::position);
        let job = snapshot::capture(&mut self.doc, self.generation + 1, follows);
        let meta = CompactionMeta {
            follows,
            pending_covered: self.pending.len(),
            touched: job.touched(),
        };
        (job, meta)
    }

    /// Adopts a written snapshot (the document points at its files, the queued records it
    /// holds are dropped, the journal restarts with what came after the snapshot), or puts
    /// a failed one back.
    fn finish_compaction(
        &mut self,
        job: SnapshotJob,
        meta: CompactionMeta,
        result: Result<()>,
    ) -> Result<()> {
        if let Err(e) = result {
            snapshot::restore(&mut self.doc, &*self.storage, job);
            self.compaction_backoff = Some(Instant::now() + COMPACTION_BACKOFF);
            return Err(e);
        }
        self.compaction_backoff = None;
        self.generation = job.generation();
        snapshot::adopt(&mut self.doc, &*self.storage, job);
        let covered = meta.pending_covered.min(self.pending.len());
        self.pending.drain(..covered);
        // The journal the snapshot was taken from stays valid (the snapshot names it); moving
        // the records after the snapshot into a fresh journal only keeps it short.
        if let (Some(journal), Some(follows)) = (&self.journal, meta.follows)
            && journal.generation() == follows.generation
        {
            let fresh = journal.records_after(follows.offset).and_then(|tail| {
                Journal::create_with_tail(&*self.storage, &self.doc.root, self.generation, &tail)
            });
            match fresh {
                Ok(fresh) => self.journal = Some(fresh),
                Err(e) => tracing::warn!(
                    "could not start a fresh journal after the snapshot (the old one stays): {e}"
                ),
            }
        }
        Ok(())
    }
}

impl Drop for Project {
    /// Lets a running compaction finish, so the folder is left tidy (it would be consistent
    /// without, as after a crash).
    fn drop(&mut self) {
        let _ = self.wait_for_compaction();
    }
}

/// Applies journal records to a freshly read snapshot, counting the ops that do not apply.
fn replay(doc: &mut Document, records: &[Vec<SetOp>], report: &mut RecoveryReport) {
    for record in records {
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
}

/// Takes the folder's lock and writes who holds it into the lock file; a held lock is
/// [`AnnotationError::ProjectLocked`] naming the holder.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let lock_err = |source| AnnotationError::LockProject {
        path: path.clone(),
        source,
    };
    // Not truncated on open: the holder's note must survive a second session's attempt.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_err)?;
    // A lock released a moment ago can still be held by a child process between its fork and
    // its exec (it shares the open file): try a few times before calling the project taken.
    let mut attempt = file.try_lock();
    for _ in 0..LOCK_ATTEMPTS {
        match attempt {
            Err(fs::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(50));
                attempt = file.try_lock();
            }
            _ => break,
        }
    }
    match attempt {
        Ok(()) => {
            let note = format!(
                "pid {}\nhost {}\nsince {}\n",
                std::process::id(),
                host_name(),
                super::document::now_unix_ms() / 1000
            );
            // The note is for people; the lock works without it (a full disk, say).
            if let Err(e) = file
                .set_len(0)
                .and_then(|()| file.write_all(note.as_bytes()))
            {
                tracing::debug!("could not write the lock note {path:?}: {e}");
            }
            Ok(file)
        }
        Err(fs::TryLockError::WouldBlock) => {
            let mut note = String::new();
            let _ = file.read_to_string(&mut note);
            Err(AnnotationError::ProjectLocked {
                holder: describe_holder(&note),
                path,
            })
        }
        Err(fs::TryLockError::Error(source)) => Err(lock_err(source)),
    }
}

/// "process 123 on ws-7, since 4 min" from a lock note.
fn describe_holder(note: &str) -> String {
    let field = |key: &str| {
        note.lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .filter(|v| !v.is_empty())
    };
    let mut out = match field("pid ") {
        Some(pid) => format!("process {pid}"),
        None => "another process".to_owned(),
    };
    if let Some(host) = field("host ") {
        out += &format!(" on {host}");
    }
    if let Some(since) = field("since ").and_then(|s| s.parse::<u64>().ok()) {
        let now = super::document::now_unix_ms() / 1000;
        let minutes = now.saturating_sub(since) / 60;
        out += &match minutes {
            0 => ", opened less than a minute ago".to_owned(),
            1 => ", opened a minute ago".to_owned(),
            m if m < 120 => format!(", opened {m} minutes ago"),
            m => format!(", opened {} hours ago", m / 60),
        };
    }
    out
}

/// This computer's name, for the lock note.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "this computer".to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_described_from_its_note() {
        let now = super::super::document::now_unix_ms() / 1000;
        let note = format!("pid 42\nhost ws-7\nsince {}\n", now - 300);
        assert_eq!(
            describe_holder(&note),
            "process 42 on ws-7, opened 5 minutes ago"
        );
        assert_eq!(describe_holder(""), "another process");
    }

    #[test]
    fn a_grown_journal_is_compacted_in_the_background_and_adopted() {
        use crate::annotation::history::Brush;
        let dir = tempfile::tempdir().unwrap();
        let options = ProjectOptions {
            compact_after_journal_bytes: 2_000,
            ..ProjectOptions::default()
        };
        let mut p = Project::create(dir.path(), None, options).unwrap();
        p.set_class(LabelClass {
            value: 1,
            name: "a".into(),
            colour: [1, 2, 3],
            concept: None,
        })
        .unwrap();
        let item = p.add_item("x", 512, 512).unwrap();
        let brush = Brush {
            radius_px: 4.0,
            erase: false,
        };
        let mut started = 0;
        for i in 0..60 {
            let x = 4.0 + 8.0 * i as f32;
            p.begin_stroke(item, 1, brush).unwrap();
            p.stroke_to([x, 4.0]).unwrap();
            p.stroke_to([x, 500.0]).unwrap();
            p.end_stroke().unwrap();
            started += usize::from(p.is_compacting());
        }
        assert!(started > 0, "no compaction started");
        p.wait_for_compaction().unwrap().unwrap();
        assert!(p.generation() > 0);
        assert!(!p.is_compacting());
        assert!(p.is_saved());
    }
}
