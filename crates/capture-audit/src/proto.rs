//! The audit control protocol (`include/uapi/linux/audit.h`): `struct
//! audit_status` for AUDIT_GET/AUDIT_SET and `struct audit_rule_data` for
//! AUDIT_ADD_RULE/AUDIT_DEL_RULE/AUDIT_LIST_RULES, built and read as bytes
//! in the machine's byte order.

use crate::netlink::{self, Recv, Socket, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK};
use std::io;

pub const AUDIT_GET: u16 = 1000;
pub const AUDIT_SET: u16 = 1001;
pub const AUDIT_ADD_RULE: u16 = 1011;
pub const AUDIT_DEL_RULE: u16 = 1012;
pub const AUDIT_LIST_RULES: u16 = 1013;
/// Sent by the kernel to the registered daemon to check it is alive.
pub const AUDIT_REPLACE: u16 = 1329;

pub const STATUS_ENABLED: u32 = 0x1;
pub const STATUS_PID: u32 = 0x4;
pub const STATUS_BACKLOG_LIMIT: u32 = 0x10;

const AUDIT_FILTER_EXIT: u32 = 0x04;
const AUDIT_ALWAYS: u32 = 2;
const AUDIT_PID: u32 = 0;
const AUDIT_ARCH: u32 = 11;
const AUDIT_FILTERKEY: u32 = 210;
const AUDIT_NOT_EQUAL: u32 = 0x3000_0000;
const AUDIT_EQUAL: u32 = 0x4000_0000;
const AUDIT_MAX_FIELDS: usize = 64;
const AUDIT_BITMASK_SIZE: usize = 64;
const AUDIT_MAX_KEY_LEN: usize = 256;
/// `struct audit_rule_data` without its string buffer.
const RULE_FIXED: usize = 4 * (3 + AUDIT_BITMASK_SIZE + 3 * AUDIT_MAX_FIELDS + 1);

/// How long the kernel may take to answer a request.
const REPLY_TIMEOUT_MS: i32 = 5000;

/// `struct audit_status`. Older kernels send a shorter one: missing fields
/// read as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub mask: u32,
    pub enabled: u32,
    pub failure: u32,
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub lost: u32,
    pub backlog: u32,
    pub feature_bitmap: u32,
    pub backlog_wait_time: u32,
    pub backlog_wait_time_actual: u32,
}

impl Status {
    pub fn from_bytes(b: &[u8]) -> Status {
        let w = |i: usize| {
            b.get(4 * i..4 * i + 4)
                .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
                .unwrap_or(0)
        };
        Status {
            mask: w(0),
            enabled: w(1),
            failure: w(2),
            pid: w(3),
            rate_limit: w(4),
            backlog_limit: w(5),
            lost: w(6),
            backlog: w(7),
            feature_bitmap: w(8),
            backlog_wait_time: w(9),
            backlog_wait_time_actual: w(10),
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        [
            self.mask,
            self.enabled,
            self.failure,
            self.pid,
            self.rate_limit,
            self.backlog_limit,
            self.lost,
            self.backlog,
            self.feature_bitmap,
            self.backlog_wait_time,
            self.backlog_wait_time_actual,
        ]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect()
    }
}

/// One field of a rule: (field, operator, value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub field: u32,
    pub op: u32,
    pub value: u32,
}

/// `struct audit_rule_data`, as sent and as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub flags: u32,
    pub action: u32,
    pub mask: [u32; AUDIT_BITMASK_SIZE],
    pub fields: Vec<Field>,
    /// The string values, concatenated in field order.
    pub buf: Vec<u8>,
}

/// Fields whose value is the length of a string in the rule's buffer
/// (`audit_data_to_entry` in kernel/auditfilter.c).
fn is_string_field(f: u32) -> bool {
    matches!(f, 13..=17 | 19..=23 | 105 | 107 | 112 | AUDIT_FILTERKEY)
}

