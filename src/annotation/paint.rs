//! Painting on masks: round brush stamps, flood fill, combining masks, and clipping pointer
//! segments to the image. All coordinates are `image` pixels.

use super::mask::{Mask, PixelRect};

impl Mask {
    /// Pixel-wise `self |= other`, `self &= !other` or `self = other` (same size required).
    pub(crate) fn combine(&mut self, other: &Mask, mode: PasteMode) {
        debug_assert_eq!(self.size, other.size);
        for (dst, &src) in self.pixels.iter_mut().zip(&other.pixels) {
            *dst = match mode {
                PasteMode::Union => *dst | src,
                PasteMode::Subtract => *dst & (1 - src),
                PasteMode::Replace => src,
            };
        }
    }

    /// Bounding rectangle of a disc of `radius_px` around `center_image`, clipped to the image;
    /// `None` when the disc misses the image entirely.
    pub fn disc_bounds(&self, center_image: [f32; 2], radius_px: f32) -> Option<PixelRect> {
        let [cx, cy] = center_image;
        let r = radius_px.max(0.5);
        let clip = |lo: f32, hi: f32, side: u32| -> Option<(u32, u32)> {
            // Pixel i is covered when its centre i + 0.5 lies in [lo, hi].
            let first = (lo - 0.5).ceil().max(0.0);
            let last = (hi - 0.5).floor().min(side as f32 - 1.0);
            // Both are finite, in [0, side), and whole: the casts are exact.
            (first <= last).then(|| (first as u32, last as u32 + 1))
        };
        if !(cx.is_finite() && cy.is_finite() && r.is_finite()) {
            return None;
        }
        let (x0, x1) = clip(cx - r, cx + r, self.size.width)?;
        let (y0, y1) = clip(cy - r, cy + r, self.size.height)?;
        Some(PixelRect { x0, y0, x1, y1 })
    }

    /// Paints a filled disc (a brush stamp) with `value` (1 paints, 0 erases).
    ///
    /// A pixel is inside when its centre lies within `radius_px` of `center_image`; radii below
    /// half a pixel paint the pixel under the centre. Cost is proportional to the disc's area.
    pub fn stamp_disc(&mut self, center_image: [f32; 2], radius_px: f32, value: u8) {
        let Some(rect) = self.disc_bounds(center_image, radius_px) else {
            return;
        };
        let [cx, cy] = center_image;
        let r = radius_px.max(0.5);
        let width = self.size.width as usize;
        let value = u8::from(value != 0);
        for y in rect.y0..rect.y1 {
            let dy = y as f32 + 0.5 - cy;
            let half_sq = r * r - dy * dy;
            if half_sq < 0.0 {
                continue;
            }
            let half = half_sq.sqrt();
            let lo = (cx - half - 0.5).ceil().max(rect.x0 as f32);
            let hi = (cx + half - 0.5).floor().min(rect.x1 as f32 - 1.0);
            if lo > hi {
                continue;
            }
            // lo and hi are whole numbers inside [x0, x1): the casts are exact.
            let row = y as usize * width;
            if let Some(span) = self.pixels.get_mut(row + lo as usize..=row + hi as usize) {
                span.fill(value);
            }
        }
    }

    /// Flood-fills (4-connected) the region of equal value containing `seed` with `value`.
    /// Returns false when `seed` is outside the image.
    pub fn flood_fill(&mut self, seed: [u32; 2], value: u8) -> bool {
        let [sx, sy] = seed;
        let Some(old) = self.get(sx, sy).map(u8::from) else {
            return false;
        };
        let value = u8::from(value != 0);
        if old == value {
            return true;
        }
        let (w, h) = (self.size.width as usize, self.size.height as usize);
        let mut stack = vec![(sx as usize, sy as usize)];
        while let Some((x, y)) = stack.pop() {
            let row = y * w;
            if self.pixels.get(row + x) != Some(&old) {
                continue;
            }
            let mut left = x;
            while left > 0 && self.pixels.get(row + left - 1) == Some(&old) {
                left -= 1;
            }
            let mut right = x;
            while right + 1 < w && self.pixels.get(row + right + 1) == Some(&old) {
                right += 1;
            }
            if let Some(span) = self.pixels.get_mut(row + left..=row + right) {
                span.fill(value);
            }
            for ny in [y.checked_sub(1), (y + 1 < h).then_some(y + 1)]
                .into_iter()
                .flatten()
            {
                let nrow = ny * w;
                let mut in_run = false;
                for nx in left..=right {
                    let open = self.pixels.get(nrow + nx) == Some(&old);
                    if open && !in_run {
                        stack.push((nx, ny));
                    }
                    in_run = open;
                }
            }
        }
        true
    }
}

