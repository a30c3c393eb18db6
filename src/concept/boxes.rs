//! Axis-aligned boxes in normalised (cx, cy, w, h) and corner form, with the GIoU the
//! matching cost and the box loss use (DETR's generalised IoU).

/// A box in normalised centre form, the layout SAM3's box head predicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CxCyWh {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

/// A box as corners (x1, y1) top-left and (x2, y2) bottom-right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Xyxy {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl CxCyWh {
    pub fn to_xyxy(self) -> Xyxy {
        Xyxy {
            x1: self.cx - 0.5 * self.w,
            y1: self.cy - 0.5 * self.h,
            x2: self.cx + 0.5 * self.w,
            y2: self.cy + 0.5 * self.h,
        }
    }

    /// Sum of absolute differences of the four coordinates.
    pub fn l1(self, other: CxCyWh) -> f32 {
        (self.cx - other.cx).abs()
            + (self.cy - other.cy).abs()
            + (self.w - other.w).abs()
            + (self.h - other.h).abs()
    }
}

impl Xyxy {
    pub fn to_cxcywh(self) -> CxCyWh {
        CxCyWh {
            cx: 0.5 * (self.x1 + self.x2),
            cy: 0.5 * (self.y1 + self.y2),
            w: self.x2 - self.x1,
            h: self.y2 - self.y1,
        }
    }

    pub fn area(self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union; 0 when both boxes are empty.
    pub fn iou(self, other: Xyxy) -> f32 {
        let (inter, union) = self.inter_union(other);
        if union > 0.0 { inter / union } else { 0.0 }
    }

    fn inter_union(self, other: Xyxy) -> (f32, f32) {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        (inter, self.area() + other.area() - inter)
    }

    /// Generalised IoU in [-1, 1]: IoU minus the share of the enclosing box that neither
    /// box covers.
    pub fn giou(self, other: Xyxy) -> f32 {
        let (inter, union) = self.inter_union(other);
        let iou = if union > 0.0 { inter / union } else { 0.0 };
        let hull = Xyxy {
            x1: self.x1.min(other.x1),
            y1: self.y1.min(other.y1),
            x2: self.x2.max(other.x2),
            y2: self.y2.max(other.y2),
        }
        .area();
        if hull > 0.0 {
            iou - (hull - union) / hull
        } else {
            iou
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> Xyxy {
        Xyxy { x1, y1, x2, y2 }
    }

    #[test]
    fn giou_matches_hand_computed_values() {
        let a = b(0.0, 0.0, 2.0, 2.0);
        assert!((a.giou(a) - 1.0).abs() < 1e-6);
        // Half overlap: inter 2, union 6, hull 6 -> 1/3.
        assert!((a.giou(b(1.0, 0.0, 3.0, 2.0)) - 1.0 / 3.0).abs() < 1e-6);
        // Disjoint, hull 4x2=8, union 8 -> iou 0, giou 0; farther apart goes negative.
        assert!((a.giou(b(2.0, 0.0, 4.0, 2.0))).abs() < 1e-6);
        // hull 6x2=12, union 8: 0 - 4/12.
        assert!((a.giou(b(4.0, 0.0, 6.0, 2.0)) + 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn centre_and_corner_forms_round_trip() {
        let c = CxCyWh {
            cx: 0.4,
            cy: 0.5,
            w: 0.2,
            h: 0.6,
        };
        let back = c.to_xyxy().to_cxcywh();
        assert!(c.l1(back) < 1e-6);
    }
}
