//! The model settings the user chooses in the app's Settings dialog (checkpoint, device,
//! precision), persisted as JSON in the per-user configuration folder, and the check of a
//! weights path that the dialog shows while the user types.
//!
//! Precedence, applied by the caller at start-up: command line and environment (`--weights`,
//! `M2C_WEIGHTS`, `--device`, `M2C_DEVICE`) override the saved file, which overrides the
//! defaults ([`ModelSettings::overridden_by`]). A missing file means defaults; an unreadable
//! or corrupt one gives a typed [`SettingsError`] and defaults, never a panic
//! ([`ModelSettings::load_or_default`]). Saving writes a temporary file beside the target and
//! renames it over the old one, so a crash mid-write leaves the previous settings intact.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::device::DevicePreference;
use super::error::CheckpointError;
use super::paths::m2c_config_dir;
use super::weights::{self, CheckpointSummary};

/// Name of the settings file inside [`m2c_config_dir`].
pub const SETTINGS_FILE: &str = "settings.json";

/// Precision the SAM3 weights are held in on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats: the reference precision.
    #[default]
    F32,
    /// 16-bit floats: halves the weights' memory; needs `SHADER_F16` on a GPU.
    F16,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        })
    }
}

impl From<Precision> for crate::model::WeightPrecision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::F32 => Self::F32,
            Precision::F16 => Self::F16,
        }
    }
}

/// What the user chose for the model. Unknown JSON fields are ignored and missing ones take
/// their defaults, so files written by other versions still load.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelSettings {
    /// The checkpoint file (or its folder); `None`: look in the default places, or annotate
    /// manually when there is nothing there.
    pub weights: Option<PathBuf>,
    /// Device preference, stored as `"auto"`, `"gpu"` or `"cpu"`.
    #[serde(with = "device_pref")]
    pub device: DevicePreference,
    pub precision: Precision,
    /// CPU threads the engine computes with on the CPU device; `None`: every core but one
    /// ([`super::compute::app_default_threads`]), which leaves the window a core.
    pub cpu_threads: Option<usize>,
}

/// Errors of loading or saving the settings file; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// No home or configuration folder is known (no `HOME`, `XDG_CONFIG_HOME`, `APPDATA`).
    #[error("no per-user configuration folder is known (HOME is not set)")]
    NoConfigDir,
    #[error("could not read the settings file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not valid settings JSON.
    #[error("the settings file is corrupt ({source}); using defaults: {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not write the settings file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ModelSettings {
    /// `<config>/m2c/settings.json`.
    pub fn default_path() -> Result<PathBuf, SettingsError> {
        m2c_config_dir()
            .map(|d| d.join(SETTINGS_FILE))
            .ok_or(SettingsError::NoConfigDir)
    }

    /// Reads `path`; a missing file gives the defaults.
    pub fn load_from(path: &Path) -> Result<Self, SettingsError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes).map_err(|source| SettingsError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads `path` and falls back to the defaults on any error, returning the error too so
    /// the app can tell the user (a toast) once.
    pub fn load_or_default(path: &Path) -> (Self, Option<SettingsError>) {
        match Self::load_from(path) {
            Ok(s) => (s, None),
            Err(e) => (Self::default(), Some(e)),
        }
    }

    /// [`Self::load_or_default`] on [`Self::default_path`].
    pub fn load() -> (Self, Option<SettingsError>) {
        match Self::default_path() {
            Ok(path) => Self::load_or_default(&path),
            Err(e) => (Self::default(), Some(e)),
        }
    }

    /// Writes the settings to `path` atomically: a temporary file in the same folder, flushed
    /// to disk, then renamed over `path`. Creates the folder when needed.
    pub fn save_to(&self, path: &Path) -> Result<(), SettingsError> {
        let write_err = |source| SettingsError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write_err)?;
        let file_name = path
            .file_name()
            .map_or_else(|| SETTINGS_FILE.into(), |n| n.to_string_lossy());
        let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            // Best effort: the temporary file is ours and useless now.
            let _ = std::fs::remove_file(&tmp);
            return Err(write_err(e));
        }
        Ok(())
    }

    /// [`Self::save_to`] on [`Self::default_path`].
    pub fn save(&self) -> Result<(), SettingsError> {
        self.save_to(&Self::default_path()?)
    }

    /// These settings with the command line / environment applied on top: a given weights
    /// path or device replaces the saved one.
    pub fn overridden_by(
        mut self,
        weights: Option<PathBuf>,
        device: Option<DevicePreference>,
    ) -> Self {
        if let Some(w) = weights {
            self.weights = Some(w);
        }
        if let Some(d) = device {
            self.device = d;
        }
        self
    }
}

