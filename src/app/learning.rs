//! Learning and review in the window: the engine thread, "Learn concept", predictions with
//! their HUE scores, the review queue and its keys.
//!
//! - The engine ([`Engine`]) owns SAM3 on its own thread. The UI submits jobs and drains the
//!   engine's events once per frame within [`EVENT_BUDGET`], so it never waits for the model.
//! - "Learn concept" (L) searches the selected label's concept on every image a person has
//!   labelled (accepted or corrected), warm-started from the label's previous concept, then
//!   predicts every image nobody has reviewed yet, the one on screen first. Easy predictions
//!   (HUE) are auto-accepted; the rest are flagged and form the review queue, most uncertain
//!   first.
//! - Accepting an image (Enter) goes to the next flagged one and schedules a warm re-search
//!   [`RESEARCH_DELAY_SECS`] later (debounced: more accepts push it back); a new search
//!   cancels the one running. Results of superseded jobs are dropped by job id, and a
//!   prediction never overwrites an image a person has reviewed (the annotation model refuses).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::annotation::{Edit, ItemId, Mask, PasteMode, Provenance, ReviewState, Tool};
use crate::engine::{
    BoxSegmentation, ConceptFile, ConceptSpec, DevicePlan, EmbeddingSite, Engine, Event,
    ImageInput, ImageSource, JobId, Precision, PredictOptions, Prediction, Request, SearchSettings,
    SharedError, Stage, TrainingSample, concept_id,
};
use crate::study::Series;

use super::M2cApp;
use super::command::AppCommand;
use super::keymap::Action;
use super::tools::ToolKind;

/// Time per frame spent applying engine results.
pub const EVENT_BUDGET: Duration = Duration::from_millis(6);
/// Quiet time after the last accepted correction before the concept is searched again.
pub const RESEARCH_DELAY_SECS: f64 = 1.5;
/// The base prompt concepts are learned on (the M2C authors' prompt).
pub const DEFAULT_BASE_TEXT: &str = "A polyp in a colonoscopy image";
/// Probability maps kept for the uncertainty view (the most recent ones).
const PROBABILITY_MAPS: usize = 64;

/// Where the model stands, as the panel shows it.
#[derive(Debug, Clone)]
pub enum EngineStatus {
    /// No weights: manual annotation only; the text says how to enable the model.
    Off(String),
    Loading,
    Ready {
        description: String,
    },
    Failed(SharedError),
}

/// What the running job is doing, for the progress bar.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    Idle,
    Learning {
        class: u8,
        stage: Option<Stage>,
    },
    Predicting {
        class: u8,
        done: usize,
        total: usize,
    },
}

/// A probability map of one image's latest prediction.
#[derive(Debug, Clone)]
pub struct ProbabilityMap {
    pub width: u32,
    pub height: u32,
    pub values: Arc<Vec<f32>>,
    pub generation: u64,
}

/// A box prompt in flight: where its mask goes.
#[derive(Debug, Clone, Copy)]
struct BoxJob {
    id: JobId,
    item: ItemId,
    class: u8,
}

#[derive(Debug, Clone, Copy)]
struct LearnJob {
    id: JobId,
    class: u8,
}

#[derive(Debug, Clone)]
struct PredictJob {
    id: JobId,
    class: u8,
    concept_id: String,
    checkpoint: String,
    done: usize,
    total: usize,
}

/// Learning and review state of the window.
pub struct Learning {
    engine: Option<Engine>,
    /// The engine wakes the window when it sends an event (no polling while it works).
    engine_wakes_ui: bool,
    pub status: EngineStatus,
    load_job: Option<JobId>,
    checkpoint: Option<String>,
    learn: Option<LearnJob>,
    predict: Option<PredictJob>,
    boxes: Option<BoxJob>,
    stage: Option<Stage>,
    /// The latest concept of each class.
    concepts: HashMap<u8, ConceptFile>,
    probability: HashMap<ItemId, ProbabilityMap>,
    probability_order: VecDeque<ItemId>,
    next_generation: u64,
    /// Show the uncertainty heatmap instead of nothing.
    pub heatmap: bool,
    /// When (egui time) to search again after accepted corrections, and for which class.
    research_at: Option<(f64, u8)>,
    pub base_text: String,
    /// Loss of each step of the latest search.
    pub last_losses: Vec<f32>,
    /// The latest failure of a job, with what the user can do about it (cleared when the model
    /// is loaded again or a search succeeds).
    pub failure: Option<SharedError>,
    /// Learn from at most this many labelled images, the most recently labelled first (set by
    /// the "fewer images" remedy after a search ran out of memory).
    pub training_limit: Option<usize>,
    /// Class and image count of the latest search started.
    last_learn: Option<(u8, usize)>,
}

