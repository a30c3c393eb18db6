//! Undo and redo, bounded by a memory budget rather than a step count, and brush strokes that
//! coalesce every stamp of one drag into a single undo step.
//!
//! A [`Change`] is a list of (before, after) [`SetOp`] pairs: redo applies the afters in order,
//! undo applies the befores in reverse order. Both directions are themselves absolute ops, so
//! they go to the journal like any other edit.

use std::collections::{BTreeMap, VecDeque};

use super::document::{Document, ItemId, SetOp, Tool};
use super::edit;
use super::error::{AnnotationError, Result};
use super::mask::TileData;
use super::paint::clip_segment;

/// One undo step.
#[derive(Debug, Clone, Default)]
pub(crate) struct Change {
    pub(crate) ops: Vec<(SetOp, SetOp)>,
}

impl Change {
    /// The ops that redo this change.
    pub(crate) fn forward(&self) -> Vec<SetOp> {
        self.ops.iter().map(|(_, after)| after.clone()).collect()
    }

    /// The ops that undo this change.
    pub(crate) fn backward(&self) -> Vec<SetOp> {
        self.ops
            .iter()
            .rev()
            .map(|(before, _)| before.clone())
            .collect()
    }

    fn heap_bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|(b, a)| b.heap_bytes() + a.heap_bytes())
            .sum::<usize>()
            + std::mem::size_of::<Self>()
    }
}

/// Undo and redo stacks. When the steps held exceed `budget_bytes`, the oldest undo steps are
/// dropped (the newest is always kept, whatever its size).
#[derive(Debug)]
pub(crate) struct History {
    undo: VecDeque<(Change, usize)>,
    redo: Vec<(Change, usize)>,
    used_bytes: usize,
    budget_bytes: usize,
}

impl History {
    pub(crate) fn new(budget_bytes: usize) -> Self {
        Self {
            undo: VecDeque::new(),
            redo: Vec::new(),
            used_bytes: 0,
            budget_bytes,
        }
    }

    /// Records a new step; this forgets the redo stack.
    pub(crate) fn push(&mut self, change: Change) {
        for (_, bytes) in self.redo.drain(..) {
            self.used_bytes -= bytes;
        }
        let bytes = change.heap_bytes();
        self.used_bytes += bytes;
        self.undo.push_back((change, bytes));
        while self.used_bytes > self.budget_bytes && self.undo.len() > 1 {
            if let Some((_, dropped)) = self.undo.pop_front() {
                self.used_bytes -= dropped;
            }
        }
    }

    pub(crate) fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub(crate) fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub(crate) fn undo_depth(&self) -> usize {
        self.undo.len()
    }

    pub(crate) fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    pub(crate) fn peek_undo(&self) -> Option<&Change> {
        self.undo.back().map(|(c, _)| c)
    }

    pub(crate) fn peek_redo(&self) -> Option<&Change> {
        self.redo.last().map(|(c, _)| c)
    }

    /// Moves the newest undo step to the redo stack (after it has been applied backwards).
    pub(crate) fn mark_undone(&mut self) {
        if let Some(step) = self.undo.pop_back() {
            self.redo.push(step);
        }
    }

    /// Moves the newest redo step back to the undo stack (after it has been reapplied).
    pub(crate) fn mark_redone(&mut self) {
        if let Some(step) = self.redo.pop() {
            self.undo.push_back(step);
        }
    }
}

/// Brush settings for one stroke.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Brush {
    /// Radius of each round stamp, in image pixels.
    pub radius_px: f32,
    /// Erase (set to background) instead of paint.
    pub erase: bool,
}

/// A drag in progress: its stamps are already in the mask (so the app can draw them), and the
/// tiles they touched are remembered as they were before the drag.
#[derive(Debug)]
pub(crate) struct Stroke {
    item: ItemId,
    class: u8,
    brush: Brush,
    last_image: Option<[f32; 2]>,
    before: BTreeMap<u32, TileData>,
}

impl Stroke {
    pub(crate) fn begin(doc: &mut Document, item: ItemId, class: u8, brush: Brush) -> Result<Self> {
        if !(brush.radius_px.is_finite() && brush.radius_px > 0.0) {
            return Err(AnnotationError::InvalidBrushRadius {
                radius_px: brush.radius_px,
            });
        }
        doc.check_class(class)?;
        doc.mask_mut(item, class)?;
        Ok(Self {
            item,
            class,
            brush,
            last_image: None,
            before: BTreeMap::new(),
        })
    }

    pub(crate) fn item(&self) -> ItemId {
        self.item
    }

