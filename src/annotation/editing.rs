//! The editing half of [`Project`]'s API: edits, brush strokes, undo and redo. Each accepted
//! change is applied in memory, recorded as one undo step and journaled before the call returns.

use super::document::{ItemId, LabelClass, SetOp};
use super::edit::{self, Edit};
use super::error::{AnnotationError, Result};
use super::history::{Brush, Change, Stroke};
use super::project::Project;

impl Project {
    /// Applies an edit as one undo step. Returns whether it changed anything.
    pub fn apply(&mut self, edit: Edit) -> Result<bool> {
        self.ensure_writable()?;
        self.end_stroke()?;
        match edit::apply(&mut self.doc, edit)? {
            Some(change) => {
                self.commit(change)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Adds a label class or updates one; undoable.
    pub fn set_class(&mut self, class: LabelClass) -> Result<bool> {
        self.apply(Edit::SetClass(class))
    }

    /// Sets HUE scores (the engine re-scores the whole queue at once). Journaled as one
    /// record, but not an undo step: scores are not the user's work.
    pub fn set_hue_scores(&mut self, scores: &[(ItemId, Option<f32>)]) -> Result<()> {
        self.ensure_writable()?;
        let mut ops = Vec::with_capacity(scores.len());
        for &(item, hue) in scores {
            if let Some(value) = hue.filter(|h| !h.is_finite()) {
                return Err(AnnotationError::InvalidHue { value });
            }
            self.doc.item(item)?;
            ops.push(SetOp::Hue { item, hue });
        }
        if ops.is_empty() {
            return Ok(());
        }
        for op in &ops {
            self.doc.apply(op)?;
        }
        self.write_record(ops)
    }

    /// Starts a brush or eraser drag on `class` of `item` (ending any drag in progress).
    pub fn begin_stroke(&mut self, item: ItemId, class: u8, brush: Brush) -> Result<()> {
        self.ensure_writable()?;
        self.end_stroke()?;
        self.stroke = Some(Stroke::begin(&mut self.doc, item, class, brush)?);
        Ok(())
    }

    /// Moves the pointer to `point_image` (image pixels), stamping along the way. The mask
    /// shows the stamps at once; they are saved when the stroke ends.
    pub fn stroke_to(&mut self, point_image: [f32; 2]) -> Result<()> {
        let stroke = self.stroke.as_mut().ok_or(AnnotationError::NoStroke)?;
        stroke.extend(&mut self.doc, point_image)
    }

    /// Ends the drag: one undo step, journaled. Returns whether it changed anything; `Ok(false)`
    /// also when no drag was in progress.
    pub fn end_stroke(&mut self) -> Result<bool> {
        let Some(stroke) = self.stroke.take() else {
            return Ok(false);
        };
        match stroke.finish(&mut self.doc)? {
            Some(change) => {
                self.commit(change)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Abandons the drag in progress, restoring the pixels it painted.
    pub fn cancel_stroke(&mut self) -> Result<()> {
        match self.stroke.take() {
            Some(stroke) => stroke.cancel(&mut self.doc),
            None => Ok(()),
        }
    }

    pub fn is_stroking(&self) -> bool {
        self.stroke.is_some()
    }

    /// Undo steps held, and the memory they take (bounded by `undo_budget_bytes`).
    pub fn undo_steps(&self) -> (usize, usize) {
        (self.history.undo_depth(), self.history.used_bytes())
    }

    pub fn can_undo(&self) -> bool {
        self.history.can_undo()
    }

    pub fn can_redo(&self) -> bool {
        self.history.can_redo()
    }

    /// Undoes the newest step (journaled like an edit). Returns false when there is none.
    pub fn undo(&mut self) -> Result<bool> {
        self.ensure_writable()?;
        self.end_stroke()?;
        let Some(ops) = self.history.peek_undo().map(Change::backward) else {
            return Ok(false);
        };
        self.apply_ops(&ops)?;
        self.history.mark_undone();
        self.write_record(ops)?;
        Ok(true)
    }

    /// Redoes the newest undone step. Returns false when there is none.
    pub fn redo(&mut self) -> Result<bool> {
        self.ensure_writable()?;
        self.end_stroke()?;
        let Some(ops) = self.history.peek_redo().map(Change::forward) else {
            return Ok(false);
        };
        self.apply_ops(&ops)?;
        self.history.mark_redone();
        self.write_record(ops)?;
        Ok(true)
    }

    /// Loads every item the ops touch first, so applying them cannot stop half-way.
    fn apply_ops(&mut self, ops: &[SetOp]) -> Result<()> {
        for op in ops {
            if let SetOp::Tiles { item, .. } = op {
                self.doc.masks(*item)?;
            }
        }
        for op in ops {
            self.doc.apply(op)?;
        }
        Ok(())
    }
}
