//! The annotation store under storage faults and a second session:
//! - a fault matrix: a scripted session (strokes, undo/redo, classes, HUE, predictions,
//!   saves) through a storage that fails the Nth write, sync, rename or truncation with
//!   `ENOSPC`, `EIO` or `EACCES`, once or until "space is back". After every step the folder
//!   is read as a crash would leave it: it must open, hold every acknowledged edit, and be
//!   exactly the state after some step (never a partial one). Once healed, one flush saves
//!   everything, and a reopened project equals the session;
//! - a background compaction that fails for lack of space, then succeeds;
//! - a real full disk: the project on a 1 MiB tmpfs mounted by the test (root only; skipped
//!   with a message elsewhere, but required where `CI` is set), through the API and through
//!   the app's window (status line, toast, retry);
//! - two processes on one project: the second opens it read-only and says who holds it.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns fail the test by panicking"
)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use m2c::annotation::{
    AnnotationError, Brush, Edit, ItemId, LabelClass, Mask, OsStorage, Project, ProjectOptions,
    Provenance, ReviewState, SharedStorage, Storage, Tool,
};

const ENOSPC: i32 = 28;
const EIO: i32 = 5;
const EACCES: i32 = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Write,
    Sync,
    Rename,
    SetLen,
}

const OPS: [Op; 4] = [Op::Write, Op::Sync, Op::Rename, Op::SetLen];

/// Which operation fails: the `nth` (1-based) of its kind, and with `persistent` every later
/// one too until [`Faulty::heal`].
#[derive(Debug, Clone, Copy)]
struct Plan {
    op: Op,
    nth: u64,
    errno: i32,
    persistent: bool,
}

/// The real file system, except for the planned failures. A failing write first writes half
/// of its bytes, as a write cut short by a full disk does.
#[derive(Debug, Default)]
struct Faulty {
    counts: Mutex<BTreeMap<Op, u64>>,
    plan: Mutex<Option<Plan>>,
    healed: AtomicBool,
    injected: AtomicU64,
}

impl Faulty {
    fn new(plan: Option<Plan>) -> Arc<Self> {
        Arc::new(Self {
            plan: Mutex::new(plan),
            ..Self::default()
        })
    }

    fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }

    fn count(&self, op: Op) -> u64 {
        self.counts.lock().unwrap().get(&op).copied().unwrap_or(0)
    }

    /// Counts the operation; the error to fail it with, if it is to fail.
    fn check(&self, op: Op) -> Option<io::Error> {
        let n = {
            let mut counts = self.counts.lock().unwrap();
            let n = counts.entry(op).or_insert(0);
            *n += 1;
            *n
        };
        let plan = (*self.plan.lock().unwrap())?;
        let hit = plan.op == op
            && !self.healed.load(Ordering::SeqCst)
            && (n == plan.nth || (plan.persistent && n > plan.nth));
        hit.then(|| {
            self.injected.fetch_add(1, Ordering::SeqCst);
            io::Error::from_raw_os_error(plan.errno)
        })
    }
}

impl Storage for Faulty {
    fn write(&self, path: &Path, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        match self.check(Op::Write) {
            Some(e) => {
                OsStorage.write(path, file, &bytes[..bytes.len() / 2])?;
                Err(e)
            }
            None => OsStorage.write(path, file, bytes),
        }
    }

    fn sync(&self, path: &Path, file: &File) -> io::Result<()> {
        self.check(Op::Sync)
            .map_or_else(|| OsStorage.sync(path, file), Err)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::Sync)
            .map_or_else(|| OsStorage.sync_dir(dir), Err)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Op::Rename)
            .map_or_else(|| OsStorage.rename(from, to), Err)
    }

    fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
        self.check(Op::SetLen)
            .map_or_else(|| OsStorage.set_len(path, file, len), Err)
    }
}

fn class(value: u8) -> LabelClass {
    LabelClass {
        value,
        name: format!("class {value}"),
        colour: [value.wrapping_mul(80), 40, 200],
        concept: None,
    }
}

