//! Installing a SAM3 checkpoint the user downloaded: check it from its header, then either
//! record it in the saved settings where it lies ([`InstallMode::InPlace`]) or put it in the
//! app's data folder (`<user data>/m2c/sam3/`, the first place [`super::weights::locate`]
//! searches): a hard link when the file is on the same file system, else a copy with progress.
//! `m2c weights install` and Help → Get SAM3 weights… both call [`install`].
//!
//! Nothing is half-written: the files are staged in a private folder inside the destination,
//! checked there, and only then renamed into place; any failure removes the staging folder and
//! leaves a previous installation as it was.
//!
//! PyTorch checkpoints (`sam3.pt`) are refused with what to download instead: converting one
//! needs the original release's module names mapped onto the Hugging Face layout (hundreds of
//! renames, fused tensors split), which cannot be verified here without the real file, and
//! burn-store's PyTorch reader is not compiled into this build.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::error::CheckpointError;
use super::inference::{TRACKER_CONFIG_FILE, TRACKER_WEIGHTS_FILE};
use super::paths::m2c_data_dir;
use super::settings::{ModelSettings, SettingsError};
use super::weights::{CHECKPOINT_FILE, CheckpointSummary, check_checkpoint};

/// Folder inside the app's data folder that holds the installed checkpoint.
pub const INSTALL_FOLDER: &str = "sam3";
/// Where the checkpoint is downloaded from (gated: the licence must be accepted first).
pub const SAM3_DOWNLOAD_PAGE: &str = "https://huggingface.co/facebook/sam3";
/// Files beside the checkpoint that the engine reads from its folder, carried along on install.
pub const COMPANION_FILES: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    TRACKER_WEIGHTS_FILE,
    TRACKER_CONFIG_FILE,
];
/// Bytes copied between two progress reports (and the copy buffer size).
const COPY_CHUNK: usize = 8 * 1024 * 1024;

/// How the checked file is made available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallMode {
    /// Hard-link or copy it (with the files beside it) into the data folder.
    Copy,
    /// Leave it where it is and record its path in the saved settings.
    InPlace,
}

/// Where an installation goes: the checkpoint folder and the settings file to update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallTarget {
    /// `<user data>/m2c/sam3` for the user; a temporary folder in tests.
    pub folder: PathBuf,
    /// The settings file the app and the command line read (`None`: leave settings alone).
    pub settings_file: Option<PathBuf>,
}

impl InstallTarget {
    /// The user's: `<user data>/m2c/sam3/` and `<config>/m2c/settings.json`.
    pub fn for_user() -> Result<Self, InstallError> {
        let folder = m2c_data_dir()
            .map(|d| d.join(INSTALL_FOLDER))
            .ok_or(InstallError::NoDataFolder)?;
        Ok(Self {
            folder,
            settings_file: ModelSettings::default_path().ok(),
        })
    }

    /// The checkpoint file a copy installs.
    pub fn checkpoint(&self) -> PathBuf {
        self.folder.join(CHECKPOINT_FILE)
    }
}

/// Whether the interactive head (box prompts, the W tool) comes with the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracker {
    /// `tracker_model.*` tensors inside the checkpoint (the hub's file).
    InCheckpoint { tensors: usize },
    /// A `sam3_tracker_model.safetensors` beside it.
    Beside(PathBuf),
    /// Neither: text prompts and concepts work, box prompts do not.
    Absent,
}

/// What the check of a candidate checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCheck {
    /// The header summary (tensors, dtypes, the config the tensors were checked against).
    pub summary: CheckpointSummary,
    pub tracker: Tracker,
    /// The files beside it that go along with it ([`COMPANION_FILES`] that exist).
    pub companions: Vec<PathBuf>,
}

