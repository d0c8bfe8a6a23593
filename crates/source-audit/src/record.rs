//! One line of an audit log: header (`node=`, `type=`, `msg=audit(…)`),
//! `key=value` fields, and the optional ENRICHED section after `\x1d`.

/// The record types an event is assembled from. Every other type (user-space
/// messages, AVC, login, daemon records, …) is counted and skipped: it says
/// nothing about a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RType {
    Syscall,
    Execve,
    Path,
    Cwd,
    Sockaddr,
    Proctitle,
    FdPair,
    ObjPid,
    Mmap,
    Openat2,
    Eoe,
}

impl RType {
    fn from_name(s: &str) -> Option<RType> {
        Some(match s {
            "SYSCALL" => RType::Syscall,
            "EXECVE" => RType::Execve,
            "PATH" => RType::Path,
            "CWD" => RType::Cwd,
            "SOCKADDR" => RType::Sockaddr,
            "PROCTITLE" => RType::Proctitle,
            "FD_PAIR" => RType::FdPair,
            "OBJ_PID" => RType::ObjPid,
            "MMAP" => RType::Mmap,
            "OPENAT2" => RType::Openat2,
            "EOE" => RType::Eoe,
            _ => return None,
        })
    }

    /// The kernel's numbers (`include/uapi/linux/audit.h`), as they appear in
    /// kernel log lines (`type=1300`), in auditd's `UNKNOWN[1337]` and as
    /// netlink message types.
    pub fn from_number(n: u32) -> Option<RType> {
        Some(match n {
            1300 => RType::Syscall,
            1309 => RType::Execve,
            1302 => RType::Path,
            1307 => RType::Cwd,
            1306 => RType::Sockaddr,
            1327 => RType::Proctitle,
            1317 => RType::FdPair,
            1318 => RType::ObjPid,
            1323 => RType::Mmap,
            1337 => RType::Openat2,
            1320 => RType::Eoe,
            _ => return None,
        })
    }
}

/// A field value as written: `"quoted"` (or `'quoted'`), or bare (numbers,
/// hex-encoded strings, `(null)`, `?`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Quoted(String),
    Bare(String),
}

impl Value {
    pub fn raw(&self) -> &str {
        match self {
            Value::Quoted(s) | Value::Bare(s) => s,
        }
    }

    /// An "untrusted string" as the kernel logs it: quoted when harmless,
    /// hex-encoded otherwise (spaces, quotes, control or non-ASCII bytes),
    /// `(null)` when absent.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Quoted(s) => Some(s.clone()),
            Value::Bare(s) if s == "(null)" || s == "(none)" => None,
            Value::Bare(s) => match hex_decode(s) {
                Some(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                None => Some(s.clone()),
            },
        }
    }

    /// The raw bytes of a hex-encoded value (PROCTITLE, SOCKADDR); a quoted
    /// value is its own bytes.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Value::Quoted(s) => Some(s.as_bytes().to_vec()),
            Value::Bare(s) => hex_decode(s),
        }
    }
}

/// `2F746D70` → `/tmp`. `None` unless the text is a non-empty, even-length
/// run of hex digits.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() & 1 != 0 || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    };
    Some(b.chunks(2).map(|p| nib(p[0]) << 4 | nib(p[1])).collect())
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub node: Option<String>,
    pub rtype: RType,
    /// The timestamp as written: seconds and nanoseconds.
    pub ts_ns: u64,
    pub serial: u64,
    pub fields: Vec<(String, Value)>,
    /// The ENRICHED section (`UID="root" SYSCALL=openat …`), if any.
    pub enriched: Vec<(String, Value)>,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn enriched(&self, key: &str) -> Option<&Value> {
        self.enriched.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A decimal field (`pid=12`, `exit=-2`).
    pub fn dec(&self, key: &str) -> Option<i64> {
        self.get(key)?.raw().parse().ok()
    }

    /// A hex field without `0x` (`a0=7ffd3c`, `arch=c000003e`).
    pub fn hex(&self, key: &str) -> Option<u64> {
        u64::from_str_radix(self.get(key)?.raw(), 16).ok()
    }

    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key)?.text()
    }
}

/// What a line turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Blank, or a record type that is not part of a system-call event.
    Skip {
        other_type: bool,
    },
    Record(Record),
}

