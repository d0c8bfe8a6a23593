//! One line of strace output → its parts.
//!
//! `strace -f -tt -yy -o FILE` writes `PID HH:MM:SS.uuuuuu name(args) = ret`
//! (to stderr: `[pid PID] …`; `-ttt`: seconds since the epoch; `-T`: a
//! trailing `<secs>`), splits calls that block into `name(args <unfinished
//! ...>` and `<... name resumed>rest`, and reports ends as `+++ exited with
//! N +++` / `+++ killed by SIGX +++` and signals as `--- SIGX {…} ---`.
//! `-yy` decorates every descriptor with what it is: `3</abs/path>`,
//! `4<pipe:[123]>`, `5<TCP:[10.0.0.1:80->10.0.0.2:5555]>`,
//! `6<UNIX-STREAM:[310032->310028,"/tmp/sock"]>`, `0</dev/null<char 1:3>>`,
//! `AT_FDCWD</cwd>`.

use std::net::IpAddr;
use tomo_event::SockAddr;

/// When a line happened, as written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stamp {
    /// `-t`/`-tt`: nanoseconds since local midnight.
    TimeOfDay(u64),
    /// `-ttt`: nanoseconds since the epoch.
    Epoch(u64),
    /// `-r`: nanoseconds since the previous line.
    Relative(u64),
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body<'a> {
    /// A whole call, or the first half of one (`unfinished`).
    Call {
        text: &'a str,
        unfinished: bool,
    },
    /// `<... name resumed>rest`.
    Resumed {
        name: &'a str,
        rest: &'a str,
    },
    Exited(i32),
    Killed(i32),
    /// Anything else (signals delivered, strace's own notes).
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RawLine<'a> {
    pub pid: Option<u32>,
    pub stamp: Stamp,
    pub body: Body<'a>,
}

fn parse_tod(s: &str) -> Option<u64> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let mut it = hms.split(':');
    let h: u64 = it.next()?.parse().ok()?;
    let m: u64 = it.next()?.parse().ok()?;
    let sec: u64 = it.next()?.parse().ok()?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec) * 1_000_000_000 + frac_ns(frac)?)
}

fn frac_ns(frac: &str) -> Option<u64> {
    if frac.is_empty() {
        return Some(0);
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = frac.parse().ok()?;
    Some(v * 10u64.pow(9 - frac.len() as u32))
}

fn parse_secs(s: &str) -> Option<u64> {
    let (a, b) = s.split_once('.').unwrap_or((s, ""));
    if a.is_empty() || !a.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = a.parse().ok()?;
    whole.checked_mul(1_000_000_000)?.checked_add(frac_ns(b)?)
}

/// Split a line into pid, timestamp and body.
pub fn split(line: &str) -> Option<RawLine<'_>> {
    let mut rest = line.trim_end();
    let mut pid = None;
    if let Some(r) = rest.strip_prefix("[pid") {
        let r = r.trim_start();
        let end = r.find(']')?;
        pid = Some(r[..end].trim().parse().ok()?);
        rest = r[end + 1..].trim_start();
    } else {
        let first = rest.split(' ').next().unwrap_or("");
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) && !first.contains('.') {
            // A pid column, unless it is the only thing before the body
            // of a trace without pids and with -t … which always has ':'.
            pid = Some(first.parse().ok()?);
            rest = rest[first.len()..].trim_start();
        }
    }
    let mut stamp = Stamp::None;
    let tok = rest.split(' ').next().unwrap_or("");
    if tok.contains(':')
        && tok
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b':' || b == b'.')
    {
        stamp = Stamp::TimeOfDay(parse_tod(tok)?);
        rest = rest[tok.len()..].trim_start();
    } else if !tok.is_empty()
        && tok.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && tok.contains('.')
    {
        let ns = parse_secs(tok)?;
        // -ttt prints seconds since 1970 (≥ 1e9); -r small deltas.
        stamp = if ns >= 1_000_000_000 * 1_000_000_000 {
            Stamp::Epoch(ns)
        } else {
            Stamp::Relative(ns)
        };
        rest = rest[tok.len()..].trim_start();
    }
    let body = if let Some(r) = rest.strip_prefix("+++ ") {
        let r = r.trim_end_matches("+++").trim();
        if let Some(code) = r.strip_prefix("exited with ") {
            Body::Exited(code.trim().parse().ok()?)
        } else if let Some(sig) = r.strip_prefix("killed by ") {
            let sig = sig.split_whitespace().next().unwrap_or("");
            Body::Killed(signal_number(sig).unwrap_or(0))
        } else {
            Body::Other
        }
    } else if rest.starts_with("--- ") || rest.starts_with("strace: ") || rest.is_empty() {
        Body::Other
    } else if let Some(r) = rest.strip_prefix("<... ") {
        let i = r.find(" resumed>")?;
        Body::Resumed {
            name: &r[..i],
            rest: &r[i + " resumed>".len()..],
        }
    } else if let Some(head) = rest.strip_suffix("<unfinished ...>") {
        Body::Call {
            text: head.trim_end(),
            unfinished: true,
        }
    } else {
        Body::Call {
            text: rest,
            unfinished: false,
        }
    };
    Some(RawLine { pid, stamp, body })
}