impl Default for Learning {
    fn default() -> Self {
        Self {
            engine: None,
            engine_wakes_ui: false,
            status: EngineStatus::Off(
                "No SAM3 weights: the app works as a manual annotator. Help > Get SAM3 weights… \
                 says what to download to learn concepts."
                    .to_owned(),
            ),
            load_job: None,
            checkpoint: None,
            learn: None,
            predict: None,
            boxes: None,
            stage: None,
            concepts: HashMap::new(),
            probability: HashMap::new(),
            probability_order: VecDeque::new(),
            next_generation: 1,
            heatmap: false,
            research_at: None,
            base_text: DEFAULT_BASE_TEXT.to_owned(),
            last_losses: Vec::new(),
            failure: None,
            training_limit: None,
            last_learn: None,
        }
    }
}

impl Learning {
    /// Loads SAM3 from `weights` on the planned device (on the engine thread).
    /// Its CPU kernels run on `cpu_threads` threads.
    pub fn load_model(
        &mut self,
        weights: PathBuf,
        plan: DevicePlan,
        precision: Precision,
        cpu_threads: usize,
    ) {
        let engine = self.engine.get_or_insert_with(Engine::spawn);
        engine.submit(Request::SetCpuThreads {
            threads: cpu_threads,
        });
        if let Some(job) = self.learn.take().map(|j| j.id) {
            engine.cancel(job);
        }
        if let Some(job) = self.predict.take().map(|j| j.id) {
            engine.cancel(job);
        }
        self.load_job = Some(engine.submit(Request::Load {
            weights,
            config: None,
            plan,
            precision,
        }));
        self.status = EngineStatus::Loading;
        self.checkpoint = None;
        self.failure = None;
    }

    /// Stops every job and drops the model (new settings are being applied).
    pub fn unload(&mut self) {
        self.cancel();
        self.engine = None;
        self.engine_wakes_ui = false;
        self.load_job = None;
        self.learn = None;
        self.predict = None;
        self.boxes = None;
        self.stage = None;
        self.checkpoint = None;
        self.status = Self::default().status;
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.status, EngineStatus::Ready { .. })
    }

    /// What the engine is doing.
    pub fn activity(&self) -> Activity {
        if let Some(job) = self.learn {
            Activity::Learning {
                class: job.class,
                stage: self.stage.clone(),
            }
        } else if let Some(job) = &self.predict {
            Activity::Predicting {
                class: job.class,
                done: job.done,
                total: job.total,
            }
        } else {
            Activity::Idle
        }
    }

    /// Class and image count of the latest search started.
    pub fn last_search(&self) -> Option<(u8, usize)> {
        self.last_learn
    }

    /// How many images the latest search started on.
    pub fn last_search_images(&self) -> Option<usize> {
        self.last_learn.map(|(_, n)| n)
    }

    /// The learned concept of `class`, if any.
    pub fn concept(&self, class: u8) -> Option<&ConceptFile> {
        self.concepts.get(&class)
    }

    /// The latest probability map of `item`.
    pub fn probability(&self, item: ItemId) -> Option<&ProbabilityMap> {
        self.probability.get(&item)
    }

    /// Stops the running search or prediction.
    pub fn cancel(&mut self) {
        if let Some(engine) = &self.engine {
            for job in [
                self.learn.map(|j| j.id),
                self.predict.as_ref().map(|j| j.id),
            ]
            .into_iter()
            .flatten()
            {
                engine.cancel(job);
            }
        }
        self.research_at = None;
    }

    /// Keeps the prediction's probability map (moved, not copied: this runs on the UI thread).
    fn keep_probability(&mut self, item: ItemId, p: Prediction) {
        let (Ok(width), Ok(height)) = (u32::try_from(p.width), u32::try_from(p.height)) else {
            return;
        };
        self.next_generation += 1;
        self.probability.insert(
            item,
            ProbabilityMap {
                width,
                height,
                values: Arc::new(p.probability),
                generation: self.next_generation,
            },
        );
        self.probability_order.retain(|i| *i != item);
        self.probability_order.push_back(item);
        while self.probability_order.len() > PROBABILITY_MAPS {
            if let Some(old) = self.probability_order.pop_front() {
                self.probability.remove(&old);
            }
        }
    }
}

