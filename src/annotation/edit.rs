//! Edits other than brush strokes: each turns into one [`Change`] (an undo step) made of
//! absolute ops, with the review state and provenance updated in the same step.
//!
//! Brush strokes live in `history.rs`, because a drag is built stamp by stamp.

use super::document::{
    Document, ItemId, LabelClass, MaskProvenance, Provenance, ReviewState, SetOp, Tool,
};
use super::error::{AnnotationError, Result};
use super::history::Change;
use super::mask::Mask;
use super::paint::PasteMode;

/// A reversible change to a project (brush strokes use `Project::begin_stroke` instead).
#[derive(Debug, Clone)]
pub enum Edit {
    /// A mask from a model (box-prompt result) or another tool, combined into a class's mask.
    PasteMask {
        item: ItemId,
        class: u8,
        mask: Mask,
        mode: PasteMode,
        provenance: Provenance,
    },
    /// Flood-fills the 4-connected background region around `seed_image` (pixels) with `class`.
    Fill {
        item: ItemId,
        class: u8,
        seed_image: [u32; 2],
    },
    /// Clears one class's mask, or every mask of the item when `class` is `None`.
    Clear { item: ItemId, class: Option<u8> },
    /// Moves the pixels of class `from` into class `to` (a class change).
    Relabel { item: ItemId, from: u8, to: u8 },
    /// A model prediction: replaces the masks of the classes given and sets the review state
    /// (`Predicted`, `Flagged` or `AutoAccepted`). Ignored (no change) on an `Accepted` or
    /// `Corrected` item: a model never overwrites reviewed work; reject or reset it first.
    SetPrediction {
        item: ItemId,
        masks: Vec<(u8, Mask)>,
        state: ReviewState,
        provenance: Provenance,
    },
    /// A person accepts the item as it is: `Accepted` (a `Corrected` item stays `Corrected`).
    AcceptPrediction { item: ItemId },
    /// A person rejects the prediction: every mask is cleared and the item is `Unlabelled`.
    RejectPrediction { item: ItemId },
    /// Sets the review state directly (flag for review, say).
    SetState { item: ItemId, state: ReviewState },
    /// Adds a label class or changes one (name, colour, linked concept).
    SetClass(LabelClass),
    /// Labels brought in from a file (DICOM SEG, NIfTI, PNG masks), as one step: adds
    /// `classes`, replaces each listed class mask, and marks each item `Corrected` (labelled
    /// by a person, so it trains concepts and predictions never overwrite it) with
    /// `provenance` (tool `Import`) as the mask's creator and latest writer. Each
    /// `(item, class)` may appear once.
    ImportMasks {
        classes: Vec<LabelClass>,
        masks: Vec<(ItemId, u8, Mask)>,
        provenance: Provenance,
    },
}

