//! `tomo record`: run a command under the ptrace recorder, straight into the durable log.

use anyhow::{Context, Result};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tomo_capture_ptrace::{record, ContentOptions, Exit, RecordError, RecordOptions};
use tomo_log::{RecordingMeta, Writer, WriterOptions};

#[derive(Args)]
pub struct RecordArgs {
    /// Where to write the recording.
    #[arg(short, long, default_value = "run.tomo")]
    output: PathBuf,
    /// Also keep each program's environment (it may contain secrets).
    #[arg(long)]
    env: bool,
    /// Also keep the bytes of every successful read, write, send and recv
    /// (the first SIZE of each call; default 64KiB), for `tomo grep`.
    /// Stored zstd-compressed in the recording.
    #[arg(long, value_name = "SIZE", num_args = 0..=1, default_missing_value = "64KiB", value_parser = parse_size)]
    content: Option<u64>,
    /// With --content: stop keeping bytes after this many in all.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    content_budget: u64,
    /// Print the summary as JSON on stderr.
    #[arg(long)]
    json: bool,
    /// Record as the host NAME: the host id is the UUIDv5 of NAME in the
    /// DNS namespace instead of /etc/machine-id (as `tomo agent
    /// --host-name`); the boot id stays this machine's.
    #[arg(long, value_name = "NAME", value_parser = crate::cmd_agent::parse_host_name)]
    host_name: Option<String>,
    /// The command to record, after `--`.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    cmd: Vec<OsString>,
}

pub fn run(a: RecordArgs) -> Result<i32> {
    // Ctrl-C goes to the whole foreground group: the recorded command decides
    // what to do with it, and we keep recording until it is gone. A handler,
    // unlike SIG_IGN, is reset by execve so the command sees the default.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGQUIT] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .context("installing signal handlers")?;
    }
    let (host, boot) = crate::cmd_agent::host_ids(a.host_name.as_deref())?;
    let meta = RecordingMeta {
        host,
        boot,
        source: "ptrace".into(),
        command: a
            .cmd
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect(),
        cut_from: None,
        host_name: a.host_name.clone(),
    };
    let mut writer = Writer::create(&a.output, meta, WriterOptions::default())
        .with_context(|| format!("cannot create recording {}", a.output.display()))?;
    let opts = RecordOptions {
        keep_env: a.env,
        host,
        boot,
        content: a.content.map(|per_call| ContentOptions {
            per_call: per_call.min(usize::MAX as u64) as usize,
            budget: a.content_budget,
        }),
    };
    let mut events = 0u64;
    let (mut content_events, mut content_bytes) = (0u64, 0u64);
    let exit = record(&a.cmd, &opts, &mut |ev| {
        events += 1;
        if let tomo_event::Op::Content { data, .. } = &ev.op {
            content_events += 1;
            content_bytes += data.len() as u64;
        }
        writer.append(&ev).map_err(std::io::Error::other)
    });
    let summary = writer
        .finish()
        .with_context(|| format!("cannot finish recording {}", a.output.display()))?;
    let exit = match exit {
        Ok(e) => e,
        Err(e @ (RecordError::NotFound(_) | RecordError::EmptyCommand)) => {
            // Nothing ran: leave no empty recording behind, and exit like a shell.
            let _ = std::fs::remove_file(&a.output);
            eprintln!("tomo: {e}");
            return Ok(127);
        }
        Err(e) => return Err(e.into()),
    };
    let code = match exit {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    };
    let bytes = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    if a.json {
        let mut j = serde_json::json!({
            "output": a.output, "events": events, "bytes": bytes, "exit_code": code,
            "blocks": summary.blocks,
        });
        if a.content.is_some() {
            j["content"] = serde_json::json!({
                "events": content_events, "bytes": content_bytes,
                "budget": a.content_budget,
                "budget_reached": content_bytes >= a.content_budget,
            });
        }
        eprintln!("{j}");
    } else {
        eprintln!(
            "tomo: recorded {events} events into {} ({}); command exited with {}",
            a.output.display(),
            human_bytes(bytes),
            match exit {
                Exit::Code(c) => format!("status {c}"),
                Exit::Signal(s) => format!("signal {s}"),
            }
        );
        if a.content.is_some() {
            eprintln!(
                "tomo: content of {content_events} reads and writes kept ({} before compression){}",
                human_bytes(content_bytes),
                if content_bytes >= a.content_budget {
                    format!(
                        "; the budget of {} was reached: later calls have no content",
                        human_bytes(a.content_budget)
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(code)
}

/// `65536`, `64K`, `64KiB`, `1M`, `1GiB` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 64KiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit (use K, M, G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}