/// Serde for [`DevicePreference`] through its `Display` / `parse` text form.
mod device_pref {
    use serde::{Deserialize as _, Deserializer, Serializer};

    use super::DevicePreference;

    pub fn serialize<S: Serializer>(d: &DevicePreference, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DevicePreference, D::Error> {
        let text = String::deserialize(d)?;
        DevicePreference::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The verdict on a weights path, for the Settings dialog.
#[derive(Debug)]
pub enum WeightsCheck {
    /// No path: the default places are searched; without a checkpoint the app is a manual
    /// annotator.
    Empty,
    /// A SAM3 checkpoint (`detector_model.*` tensors present, nothing truncated) whose tensors
    /// agree with the config it will be loaded with.
    Sam3(CheckpointSummary),
    /// SAM3's module names without the `detector_model.` prefix (a bare `Sam3Model` export,
    /// as the test fixtures), agreeing with the config beside it: the loader takes these.
    BareSam3 {
        path: PathBuf,
        tensors: usize,
        config: String,
    },
    /// Missing, unreadable, truncated, not safetensors, another model's weights, or tensors
    /// of another size than the config says.
    Invalid(CheckpointError),
}

impl WeightsCheck {
    /// Whether the dialog may apply this path.
    pub fn is_acceptable(&self) -> bool {
        !matches!(self, Self::Invalid(_))
    }

    /// One or two sentences for the user.
    pub fn message(&self) -> String {
        match self {
            Self::Empty => "No weights file: the default places are searched; without one \
                            the app is a manual annotator."
                .to_owned(),
            Self::Sam3(s) => format!(
                "SAM3 checkpoint: {} tensors ({} detector, {} tracker), {:.2} GB; matches {}.",
                s.tensors,
                s.detector_tensors,
                s.tracker_tensors,
                s.file_bytes as f64 / 1e9,
                s.config.as_deref().unwrap_or("its config")
            ),
            Self::BareSam3 {
                tensors, config, ..
            } => format!(
                "SAM3 checkpoint (a bare Sam3Model export, {tensors} tensors) matching {config}: \
                 usable."
            ),
            Self::Invalid(CheckpointError::ReadCheckpoint { path, source })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                format!("No file at {}.", path.display())
            }
            Self::Invalid(CheckpointError::ReadCheckpoint { path, source }) => {
                format!("Could not read {}: {source}.", path.display())
            }
            Self::Invalid(e) => format!("{e}."),
        }
    }
}

/// Checks a weights path from its header alone (milliseconds; no tensor is read). A folder
/// means its `model.safetensors`, as on the command line. Never panics on any input.
pub fn check_weights(path: Option<&Path>) -> WeightsCheck {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return WeightsCheck::Empty;
    };
    let search = weights::locate(Some(path));
    let file = search
        .looked
        .into_iter()
        .next()
        .unwrap_or_else(|| path.to_path_buf());
    match weights::check_checkpoint(&file, None) {
        Ok(summary) if summary.bare => WeightsCheck::BareSam3 {
            path: file,
            tensors: summary.tensors,
            config: summary.config.unwrap_or_default(),
        },
        Ok(summary) => WeightsCheck::Sam3(summary),
        Err(e) => WeightsCheck::Invalid(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ModelSettings {
        ModelSettings {
            weights: Some(PathBuf::from("/data/sam3/model.safetensors")),
            device: DevicePreference::Gpu,
            precision: Precision::F16,
            cpu_threads: Some(3),
        }
    }

    #[test]
    fn settings_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(SETTINGS_FILE);
        sample().save_to(&path).unwrap();
        assert_eq!(ModelSettings::load_from(&path).unwrap(), sample());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"device\": \"gpu\""), "{text}");
        assert!(text.contains("\"precision\": \"f16\""), "{text}");
    }

