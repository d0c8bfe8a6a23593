//! The name of the call an edge came from ("read", "sendfile", ...), as an
//! edge keeps it: two bytes indexing a process-wide table of the names seen
//! so far, instead of a 16-byte `&'static str`. Call names are a small
//! closed set (the syscalls a source reports, a few names of the ingest's
//! own edges), and edges are the bulk of the graph in memory: at 100 M
//! events the 14 bytes saved per edge are about 2 GB.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// How many distinct names the table holds. The ingest's calls are about a
/// hundred; names read from a store are checked against this cap so that a
/// hostile store cannot grow the table without bound.
pub const CAPACITY: usize = 4096;

static NAMES: [OnceLock<&'static str>; CAPACITY] = [const { OnceLock::new() }; CAPACITY];
static LEN: AtomicUsize = AtomicUsize::new(0);
static BY_NAME: Mutex<Option<HashMap<&'static str, u16>>> = Mutex::new(None);

thread_local! {
    /// Names already interned, by address and length: the ingest asks for
    /// the same few static strings millions of times.
    static SEEN: RefCell<HashMap<(usize, usize), u16, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallName(u16);

impl CallName {
    /// The name `s`, added to the table if new. Panics only if more than
    /// [`CAPACITY`] distinct names are made, which the ingest's closed set
    /// of calls cannot do; names from outside go through [`CallName::try_new`].
    pub fn new(s: &'static str) -> CallName {
        CallName::try_new(s).expect("more distinct call names than the table holds")
    }

    /// The name `s`, or `None` if the table is full.
    pub fn try_new(s: &'static str) -> Option<CallName> {
        let key = (s.as_ptr() as usize, s.len());
        if let Some(i) = SEEN.with(|m| m.borrow().get(&key).copied()) {
            return Some(CallName(i));
        }
        let mut g = BY_NAME.lock().unwrap_or_else(|e| e.into_inner());
        let by = g.get_or_insert_with(HashMap::new);
        let i = match by.get(s) {
            Some(&i) => i,
            None => {
                let i = LEN.load(Ordering::Acquire);
                if i >= CAPACITY {
                    return None;
                }
                // Only this (locked) path writes; readers see the slot
                // before they can be handed its index.
                let _ = NAMES[i].set(s);
                LEN.store(i + 1, Ordering::Release);
                by.insert(s, i as u16);
                i as u16
            }
        };
        drop(g);
        SEEN.with(|m| m.borrow_mut().insert(key, i));
        Some(CallName(i))
    }

    /// A name not known yet is leaked into a static string once (names read
    /// from a store); `None` when the table is full.
    pub fn intern(s: &str) -> Option<CallName> {
        {
            let g = BY_NAME.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(&i) = g.as_ref().and_then(|by| by.get(s)) {
                return Some(CallName(i));
            }
        }
        if LEN.load(Ordering::Acquire) >= CAPACITY {
            return None;
        }
        CallName::try_new(Box::leak(s.to_string().into_boxed_str()))
    }

    pub fn as_str(self) -> &'static str {
        NAMES[self.0 as usize].get().copied().unwrap_or("?")
    }
}

impl Deref for CallName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for CallName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for CallName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for CallName {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_index_from_any_string() {
        let a = CallName::new("read");
        let owned = String::from("read");
        assert_eq!(CallName::intern(&owned), Some(a));
        assert_eq!(a.as_str(), "read");
        assert_ne!(CallName::new("write"), a);
        assert_eq!(&*CallName::new("pread64"), "pread64");
        let t = std::thread::spawn(move || CallName::new("read") == a);
        assert!(t.join().unwrap());
    }
}
