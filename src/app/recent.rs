//! Recently opened studies: the last few paths the user opened, newest first, kept in the
//! user configuration folder (`recent.json`) so File → Open recent and the start screen can
//! offer them. Losing the list is harmless: read and write errors are logged, never shown as
//! failures.

use std::path::{Path, PathBuf};

/// How many studies are remembered.
pub const MAX_RECENT: usize = 10;
/// File name in the configuration folder.
pub const RECENT_FILE: &str = "recent.json";

/// The list, newest first, and where it is saved (`None`: in memory only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentStudies {
    pub paths: Vec<PathBuf>,
    file: Option<PathBuf>,
}

impl RecentStudies {
    /// Reads the list from `file` (a missing or unreadable file gives an empty list).
    pub fn load(file: PathBuf) -> Self {
        let paths = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Vec<PathBuf>>(&bytes).ok())
            .unwrap_or_default();
        Self {
            paths: paths.into_iter().take(MAX_RECENT).collect(),
            file: Some(file),
        }
    }

    /// Puts `path` first (once), keeps [`MAX_RECENT`], and saves the list.
    pub fn push(&mut self, path: &Path) {
        self.paths.retain(|p| p != path);
        self.paths.insert(0, path.to_path_buf());
        self.paths.truncate(MAX_RECENT);
        self.save();
    }

    /// Forgets a path (e.g. one that no longer exists) and saves the list.
    pub fn remove(&mut self, path: &Path) {
        self.paths.retain(|p| p != path);
        self.save();
    }

    fn save(&self) {
        let Some(file) = &self.file else {
            return;
        };
        let written = serde_json::to_vec_pretty(&self.paths)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = file.with_extension("json.tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, file)
            });
        if let Err(e) = written {
            tracing::warn!(
                "could not save the recent studies to {}: {e}",
                file.display()
            );
        }
    }
}

/// The studies as buttons; returns the one clicked.
pub fn recent_list_ui(ui: &mut egui::Ui, recent: &RecentStudies) -> Option<PathBuf> {
    let mut picked = None;
    for path in &recent.paths {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if ui
            .button(name)
            .on_hover_text(path.display().to_string())
            .clicked()
        {
            picked = Some(path.clone());
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_once_capped_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfg").join(RECENT_FILE);
        let mut r = RecentStudies::load(file.clone());
        assert!(r.paths.is_empty());
        for i in 0..12 {
            r.push(Path::new(&format!("/studies/{i}")));
        }
        r.push(Path::new("/studies/5"));
        assert_eq!(r.paths.len(), MAX_RECENT);
        assert_eq!(r.paths[0], Path::new("/studies/5"));
        assert_eq!(r.paths[1], Path::new("/studies/11"));
        assert_eq!(
            r.paths
                .iter()
                .filter(|p| **p == Path::new("/studies/5"))
                .count(),
            1
        );
        let again = RecentStudies::load(file.clone());
        assert_eq!(again.paths, r.paths);
        r.remove(Path::new("/studies/5"));
        assert_eq!(RecentStudies::load(file).paths[0], Path::new("/studies/11"));
    }

    #[test]
    fn a_corrupt_file_is_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(RECENT_FILE);
        std::fs::write(&file, b"{not json").unwrap();
        assert!(RecentStudies::load(file).paths.is_empty());
    }
}