/// The outcome of a call.
#[derive(Clone, Debug, PartialEq)]
pub struct Ret {
    /// The value (`-errno` for failures); `None` for `?` (unknown).
    pub value: Option<i64>,
    /// The `-yy` decoration of a returned descriptor.
    pub deco: Option<String>,
}

impl Ret {
    pub fn ok(&self) -> bool {
        self.value.is_some_and(|v| v >= 0)
    }
}

/// A whole call: `name(args) = ret`.
#[derive(Clone, Debug, PartialEq)]
pub struct Syscall {
    pub name: String,
    pub args: Vec<String>,
    pub ret: Ret,
}

/// Errno names strace prints, for the few that matter here.
fn errno_of(name: &str) -> i64 {
    match name {
        "EPERM" => 1,
        "ENOENT" => 2,
        "ESRCH" => 3,
        "EIO" => 5,
        "ENXIO" => 6,
        "E2BIG" => 7,
        "ENOEXEC" => 8,
        "ENOMEM" => 12,
        "EFAULT" => 14,
        "EBUSY" => 16,
        "EXDEV" => 18,
        "ENODEV" => 19,
        "ENFILE" => 23,
        "EMFILE" => 24,
        "ETXTBSY" => 26,
        "EFBIG" => 27,
        "ENOSPC" => 28,
        "EROFS" => 30,
        "EMLINK" => 31,
        "ERANGE" => 34,
        "ENAMETOOLONG" => 36,
        "ENOSYS" => 38,
        "ENOTEMPTY" => 39,
        "ELOOP" => 40,
        "ENODATA" => 61,
        "EOVERFLOW" => 75,
        "ENOTSOCK" => 88,
        "EMSGSIZE" => 90,
        "EOPNOTSUPP" => 95,
        "EAFNOSUPPORT" => 97,
        "EADDRINUSE" => 98,
        "EADDRNOTAVAIL" => 99,
        "ENETUNREACH" => 101,
        "ECONNABORTED" => 103,
        "ECONNRESET" => 104,
        "ENOBUFS" => 105,
        "EISCONN" => 106,
        "ENOTCONN" => 107,
        "ETIMEDOUT" => 110,
        "EHOSTUNREACH" => 113,
        "EALREADY" => 114,
        "ESTALE" => 116,
        "EDQUOT" => 122,
        "EINTR" => 4,
        "EBADF" => 9,
        "EAGAIN" => 11,
        "EACCES" => 13,
        "EEXIST" => 17,
        "ENOTDIR" => 20,
        "EISDIR" => 21,
        "EINVAL" => 22,
        "ENOTTY" => 25,
        "ESPIPE" => 29,
        "EPIPE" => 32,
        "ECHILD" => 10,
        "EINPROGRESS" => 115,
        "ECONNREFUSED" => 111,
        "ERESTARTSYS" => 512,
        "ERESTARTNOINTR" => 513,
        "ERESTARTNOHAND" => 514,
        "ERESTART_RESTARTBLOCK" => 516,
        _ => 4095,
    }
}

