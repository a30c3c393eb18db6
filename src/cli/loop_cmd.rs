//! `m2c loop --weights W --manifest M --shots 5 --rounds R --flag 5`: simulates the annotation
//! loop with the ground truth standing in for the human's corrections and prints one line per
//! round (labelled count, mean Dice, mean IoU, auto-accepted count).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;

use crate::engine::tools::dataset::labelled_items;
use crate::engine::tools::simulate::{LoopConfig, LoopImage, RoundReport, Strategy, spawn_loop};

use super::Cli;
use super::annotate::PredictArgs;
use super::model::load_segmenter;
use super::search::{SearchOptions, encode_labelled};

#[derive(Debug, clap::Args)]
pub struct LoopArgs {
    /// Manifest (`file`, `mask`[, `split`] columns) or a folder with `images/` and `masks/`.
    #[arg(long, value_name = "MANIFEST_OR_DIR")]
    pub manifest: PathBuf,
    /// Only the manifest rows of this split (default: every row).
    #[arg(long, value_name = "NAME")]
    pub split: Option<String>,
    /// Use at most this many images (the first ones).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Images labelled at random before the first search.
    #[arg(long, default_value_t = 5)]
    pub shots: usize,
    /// Rounds to run at most (the loop also ends when no image is left to review).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Hardest images (highest HUE) corrected after each round.
    #[arg(long, default_value_t = 5)]
    pub flag: usize,
    /// The authors' scheme: a new concept per round from zeros on that round's labels only,
    /// predictions from the first easy expert (else the lowest HUE). Default: one concept
    /// re-searched on all labels so far, warm-started.
    #[arg(long)]
    pub cascade: bool,
    /// Seed of the first random pick.
    #[arg(long, default_value_t = 0)]
    pub pick_seed: u64,
    /// Also write the per-round figures as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    #[command(flatten)]
    pub options: SearchOptions,
    #[command(flatten)]
    pub predict: PredictArgs,
}

const CSV_HEADER: &str = "round,labelled,auto_accepted,pool,dice_mean,dice_std,iou_mean,iou_std,\
                          auto_accepted_dice,final_loss,search_s,predict_s";

fn csv_row(r: &RoundReport) -> String {
    format!(
        "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{},{:.3},{:.3}",
        r.round,
        r.labelled,
        r.auto_accepted,
        r.pool,
        r.dice.0,
        r.dice.1,
        r.iou.0,
        r.iou.1,
        r.auto_accepted_dice
            .map_or_else(String::new, |d| format!("{d:.6}")),
        r.final_loss.map_or_else(String::new, |l| format!("{l:.6}")),
        r.search_time.as_secs_f64(),
        r.predict_time.as_secs_f64()
    )
}

pub fn run(cli: &Cli, args: &LoopArgs) -> anyhow::Result<i32> {
    let mut items = labelled_items(&args.manifest)?;
    if let Some(split) = &args.split {
        items.retain(|i| i.split.as_deref() == Some(split.as_str()));
        anyhow::ensure!(!items.is_empty(), "no manifest row has split {split:?}");
    }
    if let Some(limit) = args.limit {
        items.truncate(limit.max(1));
    }
    let segmenter = load_segmenter(cli, args.options.config.as_deref())?;
    let start = Instant::now();
    let images: Vec<LoopImage> = encode_labelled(&segmenter, &items)?
        .into_iter()
        .map(|(image, truth, pixels)| LoopImage {
            image,
            truth,
            pixels: args.options.augment.then_some(pixels),
        })
        .collect();
    println!(
        "encoded {} image(s) in {:.2} s (features cached for every round)",
        images.len(),
        start.elapsed().as_secs_f64()
    );
    let config = LoopConfig {
        shots: args.shots,
        rounds: args.rounds,
        flag: args.flag,
        strategy: if args.cascade {
            Strategy::ExpertCascade
        } else {
            Strategy::WarmStart
        },
        seed: args.pick_seed,
        spec: args.options.spec("loop"),
        predict: args.predict.options(),
    };
    // The loop runs on the engine's thread; this one prints the rounds as they end.
    let handle = spawn_loop(segmenter, images, config)?;
    for r in &handle.rounds {
        println!(
            "round {}: labelled {}, mean Dice {:.4} (±{:.4}), mean IoU {:.4} (±{:.4}), \
             auto-accepted {}, pool {}, search {:.1} s, predict {:.1} s",
            r.round,
            r.labelled,
            r.dice.0,
            r.dice.1,
            r.iou.0,
            r.iou.1,
            r.auto_accepted,
            r.pool,
            r.search_time.as_secs_f64(),
            r.predict_time.as_secs_f64()
        );
    }
    let reports = handle.join()?;
    if let Some(path) = &args.csv {
        let mut f = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(f, "{CSV_HEADER}")?;
        for r in &reports {
            writeln!(f, "{}", csv_row(r))?;
        }
    }
    Ok(0)
}