/// Counts of the review states, for the status bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewCounts {
    pub accepted: usize,
    pub flagged: usize,
    pub auto_accepted: usize,
    pub predicted: usize,
    pub unlabelled: usize,
}

impl ReviewCounts {
    pub fn line(&self) -> String {
        format!(
            "{} accepted · {} flagged · {} auto-accepted · {} unlabelled",
            self.accepted, self.flagged, self.auto_accepted, self.unlabelled
        )
    }
}

impl M2cApp {
    /// Applies engine events until the frame's budget is spent; starts a due re-search.
    pub(super) fn drain_engine(&mut self, ctx: &egui::Context) {
        let start = Instant::now();
        if !self.learning.engine_wakes_ui
            && let Some(engine) = &self.learning.engine
        {
            let wake = ctx.clone();
            engine.set_waker(Some(Arc::new(move || wake.request_repaint())));
            self.learning.engine_wakes_ui = true;
        }
        let mut more = false;
        loop {
            if start.elapsed() >= EVENT_BUDGET {
                // Out of this frame's budget with events perhaps still waiting: next frame.
                more = true;
                break;
            }
            let Some(event) = self.learning.engine.as_mut().and_then(Engine::try_recv) else {
                break;
            };
            self.apply_engine_event(ctx, event);
        }
        if more {
            ctx.request_repaint();
        }
        if let Some((at, class)) = self.learning.research_at {
            let now = ctx.input(|i| i.time);
            if now >= at {
                self.learning.research_at = None;
                self.start_learning(class, true);
            } else {
                ctx.request_repaint_after(Duration::from_secs_f64(at - now));
            }
        }
    }

    fn apply_engine_event(&mut self, ctx: &egui::Context, event: Event) {
        let job = event.job();
        match event {
            Event::Loaded {
                description,
                checkpoint,
                ..
            } if Some(job) == self.learning.load_job => {
                self.learning.status = EngineStatus::Ready { description };
                // Concepts of another checkpoint mean nothing to this one.
                self.learning
                    .concepts
                    .retain(|_, c| c.checkpoint == checkpoint);
                self.learning.checkpoint = Some(checkpoint);
                self.toasts.info("SAM3 is ready: press L to learn a label");
            }
            Event::Progress { stage, .. } => {
                if self.learning.learn.is_some_and(|j| j.id == job) {
                    self.learning.stage = Some(stage);
                } else if let Some(p) = self.learning.predict.as_mut().filter(|p| p.id == job)
                    && let Stage::Predicting { done, total } = stage
                {
                    p.done = done;
                    p.total = total;
                }
            }
            Event::Learned {
                concept,
                losses,
                cancelled,
                ..
            } => {
                let Some(learn) = self.learning.learn.filter(|j| j.id == job) else {
                    return; // superseded
                };
                if cancelled {
                    return;
                }
                self.learning.last_losses = losses;
                self.learning.failure = None;
                self.learned(ctx, learn.class, *concept);
            }
            Event::Predicted {
                key, prediction, ..
            } => {
                let Some(p) = self.learning.predict.clone().filter(|p| p.id == job) else {
                    return;
                };
                self.apply_prediction(&p, &key, *prediction);
            }
            Event::Finished { cancelled, .. } => {
                if self.learning.learn.is_some_and(|j| j.id == job) {
                    self.learning.learn = None;
                    self.learning.stage = None;
                    if cancelled {
                        self.toasts.info("Learning cancelled");
                    }
                } else if self.learning.predict.as_ref().is_some_and(|p| p.id == job) {
                    let done = self.learning.predict.take();
                    if let (false, Some(p)) = (cancelled, done) {
                        let counts = self.review_counts();
                        self.toasts.info(format!(
                            "Predicted {} image(s): {} flagged for review, {} auto-accepted",
                            p.total, counts.flagged, counts.auto_accepted
                        ));
                    }
                } else if Some(job) == self.learning.load_job {
                    self.learning.load_job = None;
                }
            }
            Event::Failed { error, .. } => {
                let message = error.message();
                if Some(job) == self.learning.load_job {
                    self.learning.load_job = None;
                    self.learning.status = EngineStatus::Failed(Arc::clone(&error));
                    self.toasts
                        .error(format!("SAM3 could not be loaded: {message}"));
                } else if self.learning.learn.is_some_and(|j| j.id == job) {
                    self.learning.learn = None;
                    self.learning.stage = None;
                    self.toasts.error(format!("Learning failed: {message}"));
                } else if self.learning.predict.as_ref().is_some_and(|p| p.id == job) {
                    self.learning.predict = None;
                    self.toasts.error(format!("Prediction failed: {message}"));
                } else if self.learning.boxes.is_some_and(|b| b.id == job) {
                    self.learning.boxes = None;
                    self.toasts
                        .error(format!("The box could not be segmented: {message}"));
                } else {
                    return;
                }
                self.learning.failure = Some(error);
            }
            Event::BoxSegmented { key, result, .. } => {
                let Some(b) = self.learning.boxes.filter(|b| b.id == job) else {
                    return;
                };
                self.learning.boxes = None;
                self.apply_box(b, &key, result.as_deref());
            }
            Event::Loaded { .. } => {}
        }
    }

