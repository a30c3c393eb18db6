//! PNG, JPEG, TIFF and BMP images through the `image` crate. Each file is its own one-frame
//! series. Grayscale stays grayscale (8- or 16-bit values as f32, no windowing); colour becomes
//! 8-bit RGB (alpha dropped, 16-bit colour reduced).

use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader};

use crate::study::{FrameRef, Pixels, Result, Series, SeriesKind, Slice, StudyError};

/// Opens an image file and guesses its format from the content; I/O errors name the file.
pub(crate) fn open(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>> {
    ImageReader::open(path)
        .map_err(|source| StudyError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| StudyError::ReadFile {
            path: path.to_path_buf(),
            source,
        })
}

fn format_name(format: Option<ImageFormat>) -> Option<&'static str> {
    match format? {
        ImageFormat::Png => Some("PNG"),
        ImageFormat::Jpeg => Some("JPEG"),
        ImageFormat::Tiff => Some("TIFF"),
        ImageFormat::Bmp => Some("BMP"),
        _ => None,
    }
}

/// Header pass: the image's size and format, without decoding pixels.
pub(crate) fn raster_series(path: &Path) -> Result<Series> {
    let reader = open(path)?;
    let Some(name) = format_name(reader.format()) else {
        return Err(StudyError::NotAnImage {
            path: path.to_path_buf(),
            reason: "unsupported raster format".to_owned(),
        });
    };
    let decoder = reader
        .into_decoder()
        .map_err(|source| StudyError::DecodeImage {
            path: path.to_path_buf(),
            source,
        })?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    let color = image::ImageDecoder::color_type(&decoder);
    if width == 0 || height == 0 {
        return Err(StudyError::ZeroSizedImage {
            path: path.to_path_buf(),
            width,
            height,
        });
    }
    Ok(Series {
        key: path.to_string_lossy().into_owned(),
        kind: SeriesKind::Raster,
        modality: None,
        width,
        height,
        frames: vec![FrameRef {
            path: path.to_path_buf(),
            frame: 0,
        }],
        samples_per_pixel: if color.has_color() { 3 } else { 1 },
        encodings: vec![name.to_owned()],
        geometry: None,
        issues: Vec::new(),
        pixel_spacing_mm: None,
    })
}

/// Decodes a raster image into a [`Slice`].
pub(crate) fn load_raster(path: &Path) -> Result<Slice> {
    let image = open(path)?
        .decode()
        .map_err(|source| StudyError::DecodeImage {
            path: path.to_path_buf(),
            source,
        })?;
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err(StudyError::ZeroSizedImage {
            path: path.to_path_buf(),
            width,
            height,
        });
    }
    let (pixels, bits_stored) = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) => {
            let gray = image.into_luma8();
            (
                Pixels::Gray(gray.iter().map(|&v| f32::from(v)).collect()),
                8,
            )
        }
        DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => {
            let gray = image.into_luma16();
            (
                Pixels::Gray(gray.iter().map(|&v| f32::from(v)).collect()),
                16,
            )
        }
        other => (Pixels::Rgb8(other.into_rgb8().into_raw()), 8),
    };
    Ok(Slice {
        width,
        height,
        pixels,
        monochrome1: false,
        modality: None,
        file_windows: Vec::new(),
        bits_stored,
        kind: SeriesKind::Raster,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, RgbImage};

    #[test]
    fn png_tiff_bmp_and_jpeg_are_listed_and_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 80, y as u8 * 100, 7]));
        let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_raw(2, 1, vec![0, 40000]).unwrap();
        rgb.save(dir.path().join("a.tif")).unwrap();
        rgb.save(dir.path().join("b.bmp")).unwrap();
        gray16.save(dir.path().join("c.png")).unwrap();
        GrayImage::from_pixel(8, 8, Luma([200]))
            .save(dir.path().join("d.jpg"))
            .unwrap();
        let cases = [
            ("a.tif", "TIFF", 3),
            ("b.bmp", "BMP", 3),
            ("c.png", "PNG", 1),
            ("d.jpg", "JPEG", 1),
        ];
        for (name, format, samples) in cases {
            let path = dir.path().join(name);
            let series = raster_series(&path).unwrap();
            assert_eq!(series.encodings, [format]);
            assert_eq!(series.samples_per_pixel, samples, "{name}");
            let slice = load_raster(&path).unwrap();
            match (name, &slice.pixels) {
                ("a.tif" | "b.bmp", Pixels::Rgb8(v)) => assert_eq!(v, &rgb.clone().into_raw()),
                ("c.png", Pixels::Gray(v)) => {
                    assert_eq!(v, &[0.0, 40000.0]);
                    assert_eq!(slice.bits_stored, 16);
                }
                ("d.jpg", Pixels::Gray(v)) => assert!(v.iter().all(|&g| (g - 200.0).abs() <= 2.0)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