/// Everything a user would notice of a project: classes, and per item its state, HUE and
/// masks (hashed).
type Fingerprint = (
    Vec<(u8, String)>,
    Vec<(String, ReviewState, Option<u32>, Vec<(u8, u64)>)>,
);

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn fingerprint(project: &mut Project) -> Fingerprint {
    let classes = project
        .classes()
        .map(|c| (c.value, c.name.clone()))
        .collect();
    let keys: Vec<String> = project.items().iter().map(|i| i.key().to_owned()).collect();
    let mut items = Vec::new();
    for key in keys {
        let id = project.find_item(&key).unwrap();
        let (state, hue) = {
            let item = project.item(id).unwrap();
            (item.state(), item.hue().map(f32::to_bits))
        };
        let masks = project
            .masks(id)
            .unwrap_or_else(|e| panic!("masks of {key} do not load: {e}"))
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(c, m)| (*c, fnv(m.as_bytes())))
            .collect();
        items.push((key, state, hue, masks));
    }
    (classes, items)
}

const BRUSH: Brush = Brush {
    radius_px: 5.0,
    erase: false,
};

fn stroke(
    p: &mut Project,
    item: ItemId,
    class: u8,
    from: [f32; 2],
    to: [f32; 2],
) -> io::Result<()> {
    let r = p
        .begin_stroke(item, class, BRUSH)
        .and_then(|()| p.stroke_to(from))
        .and_then(|()| p.stroke_to(to))
        .and_then(|()| p.end_stroke().map(|_| ()));
    r.map_err(io::Error::other)
}

/// The scripted session: step `k` of it. Returns the step's result (an `Err` is a saving
/// failure; the edit itself is always applied in memory).
fn step(p: &mut Project, k: usize) -> Result<(), String> {
    let a = p.find_item("a");
    let b = p.find_item("b");
    let r: Result<(), AnnotationError> = match k {
        0 => p.set_class(class(2)).map(|_| ()),
        1 => p.add_items([("c", 90, 70)]).map(|_| ()),
        2 => {
            return stroke(p, a.unwrap(), 1, [10.0, 10.0], [60.0, 40.0]).map_err(|e| e.to_string());
        }
        3 => return stroke(p, b.unwrap(), 1, [5.0, 50.0], [70.0, 50.0]).map_err(|e| e.to_string()),
        4 => p.undo().map(|_| ()),
        5 => p.redo().map(|_| ()),
        6 => p.set_hue_scores(&[(a.unwrap(), Some(0.25)), (b.unwrap(), Some(0.75))]),
        7 => p.save(),
        8 => return stroke(p, a.unwrap(), 2, [40.0, 5.0], [40.0, 70.0]).map_err(|e| e.to_string()),
        9 => {
            let mut mask = Mask::empty(p.item(b.unwrap()).unwrap().size());
            mask.stamp_disc([30.0, 30.0], 12.0, 1);
            p.apply(Edit::SetPrediction {
                item: b.unwrap(),
                masks: vec![(2, mask)],
                state: ReviewState::Flagged,
                provenance: Provenance::model(Tool::ConceptSearch, Some("c".into()), None),
            })
            .map(|_| ())
        }
        10 => p
            .apply(Edit::AcceptPrediction { item: b.unwrap() })
            .map(|_| ()),
        11 => p.undo().map(|_| ()),
        12 => p.save(),
        13 => {
            let c = p.find_item("c").unwrap();
            return stroke(p, c, 1, [0.0, 0.0], [89.0, 69.0]).map_err(|e| e.to_string());
        }
        14 => p
            .apply(Edit::Clear {
                item: a.unwrap(),
                class: Some(1),
            })
            .map(|_| ()),
        _ => unreachable!(),
    };
    r.map_err(|e| e.to_string())
}

const STEPS: usize = 15;
/// The steps that save (compact).
const SAVES: [usize; 2] = [7, 12];

/// Options that never compact in the background: the matrix is deterministic (compaction
/// happens in the steps that save).
fn sync_options() -> ProjectOptions {
    ProjectOptions {
        compact_after_journal_bytes: u64::MAX,
        ..ProjectOptions::default()
    }
}

