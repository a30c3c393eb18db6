//! The in-memory project: label classes, and per image or slice its masks (one per class, loaded
//! lazily), review state, HUE score and provenance.
//!
//! The document changes only through [`SetOp`]s, absolute "set this to that" operations. Edits
//! and undo steps are lists of them, and so are journal records; because each one sets a value
//! rather than adjusting it, replaying a journal over a newer snapshot gives the same result.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{AnnotationError, Result};
use super::mask::{ImageSize, Mask, TileData};
use super::snapshot;

/// Index of an image or slice in its project, stable for the project's life (items are never
/// removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId(pub(crate) u32);

impl ItemId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A label class. `value` is the number written into exported label maps (1..=255; 0 is
/// background).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelClass {
    pub value: u8,
    pub name: String,
    /// sRGB display colour.
    pub colour: [u8; 3],
    /// The concept file this class is searched with, if any.
    #[serde(default)]
    pub concept: Option<PathBuf>,
}

/// Where an item is in review. Predictions arrive as `Predicted`, `Flagged` (uncertain) or
/// `AutoAccepted`; a person's decision makes them `Accepted`, and any hand edit makes them
/// `Corrected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    #[default]
    Unlabelled,
    Predicted,
    Flagged,
    AutoAccepted,
    Accepted,
    Corrected,
}

/// What produced a mask change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Brush,
    Eraser,
    Fill,
    BoxPrompt,
    ConceptSearch,
    Clear,
    Relabel,
    Import,
}

/// Who or what wrote a mask, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    pub tool: Tool,
    /// Id of the concept whose search produced the mask.
    #[serde(default)]
    pub concept_id: Option<String>,
    /// Hash of the SAM3 checkpoint that produced the mask.
    #[serde(default)]
    pub checkpoint_hash: Option<String>,
    pub time_unix_ms: u64,
    /// For imported masks: the file they came from (its name, not its path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Provenance {
    /// A hand edit made now.
    pub fn manual(tool: Tool) -> Self {
        Self {
            tool,
            concept_id: None,
            checkpoint_hash: None,
            time_unix_ms: now_unix_ms(),
            source: None,
        }
    }

    /// Masks imported now from the file `source` (DICOM SEG, NIfTI or PNG).
    pub fn imported(source: &str) -> Self {
        Self {
            source: Some(source.to_owned()),
            ..Self::manual(Tool::Import)
        }
    }

    /// A model result made now.
    pub fn model(tool: Tool, concept_id: Option<String>, checkpoint_hash: Option<String>) -> Self {
        Self {
            tool,
            concept_id,
            checkpoint_hash,
            time_unix_ms: now_unix_ms(),
            source: None,
        }
    }
}

/// First and latest writer of one class's mask on one item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaskProvenance {
    pub created: Provenance,
    pub modified: Provenance,
}

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One image or slice of the project.
#[derive(Debug)]
pub struct Item {
    pub(crate) key: String,
    pub(crate) size: ImageSize,
    pub(crate) state: ReviewState,
    pub(crate) hue: Option<f32>,
    pub(crate) provenance: BTreeMap<u8, MaskProvenance>,
    /// Mask files of the last snapshot, by class value, relative to the project folder.
    pub(crate) files: BTreeMap<u8, String>,
    /// `None` until first needed: opening a project reads no mask.
    pub(crate) masks: Option<BTreeMap<u8, Mask>>,
    /// Classes whose mask changed since the last snapshot.
    pub(crate) dirty: BTreeSet<u8>,
}

impl Item {
    pub(crate) fn new(key: String, size: ImageSize) -> Self {
        Self {
            key,
            size,
            state: ReviewState::Unlabelled,
            hue: None,
            provenance: BTreeMap::new(),
            files: BTreeMap::new(),
            masks: Some(BTreeMap::new()),
            dirty: BTreeSet::new(),
        }
    }

