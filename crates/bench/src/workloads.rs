//! The two workloads: their sources are generated here, so a benchmark run
//! needs nothing but gcc and make, and every run measures the same thing.

use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Syscall-heavy micro workload. Each iteration is the shape of a tool touching
/// one small file: open(O_CREAT)+write+close, stat, open+read+close, and every 64th
/// iteration a rename+unlink. These are the calls a provenance recorder has to
/// look at (paths, fds, data flow), so the recorder cannot skip them with a
/// seccomp filter; a workload of getpid() calls would flatter it. The work is
/// split over sequential child processes, and a few fork+exec of `true` follow,
/// so process-tree following (fork, exec, exit) is exercised too.
/// No O_TRUNC: on ext4, truncating a non-empty file makes close() start
/// writeback (auto_da_alloc), which made the native run 10x slower and
/// disk-bound; the benchmark is about syscall interception, not the disk.
const MICRO_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) { perror(what); _exit(2); }

static void work(const char *dir, long from, long to) {
    char path[4096], path2[4096], buf[256];
    memset(buf, 'x', sizeof buf);
    for (long i = from; i < to; i++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, i % 64);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) die("open for write");
        if (write(fd, buf, 128) != 128) die("write");
        if (close(fd)) die("close");
        struct stat st;
        if (stat(path, &st)) die("stat");
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("open for read");
        if (read(fd, buf, sizeof buf) != 128) die("read");
        if (close(fd)) die("close");
        if (i % 64 == 63) {
            snprintf(path2, sizeof path2, "%s/renamed", dir);
            if (rename(path, path2)) die("rename");
            if (unlink(path2)) die("unlink");
        }
    }
}

static void wait_ok(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "child failed\n"); exit(3); }
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: micro DIR ITERS PROCS EXECS\n"); return 1; }
    const char *dir = argv[1];
    long iters = atol(argv[2]), procs = atol(argv[3]), execs = atol(argv[4]);
    if (procs < 1) procs = 1;
    for (long p = 0; p < procs; p++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) { work(dir, p * iters / procs, (p + 1) * iters / procs); _exit(0); }
        wait_ok(pid);
    }
    for (long e = 0; e < execs; e++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) { execlp("true", "true", (char *)0); die("exec true"); }
        wait_ok(pid);
    }
    return 0;
}
"#;

/// Parameters of the micro workload.
#[derive(Clone, Copy, Debug)]
pub struct MicroParams {
    pub iters: u64,
    pub procs: u64,
    pub execs: u64,
}

impl MicroParams {
    /// Syscalls the workload makes on purpose (without libc/loader start-up).
    pub fn syscalls(&self) -> u64 {
        self.iters * 7 + (self.iters / 64) * 2 + (self.procs + self.execs) * 3
    }

    pub fn describe(&self) -> String {
        format!(
            "{} iterations of [open(O_CREAT)+write+close, stat, open+read+close] on 64 small files, \
             rename+unlink every 64th, spread over {} sequential child processes, then {} fork+exec of `true` \
             (about {} deliberate syscalls)",
            self.iters,
            self.procs,
            self.execs,
            self.syscalls()
        )
    }
}

/// Compiles the micro workload into `dir` and returns the program and its argv.
pub fn prepare_micro(dir: &Path, p: MicroParams) -> Result<Vec<String>> {
    let src = dir.join("micro.c");
    let exe = dir.join("micro");
    let data = dir.join("micro-data");
    fs::write(&src, MICRO_C).with_context(|| format!("writing {}", src.display()))?;
    fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let out = Command::new("gcc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .context("running gcc to compile the micro workload")?;
    if !out.status.success() {
        bail!(
            "gcc failed to compile the micro workload:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(vec![
        path_str(&exe)?,
        path_str(&data)?,
        p.iters.to_string(),
        p.procs.to_string(),
        p.execs.to_string(),
    ])
}

/// Writes a small C project (`files` modules sharing a header, and a main) with
/// a Makefile into `dir/proj`, and returns the project directory. The header
/// pulls in a few libc headers on purpose: real translation units spend most
/// of the preprocessor's time (and most of gcc's openat/read calls) on them.
pub fn prepare_build(dir: &Path, files: u32) -> Result<PathBuf> {
    let proj = dir.join("proj");
    fs::create_dir_all(&proj).with_context(|| format!("creating {}", proj.display()))?;
    let mut h = String::from(
        "#ifndef COMMON_H\n#define COMMON_H\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\
         #include <stdint.h>\n\nstruct acc { uint64_t sum; uint32_t n; char tag[16]; };\n\n",
    );
    for i in 0..files {
        let _ = writeln!(
            h,
            "uint64_t mod{i:02}_mix(uint64_t x);\nvoid mod{i:02}_run(struct acc *a);"
        );
    }
    h.push_str("#endif\n");
    write(&proj.join("common.h"), &h)?;

    let mut objs = String::from("main.o");
    for i in 0..files {
        let next = (i + 1) % files;
        let c = format!(
            "#include \"common.h\"\n\n\
             static uint64_t rotl(uint64_t x, int k) {{ return (x << k) | (x >> (64 - k)); }}\n\n\
             uint64_t mod{i:02}_mix(uint64_t x) {{\n\
             \tfor (int r = 0; r < {rounds}; r++) x = rotl(x * 0x9E3779B97F4A7C15ull + {i}u, (r % 31) + 1);\n\
             \treturn x;\n}}\n\n\
             void mod{i:02}_run(struct acc *a) {{\n\
             \tchar buf[64];\n\
             \tsnprintf(buf, sizeof buf, \"mod%02d:%llu\", {i}, (unsigned long long)a->sum);\n\
             \ta->sum += mod{i:02}_mix(a->sum ^ strlen(buf));\n\
             \tif (a->n++ < {files}u) mod{next:02}_run(a);\n\
             \tmemcpy(a->tag, buf, sizeof a->tag - 1);\n}}\n",
            rounds = 8 + i % 5,
        );
        write(&proj.join(format!("mod{i:02}.c")), &c)?;
        let _ = write!(objs, " mod{i:02}.o");
    }
    write(
        &proj.join("main.c"),
        "#include \"common.h\"\n\nint main(void) {\n\tstruct acc a = {0};\n\tmod00_run(&a);\n\
         \tprintf(\"%llu %s\\n\", (unsigned long long)a.sum, a.tag);\n\treturn 0;\n}\n",
    )?;
    let mk = format!(
        "CC = gcc\nCFLAGS = -O2 -Wall\nOBJS = {objs}\n\n\
         app: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n\n\
         %.o: %.c common.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\n\
         clean:\n\trm -f app $(OBJS)\n\n.PHONY: clean\n"
    );
    write(&proj.join("Makefile"), &mk)?;
    Ok(proj)
}

fn write(p: &Path, s: &str) -> Result<()> {
    fs::write(p, s).with_context(|| format!("writing {}", p.display()))
}

/// Workload argv must be valid UTF-8 only because we also print them; a temp
/// dir with another encoding is unusual enough to just refuse clearly.
pub fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("path is not UTF-8: {}", p.display()))
}
