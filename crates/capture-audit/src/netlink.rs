//! The kernel side: a `NETLINK_AUDIT` socket. The only `unsafe` of the
//! crate is here (the socket system calls through `libc`); message layouts
//! are built and read as bytes in `proto.rs`, without `unsafe`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `struct nlmsghdr`: length, type, flags, sequence, port id.
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;

/// A received datagram: its length, or that it was longer than the buffer.
pub enum Recv {
    /// Nothing waiting (non-blocking read).
    Empty,
    /// A datagram of this many bytes, from the kernel.
    Msg(usize),
    /// A datagram longer than the buffer, or one not sent by the kernel:
    /// dropped.
    Bad,
}

/// One audit netlink socket, bound to a port id the kernel picks.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    send_buf: Vec<u8>,
}

fn kernel_addr() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data (integers); all-zero is a valid
    // value (family filled in below, port 0 = the kernel, no groups).
    let mut a: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    a.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    a
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Socket {
    pub fn open() -> io::Result<Socket> {
        // SAFETY: a plain system call with constant arguments; the result is
        // checked before use.
        let fd = check(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_AUDIT,
            )
        })?;
        // SAFETY: `fd` was just returned by socket(2) and is owned by nobody
        // else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let addr = kernel_addr();
        // SAFETY: `addr` is a valid sockaddr_nl that outlives the call, and
        // the length passed is its size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        Ok(Socket {
            fd,
            seq: 0,
            send_buf: Vec::new(),
        })
    }

    /// Make the receive buffer `bytes` large (beyond `rmem_max` when
    /// privileged), so that bursts wait in the socket rather than in the
    /// kernel's audit backlog. Returns the size the kernel granted.
    pub fn set_rcvbuf(&self, bytes: usize) -> io::Result<usize> {
        let v = bytes.min(i32::MAX as usize / 2) as libc::c_int;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: `v` is a c_int that outlives the call; the length is its
            // size.
            let r = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &v as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
        }
        let mut got: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `got` and `len` are valid for writes and outlive the call;
        // `len` holds the size of `got`.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &mut got as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        })?;
        Ok(got.max(0) as usize)
    }

    /// Send one request to the kernel; returns its sequence number.
    pub fn send(&mut self, msg_type: u16, flags: u16, payload: &[u8]) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let len = NLMSG_HDRLEN + payload.len();
        let b = &mut self.send_buf;
        b.clear();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&msg_type.to_ne_bytes());
        b.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        b.extend_from_slice(&self.seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(payload);
        b.resize(len.next_multiple_of(4), 0);
        let addr = kernel_addr();
        loop {
            // SAFETY: the buffer is valid for `b.len()` bytes and `addr` is a
            // valid sockaddr_nl; both outlive the call.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    b.as_ptr() as *const libc::c_void,
                    b.len(),
                    0,
                    &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if r >= 0 {
                return Ok(self.seq);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receive one datagram into `buf`; `wait` blocks until one comes.
    pub fn recv(&self, buf: &mut [u8], wait: bool) -> io::Result<Recv> {
        let flags = libc::MSG_TRUNC | if wait { 0 } else { libc::MSG_DONTWAIT };
        loop {
            let mut from = kernel_addr();
            let mut flen = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes, `from`
            // and `flen` are valid for writes and `flen` holds the size of
            // `from`; all outlive the call. With MSG_TRUNC the kernel writes
            // at most `buf.len()` bytes and returns the datagram's length.
            let r = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    flags,
                    &mut from as *mut libc::sockaddr_nl as *mut libc::sockaddr,
                    &mut flen,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted if wait => return Ok(Recv::Empty),
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(Recv::Empty),
                    _ => return Err(e),
                }
            }
            let n = r as usize;
            // Only the kernel (port 0) speaks audit to us.
            return Ok(if n > buf.len() || from.nl_pid != 0 {
                Recv::Bad
            } else {
                Recv::Msg(n)
            });
        }
    }

    /// Wait up to `timeout_ms` for something to read; false on timeout or
    /// a signal.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd that outlives the call.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(r > 0)
    }
}

/// SIGTERM to `pid` (`--take-over`: the audit daemon that holds the
/// kernel's audit socket). The only other system call made here.
pub fn terminate(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) with a positive pid (never 0 or -1, which would
    // signal groups) and a constant signal; no memory is shared.
    check(unsafe { libc::kill(pid, libc::SIGTERM) }).map(drop)
}

/// The netlink messages in one datagram whose headers carry their true
/// length (replies to requests): (type, flags, seq, payload). A header that
/// does not fit ends the walk.
pub fn messages(buf: &[u8]) -> Vec<(u16, u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= NLMSG_HDRLEN {
        let h = &buf[at..];
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let flags = u16::from_ne_bytes([h[6], h[7]]);
        let seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        if len < NLMSG_HDRLEN || len > h.len() {
            break;
        }
        out.push((ty, flags, seq, &h[NLMSG_HDRLEN..len]));
        at += len.next_multiple_of(4);
        if at >= buf.len() {
            break;
        }
    }
    out
}

/// The header of an audit record datagram: (type, payload). The kernel sets
/// `nlmsg_len` of records to the payload's length (a quirk auditd relies
/// on), so the payload is taken from the datagram's length instead.
pub fn record(buf: &[u8]) -> Option<(u16, &[u8])> {
    if buf.len() < NLMSG_HDRLEN {
        return None;
    }
    Some((u16::from_ne_bytes([buf[4], buf[5]]), &buf[NLMSG_HDRLEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(payload);
        b.resize(len.next_multiple_of(4), 0);
        b
    }

    #[test]
    fn walks_messages_and_stops_at_garbage() {
        let mut b = msg(1000, 7, b"abcde");
        b.extend(msg(NLMSG_ERROR, 7, &[0; 4]));
        let m = messages(&b);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].0, m[0].2, m[0].3), (1000, 7, &b"abcde"[..]));
        assert_eq!(m[1].0, NLMSG_ERROR);
        // Lengths that lie (too short, too long) end the walk, no panic.
        for bad in [0u32, 3, 1000] {
            let mut g = msg(1000, 1, b"x");
            g[..4].copy_from_slice(&bad.to_ne_bytes());
            assert!(messages(&g).is_empty());
        }
        assert!(messages(&[1, 2, 3]).is_empty());
        assert!(record(&[0; 15]).is_none());
        let r = msg(1300, 0, b"audit(1.0:1): a=b");
        assert_eq!(record(&r).unwrap().0, 1300);
    }
}