    #[test]
    fn a_missing_file_gives_defaults_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let (s, err) = ModelSettings::load_or_default(&dir.path().join(SETTINGS_FILE));
        assert_eq!(s, ModelSettings::default());
        assert!(err.is_none());
    }

    #[test]
    fn a_corrupt_file_gives_a_typed_error_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        for junk in [
            &b"{\"weights\": \"/x\", \"device\": "[..],
            b"\x00\xff\xfe not json",
            b"{\"device\": \"cuda\"}",
            b"[1, 2, 3]",
        ] {
            std::fs::write(&path, junk).unwrap();
            assert!(matches!(
                ModelSettings::load_from(&path),
                Err(SettingsError::Parse { .. })
            ));
            let (s, err) = ModelSettings::load_or_default(&path);
            assert_eq!(s, ModelSettings::default());
            let err = err.unwrap();
            assert!(err.to_string().contains("corrupt"), "{err}");
        }
    }

    #[test]
    fn an_unreadable_path_gives_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should be.
        let path = dir.path().join(SETTINGS_FILE);
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(
            ModelSettings::load_from(&path),
            Err(SettingsError::Read { .. })
        ));
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        std::fs::write(&path, br#"{"precision": "f16", "future": 1}"#).unwrap();
        let s = ModelSettings::load_from(&path).unwrap();
        assert_eq!(s.precision, Precision::F16);
        assert_eq!(s.device, DevicePreference::Auto);
        assert_eq!(s.weights, None);
    }

    #[test]
    fn saving_replaces_the_file_atomically_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        std::fs::write(&path, b"{ corrupt").unwrap();
        // A stale temporary from a crashed writer changes nothing.
        std::fs::write(dir.path().join(".settings.json.1.tmp"), b"junk").unwrap();
        sample().save_to(&path).unwrap();
        assert_eq!(ModelSettings::load_from(&path).unwrap(), sample());
        let ours = format!(".{SETTINGS_FILE}.{}.tmp", std::process::id());
        assert!(!dir.path().join(ours).exists());
    }

    #[test]
    fn saving_into_an_impossible_folder_is_a_write_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = sample().save_to(&blocker.join(SETTINGS_FILE)).unwrap_err();
        assert!(matches!(err, SettingsError::Write { .. }), "{err}");
    }

    #[test]
    fn command_line_overrides_the_saved_settings() {
        let s = sample().overridden_by(None, None);
        assert_eq!(s, sample());
        let s = sample().overridden_by(
            Some(PathBuf::from("/cli/model.safetensors")),
            Some(DevicePreference::Cpu),
        );
        assert_eq!(s.weights, Some(PathBuf::from("/cli/model.safetensors")));
        assert_eq!(s.device, DevicePreference::Cpu);
        assert_eq!(s.precision, Precision::F16);
    }

    fn safetensors(dir: &Path, name: &str, tensors: &[&str], truncate: bool) -> PathBuf {
        let mut header = serde_json::Map::new();
        for (i, n) in tensors.iter().enumerate() {
            header.insert(
                (*n).to_owned(),
                serde_json::json!({"dtype": "F32", "shape": [1], "data_offsets": [i * 4, i * 4 + 4]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend(std::iter::repeat_n(
            0u8,
            tensors.len() * 4 - usize::from(truncate),
        ));
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn weights_checks_tell_sam3_bare_foreign_truncated_and_missing_apart() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(matches!(check_weights(None), WeightsCheck::Empty));
        assert!(matches!(
            check_weights(Some(Path::new(""))),
            WeightsCheck::Empty
        ));
        let prefixed = tempfile::tempdir().unwrap();
        let good = weights::tiny_checkpoint_folder(prefixed.path(), true, true);
        assert!(matches!(check_weights(Some(&good)), WeightsCheck::Sam3(_)));
        // A folder means its model.safetensors.
        let check = check_weights(Some(prefixed.path()));
        assert!(
            matches!(check, WeightsCheck::Sam3(_)),
            "{}",
            check.message()
        );
        let bare_dir = tempfile::tempdir().unwrap();
        let bare = weights::tiny_checkpoint_folder(bare_dir.path(), false, true);
        let check = check_weights(Some(&bare));
        assert!(matches!(check, WeightsCheck::BareSam3 { tensors: 394, .. }));
        assert!(check.is_acceptable());
        assert!(check.message().contains("usable"), "{}", check.message());
        // SAM3's names, but not the full-size model and no config beside: refused, with why.
        let fake = safetensors(
            d,
            "fake.safetensors",
            &["vision_encoder.w", "detr_decoder.w", "text_encoder.w"],
            false,
        );
        let check = check_weights(Some(&fake));
        assert!(!check.is_acceptable());
        assert!(
            check.message().contains("does not match"),
            "{}",
            check.message()
        );
        let bert = safetensors(d, "bert.safetensors", &["encoder.layer.0.w"], false);
        let check = check_weights(Some(&bert));
        assert!(!check.is_acceptable());
        assert!(
            check.message().contains("not a SAM3 checkpoint"),
            "{}",
            check.message()
        );
        let cut = safetensors(d, "cut.safetensors", &["detector_model.a"], true);
        let check = check_weights(Some(&cut));
        assert!(!check.is_acceptable());
        assert!(check.message().contains("truncated"), "{}", check.message());
        let check = check_weights(Some(&d.join("nope.safetensors")));
        assert!(!check.is_acceptable());
        assert!(
            check.message().starts_with("No file at"),
            "{}",
            check.message()
        );
        std::fs::write(d.join("tiny"), b"abc").unwrap();
        assert!(!check_weights(Some(&d.join("tiny"))).is_acceptable());
    }
}
