//! How entity UUIDs are made (UUIDv5 over what identifies the entity).
//!
//! The ingest names entities with these functions, and the store uses the
//! same functions to recompute a UUID instead of keeping its 16 random-looking
//! bytes: a stored entity says "derived from root k" (a host and boot id) and
//! the facts it keeps anyway (pid and start time, or device, inode and
//! generation) give the UUID back. The writer checks every derivation, so an
//! entity whose UUID was made otherwise is stored as is.
//!
//! Changing anything here changes the UUIDs that existing stores recompute:
//! it needs a new store format version (`disk::VERSION`).

use uuid::Uuid;

/// Namespace of Tomo's UUIDv5 identities.
pub const NS: Uuid = Uuid::from_u128(0x5f1e_6c1a_9b7d_4c3e_8a2f_70d0_6e4f_3b21);

/// A process: host, boot, pid and start time (in clock ticks since boot);
/// when the start time is unknown (0), the time the process was first seen
/// disambiguates a reused pid.
pub fn process_uuid(
    host: &[u8; 16],
    boot: &[u8; 16],
    pid: u32,
    start_ticks: u64,
    first_ns: u64,
) -> Uuid {
    let mut name = [0u8; 4 + 16 + 16 + 4 + 8 + 8];
    name[..4].copy_from_slice(b"proc");
    name[4..20].copy_from_slice(host);
    name[20..36].copy_from_slice(boot);
    name[36..40].copy_from_slice(&pid.to_le_bytes());
    name[40..48].copy_from_slice(&start_ticks.to_le_bytes());
    let len = if start_ticks == 0 {
        name[48..56].copy_from_slice(&first_ns.to_le_bytes());
        56
    } else {
        48
    };
    Uuid::new_v5(&NS, &name[..len])
}

/// A kernel object: host, boot (for objects that do not outlive a boot:
/// pipes, sockets, anonymous objects), device, inode and generation (the
/// number of earlier objects that had this identity: a file deleted and
/// created again is a new entity).
pub fn object_uuid(host: &[u8; 16], boot: Option<&[u8; 16]>, dev: u64, ino: u64, gen: u32) -> Uuid {
    let mut name = [0u8; 3 + 16 + 16 + 8 + 8 + 4];
    name[..3].copy_from_slice(b"obj");
    name[3..19].copy_from_slice(host);
    let mut at = 19;
    if let Some(b) = boot {
        name[at..at + 16].copy_from_slice(b);
        at += 16;
    }
    name[at..at + 8].copy_from_slice(&dev.to_le_bytes());
    name[at + 8..at + 16].copy_from_slice(&ino.to_le_bytes());
    name[at + 16..at + 20].copy_from_slice(&gen.to_le_bytes());
    Uuid::new_v5(&NS, &name[..at + 20])
}
