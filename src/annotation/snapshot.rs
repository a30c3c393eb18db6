//! The snapshot: `snapshot.json` (classes, items, states, HUE, provenance, and the mask file of
//! each class) plus one PNG per non-empty mask under `masks/`.
//!
//! Files are never overwritten in place. Each compaction writes the changed masks under new
//! names (`masks/<item>/c<class>-g<generation>.png`), then the new `snapshot.json` through a
//! temporary file and a rename, and only then deletes the files it replaced. A crash at any
//! point leaves the previous snapshot complete, and the journal still holds what came after it.
//!
//! A compaction is split in three so that its slow part runs off the UI thread: [`capture`]
//! (UI thread: copies the changed masks and the metadata), [`SnapshotJob::write`] (any thread:
//! PNG encoding and every write), then [`adopt`] or [`restore`] (UI thread: the document
//! points at the new files, or is marked changed again).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};

use image::ImageEncoder as _;

use super::autosave::JournalRef;
use super::document::{Document, Item, LabelClass, MaskProvenance, ReviewState};
use super::error::{AnnotationError, Result};
use super::mask::{ImageSize, MAX_SIDE, Mask};
use super::storage::{self, OsStorage, Storage};

pub(crate) const SNAPSHOT_FILE: &str = "snapshot.json";
pub(crate) const MASKS_DIR: &str = "masks";
const FORMAT_VERSION: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotFile {
    format: u32,
    generation: u64,
    /// The journal this snapshot was taken from and how far into it (absent: the snapshot
    /// follows no journal but the one started for its own generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    journal: Option<JournalRef>,
    #[serde(default)]
    study: Option<PathBuf>,
    #[serde(default)]
    classes: Vec<LabelClass>,
    #[serde(default)]
    items: Vec<ItemRecord>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ItemRecord {
    key: String,
    width: u32,
    height: u32,
    #[serde(default)]
    state: ReviewState,
    #[serde(default)]
    hue: Option<f32>,
    #[serde(default)]
    masks: Vec<MaskRecord>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MaskRecord {
    class: u8,
    /// PNG relative to the project folder; absent when the mask is empty.
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    provenance: Option<MaskProvenance>,
}

/// What [`read`] found besides the document.
#[derive(Debug)]
pub(crate) struct SnapshotInfo {
    pub(crate) generation: u64,
    pub(crate) follows: Option<JournalRef>,
}

/// Reads and validates `snapshot.json`; masks stay on disk until first needed.
pub(crate) fn read(root: &Path) -> Result<(Document, SnapshotInfo)> {
    let path = root.join(SNAPSHOT_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AnnotationError::NotAProject {
                path: root.to_path_buf(),
            });
        }
        Err(source) => return Err(AnnotationError::ReadSnapshot { path, source }),
    };
    let file: SnapshotFile =
        serde_json::from_slice(&bytes).map_err(|source| AnnotationError::ParseSnapshot {
            path: path.clone(),
            source,
        })?;
    let invalid = |reason: String| AnnotationError::InvalidSnapshot {
        reason,
        path: path.clone(),
    };
    if file.format != FORMAT_VERSION {
        return Err(invalid(format!("unsupported format {}", file.format)));
    }
    let mut doc = Document::new(root, file.study);
    for class in file.classes {
        if class.value == 0 || doc.classes.contains_key(&class.value) {
            return Err(invalid(format!(
                "bad or repeated class value {}",
                class.value
            )));
        }
        doc.classes.insert(class.value, class);
    }
    for (n, record) in file.items.into_iter().enumerate() {
        let size = ImageSize::new(record.width, record.height).ok_or_else(|| {
            invalid(format!(
                "item {n} has size {}×{} (max side {MAX_SIDE})",
                record.width, record.height
            ))
        })?;
        if record.hue.is_some_and(|h| !h.is_finite()) {
            return Err(invalid(format!("item {n} has a non-finite HUE")));
        }
        let (id, added) = doc.add_item(&record.key, size)?;
        if !added {
            return Err(invalid(format!("item {n} repeats an earlier key")));
        }
        let item = doc.item_mut(id)?;
        item.state = record.state;
        item.hue = record.hue;
        item.masks = None;
        for mask in record.masks {
            if let Some(file) = mask.file {
                if !is_mask_path(&file) {
                    return Err(invalid(format!("item {n} names a mask outside masks/")));
                }
                item.files.insert(mask.class, file);
            }
            if let Some(p) = mask.provenance {
                item.provenance.insert(mask.class, p);
            }
        }
    }
    let info = SnapshotInfo {
        generation: file.generation,
        follows: file.journal,
    };
    Ok((doc, info))
}

