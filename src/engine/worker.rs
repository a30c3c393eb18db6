//! The engine thread: owns SAM3 and the cached image features, runs jobs one at a time off the
//! caller's thread, and reports through a channel the caller drains when it likes (the app:
//! once per frame, within a time budget). Nothing here blocks the caller.
//!
//! - Every [`Request`] gets a [`JobId`]; [`Engine::cancel`] sets its flag. A queued job whose
//!   flag is set is skipped (reported as cancelled); a running search stops after its current
//!   step and reports the φ it reached. The caller discards results of jobs it has superseded
//!   (compare job ids), so a debounced re-search is: cancel the old job, submit a new one.
//! - Image features are cached by the caller's key (e.g. series + slice) within a byte budget,
//!   oldest first out, and dropped when another model is loaded.
//! - A panic inside a job (e.g. a device error) is caught and reported as a failure; the thread
//!   keeps serving.
//! - An optional memory limit ([`MEMORY_LIMIT_ENV`], or [`Request::SetMemoryLimit`]) is checked
//!   against an estimate before every large allocation (an image encode, a search over its
//!   images, a prediction): a job that would exceed it fails at once with
//!   [`EngineError::OutOfMemory`] and its remedies, instead of exhausting a shared GPU (or the
//!   driver) part-way through.
//! - Jobs run inside a CPU thread pool of a fixed size ([`Engine::with_options`],
//!   [`Request::SetCpuThreads`]), so a search on the CPU leaves the UI thread its core.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::compute::ComputePool;
use super::concept::{
    BoxSegmentation, CachedImage, ConceptSpec, OwnedRgb, PredictOptions, Prediction, TrainingImage,
};
use super::device::DevicePlan;
use super::error::{EngineError, SharedError, Task};
use super::inference::{Segmenter, TrackerImage};
use super::settings::Precision;
use crate::concept::file::ConceptFile;
use crate::concept::{SearchControl, SearchProgress};
use crate::study::{self, Series, WindowLevel};

pub use super::error::JobId;

/// Default budget for cached image features (full-size SAM3: ≈ 111 MB per image).
pub const DEFAULT_CACHE_BYTES: usize = 2 << 30;

/// Environment variable capping the memory (MiB) the engine may plan to use for one job.
pub const MEMORY_LIMIT_ENV: &str = "M2C_MEMORY_LIMIT_MB";

/// The limit given by [`MEMORY_LIMIT_ENV`], in bytes (unset, empty or unreadable: none).
fn memory_limit_from_env() -> Option<u64> {
    let text = std::env::var(MEMORY_LIMIT_ENV).ok()?;
    match text.trim().parse::<u64>() {
        Ok(mib) => Some(mib.saturating_mul(1 << 20)),
        Err(_) => {
            tracing::warn!("{MEMORY_LIMIT_ENV}={text:?} is not a number of MiB; no memory limit");
            None
        }
    }
}

/// Refuses a step needing `need` bytes when a limit is set and `need` exceeds it.
fn check_memory(limit: Option<u64>, need: u64, what: &str) -> Result<(), EngineError> {
    match limit {
        Some(limit) if need > limit => Err(EngineError::OutOfMemory {
            message: format!(
                "{what} needs about {} MiB, over the engine's memory limit of {} MiB \
                 ({MEMORY_LIMIT_ENV})",
                need.div_ceil(1 << 20),
                limit >> 20
            ),
        }),
        _ => Ok(()),
    }
}

/// An image to work on, with the caller's stable key for the feature cache.
#[derive(Debug, Clone)]
pub struct ImageInput {
    pub key: String,
    pub source: ImageSource,
}

/// Where an image's pixels come from. Slices are decoded on the engine thread, and only when
/// their features are not cached.
#[derive(Debug, Clone)]
pub enum ImageSource {
    Rgb(Arc<OwnedRgb>),
    /// Slice `index` of a series; grayscale slices go through `window` (default: the slice's
    /// own window, as the viewer first shows it) and are replicated into R, G and B.
    Slice {
        series: Arc<Series>,
        index: usize,
        window: Option<WindowLevel>,
    },
}