/// Computes `edit`'s undo step and applies it to `doc`; `None` when it changes nothing.
pub(crate) fn apply(doc: &mut Document, edit: Edit) -> Result<Option<Change>> {
    let ops = match edit {
        Edit::PasteMask {
            item,
            class,
            mask,
            mode,
            provenance,
        } => {
            check_size(doc, item, &mask)?;
            doc.check_class(class)?;
            with_meta(doc, item, &[class], &provenance, |doc| {
                mask_ops(doc, item, class, |m| m.combine(&mask, mode))
            })?
        }
        Edit::Fill {
            item,
            class,
            seed_image,
        } => {
            doc.check_class(class)?;
            let size = doc.item(item)?.size;
            let [x, y] = seed_image;
            if x >= size.width || y >= size.height {
                return Err(AnnotationError::SeedOutsideImage {
                    x,
                    y,
                    width: size.width,
                    height: size.height,
                });
            }
            with_meta(
                doc,
                item,
                &[class],
                &Provenance::manual(Tool::Fill),
                |doc| {
                    mask_ops(doc, item, class, |m| {
                        m.flood_fill(seed_image, 1);
                    })
                },
            )?
        }
        Edit::Clear { item, class } => {
            let classes: Vec<u8> = match class {
                Some(c) => vec![c],
                None => doc.masks(item)?.keys().copied().collect(),
            };
            let prov = Provenance::manual(Tool::Clear);
            with_meta(doc, item, &classes, &prov, |doc| {
                let mut ops = Vec::new();
                for &c in &classes {
                    ops.extend(mask_ops(doc, item, c, |m| m.fill_all(0))?);
                }
                Ok(ops)
            })?
        }
        Edit::Relabel { item, from, to } => {
            doc.check_class(to)?;
            let source = doc.masks(item)?.get(&from).cloned();
            let Some(source) = source.filter(|m| !m.is_empty()) else {
                return Ok(None);
            };
            let prov = Provenance::manual(Tool::Relabel);
            with_meta(doc, item, &[from, to], &prov, |doc| {
                let mut ops = mask_ops(doc, item, to, |m| m.combine(&source, PasteMode::Union))?;
                ops.extend(mask_ops(doc, item, from, |m| m.fill_all(0))?);
                Ok(ops)
            })?
        }
        Edit::SetPrediction {
            item,
            masks,
            state,
            provenance,
        } => {
            if matches!(
                doc.item(item)?.state,
                ReviewState::Accepted | ReviewState::Corrected
            ) {
                return Ok(None);
            }
            prediction_ops(doc, item, masks, state, &provenance)?
        }
        Edit::AcceptPrediction { item } => {
            let current = doc.item(item)?.state;
            let next = if current == ReviewState::Corrected {
                current
            } else {
                ReviewState::Accepted
            };
            state_ops(doc, item, next)?
        }
        Edit::RejectPrediction { item } => {
            let classes: Vec<u8> = doc.masks(item)?.keys().copied().collect();
            let mut ops = Vec::new();
            for &c in &classes {
                ops.extend(mask_ops(doc, item, c, |m| m.fill_all(0))?);
                if let Some(old) = doc.item(item)?.provenance.get(&c).cloned() {
                    ops.push(provenance_pair(item, c, Some(old), None));
                }
            }
            ops.extend(state_ops(doc, item, ReviewState::Unlabelled)?);
            ops
        }
        Edit::SetState { item, state } => state_ops(doc, item, state)?,
        Edit::ImportMasks {
            classes,
            masks,
            provenance,
        } => import_ops(doc, classes, masks, &provenance)?,
        Edit::SetClass(class) => {
            if class.value == 0 {
                return Err(AnnotationError::BackgroundClassValue);
            }
            let before = doc.classes.get(&class.value).cloned();
            if before.as_ref() == Some(&class) {
                Vec::new()
            } else {
                let value = class.value;
                vec![(
                    SetOp::Class {
                        value,
                        class: before,
                    },
                    SetOp::Class {
                        value,
                        class: Some(class),
                    },
                )]
            }
        }
    };
    if ops.is_empty() {
        return Ok(None);
    }
    for (_, after) in &ops {
        doc.apply(after)?;
    }
    Ok(Some(Change { ops }))
}

fn check_size(doc: &Document, item: ItemId, mask: &Mask) -> Result<()> {
    let expected = doc.item(item)?.size;
    let actual = mask.size();
    if expected == actual {
        return Ok(());
    }
    Err(AnnotationError::MaskSizeMismatch {
        item,
        expected_width: expected.width,
        expected_height: expected.height,
        actual_width: actual.width,
        actual_height: actual.height,
    })
}

/// The tile ops that turn `class`'s mask into `f(mask)`; empty when nothing changes. The
/// document is not modified.
fn mask_ops(
    doc: &mut Document,
    item: ItemId,
    class: u8,
    f: impl FnOnce(&mut Mask),
) -> Result<Vec<(SetOp, SetOp)>> {
    let size = doc.item(item)?.size;
    let empty;
    let current = match doc.masks(item)?.get(&class) {
        Some(m) => m,
        None => {
            empty = Mask::empty(size);
            &empty
        }
    };
    let mut next = current.clone();
    f(&mut next);
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for index in 0..size.tile_count() {
        if current.tile_differs(&next, index)
            && let (Some(old), Some(new)) = (current.read_tile(index), next.read_tile(index))
        {
            before.push((index, old));
            after.push((index, new));
        }
    }
    if after.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![SetOp::tiles_pair(item, class, before, after)])
}

