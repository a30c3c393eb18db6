//! Browsing an opened study: its series (listed by `panels::study_panel_ui`), the current
//! slice with its window/level, slice and image navigation, and the value under the pointer. Discovery and decoding run on helper threads;
//! results come back as [`StudyEvent`]s, so the UI never waits on disk.

use std::path::PathBuf;
use std::sync::mpsc::Sender;

use crate::study::{self, Pixels, Series, Slice, WindowLevel, WindowPreset};

use super::overlay::LabelOverlay;
use super::viewer::{self, ViewState, ViewerResponse};

/// Results of background study work.
#[derive(Debug)]
pub enum StudyEvent {
    Discovered {
        /// Generation of the open request, to ignore results of superseded requests.
        request: u64,
        series: Vec<Series>,
        skipped: Vec<String>,
    },
    SliceLoaded {
        series: usize,
        index: usize,
        result: Result<Slice, String>,
    },
}

/// The slice on screen.
struct Shown {
    series: usize,
    index: usize,
    slice: Slice,
    window: WindowLevel,
    texture: egui::TextureHandle,
}

/// State of the study browser.
#[derive(Default)]
pub struct StudyView {
    request: u64,
    /// The request whose results `series` holds.
    discovered: Option<u64>,
    discovering: bool,
    series: Vec<Series>,
    skipped: Vec<String>,
    /// Selected series and slice.
    selected: Option<(usize, usize)>,
    loading: Option<(usize, usize)>,
    shown: Option<Shown>,
    error: Option<String>,
    view: ViewState,
    /// Value under the pointer, formatted.
    probe: Option<String>,
}

impl StudyView {
    /// Starts discovering `paths` (files or folders) in the background.
    pub fn open(&mut self, paths: Vec<PathBuf>, tx: &Sender<StudyEvent>, wake: egui::Context) {
        self.request += 1;
        self.discovering = true;
        let request = self.request;
        let tx = tx.clone();
        spawn("m2c-discover", move || {
            let found = study::discover_paths(&paths);
            let skipped = found.skipped.iter().map(ToString::to_string).collect();
            let _ = tx.send(StudyEvent::Discovered {
                request,
                series: found.series,
                skipped,
            });
            wake.request_repaint();
        });
    }

    pub fn is_discovering(&self) -> bool {
        self.discovering
    }

    /// Which open request `series` comes from (`None` before the first discovery ends); it
    /// changes whenever the set of series does.
    pub fn discovered(&self) -> Option<u64> {
        self.discovered
    }

    pub fn series(&self) -> &[Series] {
        &self.series
    }

    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Series and slice on screen, once decoded.
    pub fn shown(&self) -> Option<(usize, usize)> {
        self.shown.as_ref().map(|s| (s.series, s.index))
    }

    /// Window of the slice on screen.
    pub fn window(&self) -> Option<WindowLevel> {
        self.shown.as_ref().map(|s| s.window)
    }

