//! Per-user folders of the app, in one place: where the checkpoint is looked for and where
//! projects of read-only studies go.

use std::path::PathBuf;

/// The user's home folder (`HOME`, or `USERPROFILE` on Windows).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The platform's per-user data folder: `$XDG_DATA_HOME` or `~/.local/share` on Linux,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
pub fn user_data_dir() -> Option<PathBuf> {
    if cfg!(target_os = "windows") {
        return std::env::var_os("APPDATA").map(PathBuf::from);
    }
    if cfg!(target_os = "macos") {
        return home_dir().map(|h| h.join("Library").join("Application Support"));
    }
    std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".local").join("share")))
}

/// M2C Annotator's own data folder (`<user data>/m2c`).
pub fn m2c_data_dir() -> Option<PathBuf> {
    user_data_dir().map(|d| d.join("m2c"))
}

/// The platform's per-user configuration folder: `$XDG_CONFIG_HOME` or `~/.config` on Linux,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
pub fn user_config_dir() -> Option<PathBuf> {
    if cfg!(target_os = "windows") || cfg!(target_os = "macos") {
        return user_data_dir();
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".config")))
}

/// M2C Annotator's own configuration folder (`<user config>/m2c`): the settings file.
pub fn m2c_config_dir() -> Option<PathBuf> {
    user_config_dir().map(|d| d.join("m2c"))
}
