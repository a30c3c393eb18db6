//! `m2c weights install PATH`: check a downloaded SAM3 checkpoint and make it the one the app
//! and the command line load, as Help → Get SAM3 weights… does (both call
//! [`crate::engine::install`]).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use crate::engine::install::{InstallMode, InstallTarget, check_source, human_bytes, install};

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    pub command: WeightsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum WeightsCommand {
    /// Check a SAM3 checkpoint (model.safetensors from Hugging Face facebook/sam3, or its
    /// folder) and install it: hard-linked or copied, with the config and tokenizer beside it,
    /// into the folder the app searches, or with --in-place recorded in the settings.
    Install(InstallArgs),
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The downloaded `model.safetensors`, or the folder holding it.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Use the file where it is (its path is saved in the settings) instead of copying it.
    #[arg(long)]
    pub in_place: bool,
}

pub fn run(cli: &Cli, args: &WeightsArgs) -> anyhow::Result<i32> {
    match &args.command {
        WeightsCommand::Install(install_args) => run_install(cli, install_args),
    }
}

fn run_install(cli: &Cli, args: &InstallArgs) -> anyhow::Result<i32> {
    println!("checking {}", args.path.display());
    let check = check_source(&args.path)?;
    for line in check.lines() {
        println!("  {line}");
    }
    let target = InstallTarget::for_user()?;
    let mode = if args.in_place {
        InstallMode::InPlace
    } else {
        println!(
            "installing into {} (a hard link when on the same disk, else a copy of {})",
            target.folder.display(),
            human_bytes(check.summary.file_bytes)
        );
        InstallMode::Copy
    };
    let start = Instant::now();
    let mut last_shown = Instant::now();
    let mut shown_any = false;
    let mut progress = |done: u64, total: u64| {
        // One line updated in place on stderr, at most twice a second.
        if total > 0 && (last_shown.elapsed().as_millis() >= 500 || done == total) {
            last_shown = Instant::now();
            let percent = done as f64 * 100.0 / total as f64;
            eprint!(
                "\r  {} of {} ({percent:.0}%)   ",
                human_bytes(done),
                human_bytes(total)
            );
            let _ = std::io::stderr().flush();
            shown_any = true;
        }
        true
    };
    let done = install(&args.path, mode, &target, &mut progress)?;
    if shown_any {
        eprintln!();
    }
    println!(
        "{} ({:.1} s)",
        done.message().trim_end_matches('.'),
        start.elapsed().as_secs_f64()
    );
    for path in &done.companions {
        println!("  with {}", path.display());
    }
    for path in &done.removed {
        println!(
            "  removed {} (left by an earlier installation)",
            path.display()
        );
    }
    if let Some((file, weights)) = &done.settings {
        match weights {
            Some(w) => println!("settings: {} now names {}", file.display(), w.display()),
            None => println!("settings: {} names no weights file now", file.display()),
        }
    }
    match &cli.weights {
        Some(overriding) => println!(
            "note: --weights / M2C_WEIGHTS ({}) is set and overrides the installed checkpoint",
            overriding.display()
        ),
        None => println!(
            "the app and the m2c commands now load {} without --weights",
            done.weights.display()
        ),
    }
    Ok(0)
}
