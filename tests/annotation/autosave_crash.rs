//! Crash safety of autosave. A child process (this test binary, re-invoked in child mode) edits
//! a project as fast as it can and prints `ack <k>` once edit `k` is synced; the parent kills it
//! with SIGKILL after a random delay, reopens the project, and checks that every acknowledged
//! edit is there. Repeated at least 50 times on the same project, so kills land during opening,
//! replay, appends and compactions.
//!
//! A second test aims the kills at compactions, which run on a helper thread while editing
//! goes on: the child prints `compacting` when one starts and `compacted <ms>` once it has been
//! adopted; the parent kills at a random point of that span (PNG encoding, mask files,
//! snapshot rename, journal swap, removal of superseded files) until 50 kills landed inside
//! one.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns fail the test by panicking"
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m2c::annotation::{Brush, LabelClass, Project, ProjectOptions};

const CHILD_DIR_ENV: &str = "M2C_CRASH_CHILD_DIR";
const CHILD_START_ENV: &str = "M2C_CRASH_CHILD_START";
/// Set (to anything) in the child of the compaction test: no explicit saves, compaction
/// markers on stdout.
const CHILD_COMPACTION_ENV: &str = "M2C_CRASH_CHILD_COMPACTION";
const ITEMS: u64 = 8;
const SIDE: u32 = 1024;
/// Each item is a 64 × 64 grid of 16-pixel cells; edit k paints one cell's centre, so every
/// edit paints pixels no earlier edit touched. That matters: the child undoes and redoes every
/// fifth edit, and a stroke that changes nothing records no undo step, so on a repeated cell
/// the undo would take back an *earlier, acknowledged* edit — and a kill between that undo and
/// its redo would then rightly lose it (seen once on a fast run that wrapped at 2 048 edits).
const GRID: u64 = 64;
const CELLS: u64 = GRID * GRID;
const MIN_KILLS: usize = 50;

fn options() -> ProjectOptions {
    ProjectOptions {
        // Small, so that compactions (and kills during them) happen often.
        compact_after_journal_bytes: 24 * 1024,
        ..ProjectOptions::default()
    }
}

/// The compaction test compacts every few dozen edits.
fn compaction_options() -> ProjectOptions {
    ProjectOptions {
        compact_after_journal_bytes: 6 * 1024,
        ..ProjectOptions::default()
    }
}

/// Item index and cell centre (image pixels) that edit `k` paints.
fn target(k: u64) -> (usize, [u32; 2]) {
    target_in(k, SIDE)
}

/// [`target`] on items of `side` pixels (cells of `side / GRID`; strokes may touch the
/// neighbouring cells' edges, but every edit still paints its own centre first).
fn target_in(k: u64, side: u32) -> (usize, [u32; 2]) {
    let item = (k % ITEMS) as usize;
    assert!(
        k < ITEMS * CELLS,
        "edit {k} would repaint a cell: enlarge GRID so every edit is unique"
    );
    let cell = k / ITEMS;
    let (cx, cy) = (cell % GRID, cell / GRID);
    let size = side / GRID as u32;
    (
        item,
        [cx as u32 * size + size / 2, cy as u32 * size + size / 2],
    )
}

/// Side of the items in the compaction test: smaller masks, shorter compactions (a full-size
/// debug build needs over a second for eight 1024² PNGs on a loaded machine).
const COMPACTION_SIDE: u32 = 512;

