//! The annotation project of the open study as the app uses it: the [`Project`], which item
//! each slice is, the label map drawn by the overlay, and where the project lives.
//!
//! Opening (or creating) a project and registering the slices run on a helper thread
//! ([`open_session`]); the finished [`Session`] then lives on the UI thread, where every stroke
//! is journaled by the store before the call returns (that journal is the autosave).

mod open;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::annotation::{AnnotationError, ItemId, LabelClass, Project};

pub use crate::annotation::{CLASS_COLOURS, default_class};
pub use open::{OpenReport, fallback_dir, item_key, open_session, user_data_dir};

/// Generation numbers of overlay label maps: unique in the process, so the GPU copy (keyed by
/// size and generation) is refreshed for every rebuilt map, whatever item or project it is of.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// An open project and the slices it annotates.
#[derive(Debug)]
pub struct Session {
    pub project: Project,
    /// The study folder or file the project belongs to.
    pub study: PathBuf,
    /// `items[series][slice]`: the item of each slice, empty for a series that could not be
    /// registered.
    pub items: Vec<Vec<ItemId>>,
    /// The label map drawn for one item, dropped whenever the document changes.
    overlay: Option<OverlayLabels>,
    /// The last point of the drag in progress (`image` pixels), for [`Session::touch_stroke`].
    last_stroke_point: Option<[f32; 2]>,
    /// The item of the latest drag.
    stroke_item: Option<ItemId>,
}

/// The label values of one item, one byte per pixel.
#[derive(Debug, Clone)]
pub struct OverlayLabels {
    pub item: ItemId,
    pub width: u32,
    pub height: u32,
    pub labels: Arc<Vec<u8>>,
    pub generation: u64,
}
impl Session {
    /// The item shown for slice `index` of `series`.
    pub fn item_at(&self, series: usize, index: usize) -> Option<ItemId> {
        self.items.get(series)?.get(index).copied()
    }

    /// Marks the document changed: the overlay is rebuilt on next use.
    pub fn touch(&mut self) {
        self.overlay = None;
        self.last_stroke_point = None;
    }

    /// Updates the overlay after brush stamps along `points_image` (and from the previous
    /// point when the drag `continues`), recomposing only the pixels within `radius_px` of
    /// them: a drag on a large image stays cheap. Falls back to a full rebuild when unsure.
    pub fn touch_stroke(
        &mut self,
        item: ItemId,
        points_image: &[[f32; 2]],
        radius_px: f32,
        continues: bool,
    ) {
        let previous = self.last_stroke_point.take().filter(|_| continues);
        self.last_stroke_point = points_image.last().copied();
        self.stroke_item = Some(item);
        let Some(o) = self.overlay.as_mut().filter(|o| o.item == item) else {
            self.overlay = None;
            return;
        };
        let reach = radius_px.max(0.0) + 2.0;
        let (mut min, mut max) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for p in previous.iter().chain(points_image) {
            for axis in 0..2 {
                min[axis] = min[axis].min(p[axis] - reach);
                max[axis] = max[axis].max(p[axis] + reach);
            }
        }
        // Float-to-int casts saturate; non-finite bounds give an empty rectangle.
        let clamp = |v: f32, len: u32| (v.floor().max(0.0) as u32).min(len) as usize;
        let (x0, x1) = (clamp(min[0], o.width), clamp(max[0] + 1.0, o.width));
        let (y0, y1) = (clamp(min[1], o.height), clamp(max[1] + 1.0, o.height));
        let Ok(masks) = self.project.masks(item) else {
            self.overlay = None;
            return;
        };
        let width = o.width as usize;
        let labels = Arc::make_mut(&mut o.labels);
        for y in y0..y1 {
            let row = y * width;
            let Some(out) = labels.get_mut(row + x0..row + x1) else {
                continue;
            };
            out.fill(0);
            for (&class, mask) in masks {
                let Some(bytes) = mask.as_bytes().get(row + x0..row + x1) else {
                    continue;
                };
                for (label, &set) in out.iter_mut().zip(bytes) {
                    if set != 0 {
                        *label = class;
                    }
                }
            }
        }
        o.generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    /// The label map of `item` for the overlay (classes composed; the higher value wins).
    pub fn overlay_labels(&mut self, item: ItemId) -> Result<OverlayLabels, AnnotationError> {
        if let Some(o) = &self.overlay
            && o.item == item
        {
            return Ok(o.clone());
        }
        let size = self
            .project
            .item(item)
            .ok_or(AnnotationError::UnknownItem { item })?
            .size();
        let mut labels = vec![0u8; size.area()];
        for (&class, mask) in self.project.masks(item)? {
            for (label, &set) in labels.iter_mut().zip(mask.as_bytes()) {
                if set != 0 {
                    *label = class;
                }
            }
        }
        let overlay = OverlayLabels {
            item,
            width: size.width,
            height: size.height,
            labels: Arc::new(labels),
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
        };
        self.overlay = Some(overlay.clone());
        Ok(overlay)
    }

    /// The item of the drag in progress, if the project has one.
    pub fn stroke_item(&self) -> Option<ItemId> {
        self.stroke_item.filter(|_| self.project.is_stroking())
    }

    /// Label classes in value order.
    pub fn classes(&self) -> Vec<LabelClass> {
        self.project.classes().cloned().collect()
    }

    /// A new class with the first free value and the next colour; `None` when all 255 are used.
    pub fn next_class(&self) -> Option<LabelClass> {
        let value = (1..=u8::MAX).find(|v| self.project.class(*v).is_none())?;
        Some(default_class(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_updated_along_a_stroke_equals_a_full_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("s");
        std::fs::create_dir(&study).unwrap();
        image::GrayImage::new(90, 70)
            .save(study.join("a.png"))
            .unwrap();
        let found = crate::study::discover(&study);
        let (mut s, _) = open_session(&study, &found.series, None, None).unwrap();
        s.project.set_class(default_class(2)).unwrap();
        let item = s.item_at(0, 0).unwrap();
        s.overlay_labels(item).unwrap();
        let drags: [(u8, bool, &[[f32; 2]]); 3] = [
            (1, false, &[[5.0, 5.0], [40.0, 30.0], [88.0, 69.0]]),
            (2, false, &[[30.0, 40.0], [60.0, 10.0]]),
            (1, true, &[[35.0, 25.0], [50.0, 20.0]]),
        ];
        for (class, erase, points) in drags {
            let brush = crate::annotation::Brush {
                radius_px: 6.0,
                erase,
            };
            s.project.begin_stroke(item, class, brush).unwrap();
            for (k, p) in points.iter().enumerate() {
                s.project.stroke_to(*p).unwrap();
                s.touch_stroke(item, &[*p], brush.radius_px, k > 0);
            }
            s.project.end_stroke().unwrap();
        }
        let incremental = s.overlay_labels(item).unwrap();
        s.touch();
        let full = s.overlay_labels(item).unwrap();
        assert!(incremental.labels.contains(&2));
        assert_eq!(incremental.labels, full.labels);
        assert_ne!(incremental.generation, full.generation);
    }
}
