//! `tomo`: the command-line view of Tomo. Thin: every command parses its
//! arguments, calls the library crates, and renders text or `--json`.

mod cmd_agent;
mod cmd_demo;
mod cmd_export;
mod cmd_grep;
mod cmd_ingest;
mod cmd_log;
mod cmd_query;
mod cmd_record;
mod cmd_ship;
mod cmd_sparql;
mod cmd_store;
mod load;
mod timearg;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tomo",
    version,
    about = "Whole-system provenance: record what processes do, ask where data came from"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Record a real pipeline in a scratch directory and ask where its output came from.
    Demo(cmd_demo::DemoArgs),
    /// Record a command's whole process tree (ptrace + seccomp, no root needed).
    Record(cmd_record::RecordArgs),
    /// Capture the whole host (root) into a recording, until Ctrl-C.
    Agent(cmd_agent::AgentArgs),
    /// Import logs of another source (Linux audit, DARPA TC CDM, strace) into a recording.
    Ingest(cmd_ingest::IngestArgs),
    /// Which processes read or wrote a string (recordings made with --content).
    Grep(cmd_grep::GrepArgs),
    /// Print the raw normalized events of a recording.
    Events(cmd_log::EventsArgs),
    /// Cut a time window out of a recording into a new recording.
    Cut(cmd_log::CutArgs),
    /// Check a recording's checksums and hash chain; print its chain head.
    Verify(cmd_log::VerifyArgs),
    /// Backward lineage: where did TARGET come from?
    Why(cmd_query::LineageArgs),
    /// Forward impact: what did TARGET affect?
    Impact(cmd_query::LineageArgs),
    /// How data got from A to B.
    Path(cmd_query::PathArgs),
    /// Processes that ran.
    Ps(cmd_query::ListArgs),
    /// Files and other objects that were touched.
    Files(cmd_query::ListArgs),
    /// Everything that happened, in time order.
    Timeline(cmd_query::TimelineArgs),
    /// The whole provenance graph (nodes, edges).
    Graph(cmd_query::ListArgs),
    /// Export the graph (PROV-JSON, PROV-N, PROV-O Turtle, DOT, SVG, GraphML, Neo4j CSV).
    Export(cmd_export::ExportArgs),
    /// Run a SPARQL query over the PROV-O view of a recording.
    Sparql(cmd_sparql::SparqlArgs),
    /// Send a spool of recordings to a Kafka-protocol broker (what `agent --ship` does while it runs).
    Ship(cmd_ship::ShipCmd),
    /// Gather many hosts' shipped recordings from a Kafka-protocol broker into one store.
    Collect(cmd_ship::CollectCmd),
    /// Build or update the persistent store (index) of a recording; queries use it.
    Index(cmd_store::IndexArgs),
    /// Counts, sizes, bytes per event and time span of a recording.
    Stats(cmd_store::StatsArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TOMO_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Demo(a) => cmd_demo::run(a),
        Cmd::Record(a) => cmd_record::run(a),
        Cmd::Agent(a) => cmd_agent::run(a),
        Cmd::Ingest(a) => cmd_ingest::run(a),
        Cmd::Grep(a) => cmd_grep::run(a),
        Cmd::Events(a) => cmd_log::events(a),
        Cmd::Cut(a) => cmd_log::cut(a),
        Cmd::Verify(a) => cmd_log::verify(a),
        Cmd::Why(a) => cmd_query::why(a),
        Cmd::Impact(a) => cmd_query::impact(a),
        Cmd::Path(a) => cmd_query::path(a),
        Cmd::Ps(a) => cmd_query::ps(a),
        Cmd::Files(a) => cmd_query::files(a),
        Cmd::Timeline(a) => cmd_query::timeline(a),
        Cmd::Graph(a) => cmd_query::graph(a),
        Cmd::Export(a) => cmd_export::run(a),
        Cmd::Sparql(a) => cmd_sparql::run(a),
        Cmd::Ship(a) => cmd_ship::ship(a),
        Cmd::Collect(a) => cmd_ship::collect(a),
        Cmd::Index(a) => cmd_store::index(a),
        Cmd::Stats(a) => cmd_store::stats(a),
    };
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tomo: error: {e:#}");
            std::process::exit(2);
        }
    }
}