/// Child mode: does nothing unless spawned by `acknowledged_edits_survive_sigkill`.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let start: u64 = std::env::var(CHILD_START_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let compaction_mode = std::env::var_os(CHILD_COMPACTION_ENV).is_some();
    let opts = if compaction_mode {
        compaction_options()
    } else {
        options()
    };
    let mut project = Project::open(Path::new(&dir), opts).unwrap();
    let mut compaction_started: Option<Instant> = None;
    let ids: Vec<_> = (0..ITEMS)
        .map(|i| project.find_item(&format!("img-{i}")).unwrap())
        .collect();
    let brush = Brush {
        radius_px: 3.0,
        erase: false,
    };
    let mut out = std::io::stdout().lock();
    let side = if compaction_mode {
        COMPACTION_SIDE
    } else {
        SIDE
    };
    for k in start.. {
        let (item, [x, y]) = target_in(k, side);
        let id = ids[item];
        let (x, y) = (x as f32 + 0.5, y as f32 + 0.5);
        project.begin_stroke(id, 1, brush).unwrap();
        project.stroke_to([x - 2.0, y]).unwrap();
        project.stroke_to([x + 2.0, y]).unwrap();
        project.end_stroke().unwrap();
        if k % 5 == 0 {
            // Exercise undo and redo records too; the edit ends up applied.
            project.undo().unwrap();
            project.redo().unwrap();
        }
        project.set_hue_scores(&[(id, Some(k as f32))]).unwrap();
        if compaction_mode {
            // Markers first: a kill right after `compacting` must count as inside it.
            match (compaction_started, project.is_compacting()) {
                (None, true) => {
                    compaction_started = Some(Instant::now());
                    writeln!(out, "compacting").unwrap();
                }
                (Some(t), false) => {
                    compaction_started = None;
                    writeln!(out, "compacted {}", t.elapsed().as_millis()).unwrap();
                }
                _ => {}
            }
        } else if k % 97 == 0 {
            project.save().unwrap();
        }
        writeln!(out, "ack {k}").unwrap();
        out.flush().unwrap();
        if compaction_mode {
            // Fewer edits per trial: the grid of unique cells lasts for every trial.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// xorshift64*: deterministic delays without a rand dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn make_project(dir: &Path) {
    make_project_of(dir, SIDE);
}

fn make_project_of(dir: &Path, side: u32) {
    let mut project = Project::create(dir, None, options()).unwrap();
    project
        .set_class(LabelClass {
            value: 1,
            name: "lesion".into(),
            colour: [255, 0, 0],
            concept: None,
        })
        .unwrap();
    let keys: Vec<String> = (0..ITEMS).map(|i| format!("img-{i}")).collect();
    project
        .add_items(keys.iter().map(|k| (k.as_str(), side, side)))
        .unwrap();
}

/// Runs one child from edit `start`, kills it `delay` after it started (or, with
/// `after_first_ack`, after its first acknowledgement, so that a loaded machine where the
/// child needs long to start still sees progress), returns the edits it acknowledged.
fn run_child(dir: &Path, start: u64, delay: Duration, after_first_ack: bool) -> Vec<u64> {
    let exe = std::env::current_exe().unwrap();
    let stderr_path = dir.with_extension("child-stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "autosave_crash::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_START_ENV, start.to_string())
        .env_remove(CHILD_COMPACTION_ENV)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        // Only complete lines count: a line cut by the kill is not an acknowledgement.
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(k) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ack ")) {
                acks.push(k.parse::<u64>().unwrap());
                if acks.len() == 1 {
                    let _ = first_tx.send(());
                }
            }
            line.clear();
        }
        acks
    });
    if after_first_ack {
        // A child that never acknowledges is killed after the timeout and fails below.
        let _ = first_rx.recv_timeout(Duration::from_secs(30));
    }
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let acks = reader.join().unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert_eq!(
        status.signal(),
        Some(9),
        "child ended on its own ({status}) instead of being killed:\n{stderr}"
    );
    acks
}

/// Checks the reopened project against every acknowledged edit; returns the recovery report's
/// (torn, stale) flags.
fn check_reopened(
    dir: &Path,
    side: u32,
    acked: &[u64],
    last_acked_per_item: &[Option<u64>],
    kills: usize,
) -> (bool, bool) {
    let mut project = Project::open(dir, options())
        .unwrap_or_else(|e| panic!("kill {kills}: project does not open: {e}"));
    let flags = (
        project.recovery().dropped_bytes > 0,
        project.recovery().stale_journal_discarded,
    );
    let ids: Vec<_> = (0..ITEMS)
        .map(|i| project.find_item(&format!("img-{i}")).unwrap())
        .collect();
    for &k in acked {
        let (item, [x, y]) = target_in(k, side);
        let set = project
            .mask(ids[item], 1)
            .unwrap()
            .and_then(|m| m.get(x, y))
            .unwrap_or(false);
        assert!(set, "kill {kills}: acknowledged edit {k} is missing");
    }
    for (item, last) in last_acked_per_item.iter().enumerate() {
        if let Some(last) = last {
            let hue = project.item(ids[item]).unwrap().hue().unwrap_or(-1.0);
            assert!(
                hue >= *last as f32,
                "kill {kills}: item {item} HUE {hue} older than acknowledged edit {last}"
            );
        }
    }
    flags
}

/// What a compaction-mode child printed before it was killed.
#[derive(Debug, Default)]
struct ChildOutput {
    acks: Vec<u64>,
    /// Compaction durations it reported.
    compactions_ms: Vec<u64>,
    /// The last marker was `compacting`: the kill landed inside a compaction.
    killed_inside: bool,
}

