//! Commands on the durable log itself: `events`, `cut`, `verify`.

use crate::timearg;
use anyhow::{Context, Result};
use clap::Args;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use tomo_log::Reader;

#[derive(Args)]
pub struct EventsArgs {
    /// The recording.
    recording: PathBuf,
    /// One JSON object per line (the normalized event schema).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CutArgs {
    /// Start of the window (inclusive): RFC3339, ns since the epoch, or +1.5s from the first event.
    #[arg(long)]
    from: Option<String>,
    /// End of the window (exclusive), same forms.
    #[arg(long)]
    to: Option<String>,
    /// The recording to cut.
    input: PathBuf,
    /// The new recording.
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    recording: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn events(a: EventsArgs) -> Result<i32> {
    let reader = Reader::open(&a.recording)
        .with_context(|| format!("cannot open {}", a.recording.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for item in reader {
        let ev = match item {
            Ok(ev) => ev,
            Err(e) => {
                out.flush()?;
                eprintln!("tomo: warning: {e}");
                return Ok(1);
            }
        };
        let r = if a.json {
            serde_json::to_writer(&mut out, &ev)
                .map_err(std::io::Error::other)
                .and_then(|_| writeln!(out))
        } else if let tomo_event::Op::Content {
            call,
            dir,
            fd,
            obj,
            offset,
            total,
            data,
        } = &ev.op
        {
            // The bytes as text (escaped, the first 64), not a number list.
            let shown = &data[..data.len().min(64)];
            writeln!(
                out,
                "{} #{} pid {} tid {} Content {{ call: {call:?}, dir: {dir:?}, fd: {fd}, obj: {obj:?}, offset: {offset:?}, total: {total}, data: \"{}\"{} ({} B) }} = {}",
                timearg::rfc3339(ev.ts_ns),
                ev.seq,
                ev.proc.pid,
                ev.proc.tid,
                shown.escape_ascii(),
                if data.len() > shown.len() { "…" } else { "" },
                data.len(),
                ev.ret
            )
        } else {
            writeln!(
                out,
                "{} #{} pid {} tid {} {:?} = {}",
                timearg::rfc3339(ev.ts_ns),
                ev.seq,
                ev.proc.pid,
                ev.proc.tid,
                ev.op,
                ev.ret
            )
        };
        if let Err(e) = r {
            // A closed pipe (`| head`) is a normal way to stop reading.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    out.flush().or_else(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    Ok(0)
}

pub fn cut(a: CutArgs) -> Result<i32> {
    let report =
        tomo_log::verify(&a.input).with_context(|| format!("cannot read {}", a.input.display()))?;
    let first = report.first_ts.unwrap_or(0);
    let from = a
        .from
        .as_deref()
        .map(|s| timearg::parse(s, first))
        .transpose()?
        .unwrap_or(0);
    let to =
        a.to.as_deref()
            .map(|s| timearg::parse(s, first))
            .transpose()?
            .unwrap_or(u64::MAX);
    anyhow::ensure!(from < to, "empty window: --from must be before --to");
    let s = tomo_log::cut(&a.input, &a.output, from, to).with_context(|| {
        format!(
            "cannot cut {} into {}",
            a.input.display(),
            a.output.display()
        )
    })?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"input": a.input, "output": a.output, "from_ns": from, "to_ns": to, "events": s.events_out, "events_in": s.events_in})
        );
    } else {
        eprintln!(
            "tomo: kept {} of {} events between {} and {} in {}",
            s.events_out,
            s.events_in,
            timearg::rfc3339(from),
            if to == u64::MAX {
                "the end".into()
            } else {
                timearg::rfc3339(to)
            },
            a.output.display()
        );
    }
    Ok(0)
}

pub fn verify(a: VerifyArgs) -> Result<i32> {
    let r = tomo_log::verify(&a.recording)
        .with_context(|| format!("cannot read {}", a.recording.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{r}");
    }
    Ok(if r.damage.is_some() { 1 } else { 0 })
}
