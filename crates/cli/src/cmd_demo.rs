//! `tomo demo`: the newcomer's first run. Records a real pipeline in a scratch
//! directory and asks where its output came from, printing each `tomo`
//! command it runs so that the user can repeat them by hand.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::Command;

#[derive(Args)]
pub struct DemoArgs {
    /// Directory to work in (created; default: a new directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(a: DemoArgs) -> Result<i32> {
    let dir = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("tomo-demo-{}", std::process::id())),
    };
    let input = dir.join("input");
    std::fs::create_dir_all(&input)
        .with_context(|| format!("cannot create {}", input.display()))?;
    // Four input files, one of them empty, as in the PROV-Tracer demo.
    for (name, text) in [
        ("hello.txt", "Hello\n"),
        ("cruel.txt", "cruel\n"),
        ("world.txt", "world!\n"),
        ("empty.txt", ""),
    ] {
        std::fs::write(input.join(name), text)?;
    }
    let tomo = std::env::current_exe().context("cannot find the tomo binary")?;
    let rec = dir.join("run.tomo");
    let steps: [Vec<String>; 3] = [
        vec![
            "record".into(),
            "-o".into(),
            rec.display().to_string(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            "tar c input | gzip > out.tgz".into(),
        ],
        vec!["ps".into(), rec.display().to_string()],
        vec!["why".into(), rec.display().to_string(), "out.tgz".into()],
    ];
    for args in steps {
        println!("\n$ tomo {}", shell_words(&args));
        let status = Command::new(&tomo)
            .args(&args)
            .current_dir(&dir)
            .status()
            .with_context(|| format!("cannot run {}", tomo.display()))?;
        if !status.success() {
            bail!("`tomo {}` failed with {status}", shell_words(&args));
        }
    }
    println!(
        "\nThe recording is {}; try `tomo impact {} input/hello.txt` or `tomo timeline {}`.",
        rec.display(),
        rec.display(),
        rec.display()
    );
    Ok(0)
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains([' ', '|', '>', '\'']) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
