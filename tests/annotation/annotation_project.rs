//! The annotation project through its public API: edits, undo/redo, persistence across
//! reopening, lazy mask loading, locking and refusal cases.
#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns fail the test by panicking"
)]

use std::fs;
use std::path::Path;

use m2c::annotation::{
    AnnotationError, Brush, Edit, ItemId, LabelClass, Mask, PasteMode, Project, ProjectOptions,
    Provenance, ReviewState, Tool,
};

const BRUSH: Brush = Brush {
    radius_px: 4.0,
    erase: false,
};

fn class(value: u8, name: &str) -> LabelClass {
    LabelClass {
        value,
        name: name.into(),
        colour: [200, 40, 40],
        concept: Some("concepts/lesion.m2cc".into()),
    }
}

fn new_project(dir: &Path) -> (Project, ItemId) {
    let mut project = Project::create(dir, None, ProjectOptions::default()).unwrap();
    project.set_class(class(1, "lesion")).unwrap();
    project.set_class(class(2, "cyst")).unwrap();
    let item = project.add_item("series-1/0001", 200, 150).unwrap();
    (project, item)
}

fn drag(project: &mut Project, item: ItemId, class: u8, points: &[[f32; 2]], brush: Brush) {
    project.begin_stroke(item, class, brush).unwrap();
    for &p in points {
        project.stroke_to(p).unwrap();
    }
    assert!(project.end_stroke().unwrap());
}

fn pixel(project: &mut Project, item: ItemId, class: u8, x: u32, y: u32) -> bool {
    project
        .mask(item, class)
        .unwrap()
        .and_then(|m| m.get(x, y))
        .unwrap_or(false)
}

#[test]
fn one_drag_is_one_undo_step() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    drag(
        &mut project,
        item,
        1,
        &[[10.0, 10.0], [60.0, 10.0], [60.0, 60.0]],
        BRUSH,
    );
    assert!(pixel(&mut project, item, 1, 35, 10));
    assert!(
        pixel(&mut project, item, 1, 60, 35),
        "no gaps between stamps"
    );
    assert_eq!(project.item(item).unwrap().state(), ReviewState::Corrected);
    assert!(project.undo().unwrap());
    assert!(!pixel(&mut project, item, 1, 35, 10));
    assert!(!pixel(&mut project, item, 1, 60, 35));
    assert_eq!(project.item(item).unwrap().state(), ReviewState::Unlabelled);
    assert!(project.redo().unwrap());
    assert!(pixel(&mut project, item, 1, 60, 35));
}

#[test]
fn eraser_and_undo_chain_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    drag(&mut project, item, 1, &[[20.0, 20.0], [80.0, 20.0]], BRUSH);
    let eraser = Brush {
        radius_px: 3.0,
        erase: true,
    };
    drag(&mut project, item, 1, &[[50.0, 10.0], [50.0, 30.0]], eraser);
    drag(&mut project, item, 2, &[[100.0, 100.0]], BRUSH);
    project.undo().unwrap(); // class 2 stamp gone
    let expected = project.mask(item, 1).unwrap().unwrap().clone();
    drop(project);

    let mut project = Project::open(dir.path(), ProjectOptions::default()).unwrap();
    assert_eq!(project.recovery().records_replayed, 7);
    assert!(!project.recovery().lost_anything());
    assert_eq!(project.mask(item, 1).unwrap(), Some(&expected));
    assert!(!pixel(&mut project, item, 1, 50, 20), "erased");
    assert!(
        !pixel(&mut project, item, 2, 100, 100),
        "undone before closing"
    );
    assert_eq!(project.class(1).unwrap().name, "lesion");
}

#[test]
fn compaction_keeps_everything_and_empties_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let options = ProjectOptions {
        compact_after_journal_bytes: 2_000,
        ..ProjectOptions::default()
    };
    let mut project = Project::create(dir.path(), None, options).unwrap();
    project.set_class(class(1, "lesion")).unwrap();
    let item = project.add_item("a", 300, 300).unwrap();
    for i in 0..40 {
        let x = 5.0 + 7.0 * (i % 40) as f32;
        drag(&mut project, item, 1, &[[x, 5.0], [x, 290.0]], BRUSH);
    }
    // Compaction runs on a helper thread; let the last one finish.
    let _ = project.wait_for_compaction();
    assert!(project.generation() > 0, "compacted at least once");
    project.set_hue_scores(&[(item, Some(0.75))]).unwrap();
    let expected = project.mask(item, 1).unwrap().unwrap().clone();
    drop(project);
    let mut project = Project::open(dir.path(), options).unwrap();
    assert_eq!(project.mask(item, 1).unwrap(), Some(&expected));
    assert_eq!(project.item(item).unwrap().hue(), Some(0.75));
    project.save().unwrap();
    let journal = fs::metadata(dir.path().join("journal.m2cj")).unwrap();
    assert_eq!(journal.len(), 16, "header only after save");
    let mask_files = fs::read_dir(dir.path().join("masks/000000"))
        .unwrap()
        .count();
    assert_eq!(mask_files, 1, "superseded mask files are removed");
}

