//! `steward audit`: verifying the audit trail's hash chain (`verify`) and exporting a period
//! of the trail as JSON Lines or CSV (`export`), straight from the database.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use jiff::Timestamp;
use steward_app::audit::{chain, trail};
use steward_app::auth::local_operator;

use crate::cli::{DbArgs, db_overrides, open_store};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole audit trail's hash chain and its checkpoints. Exits 0 when intact, 1
    /// naming the first record that was edited, deleted or put out of order. Checkpoint
    /// signatures are checked with the key derived from secrets_key when it is configured.
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write the audit events of a period, oldest first, in Graph's directoryAudit shape (JSON
    /// Lines) or as CSV.
    Export {
        #[command(flatten)]
        db: DbArgs,
        /// Start of the period, inclusive: a date (2026-01-31, midnight UTC) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        from: String,
        /// End of the period, exclusive [default: now].
        #[arg(long, value_name = "WHEN")]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// A date (midnight UTC) or an RFC 3339 timestamp.
fn moment(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: jiff::civil::Date =
        s.parse().with_context(|| format!("'{s}' is neither a date (2026-01-31) nor an RFC 3339 time"))?;
    Ok(date.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp())
}

pub async fn run(file: Option<&std::path::Path>, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let db = match &cmd {
        AuditCommand::Verify { db } | AuditCommand::Export { db, .. } => db,
    };
    let cfg = Config::load(file, db_overrides(db))?;
    let store = open_store(&cfg, false).await?;
    let fail = |e: steward_app::AppError| anyhow::anyhow!("{e}");
    match cmd {
        AuditCommand::Verify { .. } => {
            let key = crate::config::audit_key(&cfg);
            let started = std::time::Instant::now();
            let mut next_note = 1_000_000;
            let report = chain::verify(&store, key, |checked| {
                if checked >= next_note {
                    eprintln!("… {checked} records checked");
                    next_note += 1_000_000;
                }
            })
            .await
            .map_err(fail)?;
            let seconds = started.elapsed().as_secs_f64();
            let pending = match report.unchained {
                0 => String::new(),
                n => format!("; {n} newer event{} not chained yet (a running worker chains them)", plural(n)),
            };
            match report.outcome {
                Ok(v) => {
                    let signed = if report.signatures_checked {
                        format!("{} signed checkpoint{} checked", v.signed_checkpoints, plural(v.signed_checkpoints))
                    } else {
                        format!(
                            "{} checkpoint{} checked, signatures not checked (no secrets_key configured)",
                            v.checkpoints,
                            plural(v.checkpoints)
                        )
                    };
                    let range = if v.records == 0 {
                        "no records".to_owned()
                    } else {
                        format!("{} record{} ({}–{})", v.records, plural(v.records), report.from_seq, v.last_seq)
                    };
                    println!("audit trail intact: {range}, {signed}, in {seconds:.1} s{pending}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(tamper) => {
                    println!("audit trail TAMPERED: {tamper}{pending}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Export { from, to, format, output, .. } => {
            let from = moment(&from)?;
            let to = match to {
                Some(t) => moment(&t)?,
                None => steward_app::Clock::now(&steward_app::SystemClock),
            };
            if to <= from {
                bail!("--to ({to}) must be after --from ({from})");
            }
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let format = match format {
                ExportFormat::Jsonl => trail::Format::JsonLines,
                ExportFormat::Csv => {
                    out.write_all(steward_domain::csv::line(trail::CSV_HEADER).as_bytes())?;
                    trail::Format::Csv
                }
            };
            let mut after = None;
            let mut written = 0u64;
            loop {
                let page = trail::period_page(&store, local_operator(), from, to, after).await.map_err(fail)?;
                let names = trail::Names::of(&store, &page.items).await.map_err(fail)?;
                for e in &page.items {
                    out.write_all(trail::export_line(e, &names, format).as_bytes())?;
                }
                written += page.items.len() as u64;
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            out.flush()?;
            eprintln!("{written} audit event{} exported", plural(written));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
