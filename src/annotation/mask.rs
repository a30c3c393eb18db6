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
    pub(super) fn width(self) -> usize {
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
    pub(super) size: ImageSize,
    pub(super) pixels: Vec<u8>,
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
}