#[test]
fn masks_load_lazily_and_can_be_released() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    drag(&mut project, item, 1, &[[30.0, 30.0]], BRUSH);
    assert!(!project.release_masks(item), "unsaved masks stay in memory");
    project.save().unwrap();
    assert!(project.release_masks(item));
    assert!(!project.item(item).unwrap().masks_loaded());
    assert!(project.undo().unwrap(), "undo reloads released masks");
    assert!(!pixel(&mut project, item, 1, 30, 30));
    project.save().unwrap();
    drop(project);
    let project = Project::open(dir.path(), ProjectOptions::default()).unwrap();
    assert!(!project.item(item).unwrap().masks_loaded());
}

#[test]
fn predictions_are_accepted_rejected_and_keep_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    let mut predicted = Mask::empty(project.item(item).unwrap().size());
    predicted.stamp_disc([100.0, 75.0], 20.0, 1);
    let provenance = Provenance::model(
        Tool::ConceptSearch,
        Some("lesion-v3".into()),
        Some("sha256:feed".into()),
    );
    project
        .apply(Edit::SetPrediction {
            item,
            masks: vec![(1, predicted.clone())],
            state: ReviewState::Flagged,
            provenance,
        })
        .unwrap();
    project.apply(Edit::AcceptPrediction { item }).unwrap();
    assert_eq!(project.item(item).unwrap().state(), ReviewState::Accepted);
    project.undo().unwrap();
    assert_eq!(project.item(item).unwrap().state(), ReviewState::Flagged);
    drop(project);

    let mut project = Project::open(dir.path(), ProjectOptions::default()).unwrap();
    let prov = project.item(item).unwrap().provenance(1).unwrap().clone();
    assert_eq!(prov.created.concept_id.as_deref(), Some("lesion-v3"));
    assert_eq!(prov.created.checkpoint_hash.as_deref(), Some("sha256:feed"));
    assert_eq!(project.mask(item, 1).unwrap(), Some(&predicted));
    project.apply(Edit::RejectPrediction { item }).unwrap();
    assert!(project.mask(item, 1).unwrap().unwrap().is_empty());
    assert_eq!(project.item(item).unwrap().state(), ReviewState::Unlabelled);
    assert!(project.item(item).unwrap().provenance(1).is_none());
}

#[test]
fn box_prompt_fill_clear_and_class_change_are_undoable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    let mut ring = Mask::empty(project.item(item).unwrap().size());
    ring.stamp_disc([50.0, 50.0], 20.0, 1);
    let mut hole = Mask::empty(ring.size());
    hole.stamp_disc([50.0, 50.0], 10.0, 1);
    let paste = |mask: Mask, mode| Edit::PasteMask {
        item,
        class: 1,
        mask,
        mode,
        provenance: Provenance::model(Tool::BoxPrompt, None, Some("sha256:feed".into())),
    };
    project.apply(paste(ring, PasteMode::Union)).unwrap();
    project.apply(paste(hole, PasteMode::Subtract)).unwrap();
    assert!(!pixel(&mut project, item, 1, 50, 50));
    let fill = Edit::Fill {
        item,
        class: 1,
        seed_image: [50, 50],
    };
    project.apply(fill).unwrap();
    assert!(pixel(&mut project, item, 1, 50, 50));
    assert!(
        !pixel(&mut project, item, 1, 5, 5),
        "fill stayed inside the ring"
    );
    let relabel = Edit::Relabel {
        item,
        from: 1,
        to: 2,
    };
    project.apply(relabel).unwrap();
    assert!(pixel(&mut project, item, 2, 50, 50));
    project.apply(Edit::Clear { item, class: None }).unwrap();
    assert!(!pixel(&mut project, item, 2, 50, 50));
    project.undo().unwrap(); // the clear
    project.undo().unwrap(); // the class change
    assert!(
        pixel(&mut project, item, 1, 50, 50),
        "back to after the fill"
    );
    assert!(!pixel(&mut project, item, 2, 50, 50));
}

#[test]
fn a_second_session_on_the_same_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_project, _) = new_project(dir.path());
    let second = Project::open(dir.path(), ProjectOptions::default());
    assert!(matches!(second, Err(AnnotationError::ProjectLocked { .. })));
}

#[test]
fn creating_over_an_existing_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = new_project(dir.path());
    drop(project);
    let again = Project::create(dir.path(), None, ProjectOptions::default());
    assert!(matches!(again, Err(AnnotationError::ProjectExists { .. })));
}