fn new_project(dir: &Path) {
    let mut p = Project::create(dir, None, sync_options()).unwrap();
    p.set_class(class(1)).unwrap();
    p.add_items([("a", 80, 75), ("b", 96, 64)]).unwrap();
}

/// The folder as a crash right now would leave it (a read-only open writes nothing).
fn on_disk(dir: &Path) -> (Fingerprint, m2c::annotation::RecoveryReport) {
    let mut p = Project::open_read_only(dir, sync_options(), "check".into())
        .unwrap_or_else(|e| panic!("the project on disk does not open: {e}"));
    (fingerprint(&mut p), p.recovery().clone())
}

/// Leftover temporary files anywhere in the folder.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "tmp") {
                out.push(path);
            }
        }
    }
    out
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    runs: u64,
    injected: u64,
    failed_steps: u64,
    checks: u64,
}

/// One run of the script under `plan`; healed after `heal_after` steps past the first
/// failure. Returns (failures injected, failed steps, crash checks).
fn run(plan: Option<Plan>, heal_after: usize) -> (u64, u64, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    new_project(&dir);
    let faulty = Faulty::new(plan);
    let storage: SharedStorage = faulty.clone();
    let mut p = Project::open_with_storage(&dir, sync_options(), storage).unwrap();
    let mut states = vec![fingerprint(&mut p)];
    let mut acked = 0usize; // index into `states`
    let mut failed_steps = 0;
    let mut first_failure = None;
    let mut checks = 0;
    for k in 0..STEPS {
        if first_failure.is_some_and(|f| k >= f + heal_after) {
            faulty.heal();
        }
        let result = step(&mut p, k);
        states.push(fingerprint(&mut p));
        match &result {
            // An edit that changed nothing wrote nothing: earlier queued edits may still wait.
            Ok(()) if p.is_saved() => acked = states.len() - 1,
            Ok(()) => {}
            Err(_) => {
                failed_steps += 1;
                first_failure.get_or_insert(k);
                // A failed save (compaction) loses nothing: the journal already holds it all.
                if !SAVES.contains(&k) {
                    assert!(!p.is_saved(), "{plan:?} step {k}: a failed edit is unsaved");
                }
            }
        }
        let (disk, report) = on_disk(&dir);
        checks += 1;
        let found = states[acked..].iter().position(|s| *s == disk);
        assert!(
            found.is_some(),
            "{plan:?} step {k} ({result:?}): the folder is not the state of any step since the \
             last acknowledged one ({acked})"
        );
        if plan.is_none_or(|pl| pl.op != Op::SetLen) {
            assert_eq!(
                report.dropped_bytes, 0,
                "{plan:?} step {k}: a failed append left bytes behind"
            );
        }
    }
    faulty.heal();
    p.flush()
        .unwrap_or_else(|e| panic!("{plan:?}: saving after the disk healed fails: {e}"));
    assert!(p.is_saved(), "{plan:?}: saved once healed");
    let last = fingerprint(&mut p);
    assert_eq!(
        on_disk(&dir).0,
        last,
        "{plan:?}: everything on disk once healed"
    );
    p.save().unwrap();
    drop(p);
    let mut back = Project::open(&dir, sync_options()).unwrap();
    assert_eq!(fingerprint(&mut back), last, "{plan:?}: reopened");
    assert!(!back.recovery().lost_anything() || plan.is_some_and(|pl| pl.op == Op::SetLen));
    drop(back);
    assert!(
        temporaries(&dir).is_empty(),
        "{plan:?}: temporary files left"
    );
    (faulty.injected.load(Ordering::SeqCst), failed_steps, checks)
}

