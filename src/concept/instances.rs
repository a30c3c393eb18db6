//! Ground-truth instances from a binary mask, as the M2C authors build their targets: each
//! 8-connected component of the mask (OpenCV external contours) is one instance with its tight
//! box; components smaller than [`MIN_INSTANCE_AREA`] pixels are dropped.

use super::boxes::{CxCyWh, Xyxy};

/// Components below this many pixels are noise, not instances (authors' value: 30 px).
pub const MIN_INSTANCE_AREA: usize = 30;

/// One connected component of a binary mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Pixel mask of this component only, row-major, same size as the source.
    pub mask: Vec<bool>,
    pub area: usize,
    /// Tight box in pixel corners: x in [x1, x2), y in [y1, y2).
    pub bbox_px: Xyxy,
}

impl Instance {
    /// The box normalised by the image size, in centre form (the box head's target).
    pub fn bbox_normalised(&self, width: usize, height: usize) -> CxCyWh {
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        Xyxy {
            x1: self.bbox_px.x1 / w,
            y1: self.bbox_px.y1 / h,
            x2: self.bbox_px.x2 / w,
            y2: self.bbox_px.y2 / h,
        }
        .to_cxcywh()
    }
}

/// Splits `mask` (row-major, `width` × `height`) into 8-connected components of at least
/// `min_area` pixels, in order of their first pixel in raster order.
///
/// # Panics
/// When `mask.len() != width * height` (a caller bug, not user input).
pub fn connected_components(
    mask: &[bool],
    width: usize,
    height: usize,
    min_area: usize,
) -> Vec<Instance> {
    assert_eq!(
        mask.len(),
        width * height,
        "mask size does not match its dimensions"
    );
    let mut label = vec![0u32; mask.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let mut next = 0u32;
    for start in 0..mask.len() {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        let mut pixels = Vec::new();
        label[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            pixels.push(i);
            let (x, y) = (i % width, i / width);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if (dx, dy) == (0, 0)
                        || nx < 0
                        || ny < 0
                        || nx >= width as i64
                        || ny >= height as i64
                    {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if mask[j] && label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if pixels.len() < min_area {
            continue;
        }
        let mut inst = vec![false; mask.len()];
        let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
        for &i in &pixels {
            inst[i] = true;
            let (x, y) = (i % width, i / width);
            x1 = x1.min(x);
            y1 = y1.min(y);
            x2 = x2.max(x + 1);
            y2 = y2.max(y + 1);
        }
        out.push(Instance {
            mask: inst,
            area: pixels.len(),
            bbox_px: Xyxy {
                x1: x1 as f32,
                y1: y1 as f32,
                x2: x2 as f32,
                y2: y2 as f32,
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows[0].len();
        let m = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (m, w, rows.len())
    }

    #[test]
    fn splits_components_with_diagonal_connectivity_and_tight_boxes() {
        let (m, w, h) = grid(&[
            "##....", //
            "##...#", //
            "..#..#", //
            "......", //
        ]);
        let inst = connected_components(&m, w, h, 1);
        assert_eq!(inst.len(), 2);
        assert_eq!(inst[0].area, 5); // the 2x2 block plus its diagonal neighbour
        assert_eq!(
            inst[0].bbox_px,
            Xyxy {
                x1: 0.0,
                y1: 0.0,
                x2: 3.0,
                y2: 3.0
            }
        );
        assert_eq!(inst[1].area, 2);
        let n = inst[1].bbox_normalised(w, h);
        assert!((n.cx - 5.5 / 6.0).abs() < 1e-6 && (n.h - 0.5).abs() < 1e-6);
    }

    #[test]
    fn drops_small_components() {
        let (m, w, h) = grid(&["#.##", "..##"]);
        assert_eq!(connected_components(&m, w, h, 2).len(), 1);
        assert!(connected_components(&[false; 4], 2, 2, 1).is_empty());
    }
}
