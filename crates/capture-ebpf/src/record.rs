//! The records the BPF program writes to the ring buffer, parsed from bytes
//! (safe code: every field is read with `from_ne_bytes` at the offset that
//! `bpf/tomo.bpf.c` fixes with `_Static_assert`s).

pub const REC_SYS: u32 = 1;
pub const REC_PIECE: u32 = 2;
pub const REC_FORK: u32 = 3;
pub const REC_EXEC: u32 = 4;
pub const REC_EXIT: u32 = 5;

pub const PIECE_STR0: u32 = 1;
pub const PIECE_STR1: u32 = 2;
pub const PIECE_BASE0: u32 = 3;
pub const PIECE_BASE1: u32 = 4;
pub const PIECE_RFD: u32 = 5;
pub const PIECE_SOCKADDR: u32 = 6;
pub const PIECE_EXE: u32 = 7;
pub const PIECE_ARGS: u32 = 8;
pub const PIECE_CWD: u32 = 9;
pub const PIECE_FD0: u32 = 10;
pub const PIECE_MMSG: u32 = 11;
pub const MMSG_SA: usize = 112;

pub const ANON_INODE_FS_MAGIC: u32 = 0x0904_1934;
pub const FMODE_CREATED: u32 = 0x10_0000;

struct Cur<'a>(&'a [u8]);

impl Cur<'_> {
    fn u16(&self, o: usize) -> u16 {
        self.0
            .get(o..o + 2)
            .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]))
    }
    fn u32(&self, o: usize) -> u32 {
        self.0
            .get(o..o + 4)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, o: usize) -> u64 {
        self.0.get(o..o + 8).map_or(0, |b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_ne_bytes(a)
        })
    }
    fn bytes16(&self, o: usize) -> [u8; 16] {
        let mut a = [0u8; 16];
        if let Some(b) = self.0.get(o..o + 16) {
            a.copy_from_slice(b);
        }
        a
    }
}

/// Common header: who did it, when.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hdr {
    pub typ: u32,
    pub nr: u32,
    /// CLOCK_BOOTTIME ns.
    pub ts: u64,
    pub tgid: u32,
    pub tid: u32,
    pub ppid: u32,
    /// Group leader's `start_boottime` (ns).
    pub start_ns: u64,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

pub const HDR_LEN: usize = 56;

fn hdr(c: &Cur) -> Hdr {
    Hdr {
        typ: c.u32(0),
        nr: c.u32(4),
        ts: c.u64(8),
        tgid: c.u32(16),
        tid: c.u32(20),
        ppid: c.u32(24),
        start_ns: c.u64(32),
        uid: c.u32(40),
        gid: c.u32(44),
        euid: c.u32(48),
        egid: c.u32(52),
    }
}

/// Socket facts read from `struct sock`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sk {
    pub family: u16,
    pub typ: u16,
    pub proto: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
}

/// An open file as the kernel had it.
#[derive(Clone, Copy, Debug, Default)]
pub struct KObj {
    /// `struct file *`: names the open file description (0: none).
    pub file: u64,
    pub ino: u64,
    pub pos: u64,
    /// Kernel-internal dev_t (major << 20 | minor).
    pub dev: u32,
    pub mode: u32,
    pub flags: u32,
    pub magic: u32,
    pub sk: Sk,
    pub fmode: u32,
}

pub const OBJ_LEN: usize = 88;

fn obj(c: &Cur, o: usize) -> KObj {
    KObj {
        file: c.u64(o),
        ino: c.u64(o + 8),
        pos: c.u64(o + 16),
        dev: c.u32(o + 24),
        mode: c.u32(o + 28),
        flags: c.u32(o + 32),
        magic: c.u32(o + 36),
        sk: Sk {
            family: c.u16(o + 40),
            typ: c.u16(o + 42),
            proto: c.u16(o + 44),
            lport: c.u16(o + 46),
            rport: c.u16(o + 48),
            laddr: c.bytes16(o + 52),
            raddr: c.bytes16(o + 68),
        },
        fmode: c.u32(o + 84),
    }
}

#[derive(Clone, Debug)]
pub struct SysRec {
    pub ret: i64,
    pub args: [u64; 6],
    pub u64v: [u64; 2],
    pub fd: [KObj; 2],
    pub pos_after: [u64; 2],
    pub rfd: [KObj; 2],
    pub pair: [i32; 2],
    /// Everything was read at the call's exit: positions are after it.
    pub at_exit: bool,
}

#[derive(Clone, Debug)]
pub struct ForkRec {
    pub child_tgid: u32,
    pub child_tid: u32,
    pub child_ppid: u32,
    pub child_start_ns: u64,
    pub nr: u64,
    pub flags: u64,
    pub vfork: bool,
}

#[derive(Clone, Debug)]
pub struct ExecRec {
    pub old_tid: u32,
    pub exe: KObj,
}

#[derive(Clone, Debug)]
pub struct ExitRec {
    pub group_dead: bool,
    /// Wait status (`code << 8` or the signal number).
    pub status: i32,
    pub nr: u64,
    pub arg0: u64,
}

#[derive(Clone, Debug)]
pub enum Body {
    Sys(Box<SysRec>),
    Piece { kind: u32, data: Vec<u8> },
    Fork(ForkRec),
    Exec(ExecRec),
    Exit(ExitRec),
}

/// Parse one ring-buffer record; `None` for a record too short or of an
/// unknown type (a program/loader mismatch, reported by the caller).
pub fn parse(b: &[u8]) -> Option<(Hdr, Body)> {
    let c = Cur(b);
    if b.len() < HDR_LEN {
        return None;
    }
    let h = hdr(&c);
    let body = match h.typ {
        REC_SYS if b.len() >= 512 => {
            let mut args = [0u64; 6];
            for (i, a) in args.iter_mut().enumerate() {
                *a = c.u64(64 + 8 * i);
            }
            Body::Sys(Box::new(SysRec {
                ret: c.u64(56) as i64,
                args,
                u64v: [c.u64(112), c.u64(120)],
                fd: [obj(&c, 128), obj(&c, 128 + OBJ_LEN)],
                pos_after: [c.u64(304), c.u64(312)],
                rfd: [obj(&c, 320), obj(&c, 320 + OBJ_LEN)],
                pair: [c.u32(496) as i32, c.u32(500) as i32],
                at_exit: c.u32(504) != 0,
            }))
        }
        REC_PIECE if b.len() >= 64 => {
            let len = (c.u32(60) as usize).min(b.len() - 64);
            Body::Piece {
                kind: c.u32(56),
                data: b[64..64 + len].to_vec(),
            }
        }
        REC_FORK if b.len() >= 104 => Body::Fork(ForkRec {
            child_tgid: c.u32(56),
            child_tid: c.u32(60),
            child_ppid: c.u32(64),
            child_start_ns: c.u64(72),
            nr: c.u64(80),
            flags: c.u64(88),
            vfork: c.u32(96) != 0,
        }),
        REC_EXEC if b.len() >= 152 => Body::Exec(ExecRec {
            old_tid: c.u32(56),
            exe: obj(&c, 64),
        }),
        REC_EXIT if b.len() >= 80 => Body::Exit(ExitRec {
            group_dead: c.u32(56) != 0,
            status: c.u32(60) as i32,
            nr: c.u64(64),
            arg0: c.u64(72),
        }),
        _ => return None,
    };
    Some((h, body))
}