    /// The caller's name for this image or slice (a relative path, or series and slice number).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn size(&self) -> ImageSize {
        self.size
    }

    pub fn state(&self) -> ReviewState {
        self.state
    }

    /// The HUE uncertainty score, if the item has been scored.
    pub fn hue(&self) -> Option<f32> {
        self.hue
    }

    pub fn provenance(&self, class: u8) -> Option<&MaskProvenance> {
        self.provenance.get(&class)
    }

    /// Whether the masks are in memory.
    pub fn masks_loaded(&self) -> bool {
        self.masks.is_some()
    }
}

/// An absolute change to the document: the unit of edits, undo steps and journal records.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SetOp {
    AddItem {
        key: String,
        size: ImageSize,
    },
    Tiles {
        item: ItemId,
        class: u8,
        tiles: Vec<(u32, TileData)>,
    },
    State {
        item: ItemId,
        state: ReviewState,
    },
    Hue {
        item: ItemId,
        hue: Option<f32>,
    },
    Provenance {
        item: ItemId,
        class: u8,
        value: Option<MaskProvenance>,
    },
    Class {
        value: u8,
        class: Option<LabelClass>,
    },
}

impl SetOp {
    /// The undo/redo pair of a tile change: `before` restores the old tiles, `after` applies
    /// the new ones.
    pub(crate) fn tiles_pair(
        item: ItemId,
        class: u8,
        before: Vec<(u32, TileData)>,
        after: Vec<(u32, TileData)>,
    ) -> (SetOp, SetOp) {
        (
            SetOp::Tiles {
                item,
                class,
                tiles: before,
            },
            SetOp::Tiles {
                item,
                class,
                tiles: after,
            },
        )
    }
}

impl SetOp {
    /// Heap bytes held, for the undo memory budget (tile data dominates).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            SetOp::Tiles { tiles, .. } => tiles
                .iter()
                .map(|(_, t)| t.heap_bytes() + std::mem::size_of::<(u32, TileData)>())
                .sum(),
            _ => std::mem::size_of::<SetOp>(),
        }
    }
}

/// The project's state in memory.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) root: PathBuf,
    pub(crate) study: Option<PathBuf>,
    pub(crate) classes: BTreeMap<u8, LabelClass>,
    pub(crate) items: Vec<Item>,
    pub(crate) by_key: HashMap<String, ItemId>,
}

impl Document {
    pub(crate) fn new(root: &Path, study: Option<PathBuf>) -> Self {
        Self {
            root: root.to_path_buf(),
            study,
            classes: BTreeMap::new(),
            items: Vec::new(),
            by_key: HashMap::new(),
        }
    }

    pub(crate) fn item(&self, id: ItemId) -> Result<&Item> {
        self.items
            .get(id.index())
            .ok_or(AnnotationError::UnknownItem { item: id })
    }

    pub(crate) fn item_mut(&mut self, id: ItemId) -> Result<&mut Item> {
        self.items
            .get_mut(id.index())
            .ok_or(AnnotationError::UnknownItem { item: id })
    }

    pub(crate) fn check_class(&self, value: u8) -> Result<()> {
        if self.classes.contains_key(&value) {
            Ok(())
        } else {
            Err(AnnotationError::UnknownClass { value })
        }
    }

    /// The item's masks, read from the snapshot's files on first use.
    pub(crate) fn masks(&mut self, id: ItemId) -> Result<&mut BTreeMap<u8, Mask>> {
        let root = self.root.clone();
        let item = self.item_mut(id)?;
        if item.masks.is_none() {
            let mut loaded = BTreeMap::new();
            for (&class, rel) in &item.files {
                loaded.insert(class, snapshot::read_mask(&root, rel, item.size)?);
            }
            item.masks = Some(loaded);
        }
        Ok(item.masks.get_or_insert_with(BTreeMap::new))
    }

    /// The mask of `class` on the item (created empty if missing), marked as changed.
    pub(crate) fn mask_mut(&mut self, id: ItemId, class: u8) -> Result<&mut Mask> {
        let size = self.item(id)?.size;
        self.item_mut(id)?.dirty.insert(class);
        Ok(self
            .masks(id)?
            .entry(class)
            .or_insert_with(|| Mask::empty(size)))
    }

