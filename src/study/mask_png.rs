//! PNG masks: one grayscale PNG per source image, named after the source's stem.
//!
//! [`MaskEncoding::Binary`] writes 0/255 (anything non-zero is foreground), the convention of
//! Kvasir, ISIC and most 2D datasets. [`MaskEncoding::LabelValues`] writes the label values
//! themselves: 8-bit when every value fits, 16-bit otherwise. Files are written to a temporary
//! name and renamed, so a crash never leaves a half-written mask.

use std::path::{Path, PathBuf};

use image::{ImageBuffer, Luma};

use crate::study::{LabelMap, Result, StudyError};

/// How label values are stored in the PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskEncoding {
    /// 0 = background, 255 = any label.
    #[default]
    Binary,
    /// The label values (8-bit if all ≤ 255, else 16-bit).
    LabelValues,
}

/// `out_dir/<source stem>.png`, or `out_dir/<stem>_f<frame>.png` for frame `frame` of a
/// multi-frame source.
pub fn mask_path_for(source: &Path, frame: Option<u32>, out_dir: &Path) -> PathBuf {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mask".to_owned());
    let name = match frame {
        Some(f) => format!("{stem}_f{f:04}.png"),
        None => format!("{stem}.png"),
    };
    out_dir.join(name)
}

/// Writes `mask` as a grayscale PNG.
pub fn write_mask_png(path: &Path, mask: &LabelMap, encoding: MaskEncoding) -> Result<()> {
    let expected = usize::try_from(u64::from(mask.width) * u64::from(mask.height)).ok();
    if mask.width == 0 || mask.height == 0 || expected != Some(mask.labels.len()) {
        return Err(StudyError::ShapeMismatch {
            path: path.to_path_buf(),
            dims: [
                usize::try_from(mask.width).unwrap_or(0),
                usize::try_from(mask.height).unwrap_or(0),
                1,
            ],
            expected: expected.unwrap_or(0),
            found: mask.labels.len(),
        });
    }
    let max = mask.labels.iter().copied().max().unwrap_or(0);
    let tmp = temp_path(path);
    let saved = match encoding {
        MaskEncoding::Binary => {
            let data = mask
                .labels
                .iter()
                .map(|&v| if v > 0 { 255u8 } else { 0 })
                .collect();
            save_luma8(&tmp, mask, data)
        }
        MaskEncoding::LabelValues if max <= 255 => {
            let data = mask
                .labels
                .iter()
                .map(|&v| u8::try_from(v).unwrap_or(u8::MAX))
                .collect();
            save_luma8(&tmp, mask, data)
        }
        MaskEncoding::LabelValues => {
            let buf: Option<ImageBuffer<Luma<u16>, Vec<u16>>> =
                ImageBuffer::from_raw(mask.width, mask.height, mask.labels.clone());
            buf.map(|b| b.save_with_format(&tmp, image::ImageFormat::Png))
        }
    };
    let result = match saved {
        Some(r) => r.map_err(|source| StudyError::EncodePng {
            path: path.to_path_buf(),
            source,
        }),
        None => Err(StudyError::ShapeMismatch {
            path: path.to_path_buf(),
            dims: [mask.labels.len(), 1, 1],
            expected: mask.labels.len(),
            found: mask.labels.len(),
        }),
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|source| StudyError::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

fn save_luma8(tmp: &Path, mask: &LabelMap, data: Vec<u8>) -> Option<image::ImageResult<()>> {
    let buf: ImageBuffer<Luma<u8>, Vec<u8>> = ImageBuffer::from_raw(mask.width, mask.height, data)?;
    Some(buf.save_with_format(tmp, image::ImageFormat::Png))
}

/// `<path>.tmp` beside the target, so the final rename stays on one file system.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a mask PNG back. 8- and 16-bit grayscale values are returned as stored; colour masks
/// are converted to 8-bit luma.
pub fn read_mask_png(path: &Path) -> Result<LabelMap> {
    let image = super::raster::open(path)?
        .decode()
        .map_err(|source| StudyError::DecodeImage {
            path: path.to_path_buf(),
            source,
        })?;
    let (width, height) = (image.width(), image.height());
    let labels = match image {
        image::DynamicImage::ImageLuma16(buf) => buf.into_raw(),
        other => other.into_luma8().iter().map(|&v| u16::from(v)).collect(),
    };
    Ok(LabelMap {
        width,
        height,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(max: u16) -> LabelMap {
        LabelMap {
            width: 3,
            height: 2,
            labels: vec![0, 1, 2, max, 0, 7],
        }
    }

    #[test]
    fn label_values_round_trip_8_and_16_bit() {
        let dir = tempfile::tempdir().unwrap();
        for max in [255, 1000] {
            let path = dir.path().join(format!("m{max}.png"));
            write_mask_png(&path, &sample(max), MaskEncoding::LabelValues).unwrap();
            assert_eq!(read_mask_png(&path).unwrap(), sample(max));
            assert!(!temp_path(&path).exists());
        }
    }

    #[test]
    fn binary_writes_0_and_255() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.png");
        write_mask_png(&path, &sample(3), MaskEncoding::Binary).unwrap();
        let back = read_mask_png(&path).unwrap();
        assert_eq!(back.labels, vec![0, 255, 255, 255, 0, 255]);
    }

    #[test]
    fn rejects_wrong_length_and_names_like_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = sample(1);
        bad.labels.pop();
        let err = write_mask_png(&dir.path().join("x.png"), &bad, MaskEncoding::Binary);
        assert!(matches!(err, Err(StudyError::ShapeMismatch { .. })));
        let out = mask_path_for(Path::new("a/b/img01.jpg"), None, Path::new("masks"));
        assert_eq!(out, Path::new("masks/img01.png"));
        let out = mask_path_for(Path::new("cine.dcm"), Some(3), Path::new("m"));
        assert_eq!(out, Path::new("m/cine_f0003.png"));
    }
}