/// A relative path below `masks/` without `..`: the snapshot may not point elsewhere.
fn is_mask_path(rel: &str) -> bool {
    let path = Path::new(rel);
    path.starts_with(MASKS_DIR) && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// One compaction's work, taken from the document on the UI thread: the metadata, and a copy
/// of every mask changed since the last snapshot.
#[derive(Debug)]
pub(crate) struct SnapshotJob {
    root: PathBuf,
    generation: u64,
    file: SnapshotFile,
    /// Masks to write, by path relative to the project folder.
    masks: Vec<(String, Mask)>,
    /// `(item index, class, new file or None when the mask is now empty)`.
    replaced: Vec<(usize, u8, Option<String>)>,
}

impl std::fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFile")
            .field("generation", &self.generation)
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

/// Takes a snapshot of `doc` for `generation`, taken from the journal at `follows`: copies
/// the changed masks and marks them unchanged (until [`restore`] on failure). Cheap: no I/O.
pub(crate) fn capture(
    doc: &mut Document,
    generation: u64,
    follows: Option<JournalRef>,
) -> SnapshotJob {
    let mut masks = Vec::new();
    let mut replaced = Vec::new();
    for (index, item) in doc.items.iter_mut().enumerate() {
        if item.dirty.is_empty() {
            continue;
        }
        let Some(loaded) = &item.masks else { continue };
        for class in std::mem::take(&mut item.dirty) {
            let new = match loaded.get(&class).filter(|m| !m.is_empty()) {
                Some(mask) => {
                    let rel = format!("{MASKS_DIR}/{index:06}/c{class}-g{generation}.png");
                    masks.push((rel.clone(), mask.clone()));
                    Some(rel)
                }
                None => None,
            };
            replaced.push((index, class, new));
        }
    }
    let mut file = snapshot_file(doc, generation, &replaced);
    file.journal = follows;
    SnapshotJob {
        root: doc.root.clone(),
        generation,
        file,
        masks,
        replaced,
    }
}

impl SnapshotJob {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// `(item index, class)` of every mask the job writes (those items' in-memory masks must
    /// stay until the job is adopted: the files they point at are older).
    pub(crate) fn touched(&self) -> Vec<(usize, u8)> {
        self.replaced.iter().map(|(i, c, _)| (*i, *c)).collect()
    }

    /// Encodes and writes the masks, then `snapshot.json` through a rename. On `Ok` the new
    /// snapshot is the project's on disk; on `Err` the previous one still is (new mask files
    /// may be left, unreferenced). Runs on any thread.
    pub(crate) fn write(&self, storage: &dyn Storage) -> Result<()> {
        let dirs: BTreeSet<PathBuf> = self
            .masks
            .iter()
            .filter_map(|(rel, _)| self.root.join(rel).parent().map(Path::to_path_buf))
            .collect();
        for dir in &dirs {
            storage
                .create_dir_all(dir)
                .map_err(|source| AnnotationError::WriteMask {
                    path: dir.clone(),
                    source,
                })?;
        }
        for (rel, mask) in &self.masks {
            write_mask(storage, &self.root.join(rel), mask)?;
        }
        for dir in &dirs {
            storage
                .sync_dir(dir)
                .map_err(|source| AnnotationError::WriteMask {
                    path: dir.clone(),
                    source,
                })?;
        }
        let masks_dir = self.root.join(MASKS_DIR);
        if !dirs.is_empty() {
            storage
                .sync_dir(&masks_dir)
                .map_err(|source| AnnotationError::WriteMask {
                    path: masks_dir,
                    source,
                })?;
        }
        let path = self.root.join(SNAPSHOT_FILE);
        let bytes =
            serde_json::to_vec_pretty(&self.file).map_err(|e| AnnotationError::WriteSnapshot {
                path: path.clone(),
                source: e.into(),
            })?;
        storage::write_atomic(storage, &path, &bytes)
            .map_err(|source| AnnotationError::WriteSnapshot { path, source })?;
        // The rename is done: the new snapshot is the one a reader sees. If the folder cannot
        // be synced now, the next journal written (which syncs the folder) makes it durable.
        if let Err(e) = storage.sync_dir(&self.root) {
            tracing::warn!("could not sync the project folder after a snapshot: {e}");
        }
        Ok(())
    }
}

/// The job's snapshot is on disk: point the document at its files and remove the ones it
/// replaced.
pub(crate) fn adopt(doc: &mut Document, storage: &dyn Storage, job: SnapshotJob) {
    for (index, class, new) in job.replaced {
        let Some(item) = doc.items.get_mut(index) else {
            continue;
        };
        let old = match new {
            Some(rel) => item.files.insert(class, rel),
            None => item.files.remove(&class),
        };
        if let Some(old) = old.filter(|old| Some(old) != item.files.get(&class)) {
            remove_quietly(storage, &doc.root.join(old));
        }
    }
}

/// The job failed: its masks count as changed again, and the files it may have written go.
pub(crate) fn restore(doc: &mut Document, storage: &dyn Storage, job: SnapshotJob) {
    for (index, class, new) in job.replaced {
        if let Some(item) = doc.items.get_mut(index) {
            item.dirty.insert(class);
        }
        if let Some(rel) = new
            && doc
                .items
                .get(index)
                .is_none_or(|i| i.files.get(&class) != Some(&rel))
        {
            let path = doc.root.join(rel);
            if let Err(e) = storage.remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::debug!("could not remove the unused mask file {path:?}: {e}");
            }
        }
    }
}