    /// Adds an item, or returns the existing one when the key is known with the same size.
    pub(crate) fn add_item(&mut self, key: &str, size: ImageSize) -> Result<(ItemId, bool)> {
        if let Some(&id) = self.by_key.get(key) {
            let existing = self.item(id)?.size;
            if existing != size {
                return Err(AnnotationError::ItemSizeMismatch {
                    expected_width: existing.width,
                    expected_height: existing.height,
                    actual_width: size.width,
                    actual_height: size.height,
                    key: key.to_owned(),
                });
            }
            return Ok((id, false));
        }
        let index =
            u32::try_from(self.items.len()).map_err(|_| AnnotationError::InvalidSnapshot {
                reason: "too many items".into(),
                path: self.root.clone(),
            })?;
        let id = ItemId(index);
        self.items.push(Item::new(key.to_owned(), size));
        self.by_key.insert(key.to_owned(), id);
        Ok((id, true))
    }

    /// Applies one absolute change. Tile data is validated before anything is written, so a
    /// bad op (from a corrupt journal) changes nothing.
    pub(crate) fn apply(&mut self, op: &SetOp) -> Result<()> {
        match op {
            SetOp::AddItem { key, size } => {
                self.add_item(key, *size)?;
            }
            SetOp::Tiles { item, class, tiles } => {
                let size = self.item(*item)?.size;
                let valid = tiles
                    .iter()
                    .all(|(index, data)| match size.tile_rect(*index) {
                        None => false,
                        Some(rect) => match data {
                            TileData::Uniform(_) => true,
                            TileData::Raw(bytes) => {
                                bytes.len()
                                    == (rect.x1 - rect.x0) as usize * (rect.y1 - rect.y0) as usize
                            }
                        },
                    });
                if !valid {
                    return Err(AnnotationError::MaskSizeMismatch {
                        item: *item,
                        expected_width: size.width,
                        expected_height: size.height,
                        actual_width: 0,
                        actual_height: 0,
                    });
                }
                let mask = self.mask_mut(*item, *class)?;
                for (index, data) in tiles {
                    mask.write_tile(*index, data);
                }
            }
            SetOp::State { item, state } => self.item_mut(*item)?.state = *state,
            SetOp::Hue { item, hue } => self.item_mut(*item)?.hue = *hue,
            SetOp::Provenance { item, class, value } => {
                let map = &mut self.item_mut(*item)?.provenance;
                match value {
                    Some(v) => map.insert(*class, v.clone()),
                    None => map.remove(class),
                };
            }
            SetOp::Class { value, class } => match class {
                Some(c) => {
                    self.classes.insert(*value, c.clone());
                }
                None => {
                    self.classes.remove(value);
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_with_item() -> (Document, ItemId) {
        let mut doc = Document::new(Path::new("unused"), None);
        let size = ImageSize::new(100, 80).unwrap();
        let (id, added) = doc.add_item("a.png", size).unwrap();
        assert!(added);
        (doc, id)
    }

    #[test]
    fn adding_a_known_item_returns_it_and_a_new_size_is_refused() {
        let (mut doc, id) = doc_with_item();
        let same = doc
            .add_item("a.png", ImageSize::new(100, 80).unwrap())
            .unwrap();
        assert_eq!(same, (id, false));
        let err = doc.add_item("a.png", ImageSize::new(10, 80).unwrap());
        assert!(matches!(err, Err(AnnotationError::ItemSizeMismatch { .. })));
    }

    #[test]
    fn tile_ops_with_wrong_lengths_change_nothing() {
        let (mut doc, id) = doc_with_item();
        let op = SetOp::Tiles {
            item: id,
            class: 1,
            tiles: vec![
                (0, TileData::Uniform(1)),
                (1, TileData::Raw(vec![1; 5].into())),
            ],
        };
        assert!(doc.apply(&op).is_err());
        assert!(doc.masks(id).unwrap().get(&1).is_none());
    }

    #[test]
    fn unknown_items_are_errors_not_panics() {
        let (mut doc, _) = doc_with_item();
        let op = SetOp::State {
            item: ItemId(7),
            state: ReviewState::Accepted,
        };
        assert!(matches!(
            doc.apply(&op),
            Err(AnnotationError::UnknownItem { .. })
        ));
    }
}