/// Runs `pixels` and, when it changed anything, appends the hand-edit metadata ops.
fn with_meta(
    doc: &mut Document,
    item: ItemId,
    classes: &[u8],
    provenance: &Provenance,
    pixels: impl FnOnce(&mut Document) -> Result<Vec<(SetOp, SetOp)>>,
) -> Result<Vec<(SetOp, SetOp)>> {
    let mut ops = pixels(doc)?;
    if !ops.is_empty() {
        ops.extend(hand_edit_meta(doc, item, classes, provenance)?);
    }
    Ok(ops)
}

/// A person changed these classes' masks: the item becomes `Corrected`, and each class's
/// provenance records `provenance` as its latest writer (and first, if it had none).
pub(crate) fn hand_edit_meta(
    doc: &Document,
    item: ItemId,
    classes: &[u8],
    provenance: &Provenance,
) -> Result<Vec<(SetOp, SetOp)>> {
    let mut ops = state_ops(doc, item, ReviewState::Corrected)?;
    for &class in classes {
        let old = doc.item(item)?.provenance.get(&class).cloned();
        let created = old.as_ref().map_or(provenance, |o| &o.created).clone();
        let new = MaskProvenance {
            created,
            modified: provenance.clone(),
        };
        ops.push(provenance_pair(item, class, old, Some(new)));
    }
    Ok(ops)
}

fn prediction_ops(
    doc: &mut Document,
    item: ItemId,
    masks: Vec<(u8, Mask)>,
    state: ReviewState,
    provenance: &Provenance,
) -> Result<Vec<(SetOp, SetOp)>> {
    // One mask per class: the last one given wins.
    let masks: std::collections::BTreeMap<u8, Mask> = masks.into_iter().collect();
    let mut ops = Vec::new();
    for (class, mask) in masks {
        check_size(doc, item, &mask)?;
        doc.check_class(class)?;
        ops.extend(mask_ops(doc, item, class, |m| {
            m.combine(&mask, PasteMode::Replace)
        })?);
        let old = doc.item(item)?.provenance.get(&class).cloned();
        let new = MaskProvenance {
            created: provenance.clone(),
            modified: provenance.clone(),
        };
        ops.push(provenance_pair(item, class, old, Some(new)));
    }
    ops.extend(state_ops(doc, item, state)?);
    Ok(ops)
}

fn import_ops(
    doc: &mut Document,
    classes: Vec<LabelClass>,
    masks: Vec<(ItemId, u8, Mask)>,
    provenance: &Provenance,
) -> Result<Vec<(SetOp, SetOp)>> {
    let mut ops = Vec::new();
    for class in &classes {
        if class.value == 0 {
            return Err(AnnotationError::BackgroundClassValue);
        }
        let before = doc.classes.get(&class.value).cloned();
        if before.as_ref() != Some(class) {
            ops.push((
                SetOp::Class {
                    value: class.value,
                    class: before,
                },
                SetOp::Class {
                    value: class.value,
                    class: Some(class.clone()),
                },
            ));
        }
    }
    let mut items = std::collections::BTreeSet::new();
    for (item, class, mask) in masks {
        check_size(doc, item, &mask)?;
        if !classes.iter().any(|c| c.value == class) {
            doc.check_class(class)?;
        }
        ops.extend(mask_ops(doc, item, class, |m| {
            m.combine(&mask, PasteMode::Replace)
        })?);
        let old = doc.item(item)?.provenance.get(&class).cloned();
        let new = MaskProvenance {
            created: provenance.clone(),
            modified: provenance.clone(),
        };
        ops.push(provenance_pair(item, class, old, Some(new)));
        items.insert(item);
    }
    for item in items {
        ops.extend(state_ops(doc, item, ReviewState::Corrected)?);
    }
    Ok(ops)
}

fn state_ops(doc: &Document, item: ItemId, state: ReviewState) -> Result<Vec<(SetOp, SetOp)>> {
    let before = doc.item(item)?.state;
    if before == state {
        return Ok(Vec::new());
    }
    Ok(vec![(
        SetOp::State {
            item,
            state: before,
        },
        SetOp::State { item, state },
    )])
}