    /// Segments the object inside `box_image` on the image on screen, with the selected label.
    pub(super) fn segment_box(&mut self, box_image: [f32; 4]) {
        if !self.learning.is_ready() {
            self.toasts.warn(
                "The box tool needs SAM3: Help > Get SAM3 weights… says what to download; the \
                 brush works without it",
            );
            return;
        }
        let Some((series_index, index)) = self.study.shown() else {
            return;
        };
        let Some(series) = self.study.series().get(series_index).cloned() else {
            return;
        };
        let class = self.tools.class;
        let Some(session) = self.session.as_ref() else {
            self.explain_no_session();
            return;
        };
        let Some(item) = session.item_at(series_index, index) else {
            return;
        };
        if session.project.class(class).is_none() {
            self.toasts.warn("Add a label first");
            return;
        }
        let Some(key) = session.project.item(item).map(|i| i.key().to_owned()) else {
            return;
        };
        let window = self.study.window();
        let Some(engine) = self.learning.engine.as_mut() else {
            return;
        };
        if let Some(old) = self.learning.boxes.take() {
            engine.cancel(old.id);
        }
        let id = engine.submit(Request::SegmentBox {
            input: ImageInput {
                key,
                source: ImageSource::Slice {
                    series: Arc::new(series),
                    index,
                    window,
                },
            },
            box_xyxy: box_image,
        });
        self.learning.boxes = Some(BoxJob { id, item, class });
    }

    fn apply_box(&mut self, job: BoxJob, key: &str, result: Option<&BoxSegmentation>) {
        let Some(seg) = result else {
            self.toasts
                .info("Nothing was found inside the box: draw it closer around the object");
            return;
        };
        let checkpoint = self.learning.checkpoint.clone();
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(size) = session.project.item(job.item).map(|i| i.size()) else {
            return;
        };
        let bytes = seg.mask.iter().map(|&m| u8::from(m)).collect();
        let Some(mask) = Mask::from_bytes(size, bytes) else {
            self.toasts
                .error(format!("The box result for {key} does not fit the image"));
            return;
        };
        let edit = Edit::PasteMask {
            item: job.item,
            class: job.class,
            mask,
            mode: PasteMode::Union,
            provenance: Provenance::model(Tool::BoxPrompt, None, checkpoint),
        };
        match session.project.apply(edit) {
            Ok(_) => {
                session.touch();
                self.toasts.info(format!(
                    "Segmented with {} (score {:.2}); Ctrl+Z undoes it",
                    seg.source, seg.score
                ));
            }
            Err(e) => self
                .toasts
                .error(format!("Could not add the box's mask: {e}")),
        }
    }

    /// Every series as a shared handle, for image sources.
    fn series_handles(&self) -> Vec<Arc<Series>> {
        self.study.series().iter().cloned().map(Arc::new).collect()
    }