/// Runs a compaction-mode child from edit `start` and kills it at `pick(mean compaction ms)`
/// after its first `compacting` marker (or after 20 s without one, which fails below).
fn run_compaction_child(dir: &Path, start: u64, delay_ms: impl FnOnce() -> u64) -> ChildOutput {
    let exe = std::env::current_exe().unwrap();
    let stderr_path = dir.with_extension("child-stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "autosave_crash::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_START_ENV, start.to_string())
        .env(CHILD_COMPACTION_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut out = ChildOutput::default();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(l) = line.strip_suffix('\n') {
                if let Some(k) = l.strip_prefix("ack ") {
                    out.acks.push(k.parse::<u64>().unwrap());
                } else if l == "compacting" {
                    out.killed_inside = true;
                    let _ = started_tx.send(());
                } else if let Some(ms) = l.strip_prefix("compacted ") {
                    out.killed_inside = false;
                    out.compactions_ms.push(ms.parse().unwrap());
                }
            }
            line.clear();
        }
        out
    });
    let _ = started_rx.recv_timeout(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(delay_ms()));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert_eq!(
        status.signal(),
        Some(9),
        "child ended on its own ({status}) instead of being killed:\n{stderr}"
    );
    out
}

#[test]
fn acknowledged_edits_survive_sigkill_during_compaction() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    make_project_of(&dir, COMPACTION_SIDE);
    let mut rng = Rng(0x0c0f_fee5_eed5_0042);
    let mut acked: Vec<u64> = Vec::new();
    let mut last_acked_per_item = [None::<u64>; ITEMS as usize];
    let (mut trials, mut inside, mut torn) = (0usize, 0usize, 0usize);
    let mut durations: Vec<u64> = Vec::new();
    let begun = Instant::now();
    while inside < MIN_KILLS {
        assert!(
            trials < 4 * MIN_KILLS,
            "only {inside} of {trials} kills landed inside a compaction"
        );
        let start = acked.last().map_or(0, |k| k + 1);
        // Anywhere in a compaction: up to a little past the mean duration seen so far.
        let mean = if durations.is_empty() {
            60
        } else {
            durations.iter().sum::<u64>() / durations.len() as u64
        };
        let out = run_compaction_child(&dir, start, || rng.below(mean * 5 / 4 + 1));
        trials += 1;
        inside += usize::from(out.killed_inside);
        durations.extend(&out.compactions_ms);
        for &k in &out.acks {
            assert!(acked.last().is_none_or(|&last| k > last), "acks in order");
            acked.push(k);
            last_acked_per_item[target(k).0] = Some(k);
        }
        let (t, _) = check_reopened(&dir, COMPACTION_SIDE, &acked, &last_acked_per_item, trials);
        torn += usize::from(t);
        if trials % 10 == 0 {
            eprintln!(
                "  {trials} kills, {inside} inside, {} edits, mean compaction {mean} ms",
                acked.len()
            );
        }
    }
    durations.sort_unstable();
    eprintln!(
        "compaction crash test: {trials} kills, {inside} inside a compaction, 0 of {} \
         acknowledged edits lost, {torn} torn journal tails, compaction median {} ms, {:.1} s",
        acked.len(),
        durations.get(durations.len() / 2).copied().unwrap_or(0),
        begun.elapsed().as_secs_f32()
    );
}

#[test]
fn acknowledged_edits_survive_sigkill() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    make_project(&dir);

    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut acked: Vec<u64> = Vec::new();
    let mut last_acked_per_item = [None::<u64>; ITEMS as usize];
    let (mut kills, mut torn, mut stale) = (0, 0, 0);
    let begun = Instant::now();
    while kills < MIN_KILLS || (kills < 80 && begun.elapsed() < Duration::from_secs(20)) {
        let start = acked.last().map_or(0, |k| k + 1);
        let delay = Duration::from_millis(5 + rng.below(250));
        // Alternate: kills timed from the start (also during opening and recovery) and kills
        // timed from the first acknowledged edit (progress even on a loaded machine).
        let acks = run_child(&dir, start, delay, kills % 2 == 1);
        kills += 1;
        for &k in &acks {
            assert!(acked.last().is_none_or(|&last| k > last), "acks in order");
            acked.push(k);
            last_acked_per_item[target(k).0] = Some(k);
        }

        let (t, st) = check_reopened(&dir, SIDE, &acked, &last_acked_per_item, kills);
        torn += usize::from(t);
        stale += usize::from(st);
    }
    eprintln!(
        "crash test: {kills} kills, {} acknowledged edits, {torn} torn journal tails, \
         {stale} stale journals, {:.1} s",
        acked.len(),
        begun.elapsed().as_secs_f32()
    );
    assert!(kills >= MIN_KILLS);
    assert!(
        acked.len() >= MIN_KILLS,
        "the child should make progress between kills"
    );
}
