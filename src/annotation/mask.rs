//! Binary raster masks in `image` space, and the square tiles that undo steps and journal records
//! are made of.
//!
//! A mask stores one byte per pixel (0 or 1), row-major, so the app can upload it as is. Tiles are
//! `TILE_SIZE` × `TILE_SIZE` pixels (smaller at the right and bottom edges); an edit records only
//! the tiles it changed, which keeps a brush stroke's undo step and journal record small.

use std::sync::Arc;

/// Side of a tile in image pixels.
pub const TILE_SIZE: u32 = 64;

/// Largest accepted image side in pixels; bigger sizes from files are rejected, not allocated.
pub const MAX_SIDE: u32 = 32_768;

/// Width and height of an image or slice in pixels, both in `1..=MAX_SIDE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

impl ImageSize {
    /// `None` when a side is zero or larger than [`MAX_SIDE`].
    pub fn new(width: u32, height: u32) -> Option<Self> {
        let ok = |side: u32| (1..=MAX_SIDE).contains(&side);
        (ok(width) && ok(height)).then_some(Self { width, height })
    }

    /// Number of pixels. Cannot overflow: both sides are at most `MAX_SIDE` (2^15).
    pub fn area(self) -> usize {
        self.width as usize * self.height as usize
    }

    fn tiles_x(self) -> u32 {
        self.width.div_ceil(TILE_SIZE)
    }

    fn tiles_y(self) -> u32 {
        self.height.div_ceil(TILE_SIZE)
    }

    /// Number of tiles covering the image.
    pub fn tile_count(self) -> u32 {
        self.tiles_x() * self.tiles_y()
    }

    /// The pixels covered by tile `index` (row-major over tiles), or `None` past the last tile.
    pub fn tile_rect(self, index: u32) -> Option<PixelRect> {
        if index >= self.tile_count() {
            return None;
        }
        let x0 = (index % self.tiles_x()) * TILE_SIZE;
        let y0 = (index / self.tiles_x()) * TILE_SIZE;
        Some(PixelRect {
            x0,
            y0,
            x1: (x0 + TILE_SIZE).min(self.width),
            y1: (y0 + TILE_SIZE).min(self.height),
        })
    }

    /// Indices of the tiles that intersect `rect` (which must lie inside the image).
    pub fn tiles_in(self, rect: PixelRect) -> impl Iterator<Item = u32> {
        let tiles_x = self.tiles_x();
        let (tx0, tx1) = (rect.x0 / TILE_SIZE, rect.x1.div_ceil(TILE_SIZE));
        let (ty0, ty1) = (rect.y0 / TILE_SIZE, rect.y1.div_ceil(TILE_SIZE));
        (ty0..ty1).flat_map(move |ty| (tx0..tx1).map(move |tx| ty * tiles_x + tx))
    }
}

/// A half-open pixel rectangle `[x0, x1) × [y0, y1)` in `image` space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl PixelRect {
    fn width(self) -> usize {
        (self.x1 - self.x0) as usize
    }

    fn area(self) -> usize {
        self.width() * (self.y1 - self.y0) as usize
    }
}

/// The content of one tile: either every pixel has the same value, or the raw row-major bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TileData {
    Uniform(u8),
    Raw(Arc<[u8]>),
}

impl TileData {
    /// Bytes this tile holds on the heap, for the undo memory budget.
    pub fn heap_bytes(&self) -> usize {
        match self {
            TileData::Uniform(_) => 0,
            TileData::Raw(bytes) => bytes.len(),
        }
    }
}

/// A binary mask over one image: one byte per pixel, 0 (background) or 1 (label).
#[derive(Clone, PartialEq, Eq)]
pub struct Mask {
    size: ImageSize,
    pixels: Vec<u8>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mask")
            .field("size", &self.size)
            .field("set_pixels", &self.count())
            .finish()
    }
}

impl Mask {
    /// An all-background mask.
    pub fn empty(size: ImageSize) -> Self {
        Self {
            size,
            pixels: vec![0; size.area()],
        }
    }