    /// Starts a search of `class`'s concept on the labelled images (warm-started when the
    /// class has one); `quiet` skips the toasts of the automatic re-search.
    pub(super) fn start_learning(&mut self, class: u8, quiet: bool) {
        if !self.learning.is_ready() {
            if !quiet {
                let why = match &self.learning.status {
                    EngineStatus::Loading => "SAM3 is still loading".to_owned(),
                    EngineStatus::Off(why) => why.clone(),
                    EngineStatus::Failed(error) => error.message(),
                    EngineStatus::Ready { .. } => String::new(),
                };
                self.toasts.warn(why);
            }
            return;
        }
        self.end_stroke();
        let series = self.series_handles();
        let Some(session) = self.session.as_mut() else {
            self.explain_no_session();
            return;
        };
        let Some(name) = session.project.class(class).map(|c| c.name.clone()) else {
            return;
        };
        let mut training = Vec::new();
        for (s, items) in session.items.clone().iter().enumerate() {
            for (index, &item) in items.iter().enumerate() {
                let Some(info) = session.project.item(item) else {
                    continue;
                };
                if !matches!(info.state(), ReviewState::Accepted | ReviewState::Corrected) {
                    continue;
                }
                let key = info.key().to_owned();
                let size = info.size();
                let labelled_ms = info
                    .provenance(class)
                    .map_or(0, |p| p.modified.time_unix_ms);
                let mask = match session.project.mask(item, class) {
                    Ok(Some(mask)) => mask.as_bytes().iter().map(|&b| b != 0).collect(),
                    Ok(None) => vec![false; size.area()],
                    Err(e) => {
                        self.toasts
                            .error(format!("Could not read the masks of {key}: {e}"));
                        return;
                    }
                };
                let Some(series) = series.get(s) else {
                    continue;
                };
                training.push((
                    labelled_ms,
                    TrainingSample {
                        input: ImageInput {
                            key,
                            source: ImageSource::Slice {
                                series: Arc::clone(series),
                                index,
                                window: None,
                            },
                        },
                        mask: Arc::new(mask),
                    },
                ));
            }
        }
        if let Some(limit) = self.learning.training_limit
            && training.len() > limit
        {
            // The most recently labelled first: the newest corrections always take part.
            training.sort_by_key(|t| std::cmp::Reverse(t.0));
            training.truncate(limit.max(1));
        }
        let training: Vec<TrainingSample> = training.into_iter().map(|(_, t)| t).collect();
        let positives = training
            .iter()
            .filter(|t| t.mask.iter().any(|&m| m))
            .count();
        if positives == 0 {
            if !quiet {
                self.toasts.warn(format!(
                    "Paint {name} on at least one image first: the concept is learned from \
                     the images you labelled"
                ));
            }
            return;
        }
        let warm = self
            .learning
            .concepts
            .get(&class)
            .filter(|c| c.base_text == self.learning.base_text)
            .map(|c| c.phi.clone());
        let spec = ConceptSpec {
            name,
            base_text: self.learning.base_text.clone(),
            site: EmbeddingSite::TextInput,
            settings: SearchSettings::default(),
        };
        let Some(engine) = self.learning.engine.as_mut() else {
            return;
        };
        for job in [
            self.learning.learn.map(|j| j.id),
            self.learning.predict.as_ref().map(|p| p.id),
        ]
        .into_iter()
        .flatten()
        {
            engine.cancel(job);
        }
        self.learning.predict = None;
        let images = training.len();
        let id = engine.submit(Request::Learn {
            spec,
            training,
            warm_start: warm,
        });
        self.learning.learn = Some(LearnJob { id, class });
        self.learning.last_learn = Some((class, images));
        self.learning.stage = None;
        if !quiet {
            self.toasts.info(format!(
                "Learning from {positives} labelled image(s)… (Esc in the panel's Cancel stops it)"
            ));
        }
    }

