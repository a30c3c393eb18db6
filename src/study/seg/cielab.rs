//! sRGB ⇄ CIE L*a*b* for `RecommendedDisplayCIELabValue` (PS3.3 C.10.7.1.1): sRGB (IEC
//! 61966-2-1) to XYZ under D65, then L*a*b* with the D65 white point (Xn 95.047, Yn 100,
//! Zn 108.883), the convention dcmqi, highdicom and pixelmed follow. DICOM stores each value
//! scaled to 0..65535: L* over 0..100, a* and b* over −128..127.

/// sRGB to XYZ (D65), rows of the IEC 61966-2-1 matrix; XYZ scaled so that Y of white is 100.
const XYZ_FROM_RGB: [[f64; 3]; 3] = [
    [0.4124, 0.3576, 0.1805],
    [0.2126, 0.7152, 0.0722],
    [0.0193, 0.1192, 0.9505],
];
/// The inverse of [`XYZ_FROM_RGB`] as published with the standard (4 decimals).
const RGB_FROM_XYZ: [[f64; 3]; 3] = [
    [3.2406, -1.5372, -0.4986],
    [-0.9689, 1.8758, 0.0415],
    [0.0557, -0.2040, 1.0570],
];
const WHITE: [f64; 3] = [95.047, 100.0, 108.883];
/// (6/29)³: below it the L*a*b* function is linear.
const EPSILON: f64 = 216.0 / 24389.0;

fn linear(c: f64) -> f64 {
    if c > 0.04045 {
        ((c + 0.055) / 1.055).powf(2.4)
    } else {
        c / 12.92
    }
}

fn gamma(c: f64) -> f64 {
    if c > 0.003_130_8 {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    } else {
        12.92 * c
    }
}

fn f(t: f64) -> f64 {
    if t > EPSILON {
        t.cbrt()
    } else {
        t * (841.0 / 108.0) + 4.0 / 29.0
    }
}

fn f_inv(t: f64) -> f64 {
    if t * t * t > EPSILON {
        t * t * t
    } else {
        (t - 4.0 / 29.0) * (108.0 / 841.0)
    }
}

/// L* (0..100), a*, b* of an sRGB colour.
pub fn lab_from_srgb(rgb: [u8; 3]) -> [f64; 3] {
    let lin = rgb.map(|c| linear(f64::from(c) / 255.0) * 100.0);
    let xyz: Vec<f64> = XYZ_FROM_RGB
        .iter()
        .map(|row| row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2])
        .collect();
    let [fx, fy, fz] = [0, 1, 2].map(|i| f(xyz.get(i).copied().unwrap_or(0.0) / WHITE[i]));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// The three unsigned 16-bit values DICOM stores for an sRGB colour.
pub fn scaled_lab_from_srgb(rgb: [u8; 3]) -> [u16; 3] {
    let [l, a, b] = lab_from_srgb(rgb);
    let scale = |v: f64, lo: f64, span: f64| {
        // Clamped to 0..=65535 first, so the cast is exact.
        (((v - lo) / span).clamp(0.0, 1.0) * 65535.0).round() as u16
    };
    [
        scale(l, 0.0, 100.0),
        scale(a, -128.0, 255.0),
        scale(b, -128.0, 255.0),
    ]
}

/// The sRGB colour of stored `RecommendedDisplayCIELabValue`s (out-of-gamut values clip).
pub fn srgb_from_scaled_lab(scaled: [u16; 3]) -> [u8; 3] {
    let [l, a, b] = scaled.map(|v| f64::from(v) / 65535.0);
    let (l, a, b) = (l * 100.0, a * 255.0 - 128.0, b * 255.0 - 128.0);
    let fy = (l + 16.0) / 116.0;
    let fx = fy + a / 500.0;
    let fz = fy - b / 200.0;
    let xyz = [
        f_inv(fx) * WHITE[0],
        f_inv(fy) * WHITE[1],
        f_inv(fz) * WHITE[2],
    ];
    RGB_FROM_XYZ.map(|row| {
        let lin = (row[0] * xyz[0] + row[1] * xyz[1] + row[2] * xyz[2]) / 100.0;
        // Clamped to 0..=255 first, so the cast is exact.
        (gamma(lin.clamp(0.0, 1.0)) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_black_and_red_have_their_known_lab_values() {
        let [l, a, b] = lab_from_srgb([255, 255, 255]);
        assert!((l - 100.0).abs() < 0.01 && a.abs() < 0.05 && b.abs() < 0.05);
        assert!(lab_from_srgb([0, 0, 0]).iter().all(|v| v.abs() < 1e-9));
        // sRGB red is L* 53.24, a* 80.09, b* 67.20 (D65).
        let [l, a, b] = lab_from_srgb([255, 0, 0]);
        assert!((l - 53.24).abs() < 0.02 && (a - 80.09).abs() < 0.05 && (b - 67.20).abs() < 0.05);
        assert_eq!(scaled_lab_from_srgb([0, 0, 0]), [0, 32896, 32896]);
    }

    #[test]
    fn colours_survive_the_scaled_round_trip() {
        for rgb in [
            [230, 159, 0],
            [86, 180, 233],
            [0, 158, 115],
            [240, 228, 66],
            [0, 114, 178],
            [213, 94, 0],
            [204, 121, 167],
            [153, 153, 153],
            [255, 0, 0],
            [1, 2, 3],
        ] {
            let back = srgb_from_scaled_lab(scaled_lab_from_srgb(rgb));
            let diff = rgb.iter().zip(back).map(|(a, b)| a.abs_diff(b)).max();
            assert!(diff <= Some(1), "{rgb:?} came back as {back:?}");
        }
    }
}