#[test]
fn every_acknowledged_edit_survives_failing_writes_syncs_and_renames() {
    // How many operations of each kind the script makes without faults.
    let probe = Faulty::new(None);
    {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        new_project(&dir);
        let storage: SharedStorage = probe.clone();
        let mut p = Project::open_with_storage(&dir, sync_options(), storage).unwrap();
        for k in 0..STEPS {
            step(&mut p, k).unwrap();
        }
    }
    let begun = Instant::now();
    let mut table: BTreeMap<(Op, i32), Tally> = BTreeMap::new();
    for op in OPS {
        // Truncation happens only after a failed append: fail it from the start.
        let total = if op == Op::SetLen { 3 } else { probe.count(op) };
        assert!(
            op == Op::SetLen || total >= 5,
            "{op:?}: only {total} in the script"
        );
        for errno in [ENOSPC, EIO, EACCES] {
            for nth in 1..=total {
                // Every position with ENOSPC; a spread of them with the other errors.
                if errno != ENOSPC && nth % 3 != 1 {
                    continue;
                }
                for persistent in [false, true] {
                    let plan = Plan {
                        op,
                        nth,
                        errno,
                        persistent,
                    };
                    let (injected, failed, checks) = if op == Op::SetLen {
                        // A failed append whose truncation fails too: a poisoned journal.
                        run_poisoned(plan)
                    } else {
                        run(Some(plan), 3)
                    };
                    let t = table.entry((op, errno)).or_default();
                    t.runs += 1;
                    t.injected += injected;
                    t.failed_steps += failed;
                    t.checks += checks;
                }
            }
        }
    }
    eprintln!(
        "storage fault matrix ({:.1} s):",
        begun.elapsed().as_secs_f32()
    );
    eprintln!("  op       errno   runs  faults  failed steps  crash checks  lost acked edits");
    for ((op, errno), t) in &table {
        eprintln!(
            "  {:<8} {errno:>5} {:>6} {:>7} {:>13} {:>13}  0",
            format!("{op:?}"),
            t.runs,
            t.injected,
            t.failed_steps,
            t.checks
        );
        assert!(t.injected > 0, "{op:?}/{errno}: no fault was injected");
    }
}

/// A write that fails, then a truncation that fails: the journal is damaged (poisoned) and
/// the project must snapshot everything before journaling again.
fn run_poisoned(set_len: Plan) -> (u64, u64, u64) {
    #[derive(Debug)]
    struct Both {
        write: Arc<Faulty>,
        set_len: Arc<Faulty>,
    }
    impl Storage for Both {
        fn write(&self, path: &Path, file: &mut File, bytes: &[u8]) -> io::Result<()> {
            self.write.write(path, file, bytes)
        }
        fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
            self.set_len.set_len(path, file, len)
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    new_project(&dir);
    let write = Faulty::new(Some(Plan {
        op: Op::Write,
        nth: 2 + set_len.nth,
        errno: set_len.errno,
        persistent: false,
    }));
    let trunc = Faulty::new(Some(set_len));
    let storage: SharedStorage = Arc::new(Both {
        write: write.clone(),
        set_len: trunc.clone(),
    });
    let mut p = Project::open_with_storage(&dir, sync_options(), storage).unwrap();
    let mut states = vec![fingerprint(&mut p)];
    let mut acked = 0;
    let mut failed = 0;
    for k in 0..STEPS {
        if k == 8 {
            trunc.heal();
        }
        let result = step(&mut p, k);
        states.push(fingerprint(&mut p));
        if result.is_ok() && p.is_saved() {
            acked = states.len() - 1;
        } else if result.is_err() {
            failed += 1;
        }
        let (disk, _) = on_disk(&dir);
        assert!(
            states[acked..].contains(&disk),
            "{set_len:?} step {k} ({result:?}): acknowledged edits lost"
        );
    }
    trunc.heal();
    p.flush().unwrap();
    let last = fingerprint(&mut p);
    drop(p);
    let mut back = Project::open(&dir, sync_options()).unwrap();
    assert_eq!(fingerprint(&mut back), last);
    (
        write.injected.load(Ordering::SeqCst) + trunc.injected.load(Ordering::SeqCst),
        failed,
        STEPS as u64,
    )
}

#[test]
fn a_background_compaction_that_runs_out_of_space_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let options = ProjectOptions {
        compact_after_journal_bytes: 4_000,
        ..ProjectOptions::default()
    };
    Project::create(&dir, None, options)
        .unwrap()
        .set_class(class(1))
        .unwrap();
    // Every rename fails until healed: journal appends still work (they rename nothing), every
    // snapshot fails.
    let faulty = Faulty::new(Some(Plan {
        op: Op::Rename,
        nth: 1,
        errno: ENOSPC,
        persistent: true,
    }));
    let storage: SharedStorage = faulty.clone();
    let mut p = Project::open_with_storage(&dir, options, storage).unwrap();
    let item = p.add_item("big", 400, 300).unwrap();
    let mut compactions_failed = 0;
    for i in 0..30 {
        let x = 5.0 + 12.0 * i as f32;
        stroke(&mut p, item, 1, [x, 5.0], [x, 290.0]).unwrap();
        if let Some(outcome) = p.wait_for_compaction() {
            assert!(outcome.is_err());
            compactions_failed += 1;
        }
    }
    assert!(compactions_failed >= 1, "a compaction was attempted");
    assert_eq!(p.generation(), 0, "no snapshot could be written");
    assert!(p.is_saved(), "the journal holds every stroke");
    let expected = fingerprint(&mut p);
    assert_eq!(on_disk(&dir).0, expected);
    faulty.heal();
    p.save().unwrap();
    assert!(p.generation() >= 1);
    drop(p);
    let mut back = Project::open(&dir, options).unwrap();
    assert_eq!(fingerprint(&mut back), expected);
}