    /// A concept arrived: keep it (and save it in the project folder), then predict every
    /// image nobody has reviewed yet, the one on screen first.
    fn learned(&mut self, ctx: &egui::Context, class: u8, concept: ConceptFile) {
        let _ = ctx;
        if let Some(session) = self.session.as_mut() {
            let dir = session.project.root().join("concepts");
            let path = dir.join(format!("label-{class}.m2c"));
            let saved = std::fs::create_dir_all(&dir)
                .map_err(|e| e.to_string())
                .and_then(|()| concept.save(&path).map_err(|e| e.to_string()));
            match saved {
                Ok(()) => {
                    if let Some(mut c) = session.project.class(class).cloned()
                        && c.concept.as_ref() != Some(&path)
                    {
                        c.concept = Some(path);
                        if let Err(e) = session.project.set_class(c) {
                            self.toasts.warn(format!("Could not link the concept: {e}"));
                        }
                    }
                }
                Err(e) => self.toasts.warn(format!(
                    "The concept could not be saved ({e}); it stays in memory"
                )),
            }
        }
        self.learning.concepts.insert(class, concept.clone());
        self.start_predicting(class, &concept);
    }

    fn start_predicting(&mut self, class: u8, concept: &ConceptFile) {
        let series = self.series_handles();
        let shown = self.study.shown();
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let mut images = Vec::new();
        let mut first = Vec::new();
        for (s, items) in session.items.iter().enumerate() {
            for (index, &item) in items.iter().enumerate() {
                let Some(info) = session.project.item(item) else {
                    continue;
                };
                if matches!(info.state(), ReviewState::Accepted | ReviewState::Corrected) {
                    continue;
                }
                let Some(series) = series.get(s) else {
                    continue;
                };
                let input = ImageInput {
                    key: info.key().to_owned(),
                    source: ImageSource::Slice {
                        series: Arc::clone(series),
                        index,
                        window: None,
                    },
                };
                if shown == Some((s, index)) {
                    first.push(input);
                } else {
                    images.push(input);
                }
            }
        }
        first.extend(images);
        let total = first.len();
        if total == 0 {
            return;
        }
        let Some(engine) = self.learning.engine.as_mut() else {
            return;
        };
        let id = engine.submit(Request::Predict {
            concept: Box::new(concept.clone()),
            images: first,
            options: PredictOptions::default(),
        });
        self.learning.predict = Some(PredictJob {
            id,
            class,
            concept_id: concept_id(concept),
            checkpoint: concept.checkpoint.clone(),
            done: 0,
            total,
        });
    }

