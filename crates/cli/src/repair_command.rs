//! `tributary repair`: report a damaged journal and cut it at the damage.

use std::path::PathBuf;

use anyhow::{Result, bail};
use tributary_store::{RepairMode, repair};

/// Arguments of `tributary repair`.
#[derive(clap::Args)]
pub struct RepairArgs {
    /// Directory of the store (stop the server using it first).
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Cut the journal at the damage. Without it the repair only reports the damage and
    /// what the cut would drop, and changes nothing.
    #[arg(long)]
    apply: bool,
}

/// Reads the journal, prints what is damaged and what a cut drops, and cuts it with
/// `--apply`; fails when the cut would leave the store inconsistent (nothing is changed) or
/// when table files are damaged (a repair cannot cut those away).
pub fn run(args: RepairArgs) -> Result<()> {
    let data_dir = args
        .data_dir
        .unwrap_or_else(crate::source::default_data_dir);
    let mode = if args.apply {
        RepairMode::Apply
    } else {
        RepairMode::DryRun
    };
    let report = repair(&data_dir, mode)?;
    print!("{report}");
    if report.damage.is_some() && !report.applied {
        println!(
            "run `tributary repair --data-dir {} --apply` to cut the journal there",
            data_dir.display()
        );
    }
    if !report.damaged_tables.is_empty() {
        bail!(
            "{} damaged table files remain in {}: restore the data directory from a backup",
            report.damaged_tables.len(),
            data_dir.display()
        );
    }
    Ok(())
}