/// How a pasted mask (a box-prompt result, say) combines with the class's current mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PasteMode {
    /// Add the pasted pixels.
    Union,
    /// Remove the pasted pixels.
    Subtract,
    /// Replace the mask with the pasted one.
    Replace,
}

/// The part of segment `a`–`b` inside `rect` (Liang–Barsky), so that a pointer path that
/// strays far outside the image never turns into millions of off-image stamps.
pub(crate) fn clip_segment(
    a: [f32; 2],
    b: [f32; 2],
    min: [f32; 2],
    max: [f32; 2],
) -> Option<([f32; 2], [f32; 2])> {
    // f64: pointer positions can be huge, and f32 would lose the inside part entirely.
    let (a64, b64) = (a.map(f64::from), b.map(f64::from));
    let d = [b64[0] - a64[0], b64[1] - a64[1]];
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for axis in 0..2 {
        let lo = f64::from(min[axis]) - a64[axis];
        let hi = f64::from(max[axis]) - a64[axis];
        let p = d[axis];
        if p == 0.0 {
            if lo > 0.0 || hi < 0.0 {
                return None;
            }
            continue;
        }
        let (mut ta, mut tb) = (lo / p, hi / p);
        if ta > tb {
            std::mem::swap(&mut ta, &mut tb);
        }
        t0 = t0.max(ta);
        t1 = t1.min(tb);
        if t0 > t1 {
            return None;
        }
    }
    // Clamped, so rounding can never leave a point far outside `rect`.
    let at = |t: f64| {
        [0, 1].map(|axis| {
            let v = a64[axis] + d[axis] * t;
            (v as f32).clamp(min[axis], max[axis])
        })
    };
    Some((at(t0), at(t1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::mask::ImageSize;

    fn size(w: u32, h: u32) -> ImageSize {
        ImageSize::new(w, h).unwrap()
    }

    #[test]
    fn stamp_paints_a_disc_of_the_given_radius() {
        let mut mask = Mask::empty(size(64, 64));
        mask.stamp_disc([32.0, 32.0], 10.0, 1);
        assert_eq!(mask.get(32, 32), Some(true));
        assert_eq!(mask.get(32 + 9, 32), Some(true));
        assert_eq!(mask.get(32 + 11, 32), Some(false));
        assert_eq!(mask.get(39, 39), Some(false)); // corner of the bounding box
        let area = mask.count() as f32;
        assert!((area - std::f32::consts::PI * 100.0).abs() < 20.0, "{area}");
    }
    #[test]
    fn tiny_radius_paints_the_pixel_under_the_centre() {
        let mut mask = Mask::empty(size(8, 8));
        mask.stamp_disc([3.5, 4.5], 0.1, 1);
        assert_eq!(mask.count(), 1);
        assert_eq!(mask.get(3, 4), Some(true));
    }
    #[test]
    fn stamp_outside_or_non_finite_changes_nothing() {
        let mut mask = Mask::empty(size(8, 8));
        mask.stamp_disc([-50.0, 4.0], 3.0, 1);
        mask.stamp_disc([f32::NAN, 4.0], 3.0, 1);
        mask.stamp_disc([4.0, 4.0], f32::INFINITY, 1);
        assert!(mask.is_empty());
        mask.stamp_disc([-1.0, -1.0], 3.0, 1);
        assert_eq!(mask.get(0, 0), Some(true));
    }
    #[test]
    fn flood_fill_stops_at_boundaries() {
        let mut mask = Mask::empty(size(10, 10));
        for i in 0..10 {
            mask.stamp_disc([5.5, i as f32 + 0.5], 0.1, 1); // vertical wall at x = 5
        }
        assert!(mask.flood_fill([1, 1], 1));
        assert_eq!(mask.get(4, 9), Some(true));
        assert_eq!(mask.get(6, 0), Some(false));
        assert!(!mask.flood_fill([10, 0], 1));
    }
    #[test]
    fn clipping_keeps_only_the_inside_part_of_a_segment() {
        let (a, b) = clip_segment([-1e9, 5.0], [1e9, 5.0], [0.0, 0.0], [10.0, 10.0]).unwrap();
        assert_eq!((a, b), ([0.0, 5.0], [10.0, 5.0]));
        assert!(clip_segment([-5.0, -5.0], [-1.0, 20.0], [0.0, 0.0], [10.0, 10.0]).is_none());
    }
}
