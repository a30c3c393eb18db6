//! The heatmap's colour scale on the CPU: uncertainty of a probability, the fade-out, and the
//! viridis polynomial, the twins of the functions in `shaders/heatmap.wgsl` (same constants,
//! same f32 arithmetic).

use super::{U_OPAQUE, U_TRANSPARENT};

/// Viridis as a degree-6 polynomial per channel, `c0 + t (c1 + t (c2 + …))`, sRGB-encoded.
/// Matt Zucker's least-squares fit (<https://www.shadertoy.com/view/WlfXRN>) of matplotlib's
/// viridis table (Stéfan van der Walt and Nathaniel Smith, CC0). The shader holds the same
/// numbers (`VIRIDIS_C0` … `VIRIDIS_C6`); a test compares them.
#[allow(
    clippy::excessive_precision,
    reason = "the same decimal text as the shader, so both round it alike"
)]
pub const VIRIDIS: [[f32; 3]; 7] = [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

/// Uncertainty of a foreground probability: binary entropy in bits, 0 at p = 0 or 1, 1 at
/// p = 0.5. The CPU twin of the shader's `uncertainty`.
pub fn uncertainty(p: f32) -> f32 {
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    if p <= 0.0 || p >= 1.0 {
        return 0.0;
    }
    (-(p * p.log2() + (1.0 - p) * (1.0 - p).log2())).clamp(0.0, 1.0)
}

/// Opacity factor the shader applies at uncertainty `u` (before the overall opacity).
pub fn alpha_at(u: f32) -> f32 {
    ((u - U_TRANSPARENT) / (U_OPAQUE - U_TRANSPARENT)).clamp(0.0, 1.0)
}

/// Viridis at `t` in [0, 1] as 8-bit sRGB: the CPU twin of the shader's colormap (same
/// coefficients, same f32 arithmetic), used by the legend.
pub fn colormap(t: f32) -> [u8; 3] {
    let [r, g, b] = colormap_f32(t);
    let to_u8 = |c: f32| (c * 255.0).round() as u8;
    [to_u8(r), to_u8(g), to_u8(b)]
}

/// Viridis at `t` in [0, 1] as sRGB-encoded floats in [0, 1].
pub fn colormap_f32(t: f32) -> [f32; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let mut out = [0.0f32; 3];
    for (channel, value) in out.iter_mut().enumerate() {
        let mut acc = VIRIDIS[6][channel];
        for coefficients in VIRIDIS[..6].iter().rev() {
            acc = coefficients[channel] + t * acc;
        }
        *value = acc.clamp(0.0, 1.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::SHADER_SOURCE;
    use super::*;

    /// The `VIRIDIS_Cn` constants of the WGSL source, as written there.
    fn shader_coefficients() -> Vec<[f32; 3]> {
        let mut out = Vec::new();
        for n in 0..7 {
            let prefix = format!("const VIRIDIS_C{n} = vec3<f32>(");
            let line = SHADER_SOURCE
                .lines()
                .find(|l| l.trim_start().starts_with(&prefix))
                .unwrap_or_else(|| panic!("shader lacks {prefix}"));
            let inner = line
                .trim()
                .trim_start_matches(&prefix)
                .trim_end_matches(");");
            let values: Vec<f32> = inner
                .split(',')
                .map(|v| v.trim().parse().expect("a number"))
                .collect();
            out.push([values[0], values[1], values[2]]);
        }
        out
    }

    #[test]
    fn rust_and_shader_colormaps_use_the_same_coefficients() {
        let shader = shader_coefficients();
        for (n, (wgsl, rust)) in shader.iter().zip(VIRIDIS.iter()).enumerate() {
            for c in 0..3 {
                // Both are the nearest f32 of the same decimal text.
                assert_eq!(
                    wgsl[c], rust[c],
                    "VIRIDIS_C{n}[{c}]: shader {} vs Rust {}",
                    wgsl[c], rust[c]
                );
            }
        }
    }

    #[test]
    fn colormap_follows_matplotlib_viridis() {
        // matplotlib's viridis at 0, 0.25, 0.5, 0.75, 1 (#440154 #3b528b #21918c #5ec962
        // #fde725); the polynomial fit stays within 4/255 of its table.
        let reference: [(f32, [u8; 3]); 5] = [
            (0.0, [0x44, 0x01, 0x54]),
            (0.25, [0x3b, 0x52, 0x8b]),
            (0.5, [0x21, 0x91, 0x8c]),
            (0.75, [0x5e, 0xc9, 0x62]),
            (1.0, [0xfd, 0xe7, 0x25]),
        ];
        for (t, expected) in reference {
            let got = colormap(t);
            for c in 0..3 {
                let d = (i32::from(got[c]) - i32::from(expected[c])).abs();
                assert!(d <= 4, "viridis({t}) = {got:?}, matplotlib {expected:?}");
            }
        }
        // Lightness grows monotonically (perceptual order: more uncertain = brighter).
        let luma = |c: [u8; 3]| {
            0.2126 * f32::from(c[0]) + 0.7152 * f32::from(c[1]) + 0.0722 * f32::from(c[2])
        };
        let mut last = -1.0;
        for i in 0..=100 {
            let l = luma(colormap(i as f32 / 100.0));
            assert!(
                l > last - 0.5,
                "lightness drops at t = {}",
                i as f32 / 100.0
            );
            last = l;
        }
        assert_eq!(colormap(-1.0), colormap(0.0));
        assert_eq!(colormap(f32::NAN), colormap(0.0));
        assert_eq!(colormap(7.0), colormap(1.0));
    }

    #[test]
    fn uncertainty_is_normalised_binary_entropy() {
        assert_eq!(uncertainty(0.0), 0.0);
        assert_eq!(uncertainty(1.0), 0.0);
        assert_eq!(uncertainty(f32::NAN), 0.0);
        assert_eq!(uncertainty(-3.0), 0.0);
        assert!((uncertainty(0.5) - 1.0).abs() < 1e-6);
        assert!((uncertainty(0.11) - 0.4999).abs() < 1e-3);
        assert!((uncertainty(0.25) - uncertainty(0.75)).abs() < 1e-6);
        assert_eq!(alpha_at(0.0), 0.0);
        assert_eq!(alpha_at(U_TRANSPARENT), 0.0);
        assert_eq!(alpha_at(U_OPAQUE), 1.0);
        assert_eq!(alpha_at(1.0), 1.0);
    }
}
