//! Short messages in the bottom-right corner: results of background work and errors that the
//! app recovered from. Information fades after a few seconds; errors stay until dismissed.

use egui::{Align2, RichText};

/// How serious a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone)]
struct Toast {
    level: Level,
    text: String,
    /// `ctx` time when first shown.
    shown_at: Option<f64>,
}

/// Messages waiting to be read, oldest first.
#[derive(Debug, Default)]
pub struct Toasts {
    toasts: Vec<Toast>,
}

/// At most this many messages are kept; the oldest go first.
const MAX_TOASTS: usize = 6;

impl Toasts {
    /// Queues a message and logs it (warnings and errors at their level, the rest at info).
    pub fn push(&mut self, level: Level, text: impl Into<String>) {
        let text = text.into();
        match level {
            Level::Info => tracing::info!("{text}"),
            Level::Warning => tracing::warn!("{text}"),
            Level::Error => tracing::error!("{text}"),
        }
        self.toasts.push(Toast {
            level,
            text,
            shown_at: None,
        });
        if self.toasts.len() > MAX_TOASTS {
            self.toasts.remove(0);
        }
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.push(Level::Info, text);
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.push(Level::Warning, text);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.push(Level::Error, text);
    }

    /// The texts on screen, oldest first.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.toasts.iter().map(|t| t.text.as_str())
    }

    /// Draws the messages and drops the expired or dismissed ones.
    pub fn toasts_ui(&mut self, ctx: &egui::Context) {
        if self.toasts.is_empty() {
            return;
        }
        let now = ctx.input(|i| i.time);
        self.toasts.retain(|t| match (t.level, t.shown_at) {
            (Level::Error, _) | (_, None) => true,
            (Level::Info, Some(at)) => now - at < 5.0,
            (Level::Warning, Some(at)) => now - at < 10.0,
        });
        let mut dismissed = None;
        egui::Area::new(egui::Id::unique("m2c toasts"))
            .anchor(Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -36.0))
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                for (i, toast) in self.toasts.iter_mut().enumerate() {
                    toast.shown_at.get_or_insert(now);
                    let colour = match toast.level {
                        Level::Info => ui.visuals().text_color(),
                        Level::Warning => ui.visuals().warn_fg_color,
                        Level::Error => ui.visuals().error_fg_color,
                    };
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        ui.set_max_width(360.0);
                        ui.horizontal(|ui| {
                            ui.label(RichText::new(toast.text.as_str()).color(colour));
                            if ui
                                .small_button("×")
                                .on_hover_text("Dismiss this message")
                                .clicked()
                            {
                                dismissed = Some(i);
                            }
                        });
                    });
                }
            });
        if let Some(i) = dismissed {
            self.toasts.remove(i);
        }
        if self.toasts.iter().any(|t| t.level != Level::Error) {
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
        }
    }
}