    /// A mask from row-major bytes (any non-zero byte is a label pixel); `None` if the length
    /// is not `width * height`.
    pub fn from_bytes(size: ImageSize, mut bytes: Vec<u8>) -> Option<Self> {
        if bytes.len() != size.area() {
            return None;
        }
        for b in &mut bytes {
            *b = u8::from(*b != 0);
        }
        Some(Self {
            size,
            pixels: bytes,
        })
    }

    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// Row-major pixels, 0 or 1, `width * height` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.pixels
    }

    /// Whether pixel (`x`, `y`) is set; `None` outside the image.
    pub fn get(&self, x: u32, y: u32) -> Option<bool> {
        if x >= self.size.width || y >= self.size.height {
            return None;
        }
        let index = y as usize * self.size.width as usize + x as usize;
        self.pixels.get(index).map(|&v| v != 0)
    }

    /// Number of label pixels.
    pub fn count(&self) -> usize {
        self.pixels.iter().filter(|&&v| v != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.iter().all(|&v| v == 0)
    }

    /// Sets every pixel to `value` (0 or 1).
    pub fn fill_all(&mut self, value: u8) {
        self.pixels.fill(u8::from(value != 0));
    }

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

    /// Copies tile `index` out of the mask; `None` past the last tile.
    pub fn read_tile(&self, index: u32) -> Option<TileData> {
        let rect = self.size.tile_rect(index)?;
        let mut bytes = Vec::with_capacity(rect.area());
        for y in rect.y0..rect.y1 {
            let row = self.row_span(y, rect)?;
            bytes.extend_from_slice(row);
        }
        let first = bytes.first().copied().unwrap_or(0);
        Some(if bytes.iter().all(|&b| b == first) {
            TileData::Uniform(first)
        } else {
            TileData::Raw(bytes.into())
        })
    }

    /// Overwrites tile `index`. Returns false (writing nothing) when the index is past the last
    /// tile or raw data has the wrong length for that tile.
    pub fn write_tile(&mut self, index: u32, data: &TileData) -> bool {
        let Some(rect) = self.size.tile_rect(index) else {
            return false;
        };
        let width = rect.width();
        if let TileData::Raw(bytes) = data
            && bytes.len() != rect.area()
        {
            return false;
        }
        let stride = self.size.width as usize;
        for (i, y) in (rect.y0..rect.y1).enumerate() {
            let start = y as usize * stride + rect.x0 as usize;
            let Some(dst) = self.pixels.get_mut(start..start + width) else {
                return false;
            };
            match data {
                TileData::Uniform(v) => dst.fill(u8::from(*v != 0)),
                TileData::Raw(bytes) => match bytes.get(i * width..(i + 1) * width) {
                    Some(src) => {
                        for (d, &s) in dst.iter_mut().zip(src) {
                            *d = u8::from(s != 0);
                        }
                    }
                    None => return false,
                },
            }
        }
        true
    }

    /// Whether tile `index` differs between `self` and `other` (same size required).
    pub(crate) fn tile_differs(&self, other: &Mask, index: u32) -> bool {
        let Some(rect) = self.size.tile_rect(index) else {
            return false;
        };
        (rect.y0..rect.y1).any(|y| self.row_span(y, rect) != other.row_span(y, rect))
    }

    fn row_span(&self, y: u32, rect: PixelRect) -> Option<&[u8]> {
        let start = y as usize * self.size.width as usize + rect.x0 as usize;
        self.pixels.get(start..start + rect.width())
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

    fn size(w: u32, h: u32) -> ImageSize {
        ImageSize::new(w, h).unwrap()
    }

    #[test]
    fn rejects_zero_and_oversized_sides() {
        assert!(ImageSize::new(0, 10).is_none());
        assert!(ImageSize::new(10, MAX_SIDE + 1).is_none());
        assert!(ImageSize::new(1, 1).is_some());
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
    fn tiles_round_trip_including_edge_tiles() {
        let mut mask = Mask::empty(size(100, 70));
        mask.stamp_disc([80.0, 60.0], 12.0, 1);
        let copy = mask.clone();
        let tiles: Vec<_> = (0..mask.size().tile_count())
            .map(|i| mask.read_tile(i).unwrap())
            .collect();
        assert_eq!(tiles.len(), 4);
        assert_eq!(tiles[0], TileData::Uniform(0));
        mask.fill_all(0);
        for (i, t) in tiles.iter().enumerate() {
            assert!(mask.write_tile(i as u32, t));
        }
        assert_eq!(mask, copy);
        assert!(!mask.write_tile(1, &TileData::Raw(vec![1u8; 3].into())));
        assert!(!mask.write_tile(4, &TileData::Uniform(1)));
    }

    #[test]
    fn tiles_in_rect_lists_every_intersecting_tile() {
        let s = size(200, 200);
        let rect = PixelRect {
            x0: 60,
            y0: 10,
            x1: 130,
            y1: 70,
        };
        let tiles: Vec<u32> = s.tiles_in(rect).collect();
        assert_eq!(tiles, vec![0, 1, 2, 4, 5, 6]);
    }

    #[test]
    fn clipping_keeps_only_the_inside_part_of_a_segment() {
        let (a, b) = clip_segment([-1e9, 5.0], [1e9, 5.0], [0.0, 0.0], [10.0, 10.0]).unwrap();
        assert_eq!((a, b), ([0.0, 5.0], [10.0, 5.0]));
        assert!(clip_segment([-5.0, -5.0], [-1.0, 20.0], [0.0, 0.0], [10.0, 10.0]).is_none());
    }
}