impl Rule {
    /// `-a always,exit -F arch=b64 -S <calls> -F pid!=<agent> -k <key>`.
    pub fn exit_always(arch: u32, syscalls: &[u64], exclude_pid: u32, key: &str) -> Rule {
        let mut mask = [0u32; AUDIT_BITMASK_SIZE];
        for &nr in syscalls {
            let nr = nr as usize;
            if nr < AUDIT_BITMASK_SIZE * 32 {
                mask[nr / 32] |= 1 << (nr % 32);
            }
        }
        let key = &key.as_bytes()[..key.len().min(AUDIT_MAX_KEY_LEN)];
        Rule {
            flags: AUDIT_FILTER_EXIT,
            action: AUDIT_ALWAYS,
            mask,
            fields: vec![
                Field {
                    field: AUDIT_ARCH,
                    op: AUDIT_EQUAL,
                    value: arch,
                },
                Field {
                    field: AUDIT_PID,
                    op: AUDIT_NOT_EQUAL,
                    value: exclude_pid,
                },
                Field {
                    field: AUDIT_FILTERKEY,
                    op: AUDIT_EQUAL,
                    value: key.len() as u32,
                },
            ],
            buf: key.to_vec(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(RULE_FIXED + self.buf.len());
        let mut put = |v: u32| b.extend_from_slice(&v.to_ne_bytes());
        put(self.flags);
        put(self.action);
        put(self.fields.len() as u32);
        for &m in &self.mask {
            put(m);
        }
        let col = |f: &dyn Fn(&Field) -> u32| {
            let mut c = [0u32; AUDIT_MAX_FIELDS];
            for (i, x) in self.fields.iter().take(AUDIT_MAX_FIELDS).enumerate() {
                c[i] = f(x);
            }
            c
        };
        for c in [col(&|f| f.field), col(&|f| f.value), col(&|f| f.op)] {
            for v in c {
                put(v);
            }
        }
        put(self.buf.len() as u32);
        b.extend_from_slice(&self.buf);
        b
    }

    /// A listed rule; `None` if it does not hold together.
    pub fn from_bytes(b: &[u8]) -> Option<Rule> {
        if b.len() < RULE_FIXED {
            return None;
        }
        let w = |i: usize| u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        let count = w(2) as usize;
        if count > AUDIT_MAX_FIELDS {
            return None;
        }
        let mut mask = [0u32; AUDIT_BITMASK_SIZE];
        for (i, m) in mask.iter_mut().enumerate() {
            *m = w(3 + i);
        }
        let base = 3 + AUDIT_BITMASK_SIZE;
        let fields = (0..count)
            .map(|i| Field {
                field: w(base + i),
                value: w(base + AUDIT_MAX_FIELDS + i),
                op: w(base + 2 * AUDIT_MAX_FIELDS + i),
            })
            .collect();
        let buflen = w(base + 3 * AUDIT_MAX_FIELDS) as usize;
        let buf = b.get(RULE_FIXED..RULE_FIXED.checked_add(buflen)?)?.to_vec();
        Some(Rule {
            flags: w(0),
            action: w(1),
            mask,
            fields,
            buf,
        })
    }

    /// The rule's key (`-k`), if it has one.
    pub fn key(&self) -> Option<String> {
        let mut at = 0usize;
        for f in &self.fields {
            if is_string_field(f.field) {
                let end = at.checked_add(f.value as usize)?;
                let s = self.buf.get(at..end)?;
                if f.field == AUDIT_FILTERKEY {
                    return Some(String::from_utf8_lossy(s).into_owned());
                }
                at = end;
            }
        }
        None
    }

    /// The pid a `pid!=N` field excludes (the agent that installed it).
    pub fn excluded_pid(&self) -> Option<u32> {
        self.fields
            .iter()
            .find(|f| f.field == AUDIT_PID && f.op == AUDIT_NOT_EQUAL)
            .map(|f| f.value)
    }

    /// The syscall numbers in the rule's mask.
    #[cfg(test)]
    pub fn syscalls(&self) -> impl Iterator<Item = u64> + '_ {
        (0..AUDIT_BITMASK_SIZE * 32)
            .filter(|&n| self.mask[n / 32] & (1 << (n % 32)) != 0)
            .map(|n| n as u64)
    }
}

fn timeout() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no answer from the kernel")
}