/// Writes the masks changed since the last snapshot and a new `snapshot.json` for
/// `generation`, on this thread. On success the document points at the new files and nothing
/// is dirty; on failure the document is as before and the previous snapshot is intact.
pub(crate) fn write(
    doc: &mut Document,
    storage: &dyn Storage,
    generation: u64,
    follows: Option<JournalRef>,
) -> Result<()> {
    let job = capture(doc, generation, follows);
    match job.write(storage) {
        Ok(()) => {
            adopt(doc, storage, job);
            Ok(())
        }
        Err(e) => {
            restore(doc, storage, job);
            Err(e)
        }
    }
}

/// Files under `masks/` that the snapshot does not name, and temporary files a crash left:
/// removed when a project is opened for writing (best effort).
pub(crate) fn sweep_unreferenced(doc: &Document, storage: &dyn Storage) {
    let referenced: BTreeSet<PathBuf> = doc
        .items
        .iter()
        .flat_map(|item| item.files.values())
        .map(|rel| doc.root.join(rel))
        .collect();
    let mut leftovers = Vec::new();
    if let Ok(entries) = fs::read_dir(&doc.root) {
        leftovers.extend(
            entries
                .filter_map(std::result::Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "tmp")),
        );
    }
    if let Ok(items) = fs::read_dir(doc.root.join(MASKS_DIR)) {
        for dir in items.filter_map(std::result::Result::ok) {
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            leftovers.extend(
                files
                    .filter_map(std::result::Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && !referenced.contains(p)),
            );
        }
    }
    for path in leftovers {
        remove_quietly(storage, &path);
    }
}

fn snapshot_file(
    doc: &Document,
    generation: u64,
    replaced: &[(usize, u8, Option<String>)],
) -> SnapshotFile {
    let mut new_files: BTreeMap<(usize, u8), Option<&String>> = BTreeMap::new();
    for (index, class, new) in replaced {
        new_files.insert((*index, *class), new.as_ref());
    }
    let items = doc
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| item_record(index, item, &new_files))
        .collect();
    SnapshotFile {
        format: FORMAT_VERSION,
        generation,
        journal: None,
        study: doc.study.clone(),
        classes: doc.classes.values().cloned().collect(),
        items,
    }
}

fn item_record(
    index: usize,
    item: &Item,
    new_files: &BTreeMap<(usize, u8), Option<&String>>,
) -> ItemRecord {
    let mut classes: Vec<u8> = item.files.keys().copied().collect();
    classes.extend(item.provenance.keys().copied());
    classes.extend(
        new_files
            .range((index, 0)..=(index, u8::MAX))
            .map(|((_, c), _)| *c),
    );
    classes.sort_unstable();
    classes.dedup();
    let masks = classes
        .into_iter()
        .filter_map(|class| {
            let file = match new_files.get(&(index, class)) {
                Some(new) => new.cloned(),
                None => item.files.get(&class).cloned(),
            };
            let provenance = item.provenance.get(&class).cloned();
            (file.is_some() || provenance.is_some()).then_some(MaskRecord {
                class,
                file,
                provenance,
            })
        })
        .collect();
    ItemRecord {
        key: item.key.clone(),
        width: item.size.width,
        height: item.size.height,
        state: item.state,
        hue: item.hue,
        masks,
    }
}

/// Writes a first, empty snapshot for a new project.
pub(crate) fn write_empty(doc: &mut Document, storage: &dyn Storage) -> Result<()> {
    write(doc, storage, 0, None)
}