    /// The selected series and slice (shown once decoded).
    pub fn selected(&self) -> Option<(usize, usize)> {
        self.selected
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Applies a background result.
    pub fn apply(&mut self, event: StudyEvent, ctx: &egui::Context, tx: &Sender<StudyEvent>) {
        match event {
            StudyEvent::Discovered {
                request,
                series,
                skipped,
            } => {
                if request != self.request {
                    return;
                }
                self.discovering = false;
                self.discovered = Some(request);
                self.series = series;
                self.skipped = skipped;
                self.shown = None;
                self.selected = None;
                if !self.series.is_empty() {
                    self.select(0, 0, ctx, tx);
                }
            }
            StudyEvent::SliceLoaded {
                series,
                index,
                result,
            } => {
                if self.loading == Some((series, index)) {
                    self.loading = None;
                }
                if self.selected != Some((series, index)) {
                    return; // the user moved on
                }
                match result {
                    Ok(slice) => self.show(series, index, slice, ctx),
                    Err(e) => self.error = Some(e),
                }
            }
        }
    }

    fn show(&mut self, series: usize, index: usize, slice: Slice, ctx: &egui::Context) {
        // Keep the window while scrolling through one series; a new series starts from its
        // default.
        let window = match &self.shown {
            Some(s) if s.series == series => s.window,
            _ => study::default_window(&slice),
        };
        let texture = ctx.load_texture(
            "slice",
            color_image(&slice, window),
            egui::TextureOptions::NEAREST,
        );
        self.view
            .set_image_size([slice.width as usize, slice.height as usize]);
        self.error = None;
        self.shown = Some(Shown {
            series,
            index,
            slice,
            window,
            texture,
        });
    }

    /// Selects a slice and decodes it in the background.
    pub fn select(
        &mut self,
        series: usize,
        index: usize,
        ctx: &egui::Context,
        tx: &Sender<StudyEvent>,
    ) {
        let Some(s) = self.series.get(series) else {
            return;
        };
        let index = index.min(s.len().saturating_sub(1));
        self.selected = Some((series, index));
        if self.shown() == Some((series, index)) || self.loading == Some((series, index)) {
            return;
        }
        self.loading = Some((series, index));
        let s = s.clone();
        let tx = tx.clone();
        let wake = ctx.clone();
        spawn("m2c-decode", move || {
            let result = s.load_slice(index).map_err(|e| e.to_string());
            let _ = tx.send(StudyEvent::SliceLoaded {
                series,
                index,
                result,
            });
            wake.request_repaint();
        });
    }

    /// Moves `delta` images through the whole study: slice by slice, then on to the next (or
    /// previous) series; stops at either end.
    pub fn step_image(&mut self, delta: i64, ctx: &egui::Context, tx: &Sender<StudyEvent>) {
        let Some((mut series, mut index)) = self.selected else {
            return;
        };
        for _ in 0..delta.unsigned_abs() {
            let len = self.series.get(series).map_or(0, Series::len);
            if delta > 0 {
                if index + 1 < len {
                    index += 1;
                } else if series + 1 < self.series.len() {
                    (series, index) = (series + 1, 0);
                }
            } else if index > 0 {
                index -= 1;
            } else if series > 0 {
                series -= 1;
                index = self
                    .series
                    .get(series)
                    .map_or(0, |s| s.len().saturating_sub(1));
            }
        }
        self.select(series, index, ctx, tx);
    }

    /// The `ui` point of continuous image coordinates on the last frame's canvas.
    pub fn ui_from_image(&self, image: [f32; 2]) -> egui::Pos2 {
        self.view.transform.ui_from_image(
            self.view.canvas.unwrap_or(egui::Rect::ZERO),
            egui::pos2(image[0], image[1]),
        )
    }

    /// Zoom of the view (screen points per image pixel).
    pub fn zoom(&self) -> f32 {
        self.view.transform.zoom
    }

    /// Moves `delta` slices within the current series.
    pub fn step_slice(&mut self, delta: i64, ctx: &egui::Context, tx: &Sender<StudyEvent>) {
        let Some((series, index)) = self.selected else {
            return;
        };
        let len = self.series.get(series).map_or(0, Series::len);
        let next = (index as i64 + delta).clamp(0, len.saturating_sub(1) as i64) as usize;
        self.select(series, next, ctx, tx);
    }

    /// Sets the window (from a preset, a drag or the file) and redraws the slice.
    pub fn set_window(&mut self, window: WindowLevel) {
        let Some(shown) = self.shown.as_mut() else {
            return;
        };
        shown.window = WindowLevel::new(window.center, window.width.max(1e-3));
        shown.texture.set(
            color_image(&shown.slice, shown.window),
            egui::TextureOptions::NEAREST,
        );
    }

    pub fn apply_preset(&mut self, preset: WindowPreset) {
        self.set_window(preset.window());
    }

    pub fn fit(&mut self) {
        self.view.fit_pending = true;
    }

    /// The left panel: series and skipped files.
    /// The image area with `overlay` over it, and window/level on right-drag. Returns the
    /// viewer's response (for the drawing tools) when an image is shown.
    pub fn image_ui(
        &mut self,
        ui: &mut egui::Ui,
        overlay: Option<&LabelOverlay>,
    ) -> Option<ViewerResponse> {
        let Some(shown) = self.shown.as_ref() else {
            ui.centered_and_justified(|ui| {
                if let Some(e) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                } else if self.loading.is_some() || self.discovering {
                    ui.spinner();
                } else {
                    ui.label("No images found in what was opened.");
                }
            });
            return None;
        };
        let texture = shown.texture.clone();
        let r = viewer::viewer_ui(ui, &mut self.view, &texture, overlay);
        self.probe = r
            .hovered_px
            .and_then(|[x, y]| probe_text(&shown.slice, x, y));
        if let Some(resp) = &r.response
            && resp.dragged_by(egui::PointerButton::Secondary)
        {
            let d = resp.drag_delta();
            let w = shown.window;
            // One point of drag changes the window by 0.5 % of its width (at least 0.5 units).
            let step = (w.width * 0.005).max(0.5);
            self.set_window(WindowLevel::new(
                w.center - f64::from(d.y) * step,
                w.width + f64::from(d.x) * step,
            ));
        }
        Some(r)
    }

    /// One line for the status bar: slice position, window and the value under the pointer.
    pub fn status_text(&self) -> Option<String> {
        let shown = self.shown.as_ref()?;
        let total = self.series.get(shown.series).map_or(0, Series::len);
        let mut text = format!(
            "slice {}/{}  W {:.0} L {:.0}",
            shown.index + 1,
            total,
            shown.window.width,
            shown.window.center
        );
        if let Some(p) = &self.probe {
            text += "  ";
            text += p;
        }
        Some(text)
    }
}

fn probe_text(slice: &Slice, x: usize, y: usize) -> Option<String> {
    let i = y.checked_mul(slice.width as usize)?.checked_add(x)?;
    match &slice.pixels {
        Pixels::Gray(v) => {
            let value = v.get(i)?;
            let unit = if slice.modality.as_deref() == Some("CT") {
                " HU"
            } else {
                ""
            };
            Some(format!("({x}, {y}) = {value:.0}{unit}"))
        }
        Pixels::Rgb8(v) => {
            let p = v.get(3 * i..3 * i + 3)?;
            Some(format!("({x}, {y}) = RGB {} {} {}", p[0], p[1], p[2]))
        }
    }
}

fn color_image(slice: &Slice, window: WindowLevel) -> egui::ColorImage {
    let rgb = study::rgb8_from_slice(slice, window);
    egui::ColorImage::from_rgb([rgb.width as usize, rgb.height as usize], &rgb.data)
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
    {
        tracing::error!("could not start a {name} thread: {e}");
    }
}