#[cfg(unix)]
#[test]
fn a_project_inside_a_read_only_study_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    fs::create_dir(&study).unwrap();
    fs::set_permissions(&study, fs::Permissions::from_mode(0o555)).unwrap();
    let inside = study.join("labels");
    let result = Project::create(&inside, Some(&study), ProjectOptions::default());
    fs::set_permissions(&study, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(
        result,
        Err(AnnotationError::ProjectInsideReadOnlyStudy { .. })
    ));
    let beside = Project::default_dir_for_study(&study);
    assert_eq!(beside, dir.path().join("study.m2c"));
    Project::create(&beside, Some(&study), ProjectOptions::default()).unwrap();
}

#[test]
fn bad_input_gives_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    assert!(matches!(
        project.add_item("big", 0, 10),
        Err(AnnotationError::InvalidImageSize { .. })
    ));
    assert!(matches!(
        project.begin_stroke(item, 9, BRUSH),
        Err(AnnotationError::UnknownClass { value: 9 })
    ));
    let nan_brush = Brush {
        radius_px: f32::NAN,
        erase: false,
    };
    assert!(matches!(
        project.begin_stroke(item, 1, nan_brush),
        Err(AnnotationError::InvalidBrushRadius { .. })
    ));
    assert!(matches!(
        project.stroke_to([1.0, 1.0]),
        Err(AnnotationError::NoStroke)
    ));
    assert!(matches!(
        project.set_hue_scores(&[(item, Some(f32::NAN))]),
        Err(AnnotationError::InvalidHue { .. })
    ));
    let wrong = Mask::empty(m2c::annotation::ImageSize::new(10, 10).unwrap());
    let paste = Edit::PasteMask {
        item,
        class: 1,
        mask: wrong,
        mode: PasteMode::Union,
        provenance: Provenance::manual(Tool::Import),
    };
    assert!(matches!(
        project.apply(paste),
        Err(AnnotationError::MaskSizeMismatch { .. })
    ));
    // A stroke far outside the image does nothing and costs nothing.
    project.begin_stroke(item, 1, BRUSH).unwrap();
    project.stroke_to([-1e30, -1e30]).unwrap();
    project.stroke_to([1e30, -1e30]).unwrap();
    project.stroke_to([f32::NAN, 3.0]).unwrap();
    assert!(!project.end_stroke().unwrap());
    assert!(project.is_saved());
}

#[test]
fn a_torn_journal_tail_is_dropped_and_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    drag(&mut project, item, 1, &[[30.0, 30.0]], BRUSH);
    drag(&mut project, item, 1, &[[90.0, 90.0]], BRUSH);
    drop(project);
    let path = dir.path().join("journal.m2cj");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let mut project = Project::open(dir.path(), ProjectOptions::default()).unwrap();
    assert!(project.recovery().dropped_bytes > 0);
    assert!(project.recovery().lost_anything());
    assert!(pixel(&mut project, item, 1, 30, 30));
    assert!(
        !pixel(&mut project, item, 1, 90, 90),
        "the torn stroke is gone"
    );
}

#[test]
fn a_new_prediction_never_overwrites_reviewed_work() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, item) = new_project(dir.path());
    drag(&mut project, item, 1, &[[30.0, 30.0]], BRUSH);
    let hand_drawn = project.mask(item, 1).unwrap().unwrap().clone();
    let prediction = Edit::SetPrediction {
        item,
        masks: vec![(1, Mask::empty(hand_drawn.size()))],
        state: ReviewState::Predicted,
        provenance: Provenance::model(Tool::ConceptSearch, Some("c".into()), None),
    };
    assert!(!project.apply(prediction).unwrap());
    assert_eq!(project.mask(item, 1).unwrap(), Some(&hand_drawn));
    assert_eq!(project.item(item).unwrap().state(), ReviewState::Corrected);
}

#[test]
fn registering_items_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut project, _) = new_project(dir.path());
    let result = project.add_items([("new-1", 10, 10), ("series-1/0001", 5, 5)]);
    assert!(matches!(
        result,
        Err(AnnotationError::ItemSizeMismatch { .. })
    ));
    assert!(project.find_item("new-1").is_none());
    assert_eq!(project.items().len(), 1);
    let id = project.add_item("new-1", 10, 10).unwrap();
    assert_eq!(id.index(), 1);
    drop(project);
    let project = Project::open(dir.path(), ProjectOptions::default()).unwrap();
    assert_eq!(project.find_item("new-1"), Some(id));
}

#[test]
fn opening_a_folder_without_a_project_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert!(matches!(
        Project::open(&missing, ProjectOptions::default()),
        Err(AnnotationError::NotAProject { .. })
    ));
    assert!(!missing.exists(), "opening creates nothing");
}