impl ImageSource {
    /// Width and height in pixels, without decoding.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Self::Rgb(rgb) => (rgb.width, rgb.height),
            Self::Slice { series, .. } => (
                usize::try_from(series.width).unwrap_or(0),
                usize::try_from(series.height).unwrap_or(0),
            ),
        }
    }

    /// The RGB pixels SAM3 receives.
    pub fn rgb(&self) -> Result<Arc<OwnedRgb>, EngineError> {
        match self {
            Self::Rgb(rgb) => Ok(Arc::clone(rgb)),
            Self::Slice {
                series,
                index,
                window,
            } => {
                let slice = series.load_slice(*index)?;
                let window = window.unwrap_or_else(|| study::default_window(&slice));
                let rgb = study::rgb8_from_slice(&slice, window);
                Ok(Arc::new(OwnedRgb {
                    width: usize::try_from(rgb.width).unwrap_or(0),
                    height: usize::try_from(rgb.height).unwrap_or(0),
                    data: rgb.data,
                }))
            }
        }
    }
}

/// A labelled image for a search: the mask at the image's size, row-major.
#[derive(Debug, Clone)]
pub struct TrainingSample {
    pub input: ImageInput,
    pub mask: Arc<Vec<bool>>,
}

/// What the engine can be asked to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// Loads (or replaces) the model.
    Load {
        weights: PathBuf,
        config: Option<PathBuf>,
        plan: DevicePlan,
        precision: Precision,
    },
    /// Learns a concept from labelled images (encoding those not cached yet).
    Learn {
        spec: ConceptSpec,
        training: Vec<TrainingSample>,
        warm_start: Option<Vec<f32>>,
    },
    /// Sets (or, with `None`, lifts) the engine's memory limit in bytes for later jobs.
    SetMemoryLimit { bytes: Option<u64> },
    /// Sets how many CPU threads later jobs compute with (the CPU backend; at least 1).
    SetCpuThreads { threads: usize },
    /// Predicts a concept on images, one event per image as it is done.
    Predict {
        concept: Box<ConceptFile>,
        images: Vec<ImageInput>,
        options: PredictOptions,
    },
    /// Drops an image's cached features (its pixels changed).
    Forget { key: String },
    /// Segments the one object inside a box (image pixels: x0, y0, x1, y1).
    SegmentBox {
        input: ImageInput,
        box_xyxy: [f32; 4],
    },
}

