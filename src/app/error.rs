//! Errors of the desktop app layer.

/// Why the window could not be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// eframe could not create the window or its renderer (no display, no usable GPU/driver).
    #[error(
        "could not open the window: {0}. Is a display available (DISPLAY/WAYLAND_DISPLAY)? \
         The headless subcommands (`m2c --help`) work without one"
    )]
    Window(String),
}