    fn apply_prediction(&mut self, job: &PredictJob, key: &str, p: Prediction) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(item) = session.project.find_item(key) else {
            return;
        };
        let Some(size) = session.project.item(item).map(|i| i.size()) else {
            return;
        };
        let bytes = p.mask.iter().map(|&m| u8::from(m)).collect();
        let Some(mask) = Mask::from_bytes(size, bytes) else {
            self.toasts
                .error(format!("The prediction for {key} does not fit the image"));
            return;
        };
        let state = if p.hue.easy {
            ReviewState::AutoAccepted
        } else {
            ReviewState::Flagged
        };
        let edit = Edit::SetPrediction {
            item,
            masks: vec![(job.class, mask)],
            state,
            provenance: Provenance::model(
                Tool::ConceptSearch,
                Some(job.concept_id.clone()),
                Some(job.checkpoint.clone()),
            ),
        };
        let result = session.project.apply(edit).and_then(|changed| {
            if changed {
                session
                    .project
                    .set_hue_scores(&[(item, Some(p.hue.score))])?;
            }
            Ok(changed)
        });
        match result {
            Ok(true) => {
                session.touch();
                self.learning.keep_probability(item, p);
            }
            Ok(false) => {}
            Err(e) => self
                .toasts
                .error(format!("Could not store the prediction for {key}: {e}")),
        }
        if let Some(pj) = self.learning.predict.as_mut() {
            pj.done += 1;
        }
    }

    /// The flagged images, most uncertain first.
    pub fn review_queue(&self) -> Vec<ItemId> {
        let Some(session) = &self.session else {
            return Vec::new();
        };
        let mut flagged: Vec<(ItemId, f32)> = session
            .items
            .iter()
            .flatten()
            .filter_map(|&id| {
                let info = session.project.item(id)?;
                (info.state() == ReviewState::Flagged).then(|| (id, info.hue().unwrap_or(0.0)))
            })
            .collect();
        flagged.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        flagged.into_iter().map(|(id, _)| id).collect()
    }

    /// Counts of every review state over the open study.
    pub fn review_counts(&self) -> ReviewCounts {
        let mut counts = ReviewCounts::default();
        let Some(session) = &self.session else {
            return counts;
        };
        for &id in session.items.iter().flatten() {
            match session.project.item(id).map(|i| i.state()) {
                Some(ReviewState::Accepted | ReviewState::Corrected) => counts.accepted += 1,
                Some(ReviewState::Flagged) => counts.flagged += 1,
                Some(ReviewState::AutoAccepted) => counts.auto_accepted += 1,
                Some(ReviewState::Predicted) => counts.predicted += 1,
                Some(ReviewState::Unlabelled) | None => counts.unlabelled += 1,
            }
        }
        counts
    }

    /// The item on screen.
    fn shown_item(&self) -> Option<ItemId> {
        let (series, index) = self.study.shown()?;
        self.session.as_ref()?.item_at(series, index)
    }

    /// Where `item` is: (series, slice).
    fn locate_item(&self, item: ItemId) -> Option<(usize, usize)> {
        let session = self.session.as_ref()?;
        session.items.iter().enumerate().find_map(|(s, items)| {
            items
                .iter()
                .position(|&i| i == item)
                .map(|index| (s, index))
        })
    }

    /// Shows the next (`forward`) or previous flagged image in queue order.
    fn step_flagged(&mut self, ctx: &egui::Context, forward: bool) {
        let queue = self.review_queue();
        if queue.is_empty() {
            self.toasts.info("No image is flagged for review");
            return;
        }
        let current = self
            .shown_item()
            .and_then(|item| queue.iter().position(|&q| q == item));
        let next = match (current, forward) {
            (Some(i), true) => (i + 1) % queue.len(),
            (Some(i), false) => (i + queue.len() - 1) % queue.len(),
            (None, true) => 0,
            (None, false) => queue.len() - 1,
        };
        if let Some((series, index)) = queue.get(next).and_then(|&i| self.locate_item(i)) {
            self.end_stroke();
            self.study.select(series, index, ctx, &self.study_tx);
        }
    }

    fn accept_and_next(&mut self, ctx: &egui::Context) {
        self.end_stroke();
        let Some(item) = self.shown_item() else {
            return;
        };
        let Some(session) = self.session.as_mut() else {
            self.explain_no_session();
            return;
        };
        let before = session.project.item(item).map(|i| i.state());
        match session.project.apply(Edit::AcceptPrediction { item }) {
            Ok(_) => session.touch(),
            Err(e) => {
                self.toasts.error(format!("Accepting failed: {e}"));
                return;
            }
        }
        // A person's decision on a prediction teaches the concept: search again soon.
        let class = self.tools.class;
        if before != Some(ReviewState::Accepted) && self.learning.concepts.contains_key(&class) {
            let at = ctx.input(|i| i.time) + RESEARCH_DELAY_SECS;
            self.learning.research_at = Some((at, class));
        }
        if !self.review_queue().is_empty() {
            self.step_flagged(ctx, true);
        }
    }

    fn reject_prediction(&mut self) {
        let Some(item) = self.shown_item() else {
            return;
        };
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let state = session.project.item(item).map(|i| i.state());
        if !matches!(
            state,
            Some(ReviewState::Predicted | ReviewState::Flagged | ReviewState::AutoAccepted)
        ) {
            self.toasts
                .info("Only a model's prediction can be rejected (Ctrl+Z undoes your own edits)");
            return;
        }
        match session.project.apply(Edit::RejectPrediction { item }) {
            Ok(_) => session.touch(),
            Err(e) => self.toasts.error(format!("Rejecting failed: {e}")),
        }
    }

    pub(super) fn perform_learning(&mut self, ctx: &egui::Context, action: Action) {
        match action {
            Action::LearnConcept => self.start_learning(self.tools.class, false),
            Action::NextFlagged => self.step_flagged(ctx, true),
            Action::PreviousFlagged => self.step_flagged(ctx, false),
            Action::AcceptAndNext => self.accept_and_next(ctx),
            Action::RejectPrediction => self.reject_prediction(),
            Action::ToggleHeatmap => self.learning.heatmap = !self.learning.heatmap,
            Action::BoxTool => self.tools.kind = ToolKind::Box,
            Action::Settings => self.open_settings(),
            _ => {}
        }
    }
}