    /// Stamps along the segment from the previous pointer position to `point_image`, at a
    /// spacing of a quarter radius so the stroke has no gaps. Non-finite points are ignored.
    pub(crate) fn extend(&mut self, doc: &mut Document, point_image: [f32; 2]) -> Result<()> {
        if !(point_image[0].is_finite() && point_image[1].is_finite()) {
            return Ok(());
        }
        let previous = self.last_image.replace(point_image);
        let from = previous.unwrap_or(point_image);
        let size = doc.item(self.item)?.size;
        let r = self.brush.radius_px;
        let min = [-r, -r];
        let max = [size.width as f32 + r, size.height as f32 + r];
        let Some((a, b)) = clip_segment(from, point_image, min, max) else {
            return Ok(());
        };
        let length = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        let spacing = (r * 0.25).max(0.5);
        // The segment is clipped to the image plus a radius, so this count stays bounded.
        let steps = (length / spacing).ceil().max(1.0) as u32;
        // The previous call already stamped the previous point (unless clipping moved it).
        let first_step = u32::from(previous.is_some() && a == from);
        let value = u8::from(!self.brush.erase);
        let mask = doc.mask_mut(self.item, self.class)?;
        for step in first_step..=steps {
            let t = step as f32 / steps as f32;
            let center = [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
            let Some(rect) = mask.disc_bounds(center, r) else {
                continue;
            };
            for index in size.tiles_in(rect) {
                if !self.before.contains_key(&index)
                    && let Some(tile) = mask.read_tile(index)
                {
                    self.before.insert(index, tile);
                }
            }
            mask.stamp_disc(center, r, value);
        }
        Ok(())
    }

    /// Ends the drag: the tiles that really changed, plus the review-state and provenance
    /// update of a hand edit, as one undo step (`None` when nothing changed).
    pub(crate) fn finish(self, doc: &mut Document) -> Result<Option<Change>> {
        let mask = doc.mask_mut(self.item, self.class)?;
        let mut before = Vec::new();
        let mut after = Vec::new();
        for (index, old) in self.before {
            if let Some(new) = mask.read_tile(index)
                && new != old
            {
                before.push((index, old));
                after.push((index, new));
            }
        }
        if after.is_empty() {
            return Ok(None);
        }
        let tool = if self.brush.erase {
            Tool::Eraser
        } else {
            Tool::Brush
        };
        let (item, class) = (self.item, self.class);
        let mut change = Change::default();
        change
            .ops
            .push(SetOp::tiles_pair(item, class, before, after));
        let meta = edit::hand_edit_meta(doc, item, &[class], &super::Provenance::manual(tool))?;
        for (_, op) in &meta {
            doc.apply(op)?;
        }
        change.ops.extend(meta);
        Ok(Some(change))
    }

    /// Abandons the drag, putting back every tile it touched.
    pub(crate) fn cancel(self, doc: &mut Document) -> Result<()> {
        let mask = doc.mask_mut(self.item, self.class)?;
        for (index, tile) in &self.before {
            mask.write_tile(*index, tile);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::document::{ReviewState, SetOp};

    fn state_change(n: u8) -> Change {
        let item = ItemId(u32::from(n));
        Change {
            ops: vec![(
                SetOp::State {
                    item,
                    state: ReviewState::Unlabelled,
                },
                SetOp::State {
                    item,
                    state: ReviewState::Accepted,
                },
            )],
        }
    }

    #[test]
    fn new_step_forgets_redo() {
        let mut h = History::new(usize::MAX);
        h.push(state_change(0));
        h.push(state_change(1));
        h.mark_undone();
        assert!(h.can_redo());
        h.push(state_change(2));
        assert!(!h.can_redo());
        assert_eq!(h.undo_depth(), 2);
    }

    #[test]
    fn memory_budget_drops_oldest_steps_but_keeps_newest() {
        let one = state_change(0).heap_bytes();
        let mut h = History::new(one * 3);
        for n in 0..10 {
            h.push(state_change(n));
        }
        assert_eq!(h.undo_depth(), 3);
        assert!(h.used_bytes() <= one * 3);
        let mut tiny = History::new(0);
        tiny.push(state_change(0));
        tiny.push(state_change(1));
        assert_eq!(tiny.undo_depth(), 1);
    }

    #[test]
    fn backward_reverses_op_order() {
        let mut c = state_change(0);
        c.ops.extend(state_change(1).ops);
        let back = c.backward();
        assert!(matches!(
            back[0],
            SetOp::State {
                item: ItemId(1),
                ..
            }
        ));
    }
}