/// Parse one line. Errors are messages for humans; the caller adds file and
/// line number.
pub fn parse_line(line: &str) -> Result<Line, String> {
    let line = line.trim_end_matches(['\n', '\r']);
    let (raw, enriched) = match line.split_once('\x1d') {
        Some((r, e)) => (r, Some(e)),
        None => (line, None),
    };
    if raw.trim().is_empty() {
        return Ok(Line::Skip { other_type: false });
    }
    // The record starts at `type=`; anything before it is a `node=` prefix
    // or the header of whatever forwarded the line (syslog, journald).
    let start = token_start(raw, "type=").ok_or_else(|| {
        format!(
            "not an audit record (no type= field): {:?}",
            truncate(raw, 60)
        )
    })?;
    let node = raw[..start].split_whitespace().find_map(|t| {
        t.strip_prefix("node=")
            .map(|n| n.trim_matches('"').to_string())
    });
    let rest = &raw[start + "type=".len()..];
    let (tname, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let rtype = if let Some(t) = RType::from_name(tname) {
        Some(t)
    } else if let Ok(n) = tname.parse::<u32>() {
        RType::from_number(n)
    } else if let Some(n) = tname
        .strip_prefix("UNKNOWN[")
        .and_then(|s| s.strip_suffix(']'))
    {
        n.parse().ok().and_then(RType::from_number)
    } else if tname.is_empty() {
        return Err("empty type= field".into());
    } else {
        None
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("msg=").unwrap_or(rest);
    let (hdr, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let (ts_ns, serial) = parse_stamp(hdr)?;
    let Some(rtype) = rtype else {
        return Ok(Line::Skip { other_type: true });
    };
    let fields = tokenize(body)?;
    let enriched = match enriched {
        Some(e) => tokenize(e).map_err(|m| format!("in the ENRICHED section: {m}"))?,
        None => Vec::new(),
    };
    Ok(Line::Record(Record {
        node,
        rtype,
        ts_ns,
        serial,
        fields,
        enriched,
    }))
}

/// Where `key` starts as a token: at the beginning or after whitespace.
fn token_start(s: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(key) {
        let at = from + i;
        if at == 0 || s[..at].ends_with(char::is_whitespace) {
            return Some(at);
        }
        from = at + key.len();
    }
    None
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `audit(1700000000.123:42):` → (ns since the epoch, serial).
pub fn parse_stamp(h: &str) -> Result<(u64, u64), String> {
    let bad = || {
        format!(
            "bad event stamp {:?} (expected msg=audit(SECONDS.MILLIS:SERIAL):)",
            truncate(h, 40)
        )
    };
    let inner = h
        .strip_prefix("audit(")
        .and_then(|s| s.strip_suffix(':').unwrap_or(s).strip_suffix(')'))
        .ok_or_else(bad)?;
    let (time, serial) = inner.split_once(':').ok_or_else(bad)?;
    let (secs, frac) = time.split_once('.').unwrap_or((time, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(secs) || !digits(frac) || frac.len() > 9 || !digits(serial) {
        return Err(bad());
    }
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    let frac_ns: u64 = frac.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - frac.len() as u32);
    let ts = secs
        .checked_mul(1_000_000_000)
        .and_then(|t| t.checked_add(frac_ns))
        .ok_or_else(bad)?;
    // The kernel's serial is an unsigned int; anything larger is not a
    // serial (and would overflow `seq = 2 × serial + 1`).
    let serial: u32 = serial.parse().map_err(|_| bad())?;
    Ok((ts, serial as u64))
}

/// `key=value key="quoted value" SADDR={ a=b }` → pairs, in order.
pub fn tokenize(s: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let kstart = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[kstart..i];
        if i >= b.len() || b[i] != b'=' {
            return Err(format!("field without '=': {:?}", truncate(key, 40)));
        }
        if key.is_empty() {
            return Err("field with an empty name".into());
        }
        i += 1;
        let value = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = s[i + 1..]
                    .find(q as char)
                    .ok_or_else(|| format!("unterminated quoted value of {key}"))?;
                let v = &s[i + 1..i + 1 + end];
                i += end + 2;
                Value::Quoted(v.to_string())
            }
            Some(b'{') => {
                let end = s[i..]
                    .find('}')
                    .ok_or_else(|| format!("unterminated {{…}} value of {key}"))?;
                let v = &s[i..=i + end];
                i += end + 1;
                Value::Bare(v.to_string())
            }
            _ => {
                let vstart = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                Value::Bare(s[vstart..i].to_string())
            }
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let l = "node=web1 type=PATH msg=audit(1700000000.123:42): item=0 name=2F746D702F612062 inode=12 dev=fd:01 mode=0100644 nametype=NORMAL\x1dOUID=\"root\"";
        let Line::Record(r) = parse_line(l).unwrap() else {
            panic!()
        };
        assert_eq!(r.node.as_deref(), Some("web1"));
        assert_eq!(r.rtype, RType::Path);
        assert_eq!(r.ts_ns, 1_700_000_000_123_000_000);
        assert_eq!(r.serial, 42);
        assert_eq!(r.text("name").as_deref(), Some("/tmp/a b"));
        assert_eq!(r.enriched("OUID").unwrap().raw(), "root");
        let k = "Nov 23 10:00:00 h kernel: audit: type=1307 audit(1700000000.5:7): cwd=\"/\"";
        let Line::Record(r) = parse_line(k).unwrap() else {
            panic!()
        };
        assert_eq!(r.rtype, RType::Cwd);
        assert_eq!(r.ts_ns, 1_700_000_000_500_000_000);
        assert!(matches!(
            parse_line("type=USER_LOGIN msg=audit(1.0:1): msg='a b'"),
            Ok(Line::Skip { other_type: true })
        ));
        assert!(parse_line("type=PATH msg=audit(x:1): a=b").is_err());
        assert!(parse_line("type=PATH msg=audit(1.2:3): a=\"b").is_err());
        assert!(parse_line("garbage").is_err());
        assert!(parse_line("type=PATH msg=audit(99999999999999999999.1:1):").is_err());
        assert!(parse_line("type=PATH msg=audit(1.1:18446744073709551615):").is_err());
    }
}