/// A button for `action` with its tooltip and shortcut.
fn action_button(ui: &mut egui::Ui, action: Action, enabled: bool, commands: &mut Vec<AppCommand>) {
    let shortcut = action
        .shortcut()
        .map(|s| ui.ctx().format_shortcut(&s))
        .unwrap_or_default();
    let button = egui::Button::new(action.label()).shortcut_text(shortcut);
    if ui
        .add_enabled(enabled, button)
        .on_hover_text(action.tooltip())
        .clicked()
    {
        commands.push(AppCommand::Perform(action));
    }
}

impl M2cApp {
    /// The "Concept" section of the side panel: model state, Learn, progress with Cancel, and
    /// the review queue.
    pub(super) fn learning_panel_ui(&self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        ui.heading("Concept");
        match &self.learning.status {
            EngineStatus::Off(why) => {
                ui.label(why.as_str());
            }
            EngineStatus::Loading => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Loading SAM3…");
                });
            }
            EngineStatus::Ready { description } => {
                ui.label("SAM3 ready").on_hover_text(description.as_str());
            }
            EngineStatus::Failed(error) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("SAM3 could not be loaded: {}", error.message()),
                );
            }
        }
        if let Some(error) = &self.learning.failure {
            self.remedies_ui(ui, error, commands);
        }
        let class = self
            .session
            .as_ref()
            .and_then(|s| s.project.class(self.tools.class))
            .map(|c| c.name.clone());
        if let Some(name) = &class {
            let learned = match self.learning.concept(self.tools.class) {
                Some(c) => format!(
                    "{name}: learned from {} image(s){}",
                    c.training_masks.len(),
                    c.final_loss
                        .map(|l| format!(", loss {l:.3}"))
                        .unwrap_or_default()
                ),
                None => format!("{name}: not learned yet"),
            };
            ui.label(learned);
        }
        let activity = self.learning.activity();
        let idle = activity == Activity::Idle;
        action_button(
            ui,
            Action::LearnConcept,
            self.learning.is_ready() && self.session.is_some() && class.is_some() && idle,
            commands,
        );
        match activity {
            Activity::Idle => {}
            Activity::Learning { stage, .. } => {
                let (text, fraction) = match stage {
                    None => ("Starting…".to_owned(), 0.0),
                    Some(Stage::Encoding { done, total }) => (
                        format!("Encoding images {done}/{total}"),
                        done as f32 / total.max(1) as f32 * 0.1,
                    ),
                    Some(Stage::Searching(p)) => (
                        format!(
                            "Step {}/{} · loss {:.3} · {:.0} s left",
                            p.step,
                            p.steps,
                            p.loss,
                            p.eta.as_secs_f64().ceil()
                        ),
                        0.1 + 0.9 * p.step as f32 / p.steps.max(1) as f32,
                    ),
                    Some(Stage::Predicting { done, total }) => (
                        format!("Predicting {done}/{total}"),
                        done as f32 / total.max(1) as f32,
                    ),
                };
                ui.add(egui::ProgressBar::new(fraction).text(text));
                if ui.button("Cancel").clicked() {
                    commands.push(AppCommand::CancelLearning);
                }
            }
            Activity::Predicting { done, total, .. } => {
                ui.add(
                    egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                        .text(format!("Predicting {done}/{total}")),
                );
                if ui.button("Cancel").clicked() {
                    commands.push(AppCommand::CancelLearning);
                }
            }
        }
        let counts = self.review_counts();
        if counts.flagged + counts.auto_accepted + counts.predicted > 0 {
            ui.add_space(6.0);
            ui.label(format!("Review: {} flagged", counts.flagged));
            ui.horizontal_wrapped(|ui| {
                let any = counts.flagged > 0;
                action_button(ui, Action::PreviousFlagged, any, commands);
                action_button(ui, Action::NextFlagged, any, commands);
            });
            ui.horizontal_wrapped(|ui| {
                action_button(ui, Action::AcceptAndNext, true, commands);
                action_button(ui, Action::RejectPrediction, true, commands);
            });
            let mut heatmap = self.learning.heatmap;
            if ui
                .checkbox(&mut heatmap, Action::ToggleHeatmap.label())
                .on_hover_text(Action::ToggleHeatmap.tooltip())
                .changed()
            {
                commands.push(AppCommand::Perform(Action::ToggleHeatmap));
            }
        }
    }
}