// ---------------------------------------------------------------------------------------
// A real full disk.

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a SKIP message) where mounting is not allowed; a failure where `CI` is
    /// set, since CI runs as root and must run these tests.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must be able to mount a small tmpfs (run as root): {why}"
                );
                eprintln!(
                    "SKIP full-disk test: cannot mount a tmpfs here ({})",
                    why.trim()
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with `filler` until a write fails for lack of space.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler.bin");
        let mut f = File::create(&filler).unwrap();
        let chunk = vec![0x5a_u8; 4096];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_project_on_a_disk_that_fills_up_keeps_every_acknowledged_edit() {
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    let dir = disk.path().join("p.m2c");
    let options = ProjectOptions {
        compact_after_journal_bytes: 64 * 1024,
        ..ProjectOptions::default()
    };
    let mut p = Project::create(&dir, None, options).unwrap();
    p.set_class(class(1)).unwrap();
    let ids = p
        .add_items((0..4).map(|i| (["s0", "s1", "s2", "s3"][i], 256, 256)))
        .unwrap();
    stroke(&mut p, ids[0], 1, [10.0, 10.0], [200.0, 200.0]).unwrap();
    p.save().unwrap();
    let snapshot_before = std::fs::read(dir.join("snapshot.json")).unwrap();
    let filler = disk.fill();

    let mut acked = fingerprint(&mut p);
    let mut failures = Vec::new();
    for i in 0..400 {
        let id = ids[i % 4];
        let y = 4.0 + (i / 4) as f32 * 2.5 % 250.0;
        match stroke(&mut p, id, 1, [3.0, y], [250.0, y]) {
            Ok(()) => acked = fingerprint(&mut p),
            Err(e) => failures.push(e.to_string()),
        }
        if failures.len() >= 5 {
            break;
        }
    }
    assert!(
        !failures.is_empty(),
        "the disk never filled (no append failed)"
    );
    assert!(failures[0].contains("journal"), "{}", failures[0]);
    assert!(!p.is_saved(), "unsaved edits are reported");
    // A snapshot attempt on the full disk fails and damages nothing.
    assert!(p.save().is_err(), "saving on a full disk fails");
    let (disk_state, report) = on_disk(&dir);
    assert_eq!(
        disk_state, acked,
        "the disk holds exactly the acknowledged edits"
    );
    assert_eq!(report.dropped_bytes, 0, "no partial record left behind");
    assert!(
        temporaries(&dir).is_empty(),
        "no temporary file left behind"
    );
    let snapshot_now = std::fs::read(dir.join("snapshot.json")).unwrap();
    assert_eq!(
        snapshot_now, snapshot_before,
        "the snapshot was not touched"
    );

    // Space is back: the next flush saves everything.
    std::fs::remove_file(&filler).unwrap();
    p.flush().unwrap();
    assert!(p.is_saved());
    let last = fingerprint(&mut p);
    drop(p);
    let mut back = Project::open(&dir, options).unwrap();
    assert_eq!(fingerprint(&mut back), last);
    eprintln!(
        "full disk: {} appends failed with \"{}\"; all saved once space was back",
        failures.len(),
        failures[0]
    );
}

#[test]
fn the_app_says_saving_failed_keeps_the_stroke_and_saves_it_once_space_is_back() {
    use egui_kittest::kittest::Queryable as _;
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    // A study of two PNGs on the small disk; its project goes beside it, on the same disk.
    let study = disk.path().join("study");
    std::fs::create_dir(&study).unwrap();
    for name in ["a.png", "b.png"] {
        image::GrayImage::from_fn(64, 48, |x, y| image::Luma([((x * 3 + y) % 200) as u8]))
            .save(study.join(name))
            .unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let mut app = m2c::app::M2cApp::new(m2c::app::LaunchOptions {
        paths: vec![study.clone()],
        weights: Some(PathBuf::from("missing-weights/model.safetensors")),
        device: m2c::engine::device::DevicePreference::Cpu,
    });
    app.set_data_dir(Some(data.path().to_path_buf()));
    // Each step is a quarter second of app time, so the five-second save retry comes round.
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .with_step_dt(0.25)
        .build_ui_state(|ui, app: &mut m2c::app::M2cApp| app.frame_ui(ui), app);
    let start = Instant::now();
    while !(h.state().study().shown().is_some() && h.state().session().is_some()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the study never opened"
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    assert!(
        h.state()
            .session()
            .unwrap()
            .project
            .root()
            .starts_with(disk.path()),
        "the project is on the small disk"
    );
    let drag = |h: &mut egui_kittest::Harness<'static, m2c::app::M2cApp>, y: f32| {
        let at = |h: &egui_kittest::Harness<'static, m2c::app::M2cApp>, x: f32| {
            h.state().study().ui_from_image([x, y])
        };
        let first = at(h, 5.0);
        h.hover_at(first);
        h.step();
        h.drag_at(first);
        h.step();
        let mid = at(h, 30.0);
        h.hover_at(mid);
        h.step();
        let last = at(h, 55.0);
        h.drop_at(last);
        h.step();
    };
    drag(&mut h, 10.0);
    h.run_steps(2);
    h.get_by_label_contains("All changes saved");

    let filler = disk.fill();
    // Strokes until one cannot be journaled (the journal's last page may take a few).
    let mut y = 14.0;
    while h.state().session().unwrap().project.is_saved() {
        assert!(y < 46.0, "no stroke failed to save on the full disk");
        drag(&mut h, y);
        y += 3.0;
    }
    let painted_last = y - 3.0;
    let toasts: Vec<String> = h.state().toasts().texts().map(str::to_owned).collect();
    assert!(
        toasts
            .iter()
            .any(|t| t.contains("failed") && t.contains("kept in memory")),
        "{toasts:?}"
    );
    h.get_by_label_contains("Changes not saved yet: retrying");
    // The stroke is in memory (and on screen) although not on disk.
    let session = h.state_mut().session_mut().unwrap();
    let item = session.project.find_item("a.png").unwrap();
    let stroke_kept = session
        .project
        .mask(item, 1)
        .unwrap()
        .is_some_and(|m| m.get(30, painted_last as u32) == Some(true));
    assert!(stroke_kept, "the unsaved stroke stays in memory");
    // Still full: retries fail quietly, nothing is lost.
    h.run_steps(30);
    h.get_by_label_contains("Changes not saved yet: retrying");

    std::fs::remove_file(&filler).unwrap();
    let mut steps = 0;
    while !h.state().session().unwrap().project.is_saved() {
        assert!(steps < 60, "the save was not retried once space was back");
        h.step();
        steps += 1;
    }
    h.step();
    h.get_by_label_contains("All changes saved");
    let toasts: Vec<String> = h.state().toasts().texts().map(str::to_owned).collect();
    assert!(
        toasts.iter().any(|t| t.contains("now on disk")),
        "{toasts:?}"
    );
    let root = h.state().session().unwrap().project.root().to_path_buf();
    drop(h);
    let mut back = Project::open(&root, ProjectOptions::default()).unwrap();
    let item = back.find_item("a.png").unwrap();
    assert!(
        back.mask(item, 1)
            .unwrap()
            .is_some_and(|m| m.get(30, painted_last as u32) == Some(true)),
        "the stroke that failed to save is on disk now"
    );
}

// ---------------------------------------------------------------------------------------
// Two processes.

const HOLD_ENV: &str = "M2C_FAULTS_HOLD_PROJECT";

/// Child mode: opens the project named by the environment, paints, prints `holding`, and
/// keeps the project open until its standard input closes.
#[test]
fn hold_child() {
    let Some(dir) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let mut p = Project::open(Path::new(&dir), ProjectOptions::default()).unwrap();
    let id = p.find_item("a").unwrap();
    stroke(&mut p, id, 1, [20.0, 20.0], [30.0, 30.0]).unwrap();
    println!("holding");
    io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = io::stdin().lock().read_line(&mut line);
}

/// Runs [`hold_child`] in another process on `dir` until the returned child's stdin closes.
fn hold_in_child(dir: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "project_faults::hold_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let start = Instant::now();
    while !line.contains("holding") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended before holding the project"
        );
        assert!(start.elapsed() < Duration::from_secs(60));
    }
    // Keep reading: the child's test harness still prints its result.
    std::thread::spawn(move || io::copy(&mut out, &mut io::sink()));
    child
}