impl Request {
    /// What the job does, for its error's context.
    pub fn task(&self) -> Task {
        match self {
            Self::Load { .. } => Task::Load,
            Self::Learn { .. } => Task::Learn,
            Self::Predict { .. } => Task::Predict,
            Self::Forget { .. } => Task::Forget,
            Self::SegmentBox { .. } => Task::SegmentBox,
            Self::SetMemoryLimit { .. } | Self::SetCpuThreads { .. } => Task::Configure,
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Running the image encoder on images not cached yet.
    Encoding {
        done: usize,
        total: usize,
    },
    Searching(SearchProgress),
    Predicting {
        done: usize,
        total: usize,
    },
}

/// What the engine reports.
#[derive(Debug, Clone)]
pub enum Event {
    Loaded {
        job: JobId,
        /// The device, config and tokenizer, for the status bar.
        description: String,
        checkpoint: String,
    },
    Progress {
        job: JobId,
        stage: Stage,
    },
    Learned {
        job: JobId,
        concept: Box<ConceptFile>,
        losses: Vec<f32>,
        cancelled: bool,
    },
    Predicted {
        job: JobId,
        key: String,
        prediction: Box<Prediction>,
    },
    /// The object inside a box (`None`: the model found nothing there).
    BoxSegmented {
        job: JobId,
        key: String,
        result: Option<Box<BoxSegmentation>>,
    },
    /// The job ended (after its results); `cancelled` when it stopped on request.
    Finished {
        job: JobId,
        cancelled: bool,
    },
    /// The job failed: an [`EngineError::Job`] naming the job, what it was doing and the image
    /// it was on. The engine keeps running.
    Failed {
        job: JobId,
        error: SharedError,
    },
}

impl Event {
    /// The job this event belongs to.
    pub fn job(&self) -> JobId {
        match self {
            Self::Loaded { job, .. }
            | Self::Progress { job, .. }
            | Self::Learned { job, .. }
            | Self::Predicted { job, .. }
            | Self::BoxSegmented { job, .. }
            | Self::Finished { job, .. }
            | Self::Failed { job, .. } => *job,
        }
    }
}

struct Job {
    id: JobId,
    cancel: Arc<AtomicBool>,
    request: Request,
}

/// Handle to the engine thread. Dropping it cancels every job and lets the thread end after
/// the current step.
#[derive(Debug)]
pub struct Engine {
    jobs: Option<Sender<Job>>,
    events: Receiver<Event>,
    waker: SharedWaker,
    next: JobId,
    cancels: HashMap<JobId, Arc<AtomicBool>>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the engine thread with the default feature-cache budget.
    pub fn spawn() -> Self {
        Self::with_cache_budget(DEFAULT_CACHE_BYTES)
    }

    /// Starts the engine thread caching at most `cache_bytes` of image features.
    pub fn with_cache_budget(cache_bytes: usize) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (events_tx, events_rx) = mpsc::channel();
        let waker = SharedWaker::default();
        let sink = EventSink {
            tx: events_tx,
            waker: Arc::clone(&waker),
        };
        let thread = std::thread::Builder::new()
            .name("m2c-engine".to_owned())
            .spawn(move || serve(&jobs_rx, &sink, cache_bytes))
            .ok();
        Self {
            jobs: Some(jobs_tx),
            events: events_rx,
            waker,
            next: 1,
            cancels: HashMap::new(),
            thread,
        }
    }

    /// Queues a request; returns at once.
    pub fn submit(&mut self, request: Request) -> JobId {
        let id = self.next;
        self.next += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels.insert(id, Arc::clone(&cancel));
        let job = Job {
            id,
            cancel,
            request,
        };
        // A send fails only if the thread is gone; the caller then sees no events for this
        // job, and `is_running` says why.
        if let Some(tx) = &self.jobs {
            let _ = tx.send(job);
        }
        id
    }

    /// Asks a job to stop (skipped if still queued; a search stops after its current step).
    pub fn cancel(&self, job: JobId) {
        if let Some(flag) = self.cancels.get(&job) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// Calls `waker` on the engine thread after every event it sends from now on (the app
    /// passes `egui::Context::request_repaint`), so the caller learns of results without
    /// polling. `None` removes it.
    pub fn set_waker(&self, waker: Option<Waker>) {
        if let Ok(mut slot) = self.waker.0.lock() {
            *slot = waker;
        }
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        let event = self.events.try_recv().ok()?;
        self.forget_finished(&event);
        Some(event)
    }

    /// The next event, waiting at most `timeout` (for headless callers and tests).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Event> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => {
                self.forget_finished(&event);
                Some(event)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Whether the engine thread is alive.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn forget_finished(&mut self, event: &Event) {
        if matches!(event, Event::Finished { .. } | Event::Failed { .. }) {
            self.cancels.remove(&event.job());
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for flag in self.cancels.values() {
            flag.store(true, Ordering::Relaxed);
        }
        // Closing the queue ends the thread after its current job; not joined, so dropping
        // never waits on the device.
        self.jobs = None;
    }
}

/// The engine thread's state.
struct Worker {
    model: Option<Segmenter>,
    cache: FeatureCache,
    /// Bytes a job may plan to use (`None`: no limit).
    memory_limit: Option<u64>,
    /// The interactive head's features of the last few images boxes were drawn on.
    tracker_images: VecDeque<(String, TrackerImage)>,
    /// The CPU threads jobs run in (`None`: rayon's global pool, every core).
    pool: Option<ComputePool>,
}

/// Images whose interactive-head features are kept (boxes are drawn on the image on screen).
const TRACKER_IMAGES: usize = 4;

/// Called on the engine thread after each event it sends.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Where the engine thread finds the current waker.
#[derive(Default)]
struct WakerSlot(Mutex<Option<Waker>>);

impl std::fmt::Debug for WakerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.lock().map(|w| w.is_some()).unwrap_or(false);
        f.debug_struct("WakerSlot").field("set", &set).finish()
    }
}

type SharedWaker = Arc<WakerSlot>;

/// The engine thread's end of the event channel: sends, then wakes the caller.
struct EventSink {
    tx: Sender<Event>,
    waker: SharedWaker,
}

impl EventSink {
    fn send(&self, event: Event) -> Result<(), mpsc::SendError<Event>> {
        self.tx.send(event)?;
        let wake = self.waker.0.lock().ok().and_then(|slot| slot.clone());
        if let Some(wake) = wake {
            wake();
        }
        Ok(())
    }
}

fn serve(jobs: &Receiver<Job>, events: &EventSink, cache_bytes: usize) {
    let mut worker = Worker {
        model: None,
        cache: FeatureCache::new(cache_bytes),
        memory_limit: memory_limit_from_env(),
        tracker_images: VecDeque::new(),
        pool: None,
    };
    for job in jobs {
        let id = job.id;
        let task = job.request.task();
        if job.cancel.load(Ordering::Relaxed) {
            let _ = events.send(Event::Finished {
                job: id,
                cancelled: true,
            });
            continue;
        }
        // One span per job: `RUST_LOG=m2c=debug` prints its duration, and the model stages
        // inside it, when it closes.
        let span = tracing::debug_span!("engine_job", job = ?id, task = ?task);
        let pool = worker.pool.clone();
        let outcome = span.in_scope(|| {
            let run = || {
                std::panic::catch_unwind(AssertUnwindSafe(|| {
                    worker.run(id, &job.cancel, job.request, events)
                }))
            };
            match &pool {
                Some(pool) => pool.install(run),
                None => run(),
            }
        });
        let end = match outcome {
            Ok(Ok(())) => Event::Finished {
                job: id,
                cancelled: job.cancel.load(Ordering::Relaxed),
            },
            Ok(Err(err)) => Event::Failed {
                job: id,
                error: Arc::new(err.in_job(id, task)),
            },
            Err(panic) => Event::Failed {
                job: id,
                error: Arc::new(EngineError::from_panic(&*panic).in_job(id, task)),
            },
        };
        if events.send(end).is_err() {
            return; // nobody listens any more
        }
    }
}

/// The interactive head's features of `input`, from the small cache or computed now.
fn tracker_image(
    cache: &mut VecDeque<(String, TrackerImage)>,
    model: &Segmenter,
    input: &ImageInput,
) -> Result<TrackerImage, EngineError> {
    if let Some((_, image)) = cache
        .iter()
        .find(|(k, image)| *k == input.key && (image.width, image.height) == input.source.size())
    {
        return Ok(image.clone());
    }
    cache.retain(|(k, _)| *k != input.key);
    let rgb = input.source.rgb()?;
    let image = model.encode_tracker_image(&rgb.view())?;
    cache.push_back((input.key.clone(), image.clone()));
    while cache.len() > TRACKER_IMAGES {
        cache.pop_front();
    }
    Ok(image)
}

impl Worker {
    fn run(
        &mut self,
        job: JobId,
        cancel: &Arc<AtomicBool>,
        request: Request,
        events: &EventSink,
    ) -> Result<(), EngineError> {
        let send = |event| {
            let _ = events.send(event);
        };
        match request {
            Request::Load {
                weights,
                config,
                plan,
                precision,
            } => {
                // Free the old model and its features before loading the new one.
                self.model = None;
                self.cache.clear();
                self.tracker_images.clear();
                let mut model = Segmenter::load_with_precision(
                    &weights,
                    config.as_deref(),
                    &plan,
                    precision.into(),
                )?;
                // The interactive head is optional: without its weights, boxes go through
                // the detector.
                let boxes = match model.load_tracker(&weights, None) {
                    Ok(()) => "box tool: SAM3 interactive head".to_owned(),
                    Err(e) => format!("box tool: SAM3 detector ({e})"),
                };
                send(Event::Loaded {
                    job,
                    description: format!(
                        "{}; config: {}; tokenizer: {}; {boxes}",
                        plan.device_line(),
                        model.config_source,
                        model.tokenizer_source
                    ),
                    checkpoint: model.checkpoint_id().to_owned(),
                });
                self.model = Some(model);
            }
            Request::SetMemoryLimit { bytes } => self.memory_limit = bytes,
            Request::SetCpuThreads { threads } => {
                let pool = ComputePool::new(threads)?;
                tracing::info!("the engine computes with {} CPU threads", pool.threads());
                self.pool = Some(pool);
            }
            #[cfg(test)]
            Request::Forget { key } if key == tests::PANIC_IN_BURN => {
                // A genuine panic raised inside burn: values that do not fill their shape.
                let _ = burn::tensor::TensorData::new(vec![1.0_f32; 3], [2, 2]);
            }
            Request::Forget { key } => {
                self.cache.remove(&key);
                self.tracker_images.retain(|(k, _)| *k != key);
            }
            Request::SegmentBox { input, box_xyxy } => {
                if self.model.is_none() {
                    return Err(EngineError::NoModel);
                }
                let result = self
                    .segment_box(&input, box_xyxy)
                    .map_err(|e| e.on_image(&input.key))?;
                send(Event::BoxSegmented {
                    job,
                    key: input.key,
                    result: result.map(Box::new),
                });
            }
            Request::Learn {
                spec,
                training,
                warm_start,
            } => {
                let model = self.model.as_ref().ok_or(EngineError::NoModel)?;
                // Every searched image's features stay resident through the search, beside
                // one image's step.
                let images = training.len() as u64;
                check_memory(
                    self.memory_limit,
                    images * model.feature_bytes_estimate() + model.encode_bytes_estimate(),
                    &format!("learning from {images} images"),
                )?;
                let inputs: Vec<&ImageInput> = training.iter().map(|t| &t.input).collect();
                let limit = self.memory_limit;
                let Some(images) =
                    encode_all(model, &mut self.cache, limit, &inputs, cancel, |stage| {
                        send(Event::Progress { job, stage });
                    })?
                else {
                    return Ok(());
                };
                let samples: Vec<TrainingImage<'_>> = images
                    .iter()
                    .zip(&training)
                    .map(|(image, t)| TrainingImage {
                        image,
                        mask: t.mask.as_slice(),
                        pixels: None,
                    })
                    .collect();
                let (tx, rx) = mpsc::channel();
                let control = SearchControl {
                    cancel: Arc::clone(cancel),
                    progress: Some(tx),
                };
                let learned = std::thread::scope(|scope| {
                    scope.spawn(|| {
                        for p in rx {
                            send(Event::Progress {
                                job,
                                stage: Stage::Searching(p),
                            });
                        }
                    });
                    let learned = model.learn(&spec, &samples, warm_start.as_deref(), &control);
                    drop(control);
                    learned
                })?;
                send(Event::Learned {
                    job,
                    cancelled: learned.outcome.cancelled,
                    losses: learned.outcome.losses,
                    concept: Box::new(learned.concept),
                });
            }
            Request::Predict {
                concept,
                images,
                options,
            } => {
                let model = self.model.as_ref().ok_or(EngineError::NoModel)?;
                let prepared = model.prepare(&concept)?;
                let total = images.len();
                for (done, input) in images.iter().enumerate() {
                    if cancel.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    send(Event::Progress {
                        job,
                        stage: Stage::Predicting { done, total },
                    });
                    let prediction = self
                        .cache
                        .get_or_encode(model, input, self.memory_limit)
                        .and_then(|cached| model.predict(&prepared, &cached, &options))
                        .map_err(|e| e.on_image(&input.key))?;
                    send(Event::Predicted {
                        job,
                        key: input.key.clone(),
                        prediction: Box::new(prediction),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Worker {
    /// The object inside `box_xyxy` on `input`: with the interactive head when it is loaded,
    /// else with the detector and the box as an exemplar.
    fn segment_box(
        &mut self,
        input: &ImageInput,
        box_xyxy: [f32; 4],
    ) -> Result<Option<BoxSegmentation>, EngineError> {
        let model = self.model.as_ref().ok_or(EngineError::NoModel)?;
        if model.has_tracker() {
            let image = tracker_image(&mut self.tracker_images, model, input)?;
            let b = model.segment_box_on(&image, box_xyxy)?;
            let found = b.mask.iter().any(|&m| m);
            Ok(found.then_some(BoxSegmentation {
                width: b.width,
                height: b.height,
                mask: b.mask,
                score: b.iou,
                source: "SAM3 interactive head",
            }))
        } else {
            let cached = self.cache.get_or_encode(model, input, self.memory_limit)?;
            model.segment_box_exemplar(&cached, box_xyxy)
        }
    }
}

/// Features of every input (cached or encoded now); `None` when cancelled on the way.
fn encode_all(
    model: &Segmenter,
    cache: &mut FeatureCache,
    memory_limit: Option<u64>,
    inputs: &[&ImageInput],
    cancel: &AtomicBool,
    progress: impl Fn(Stage),
) -> Result<Option<Vec<CachedImage>>, EngineError> {
    let total = inputs.len();
    let mut out = Vec::with_capacity(total);
    for (done, input) in inputs.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        progress(Stage::Encoding { done, total });
        out.push(
            cache
                .get_or_encode(model, input, memory_limit)
                .map_err(|e| e.on_image(&input.key))?,
        );
    }
    Ok(Some(out))
}

/// Image features by key within a byte budget; the oldest leave first.
struct FeatureCache {
    budget: usize,
    used: usize,
    entries: HashMap<String, (CachedImage, usize)>,
    order: VecDeque<String>,
}

impl FeatureCache {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.used = 0;
    }

    fn remove(&mut self, key: &str) {
        if let Some((_, bytes)) = self.entries.remove(key) {
            self.used -= bytes;
            self.order.retain(|k| k != key);
        }
    }

    /// The cached features of `input`, encoding (and caching) them when absent. A cache hit
    /// also checks the size, so a key reused for another image is re-encoded.
    fn get_or_encode(
        &mut self,
        model: &Segmenter,
        input: &ImageInput,
        memory_limit: Option<u64>,
    ) -> Result<CachedImage, EngineError> {
        if let Some((cached, _)) = self.entries.get(&input.key)
            && (cached.width, cached.height) == input.source.size()
        {
            return Ok(cached.clone());
        }
        self.remove(&input.key);
        check_memory(
            memory_limit,
            model.encode_bytes_estimate(),
            "encoding an image",
        )?;
        let rgb = input.source.rgb()?;
        let cached = model.encode_image(&rgb.view())?;
        let bytes = cached.feature_bytes();
        while self.used + bytes > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, b)) = self.entries.remove(&oldest) {
                self.used -= b;
            }
        }
        if bytes <= self.budget {
            self.entries
                .insert(input.key.clone(), (cached.clone(), bytes));
            self.order.push_back(input.key.clone());
            self.used += bytes;
        }
        Ok(cached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Forget` of this key panics inside burn (test builds only).
    pub(super) const PANIC_IN_BURN: &str = "\u{0}panic-in-burn";

    fn end_of(engine: &mut Engine, job: JobId) -> Event {
        loop {
            let event = engine
                .recv_timeout(Duration::from_secs(60))
                .expect("the engine answers");
            if event.job() == job && matches!(event, Event::Finished { .. } | Event::Failed { .. })
            {
                return event;
            }
        }
    }

    #[test]
    fn the_waker_is_called_for_every_event_sent() {
        use std::sync::atomic::AtomicUsize;
        let mut engine = Engine::spawn();
        let woken = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&woken);
        engine.set_waker(Some(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })));
        let first = engine.submit(Request::Forget {
            key: "a".to_owned(),
        });
        end_of(&mut engine, first);
        // The wake-up follows the send: give the engine thread a moment to make it.
        let start = std::time::Instant::now();
        while woken.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(woken.load(Ordering::SeqCst), 1, "one event, one wake-up");
        engine.set_waker(None);
        let second = engine.submit(Request::Forget {
            key: "b".to_owned(),
        });
        end_of(&mut engine, second);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(woken.load(Ordering::SeqCst), 1, "removed: no more wake-ups");
    }

    #[test]
    fn a_job_that_panics_inside_burn_fails_and_the_next_job_still_runs() {
        let mut engine = Engine::spawn();
        let job = engine.submit(Request::Forget {
            key: PANIC_IN_BURN.to_owned(),
        });
        let Event::Failed { error, .. } = end_of(&mut engine, job) else {
            panic!("the panicking job must fail");
        };
        assert!(
            matches!(error.innermost(), EngineError::Crashed { .. }),
            "{error:?}"
        );
        assert_eq!(error.task(), Some(Task::Forget));
        assert!(engine.is_running(), "the engine thread survives");
        // The next jobs run: one that succeeds, one that fails for its own reason.
        let job = engine.submit(Request::Forget {
            key: "a".to_owned(),
        });
        assert!(matches!(
            end_of(&mut engine, job),
            Event::Finished {
                cancelled: false,
                ..
            }
        ));
        let job = engine.submit(Request::SetMemoryLimit { bytes: Some(1) });
        assert!(matches!(end_of(&mut engine, job), Event::Finished { .. }));
        let job = engine.submit(Request::Learn {
            spec: ConceptSpec {
                name: "x".to_owned(),
                base_text: "x".to_owned(),
                site: crate::concept::file::EmbeddingSite::TextInput,
                settings: crate::concept::file::SearchSettings::default(),
            },
            training: Vec::new(),
            warm_start: None,
        });
        let Event::Failed { error, .. } = end_of(&mut engine, job) else {
            panic!("no model is loaded");
        };
        assert!(
            matches!(error.innermost(), EngineError::NoModel),
            "{error:?}"
        );
    }
}
