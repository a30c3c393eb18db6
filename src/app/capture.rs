//! Saving what the window shows to a PNG and closing, for tests and bug reports:
//! `M2C_SCREENSHOT=out.png m2c` captures the first frame after start-up has settled.

use std::path::PathBuf;
use std::sync::Arc;

/// Env variable naming the PNG to write.
pub const SCREENSHOT_ENV: &str = "M2C_SCREENSHOT";
/// Give up waiting for start-up after this many frames and capture anyway.
const MAX_WAIT_FRAMES: u32 = 600;
/// Frames to draw after start-up settles, so layout and fonts are final.
const SETTLE_FRAMES: u32 = 5;

#[derive(Debug, Default)]
pub struct Capture {
    target: Option<PathBuf>,
    frames: u32,
    settled_frames: u32,
    requested: bool,
}

impl Capture {
    pub fn from_env() -> Self {
        Self {
            target: std::env::var_os(SCREENSHOT_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ..Self::default()
        }
    }

    /// Call at the end of every frame; `ready` says start-up work has finished.
    pub fn after_frame(&mut self, ctx: &egui::Context, ready: bool) {
        let Some(target) = self.target.clone() else {
            return;
        };
        if self.requested {
            return;
        }
        self.frames += 1;
        if ready {
            self.settled_frames += 1;
        }
        if self.settled_frames < SETTLE_FRAMES && self.frames < MAX_WAIT_FRAMES {
            ctx.request_repaint();
            return;
        }
        self.requested = true;
        let close_ctx = ctx.clone();
        ctx.request_screenshot(move |image: Arc<egui::ColorImage>| {
            if let Err(e) = save_png(&image, &target) {
                tracing::error!("could not save the screenshot: {e}");
            } else {
                tracing::info!("screenshot saved to {:?}", target);
            }
            close_ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            close_ctx.request_repaint();
        });
        ctx.request_repaint();
    }
}

fn save_png(image: &egui::ColorImage, path: &std::path::Path) -> Result<(), image::ImageError> {
    let [w, h] = image.size;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    let (Ok(w), Ok(h)) = (u32::try_from(w), u32::try_from(h)) else {
        return Err(image::ImageError::Limits(
            image::error::LimitError::from_kind(image::error::LimitErrorKind::DimensionError),
        ));
    };
    image::save_buffer(path, &bytes, w, h, image::ExtendedColorType::Rgba8)
}
