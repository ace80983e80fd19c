//! `events check`: the integrity check of every page and row, and repair.

use serde_json::json;

use super::{Context, Fallible, Store};
use crate::{DAMAGED, OK};

/// `events check [--repair]`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Repair damage: salvage readable rows into a new file, keep the
    /// damaged one beside it. Needs the store to be open nowhere else.
    #[arg(long)]
    pub(crate) repair: bool,
}

/// Prints what the check found; [`DAMAGED`] when it found damage.
pub(crate) async fn run(args: Args, store: &Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    let report = &store.report;
    if args.repair {
        if report.is_clean() {
            writeln!(ctx.out, "open: clean (integrity checked)")?;
        } else {
            writeln!(ctx.out, "open: {report:?}")?;
        }
    }
    let check = store.sqlite.check().await?;
    if ctx.json {
        writeln!(
            ctx.out,
            "{}",
            json!({
                "rows": check.rows,
                "integrity": check.integrity,
                "unreadable": check
                    .unreadable
                    .iter()
                    .map(|(seq, reason)| json!({"seq": seq, "reason": reason}))
                    .collect::<Vec<_>>(),
                "repaired": report.damaged_file,
            })
        )?;
    } else {
        writeln!(ctx.out, "rows: {}", check.rows)?;
        if check.integrity.is_empty() {
            writeln!(ctx.out, "integrity: ok")?;
        }
        for message in &check.integrity {
            writeln!(ctx.out, "integrity: {message}")?;
        }
        for (seq, reason) in &check.unreadable {
            writeln!(ctx.out, "unreadable row {seq}: {reason}")?;
        }
    }
    Ok(if check.is_clean() { OK } else { DAMAGED })
}