#[test]
fn a_second_process_opens_the_project_read_only_and_says_why() {
    if std::env::var_os(HOLD_ENV).is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    std::fs::create_dir(&study).unwrap();
    let dir = Project::default_dir_for_study(&study);
    new_project(&dir);
    let mut child = hold_in_child(&dir);
    let pid = child.id();

    let err = Project::open(&dir, ProjectOptions::default()).unwrap_err();
    let AnnotationError::ProjectLocked { holder, .. } = &err else {
        panic!("expected ProjectLocked, got {err}");
    };
    assert!(holder.contains(&format!("process {pid}")), "{holder}");
    assert!(err.to_string().contains("another window"), "{err}");

    let mut ro = Project::open_read_only(&dir, ProjectOptions::default(), holder.clone()).unwrap();
    assert_eq!(ro.read_only_reason(), Some(holder.as_str()));
    let a = ro.find_item("a").unwrap();
    assert!(
        ro.mask(a, 1)
            .unwrap()
            .is_some_and(|m| m.get(25, 25) == Some(true)),
        "the other process's stroke is visible"
    );
    let refused = ro.begin_stroke(a, 1, BRUSH).unwrap_err();
    assert!(
        matches!(refused, AnnotationError::ReadOnly { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains(&format!("process {pid}")),
        "{refused}"
    );
    assert!(matches!(ro.undo(), Err(AnnotationError::ReadOnly { .. })));
    assert!(matches!(ro.save(), Err(AnnotationError::ReadOnly { .. })));
    // Slices can still be registered for viewing, in memory only.
    ro.add_item("new", 10, 10).unwrap();
    assert!(ro.is_saved());

    // The app's project opening says the same.
    let (session, report) = m2c::app::session::open_session(&study, &[], None, None).unwrap();
    assert!(session.project.read_only_reason().is_some());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("read-only") && w.contains(&format!("process {pid}"))),
        "{:?}",
        report.warnings
    );
    drop(session);

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let p = Project::open(&dir, ProjectOptions::default()).unwrap();
    assert!(
        p.read_only_reason().is_none(),
        "writable once the other process is gone"
    );
}