/// Reads a mask PNG (any non-zero pixel is label) and checks it matches its image's size.
pub(crate) fn read_mask(root: &Path, rel: &str, size: ImageSize) -> Result<Mask> {
    let path = root.join(rel);
    let read_err = |source| AnnotationError::ReadMask {
        path: path.clone(),
        source,
    };
    let file = File::open(&path).map_err(|e| read_err(image::ImageError::IoError(e)))?;
    let mut reader = image::ImageReader::with_format(BufReader::new(file), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let luma = reader.decode().map_err(read_err)?.into_luma8();
    let (width, height) = luma.dimensions();
    if (width, height) != (size.width, size.height) {
        return Err(AnnotationError::MaskFileSizeMismatch {
            expected_width: size.width,
            expected_height: size.height,
            actual_width: width,
            actual_height: height,
            path,
        });
    }
    Mask::from_bytes(size, luma.into_raw()).ok_or(AnnotationError::MaskFileSizeMismatch {
        expected_width: size.width,
        expected_height: size.height,
        actual_width: width,
        actual_height: height,
        path,
    })
}

/// Writes a mask as an 8-bit grey PNG (0 or 255, viewable as is), atomically.
fn write_mask(storage: &dyn Storage, path: &Path, mask: &Mask) -> Result<()> {
    let grey: Vec<u8> = mask.as_bytes().iter().map(|&v| v * 255).collect();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    )
    .write_image(
        &grey,
        mask.size().width,
        mask.size().height,
        image::ExtendedColorType::L8,
    )
    .map_err(|source| AnnotationError::EncodeMask {
        path: path.to_path_buf(),
        source,
    })?;
    storage::write_atomic(storage, path, &png).map_err(|source| AnnotationError::WriteMask {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` atomically on the real file system (exports, outside the project).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    storage::write_atomic(&OsStorage, path, bytes)
}

/// Makes renames and new files in `dir` durable, on the real file system.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    OsStorage.sync_dir(dir)
}

fn remove_quietly(storage: &dyn Storage, path: &Path) {
    if let Err(e) = storage.remove_file(path) {
        tracing::debug!("could not remove the superseded file {path:?}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_paths_must_stay_under_the_masks_folder() {
        assert!(is_mask_path("masks/000001/c1-g3.png"));
        assert!(!is_mask_path("masks/../../etc/passwd"));
        assert!(!is_mask_path("/abs/masks/x.png"));
        assert!(!is_mask_path("other/x.png"));
    }

    #[test]
    fn snapshot_round_trips_metadata_and_masks_load_lazily() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = Document::new(dir.path(), None);
        let size = ImageSize::new(70, 65).unwrap();
        let (id, _) = doc.add_item("img-1", size).unwrap();
        doc.mask_mut(id, 3)
            .unwrap()
            .stamp_disc([10.0, 10.0], 5.0, 1);
        doc.item_mut(id).unwrap().hue = Some(0.25);
        write(&mut doc, &OsStorage, 4, None).unwrap();
        let (mut back, info) = read(dir.path()).unwrap();
        assert_eq!(info.generation, 4);
        let item = back.item(id).unwrap();
        assert_eq!(item.hue(), Some(0.25));
        assert!(!item.masks_loaded());
        let original = doc.masks(id).unwrap()[&3].clone();
        assert_eq!(back.masks(id).unwrap()[&3], original);
    }

    #[test]
    fn rejects_oversized_items_and_missing_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(AnnotationError::NotAProject { .. })
        ));
        let json = r#"{"format":1,"generation":0,"items":[{"key":"a","width":0,"height":5}]}"#;
        fs::write(dir.path().join(SNAPSHOT_FILE), json).unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(AnnotationError::InvalidSnapshot { .. })
        ));
        fs::write(dir.path().join(SNAPSHOT_FILE), "{not json").unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(AnnotationError::ParseSnapshot { .. })
        ));
    }

    #[test]
    fn a_truncated_mask_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = Document::new(dir.path(), None);
        let (id, _) = doc.add_item("a", ImageSize::new(40, 40).unwrap()).unwrap();
        doc.mask_mut(id, 1).unwrap().fill_all(1);
        write(&mut doc, &OsStorage, 1, None).unwrap();
        let rel = doc.item(id).unwrap().files[&1].clone();
        let path = dir.path().join(&rel);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let (mut back, _) = read(dir.path()).unwrap();
        assert!(matches!(
            back.masks(id),
            Err(AnnotationError::ReadMask { .. })
        ));
    }
}