pub fn signal_number(s: &str) -> Option<i32> {
    const SIGS: &[&str] = &[
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    SIGS.iter().position(|&n| n == s).map(|i| i as i32 + 1)
}

/// Length of the `<…>` decoration starting at `b[0] == '<'`, nested `<>`
/// and `[]` and strings included.
fn deco_len(b: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut bracket = 0usize;
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' if bracket > 0 => in_str = true,
                b'[' => bracket += 1,
                b']' => bracket = bracket.saturating_sub(1),
                b'<' => depth += 1,
                b'>' if bracket == 0 => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Split `name(args) = ret` into its parts, respecting strings, brackets
/// and `-yy` decorations.
pub fn parse_call(s: &str) -> Option<Syscall> {
    let open = s.find('(')?;
    let name = s[..open].trim();
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    let b = s.as_bytes();
    let mut depth = 1usize;
    let mut args = Vec::new();
    let mut start = open + 1;
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'<' if i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'D') => {
                // A decoration: `3<…>` or `AT_FDCWD<…>`.
                i += deco_len(&b[i..])? - 1;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    let a = s[start..i].trim();
                    if !a.is_empty() || !args.is_empty() {
                        args.push(a.to_string());
                    }
                    let rest = s[i + 1..].trim_start();
                    let ret = parse_ret(rest.strip_prefix('=')?.trim_start())?;
                    return Some(Syscall {
                        name: name.to_string(),
                        args,
                        ret,
                    });
                }
            }
            b',' if depth == 1 => {
                args.push(s[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_ret(s: &str) -> Option<Ret> {
    if s.starts_with('?') {
        return Some(Ret {
            value: None,
            deco: None,
        });
    }
    let end = s
        .bytes()
        .position(|c| !(c.is_ascii_hexdigit() || c == b'-' || c == b'x'))
        .unwrap_or(s.len());
    let tok = &s[..end];
    let value = if let Some(h) = tok.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()? as i64
    } else {
        tok.parse::<i64>().ok()?
    };
    let rest = &s[end..];
    let mut deco = None;
    let mut value = Some(value);
    if rest.starts_with('<') {
        let n = deco_len(rest.as_bytes())?;
        deco = Some(rest[1..n - 1].to_string());
    } else if let Some(v) = value.filter(|&v| v < 0) {
        // `-1 ENOENT (No such file or directory)`: the errno is the name.
        let name = rest.split_whitespace().next().unwrap_or("");
        if v == -1 && name.starts_with('E') {
            value = Some(-errno_of(name));
        }
    }
    Some(Ret { value, deco })
}

/// Decode a strace string literal (`"..."`, C escapes; a trailing `...`
/// means strace cut it at `-s`).
pub fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.strip_suffix("...").unwrap_or(s);
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    Some(String::from_utf8_lossy(&unescape(inner)).into_owned())
}

pub fn unescape(inner: &str) -> Vec<u8> {
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        match b[i] {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'x' => {
                let h = inner.get(i + 1..(i + 3).min(b.len())).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) if h.len() == 2 => {
                        out.push(v);
                        i += 2;
                    }
                    _ => out.push(b'x'),
                }
            }
            d if (b'0'..=b'7').contains(&d) => {
                let mut n = 0u32;
                let mut k = 0;
                while k < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    n = n * 8 + (b[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(n as u8);
                continue;
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// The elements of an array argument `["a", "b"]` (strings decoded).
pub fn str_array(s: &str) -> Vec<String> {
    let s = s.trim();
    let Some(inner) = s
        .strip_prefix('[')
        .and_then(|x| x.rsplit_once(']'))
        .map(|x| x.0)
    else {
        return Vec::new();
    };
    match parse_call(&format!("x({inner}) = 0")) {
        Some(c) => c.args.iter().filter_map(|a| unquote(a)).collect(),
        None => Vec::new(),
    }
}

/// What a `-yy` decoration says a descriptor is.
#[derive(Clone, Debug, PartialEq)]
pub enum Deco {
    Path {
        path: String,
        /// `<char M:m>` / `<block M:m>`.
        device: Option<(bool, u32, u32)>,
        deleted: bool,
    },
    Pipe(u64),
    Socket {
        proto: String,
        ino: Option<u64>,
        local: Option<SockAddr>,
        peer: Option<SockAddr>,
        /// The text inside `[…]`, for an identity when there is no inode.
        key: String,
    },
    Anon,
}

fn inet_addr(s: &str) -> Option<SockAddr> {
    let s = s.trim();
    // `[::1]:80`, `1.2.3.4:80`
    let (ip, port) = if let Some(r) = s.strip_prefix('[') {
        let (ip, p) = r.split_once("]:")?;
        (ip, p)
    } else {
        s.rsplit_once(':')?
    };
    Some(SockAddr::Inet {
        ip: ip.parse::<IpAddr>().ok()?,
        port: port.parse().ok()?,
    })
}

/// Decode the text inside a decoration (`/x`, `pipe:[5]`, `TCP:[…]`).
pub fn deco(inner: &str) -> Deco {
    if inner.starts_with('/') {
        let (mut path, mut device) = (inner, None);
        for (kind, blk) in [("<char ", false), ("<block ", true)] {
            if let Some(i) = inner.rfind(kind) {
                if inner.ends_with('>') {
                    path = &inner[..i];
                    let mm = &inner[i + kind.len()..inner.len() - 1];
                    if let Some((a, b)) = mm.split_once(':') {
                        device = Some((blk, a.parse().unwrap_or(0), b.parse().unwrap_or(0)));
                    }
                }
            }
        }
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (path, false),
        };
        return Deco::Path {
            path: String::from_utf8_lossy(&unescape(path)).into_owned(),
            device,
            deleted,
        };
    }
    let Some((proto, rest)) = inner.split_once(':') else {
        return Deco::Anon;
    };
    if proto == "anon_inode" {
        return Deco::Anon;
    }
    let body = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rest);
    if proto == "pipe" {
        return match body.parse() {
            Ok(n) => Deco::Pipe(n),
            Err(_) => Deco::Anon,
        };
    }
    let digits = body.bytes().take_while(|b| b.is_ascii_digit()).count();
    let ino = (digits > 0 && (digits == body.len() || !body[digits..].starts_with(['.', ':'])))
        .then(|| body[..digits].parse().ok())
        .flatten();
    let (mut local, mut peer) = (None, None);
    if proto.starts_with("UNIX") {
        // `ino->peer_ino,"path"` or `ino,"path"`
        if let Some(i) = body.find(",\"") {
            let path = unquote(&body[i + 1..]).unwrap_or_default();
            local = Some(SockAddr::Unix {
                path,
                abstract_ns: false,
            });
        }
    } else if ino.is_none() {
        match body.split_once("->") {
            Some((l, r)) => {
                local = inet_addr(l);
                peer = inet_addr(r);
            }
            None => local = inet_addr(body),
        }
    }
    if proto != "socket"
        && !proto
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == 'v')
    {
        return Deco::Anon;
    }
    Deco::Socket {
        proto: proto.to_string(),
        ino,
        local,
        peer,
        key: body.to_string(),
    }
}

/// A descriptor argument: `3`, `3</x>`, `AT_FDCWD</x>`, `-1`.
pub fn fd_arg(a: &str) -> Option<(i32, Option<Deco>)> {
    let a = a.trim();
    let (num, d) = match a.find('<') {
        Some(i) if a.ends_with('>') => (&a[..i], Some(deco(&a[i + 1..a.len() - 1]))),
        _ => (a, None),
    };
    let fd = if num == "AT_FDCWD" {
        -100
    } else {
        num.parse().ok()?
    };
    Some((fd, d))
}

/// `O_WRONLY|O_CREAT|0x80000` and friends, or a number (octal `0644`).
pub fn flags(s: &str, table: &[(&str, u64)]) -> u64 {
    s.split('|')
        .map(|w| {
            let w = w.trim();
            if let Some(h) = w.strip_prefix("0x") {
                u64::from_str_radix(h, 16).unwrap_or(0)
            } else if w.len() > 1 && w.starts_with('0') && w.bytes().all(|b| b.is_ascii_digit()) {
                u64::from_str_radix(&w[1..], 8).unwrap_or(0)
            } else if let Ok(n) = w.parse::<u64>() {
                n
            } else {
                table
                    .iter()
                    .find(|(n, _)| *n == w)
                    .map(|(_, v)| *v)
                    .unwrap_or(0)
            }
        })
        .fold(0, |a, b| a | b)
}

/// A `struct sockaddr` as strace prints it.
pub fn sockaddr(s: &str) -> Option<SockAddr> {
    let s = s.trim();
    if !s.starts_with('{') {
        return None;
    }
    let field = |k: &str| -> Option<&str> {
        let i = s.find(k)? + k.len();
        let rest = &s[i..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(&rest[..end])
    };
    let family = field("sa_family=")?;
    match family {
        "AF_INET" => {
            let port = field("sin_port=htons(")?
                .trim_end_matches(')')
                .parse()
                .ok()?;
            let ip = field("sin_addr=inet_addr(")?
                .trim_end_matches(')')
                .trim_matches('"');
            Some(SockAddr::Inet {
                ip: ip.parse().ok()?,
                port,
            })
        }
        "AF_INET6" => {
            let port = field("sin6_port=htons(")?
                .trim_end_matches(')')
                .parse()
                .ok()?;
            let i = s.find("inet_pton(AF_INET6, \"")? + 21;
            let ip = &s[i..i + s[i..].find('"')?];
            Some(SockAddr::Inet {
                ip: ip.parse().ok()?,
                port,
            })
        }
        "AF_UNIX" => {
            let Some(i) = s.find("sun_path=") else {
                return Some(SockAddr::Unnamed);
            };
            let rest = &s[i + 9..];
            let (abstract_ns, rest) = match rest.strip_prefix('@') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let end = rest.rfind('"')? + 1;
            Some(SockAddr::Unix {
                path: unquote(&rest[..end])?,
                abstract_ns,
            })
        }
        other => Some(SockAddr::Other {
            family: match other {
                "AF_NETLINK" => 16,
                "AF_PACKET" => 17,
                _ => 0,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let l = split(
            "22151 13:27:40.490281 execve(\"/usr/bin/sh\", [\"sh\"], 0x7ffd /* 35 vars */) = 0",
        )
        .unwrap();
        assert_eq!(l.pid, Some(22151));
        assert_eq!(
            l.stamp,
            Stamp::TimeOfDay(((13 * 3600 + 27 * 60 + 40) * 1_000_000_000) + 490_281_000)
        );
        let l = split("[pid  7] 1795440472.329890 read(3</a>, \"x\", 1) = 1 <0.000013>").unwrap();
        assert_eq!(l.pid, Some(7));
        assert_eq!(l.stamp, Stamp::Epoch(1_795_440_472_329_890_000));
        let Body::Call {
            text,
            unfinished: false,
        } = l.body
        else {
            panic!()
        };
        let c = parse_call(text).unwrap();
        assert_eq!(
            (c.name.as_str(), c.args.len(), c.ret.value),
            ("read", 3, Some(1))
        );
        let l = split("22153 13:27:40.507719 +++ exited with 3 +++").unwrap();
        assert_eq!(l.body, Body::Exited(3));
        let l = split("9 +++ killed by SIGKILL (core dumped) +++").unwrap();
        assert_eq!(
            (l.pid, l.stamp, l.body),
            (Some(9), Stamp::None, Body::Killed(9))
        );
        let l =
            split("22151 13:27:40.495107 <... clone resumed>, child_tidptr=0x7f) = 22153").unwrap();
        assert_eq!(
            l.body,
            Body::Resumed {
                name: "clone",
                rest: ", child_tidptr=0x7f) = 22153"
            }
        );
        let l = split("22151 13:27:40.495480 wait4(-1,  <unfinished ...>").unwrap();
        assert_eq!(
            l.body,
            Body::Call {
                text: "wait4(-1,",
                unfinished: true
            }
        );
        assert_eq!(
            split("1 --- SIGCHLD {si_signo=SIGCHLD} ---").unwrap().body,
            Body::Other
        );
    }

    #[test]
    fn calls_and_decorations() {
        let c = parse_call("openat(AT_FDCWD</tmp/stx>, \"out.txt\", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</tmp/stx/out.txt>").unwrap();
        assert_eq!(c.args.len(), 4);
        assert_eq!(
            fd_arg(&c.args[0]).unwrap(),
            (
                -100,
                Some(Deco::Path {
                    path: "/tmp/stx".into(),
                    device: None,
                    deleted: false
                })
            )
        );
        assert_eq!(c.ret.deco.as_deref(), Some("/tmp/stx/out.txt"));
        let c = parse_call("write(5<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"a,b\", 3) = 3").unwrap();
        assert_eq!(c.args.len(), 3);
        match fd_arg(&c.args[0]).unwrap().1.unwrap() {
            Deco::Socket {
                proto,
                ino,
                local,
                peer,
                ..
            } => {
                assert_eq!((proto.as_str(), ino), ("TCP", None));
                assert_eq!(
                    local,
                    Some(SockAddr::Inet {
                        ip: "127.0.0.1".parse().unwrap(),
                        port: 1
                    })
                );
                assert_eq!(
                    peer,
                    Some(SockAddr::Inet {
                        ip: "127.0.0.1".parse().unwrap(),
                        port: 2
                    })
                );
            }
            d => panic!("{d:?}"),
        }
        let c = parse_call("accept4(6<UNIX-STREAM:[310023,\"/tmp/stx/sock\"]>, {sa_family=AF_UNIX}, [110 => 2], SOCK_CLOEXEC) = 8<UNIX-STREAM:[310032->310028,\"/tmp/stx/sock\"]>").unwrap();
        assert_eq!(c.args.len(), 4);
        match deco(c.ret.deco.as_deref().unwrap()) {
            Deco::Socket { ino, local, .. } => {
                assert_eq!(ino, Some(310032));
                assert_eq!(
                    local,
                    Some(SockAddr::Unix {
                        path: "/tmp/stx/sock".into(),
                        abstract_ns: false
                    })
                );
            }
            d => panic!("{d:?}"),
        }
        let c =
            parse_call("dup2(3<pipe:[309458]>, 0</dev/null<char 1:3>>) = 0</dev/null<char 1:3>>")
                .unwrap();
        assert_eq!(
            fd_arg(&c.args[1]).unwrap().1,
            Some(Deco::Path {
                path: "/dev/null".into(),
                device: Some((false, 1, 3)),
                deleted: false
            })
        );
        assert_eq!(fd_arg(&c.args[0]).unwrap().1, Some(Deco::Pipe(309458)));
        let c = parse_call(
            "openat(AT_FDCWD</x>, \"/nope\", O_RDONLY) = -1 ENOENT (No such file or directory)",
        )
        .unwrap();
        assert_eq!(c.ret.value, Some(-2));
        let c = parse_call("exit_group(0)     = ?").unwrap();
        assert_eq!(c.ret.value, None);
        let c = parse_call("mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f529548a000").unwrap();
        assert_eq!(c.args.len(), 6);
        assert!(c.ret.ok());
        let c = parse_call(
            "execve(\"/x\", [\"x\", \"a,b\", \"\\303\\251\"], 0x7ffd /* 35 vars */) = 0",
        )
        .unwrap();
        assert_eq!(str_array(&c.args[1]), ["x", "a,b", "é"]);
        assert_eq!(
            deco("UDPv6:[[::1]:46344]"),
            Deco::Socket {
                proto: "UDPv6".into(),
                ino: None,
                local: Some(SockAddr::Inet {
                    ip: "::1".parse().unwrap(),
                    port: 46344
                }),
                peer: None,
                key: "[::1]:46344".into()
            }
        );
        assert_eq!(deco("anon_inode:[eventfd]"), Deco::Anon);
        assert!(matches!(
            deco("/tmp/x (deleted)"),
            Deco::Path { deleted: true, .. }
        ));
    }

    #[test]
    fn sockaddrs() {
        assert_eq!(
            sockaddr("{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr(\"127.0.0.1\")}"),
            Some(SockAddr::Inet {
                ip: "127.0.0.1".parse().unwrap(),
                port: 80
            })
        );
        assert_eq!(
            sockaddr("{sa_family=AF_INET6, sin6_port=htons(46344), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, \"::1\", &sin6_addr), sin6_scope_id=0}"),
            Some(SockAddr::Inet { ip: "::1".parse().unwrap(), port: 46344 })
        );
        assert_eq!(
            sockaddr("{sa_family=AF_UNIX, sun_path=\"/tmp/s\"}"),
            Some(SockAddr::Unix {
                path: "/tmp/s".into(),
                abstract_ns: false
            })
        );
        assert_eq!(sockaddr("{sa_family=AF_UNIX}"), Some(SockAddr::Unnamed));
        assert_eq!(
            flags(
                "O_WRONLY|O_CREAT|0x400",
                &[("O_WRONLY", 1), ("O_CREAT", 0o100)]
            ),
            1 | 0o100 | 0x400
        );
        assert_eq!(flags("0644", &[]), 0o644);
    }
}