impl SourceCheck {
    /// The tensors' storage types, e.g. `F32` or `BF16 (1200), F32 (3)`.
    pub fn dtype_text(&self) -> String {
        match self.summary.dtypes.len() {
            0 => "no tensors".to_owned(),
            1 => self.summary.dtypes.keys().cloned().collect(),
            _ => self
                .summary
                .dtypes
                .iter()
                .map(|(k, v)| format!("{k} ({v})"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// What was found, one fact a line, for the command line and the dialog.
    pub fn lines(&self) -> Vec<String> {
        let s = &self.summary;
        let mut lines = vec![format!(
            "SAM3 checkpoint: {} tensors ({} detector, {} tracker), {}, {}",
            s.tensors,
            s.detector_tensors,
            s.tracker_tensors,
            self.dtype_text(),
            human_bytes(s.file_bytes)
        )];
        if s.bare {
            lines.push("names: a bare Sam3Model export (no detector_model. prefix): usable".into());
        }
        lines.push(match &self.tracker {
            Tracker::InCheckpoint { tensors } => {
                format!("tracker: present ({tensors} tensors in the checkpoint): box prompts work")
            }
            Tracker::Beside(path) => format!(
                "tracker: present ({} beside it): box prompts work",
                file_name(path)
            ),
            Tracker::Absent => {
                "tracker: absent: text prompts and concepts work, box prompts (W) do not".to_owned()
            }
        });
        if let Some(config) = &s.config {
            lines.push(format!("config: {config} (the tensors match it)"));
        }
        if !self.companions.is_empty() {
            let names: Vec<String> = self.companions.iter().map(|p| file_name(p)).collect();
            lines.push(format!("with it: {}", names.join(", ")));
        }
        lines
    }
}

/// How the checkpoint ended up where the app finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A hard link in the data folder (same file system: no copy, no extra space).
    HardLinked,
    /// A full copy in the data folder.
    Copied,
    /// The file already was the installed checkpoint.
    AlreadyInstalled,
    /// Used where it lies; its path is in the saved settings.
    InPlace,
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub check: SourceCheck,
    /// The checkpoint the app and the command line now load.
    pub weights: PathBuf,
    pub placement: Placement,
    /// Companion files placed beside the installed checkpoint.
    pub companions: Vec<PathBuf>,
    /// Companion files of an earlier installation removed because the new one has none.
    pub removed: Vec<PathBuf>,
    /// The settings file written, with the weights path it now holds.
    pub settings: Option<(PathBuf, Option<PathBuf>)>,
}

impl Installed {
    /// What happened, in one or two sentences.
    pub fn message(&self) -> String {
        let mut text = match self.placement {
            Placement::HardLinked => format!(
                "Installed {} (a hard link to the file you chose: no extra disk space).",
                self.weights.display()
            ),
            Placement::Copied => format!("Copied to {}.", self.weights.display()),
            Placement::AlreadyInstalled => {
                format!(
                    "{} is already the installed checkpoint.",
                    self.weights.display()
                )
            }
            Placement::InPlace => format!(
                "Using {} where it is (recorded in the settings).",
                self.weights.display()
            ),
        };
        if let Some((file, None)) = &self.settings {
            text += &format!(
                " The saved weights path in {} was cleared so that this one is used.",
                file.display()
            );
        }
        text
    }
}

/// Errors of checking and installing a checkpoint; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Missing, unreadable, truncated, not safetensors, another model's, or not matching its
    /// config.
    #[error(transparent)]
    Check(#[from] CheckpointError),
    /// The official PyTorch release (`sam3.pt`) or another pickle/zip checkpoint.
    #[error(
        "{} is a PyTorch checkpoint; M2C reads safetensors and does not convert PyTorch files \
         (the module names differ from the Hugging Face layout and cannot be checked here). \
         Download model.safetensors instead, from the same page: {SAM3_DOWNLOAD_PAGE} \
         (Files and versions; accept the licence first), with config.json and tokenizer.json",
        path.display()
    )]
    PyTorch { path: PathBuf },
    #[error("no per-user data folder is known (HOME is not set); install with --in-place instead")]
    NoDataFolder,
    #[error("could not create {}", path.display())]
    CreateFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not copy {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The copy does not read back as the file that was checked.
    #[error("the copy at {} does not match the original: {reason}", path.display())]
    Verify { path: PathBuf, reason: String },
    #[error("could not record the weights in the settings")]
    Settings(#[from] SettingsError),
    /// The progress callback asked to stop; nothing was changed.
    #[error("installation cancelled; nothing was changed")]
    Cancelled,
}

/// The checkpoint file `path` means: a folder means its `model.safetensors`.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Checks `path` (a file, or a folder holding `model.safetensors`) from its header: a SAM3
/// checkpoint whose tensors match the config beside it (else the full-size preset). Reads no
/// tensor, so it takes milliseconds even for 3.4 GB. PyTorch files get
/// [`InstallError::PyTorch`].
pub fn check_source(path: &Path) -> Result<SourceCheck, InstallError> {
    let file = checkpoint_path(path);
    let is_pytorch_name = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "pt" | "pth" | "ckpt"));
    if is_pytorch_name || looks_like_pytorch(&file) {
        return Err(InstallError::PyTorch { path: file });
    }
    let summary = check_checkpoint(&file, None)?;
    let folder = file.parent().unwrap_or(Path::new("."));
    let companions: Vec<PathBuf> = COMPANION_FILES
        .iter()
        .map(|name| folder.join(name))
        .filter(|p| p.is_file() && *p != file)
        .collect();
    let beside = folder.join(TRACKER_WEIGHTS_FILE);
    let tracker = if summary.tracker_tensors > 0 {
        Tracker::InCheckpoint {
            tensors: summary.tracker_tensors,
        }
    } else if beside.is_file() {
        Tracker::Beside(beside)
    } else {
        Tracker::Absent
    };
    Ok(SourceCheck {
        summary,
        tracker,
        companions,
    })
}

/// A zip archive (`torch.save`'s format) or a bare pickle, from the first bytes.
fn looks_like_pytorch(path: &Path) -> bool {
    let mut head = [0u8; 4];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    head == *b"PK\x03\x04" || (head[0] == 0x80 && (2..=5).contains(&head[1]))
}

/// Checks `source` and makes it the checkpoint the app and the command line load, as `mode`
/// says (see the module documentation). `progress(done, total)` is called with bytes while a
/// copy runs; returning `false` cancels it and leaves everything as it was.
pub fn install(
    source: &Path,
    mode: InstallMode,
    target: &InstallTarget,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Installed, InstallError> {
    let check = check_source(source)?;
    let file = check.summary.path.clone();
    match mode {
        InstallMode::InPlace => {
            let weights = std::path::absolute(&file).unwrap_or(file);
            let settings = record_in_settings(target, Some(weights.clone()))?;
            Ok(Installed {
                check,
                weights,
                placement: Placement::InPlace,
                companions: Vec::new(),
                removed: Vec::new(),
                settings,
            })
        }
        InstallMode::Copy => {
            let dest = target.checkpoint();
            let same = match (std::fs::canonicalize(&file), std::fs::canonicalize(&dest)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            let (placement, companions, removed) = if same {
                (Placement::AlreadyInstalled, Vec::new(), Vec::new())
            } else {
                place_copy(&check, &target.folder, progress)?
            };
            let settings = clear_other_weights(target, &dest)?;
            Ok(Installed {
                check,
                weights: dest,
                placement,
                companions,
                removed,
                settings,
            })
        }
    }
}

/// Stages the checkpoint and its companions in `folder/.install-<pid>/`, checks the staged
/// checkpoint, then renames everything into `folder` and removes companions of an earlier
/// installation that the new one lacks.
fn place_copy(
    check: &SourceCheck,
    folder: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<(Placement, Vec<PathBuf>, Vec<PathBuf>), InstallError> {
    std::fs::create_dir_all(folder).map_err(|source| InstallError::CreateFolder {
        path: folder.to_path_buf(),
        source,
    })?;
    let staging = folder.join(format!(".install-{}", std::process::id()));
    // A staging folder of ours left by a crash of this very process id: stale, remove it.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(|source| InstallError::CreateFolder {
        path: staging.clone(),
        source,
    })?;
    let staged = stage(check, &staging, progress);
    let result = staged.and_then(|placement| commit(check, &staging, folder, placement));
    // Best effort: after a commit the folder is empty; after a failure it holds partial files.
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Links or copies every file into `staging` and checks the staged checkpoint.
fn stage(
    check: &SourceCheck,
    staging: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Placement, InstallError> {
    let source = &check.summary.path;
    let staged = staging.join(CHECKPOINT_FILE);
    let total = check.summary.file_bytes;
    let placement = if std::fs::hard_link(source, &staged).is_ok() {
        if !progress(total, total) {
            return Err(InstallError::Cancelled);
        }
        Placement::HardLinked
    } else {
        copy_with_progress(source, &staged, total, progress)?;
        Placement::Copied
    };
    for companion in &check.companions {
        let to = staging.join(companion.file_name().unwrap_or_default());
        std::fs::copy(companion, &to).map_err(|source| InstallError::Copy {
            from: companion.clone(),
            to,
            source,
        })?;
    }
    // The staged copy must read as the file that was checked (with the same config beside it).
    let verify = |reason: String| InstallError::Verify {
        path: staged.clone(),
        reason,
    };
    let again = check_checkpoint(&staged, None).map_err(|e| verify(e.to_string()))?;
    if again.file_bytes != check.summary.file_bytes || again.tensors != check.summary.tensors {
        return Err(verify(format!(
            "{} bytes and {} tensors, the original has {} and {}",
            again.file_bytes, again.tensors, check.summary.file_bytes, check.summary.tensors
        )));
    }
    Ok(placement)
}

/// Moves the staged files into `folder`: companions first, the checkpoint last, then removes
/// companions the new installation does not have.
fn commit(
    check: &SourceCheck,
    staging: &Path,
    folder: &Path,
    placement: Placement,
) -> Result<(Placement, Vec<PathBuf>, Vec<PathBuf>), InstallError> {
    let mut placed = Vec::new();
    let names = check
        .companions
        .iter()
        .filter_map(|p| p.file_name())
        .map(PathBuf::from)
        .chain(std::iter::once(PathBuf::from(CHECKPOINT_FILE)));
    for name in names {
        let (from, to) = (staging.join(&name), folder.join(&name));
        std::fs::rename(&from, &to).map_err(|source| InstallError::Copy {
            from,
            to: to.clone(),
            source,
        })?;
        if name.as_os_str() != CHECKPOINT_FILE {
            placed.push(to);
        }
    }
    let mut removed = Vec::new();
    for name in COMPANION_FILES {
        let path = folder.join(name);
        if path.is_file() && !placed.contains(&path) && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok((placement, placed, removed))
}

/// Copies `from` to `to` (a new file) in chunks, reporting bytes; syncs it to disk.
fn copy_with_progress(
    from: &Path,
    to: &Path,
    total: u64,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<(), InstallError> {
    let copy_err = |source| InstallError::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    let mut input = File::open(from).map_err(copy_err)?;
    let mut output = File::create_new(to).map_err(copy_err)?;
    let mut buffer = vec![0u8; COPY_CHUNK];
    let mut done = 0u64;
    if !progress(0, total) {
        return Err(InstallError::Cancelled);
    }
    loop {
        let n = input.read(&mut buffer).map_err(copy_err)?;
        if n == 0 {
            break;
        }
        output.write_all(&buffer[..n]).map_err(copy_err)?;
        done += n as u64;
        if !progress(done.min(total), total) {
            return Err(InstallError::Cancelled);
        }
    }
    output.sync_all().map_err(copy_err)?;
    Ok(())
}

/// In-place: the settings' weights become `weights`.
fn record_in_settings(
    target: &InstallTarget,
    weights: Option<PathBuf>,
) -> Result<Option<(PathBuf, Option<PathBuf>)>, InstallError> {
    let Some(file) = &target.settings_file else {
        return Ok(None);
    };
    // A corrupt file is replaced: the app would use the defaults for it anyway.
    let (mut settings, _) = ModelSettings::load_or_default(file);
    settings.weights.clone_from(&weights);
    settings.save_to(file)?;
    Ok(Some((file.clone(), weights)))
}

/// Copy: a saved weights path pointing elsewhere would hide the installed file; clear it.
fn clear_other_weights(
    target: &InstallTarget,
    installed: &Path,
) -> Result<Option<(PathBuf, Option<PathBuf>)>, InstallError> {
    let Some(file) = &target.settings_file else {
        return Ok(None);
    };
    let (settings, _) = ModelSettings::load_or_default(file);
    let points_elsewhere = settings
        .weights
        .as_deref()
        .is_some_and(|w| checkpoint_path(w) != installed);
    if points_elsewhere {
        record_in_settings(target, None)
    } else {
        Ok(None)
    }
}

/// `3.44 GB`, `5.9 MB`, `812 kB`.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::weights::tiny_checkpoint_folder;

    fn target(dir: &Path) -> InstallTarget {
        InstallTarget {
            folder: dir.join("data").join(INSTALL_FOLDER),
            settings_file: Some(dir.join("config").join("settings.json")),
        }
    }

    #[test]
    fn a_copy_lands_with_its_config_and_replaces_stale_companions() {
        let src = tempfile::tempdir().unwrap();
        let weights = tiny_checkpoint_folder(src.path(), true, true);
        let home = tempfile::tempdir().unwrap();
        let target = target(home.path());
        // An earlier installation left a tokenizer the new one does not have.
        std::fs::create_dir_all(&target.folder).unwrap();
        std::fs::write(target.folder.join("tokenizer.json"), b"{}").unwrap();
        let mut calls = 0;
        let done = install(&weights, InstallMode::Copy, &target, &mut |d, t| {
            assert!(d <= t);
            calls += 1;
            true
        })
        .unwrap();
        assert!(calls >= 1);
        assert_eq!(done.weights, target.checkpoint());
        assert!(matches!(
            done.placement,
            Placement::HardLinked | Placement::Copied
        ));
        assert_eq!(
            std::fs::read(&weights).unwrap(),
            std::fs::read(target.checkpoint()).unwrap()
        );
        assert!(target.folder.join("config.json").is_file());
        assert_eq!(done.removed, vec![target.folder.join("tokenizer.json")]);
        // Only the installed files remain: no staging folder.
        let mut names: Vec<String> = std::fs::read_dir(&target.folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["config.json", "model.safetensors"]);
        // The installed checkpoint checks like the original; again is a no-op.
        check_source(&target.folder).unwrap();
        let again = install(&target.folder, InstallMode::Copy, &target, &mut |_, _| true).unwrap();
        assert_eq!(again.placement, Placement::AlreadyInstalled);
    }

    #[test]
    fn in_place_records_the_path_and_a_copy_clears_it_again() {
        let src = tempfile::tempdir().unwrap();
        let weights = tiny_checkpoint_folder(src.path(), false, true);
        let home = tempfile::tempdir().unwrap();
        let target = target(home.path());
        let settings_file = target.settings_file.clone().unwrap();
        let done = install(src.path(), InstallMode::InPlace, &target, &mut |_, _| true).unwrap();
        assert_eq!(done.placement, Placement::InPlace);
        assert!(!target.folder.exists(), "in place copies nothing");
        let saved = ModelSettings::load_from(&settings_file).unwrap();
        assert_eq!(saved.weights.as_deref(), Some(weights.as_path()));
        let done = install(&weights, InstallMode::Copy, &target, &mut |_, _| true).unwrap();
        assert_eq!(done.settings, Some((settings_file.clone(), None)));
        assert!(done.message().contains("cleared"), "{}", done.message());
        assert_eq!(
            ModelSettings::load_from(&settings_file).unwrap().weights,
            None
        );
    }

    #[test]
    fn a_cancelled_copy_leaves_nothing_behind() {
        let src = tempfile::tempdir().unwrap();
        let weights = tiny_checkpoint_folder(src.path(), true, true);
        let home = tempfile::tempdir().unwrap();
        let target = target(home.path());
        let check = check_source(&weights).unwrap();
        let err = place_copy(&check, &target.folder, &mut |_, _| false).unwrap_err();
        assert!(matches!(err, InstallError::Cancelled), "{err}");
        assert_eq!(std::fs::read_dir(&target.folder).unwrap().count(), 0);
        // The chunked copy itself stops too.
        let to = home.path().join("copy");
        let err = copy_with_progress(&weights, &to, 1, &mut |_, _| false).unwrap_err();
        assert!(matches!(err, InstallError::Cancelled), "{err}");
    }

    #[test]
    fn pytorch_files_are_refused_with_what_to_download() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("sam3.pt", &b"PK\x03\x04archive"[..]),
            ("model.safetensors", &b"\x80\x02}q\x00weights"[..]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = check_source(&path).unwrap_err();
            assert!(matches!(err, InstallError::PyTorch { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains("model.safetensors"), "{text}");
            assert!(text.contains(SAM3_DOWNLOAD_PAGE), "{text}");
        }
    }

    #[test]
    fn the_check_reports_tracker_dtype_and_companions() {
        let src = tempfile::tempdir().unwrap();
        let weights = tiny_checkpoint_folder(src.path(), false, true);
        let check = check_source(&weights).unwrap();
        assert_eq!(check.tracker, Tracker::Absent);
        assert_eq!(check.dtype_text(), "F32");
        assert_eq!(check.companions, vec![src.path().join("config.json")]);
        let text = check.lines().join("\n");
        assert!(text.contains("394 tensors"), "{text}");
        assert!(text.contains("tracker: absent"), "{text}");
        std::fs::write(src.path().join(TRACKER_WEIGHTS_FILE), b"x").unwrap();
        let check = check_source(src.path()).unwrap();
        assert!(matches!(check.tracker, Tracker::Beside(_)));
        assert_eq!(check.companions.len(), 2);
        assert_eq!(human_bytes(3_440_000_000), "3.44 GB");
    }
}