/// Read the answer to request `seq`: the payloads of its replies of type
/// `reply` (if any), until its acknowledgement, its NLMSG_DONE, or an error.
fn answer(sock: &Socket, seq: u32, reply: Option<u16>, multi: bool) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1 << 16];
    let mut got = Vec::new();
    loop {
        if !sock.wait(REPLY_TIMEOUT_MS)? {
            return Err(timeout());
        }
        let n = match sock.recv(&mut buf, false)? {
            Recv::Empty | Recv::Bad => continue,
            Recv::Msg(n) => n,
        };
        for (ty, _flags, mseq, payload) in netlink::messages(&buf[..n]) {
            if mseq != seq {
                continue;
            }
            match ty {
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .map(|x| i32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
                        .unwrap_or(0);
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    if !multi {
                        return Ok(got);
                    }
                }
                NLMSG_DONE => return Ok(got),
                t if Some(t) == reply => {
                    got.push(payload.to_vec());
                    if !multi {
                        return Ok(got);
                    }
                }
                _ => {}
            }
        }
    }
}

/// A request that is answered by an acknowledgement (or an error).
pub fn request(sock: &mut Socket, ty: u16, payload: &[u8]) -> io::Result<()> {
    let seq = sock.send(ty, NLM_F_ACK, payload)?;
    answer(sock, seq, None, false).map(drop)
}

pub fn get_status(sock: &mut Socket) -> io::Result<Status> {
    // The kernel sends replies from a kernel thread, after the
    // acknowledgement: no acknowledgement is asked for, the reply ends the
    // answer (errors are sent anyway).
    let seq = sock.send(AUDIT_GET, 0, &[])?;
    let r = answer(sock, seq, Some(AUDIT_GET), false)?;
    r.first()
        .map(|b| Status::from_bytes(b))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "AUDIT_GET without a status"))
}

pub fn set_status(sock: &mut Socket, s: Status) -> io::Result<()> {
    request(sock, AUDIT_SET, &s.to_bytes())
}

pub fn list_rules(sock: &mut Socket) -> io::Result<Vec<(Vec<u8>, Option<Rule>)>> {
    // Listed by a kernel thread as separate messages ending in NLMSG_DONE;
    // no acknowledgement is asked for (it could come before the list).
    let seq = sock.send(AUDIT_LIST_RULES, 0, &[])?;
    let r = answer(sock, seq, Some(AUDIT_LIST_RULES), true)?;
    Ok(r.into_iter()
        .map(|b| {
            let rule = Rule::from_bytes(&b);
            (b, rule)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_round_trip_and_key() {
        let r = Rule::exit_always(0xc000_003e, &[0, 1, 59, 257, 435, 5000], 4242, "tomo-agent");
        let b = r.to_bytes();
        assert_eq!(b.len(), 1040 + 10);
        let back = Rule::from_bytes(&b).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.key().as_deref(), Some("tomo-agent"));
        assert_eq!(back.excluded_pid(), Some(4242));
        // 5000 is beyond the mask: dropped.
        assert_eq!(back.syscalls().collect::<Vec<_>>(), [0, 1, 59, 257, 435]);
        // Truncated or lying buffers are refused, not read past.
        assert!(Rule::from_bytes(&b[..b.len() - 1]).is_none());
        assert!(Rule::from_bytes(&b[..100]).is_none());
        let mut lie = b.clone();
        lie[8..12].copy_from_slice(&65u32.to_ne_bytes());
        assert!(Rule::from_bytes(&lie).is_none());
        // A key after another string field (a watch path) is still found.
        let mut w = r.clone();
        w.fields.insert(
            0,
            Field {
                field: 105,
                op: AUDIT_EQUAL,
                value: 4,
            },
        );
        w.buf = b"/etctomo-agent".to_vec();
        assert_eq!(w.key().as_deref(), Some("tomo-agent"));
        w.fields[0].value = 400;
        assert_eq!(w.key(), None);
    }

    #[test]
    fn status_layout() {
        let s = Status {
            mask: 1,
            enabled: 2,
            pid: 3,
            backlog_limit: 4,
            lost: 5,
            backlog_wait_time_actual: 9,
            ..Status::default()
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), 44);
        assert_eq!(Status::from_bytes(&b), s);
        // A shorter (older) status reads its missing fields as 0.
        let short = Status::from_bytes(&b[..32]);
        assert_eq!(short.lost, 5);
        assert_eq!(short.backlog_wait_time_actual, 0);
    }
}