fn provenance_pair(
    item: ItemId,
    class: u8,
    before: Option<MaskProvenance>,
    after: Option<MaskProvenance>,
) -> (SetOp, SetOp) {
    (
        SetOp::Provenance {
            item,
            class,
            value: before,
        },
        SetOp::Provenance {
            item,
            class,
            value: after,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::annotation::mask::ImageSize;

    fn doc() -> (Document, ItemId) {
        let mut doc = Document::new(Path::new("unused"), None);
        let size = ImageSize::new(130, 70).unwrap();
        let (id, _) = doc.add_item("x", size).unwrap();
        for value in [1, 2] {
            let class = LabelClass {
                value,
                name: format!("c{value}"),
                colour: [255, 0, 0],
                concept: None,
            };
            apply(&mut doc, Edit::SetClass(class)).unwrap();
        }
        (doc, id)
    }

    fn square(size: ImageSize) -> Mask {
        let mut m = Mask::empty(size);
        m.stamp_disc([20.0, 20.0], 10.0, 1);
        m
    }

    #[test]
    fn paste_records_only_changed_tiles_and_marks_item_corrected() {
        let (mut doc, id) = doc();
        let mask = square(doc.item(id).unwrap().size);
        let change = apply(
            &mut doc,
            Edit::PasteMask {
                item: id,
                class: 1,
                mask: mask.clone(),
                mode: PasteMode::Union,
                provenance: Provenance::model(Tool::BoxPrompt, None, Some("abc".into())),
            },
        )
        .unwrap()
        .unwrap();
        let SetOp::Tiles { tiles, .. } = &change.ops[0].1 else {
            panic!("first op is the pixels");
        };
        assert_eq!(tiles.len(), 1);
        assert_eq!(doc.masks(id).unwrap()[&1], mask);
        assert_eq!(doc.item(id).unwrap().state, ReviewState::Corrected);
        let prov = doc.item(id).unwrap().provenance(1).unwrap();
        assert_eq!(prov.created.checkpoint_hash.as_deref(), Some("abc"));
    }

    #[test]
    fn an_edit_that_changes_nothing_is_no_step() {
        let (mut doc, id) = doc();
        let none = apply(
            &mut doc,
            Edit::Clear {
                item: id,
                class: Some(1),
            },
        )
        .unwrap();
        assert!(none.is_none());
        assert_eq!(doc.item(id).unwrap().state, ReviewState::Unlabelled);
    }

    #[test]
    fn relabel_moves_pixels_between_classes() {
        let (mut doc, id) = doc();
        let mask = square(doc.item(id).unwrap().size);
        let provenance = Provenance::manual(Tool::Import);
        let prediction = Edit::SetPrediction {
            item: id,
            masks: vec![(1, mask.clone())],
            state: ReviewState::Predicted,
            provenance,
        };
        apply(&mut doc, prediction).unwrap();
        apply(
            &mut doc,
            Edit::Relabel {
                item: id,
                from: 1,
                to: 2,
            },
        )
        .unwrap();
        let masks = doc.masks(id).unwrap();
        assert!(masks[&1].is_empty());
        assert_eq!(masks[&2], mask);
    }

    #[test]
    fn fill_outside_the_image_and_unknown_classes_are_refused() {
        let (mut doc, id) = doc();
        let fill = Edit::Fill {
            item: id,
            class: 1,
            seed_image: [130, 0],
        };
        assert!(matches!(
            apply(&mut doc, fill),
            Err(AnnotationError::SeedOutsideImage { .. })
        ));
        let fill = Edit::Fill {
            item: id,
            class: 9,
            seed_image: [0, 0],
        };
        assert!(matches!(
            apply(&mut doc, fill),
            Err(AnnotationError::UnknownClass { value: 9 })
        ));
    }

    #[test]
    fn accepting_keeps_corrected_items_corrected() {
        let (mut doc, id) = doc();
        apply(&mut doc, Edit::AcceptPrediction { item: id }).unwrap();
        assert_eq!(doc.item(id).unwrap().state, ReviewState::Accepted);
        let fill = Edit::Fill {
            item: id,
            class: 1,
            seed_image: [0, 0],
        };
        apply(&mut doc, fill).unwrap();
        apply(&mut doc, Edit::AcceptPrediction { item: id }).unwrap();
        assert_eq!(doc.item(id).unwrap().state, ReviewState::Corrected);
    }
}
