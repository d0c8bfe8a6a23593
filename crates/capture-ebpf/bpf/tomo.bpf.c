// SPDX-License-Identifier: GPL-2.0
// Tomo's system-wide capture program (CO-RE; built by build.sh, loaded by
// crates/capture-ebpf with aya). The kernel requires a GPL-compatible
// license for the probe_read helpers used here.
//
// Design (see crates/capture-ebpf/src/lib.rs for the user-space half):
// * tp_btf/sys_exit turns each traced call into one REC_SYS record. Most
//   calls are read entirely at exit (arguments from the saved registers,
//   descriptors resolved through the task's fd table); the few that need
//   their entry (E_ENTRY: fork family, exec, exit, transfers, rename and
//   unlink, close) get a per-thread pending entry from tp_btf/sys_enter.
//   Which calls are traced and what to capture for each is a table
//   (`specs`) filled by user space, so the syscall knowledge lives in one
//   Rust table (crates/capture-ebpf/src/spec.rs).
// * Strings (user paths, resolved kernel paths, argv, socket addresses) go
//   out as REC_PIECE records just before the record they belong to; user
//   space keeps them per thread until that record arrives.
// * User strings are read at sys_exit, not at entry: the kernel has copied
//   them by then, so their pages are resident (a tracepoint cannot fault).
// * Process lifecycle comes from the sched_process_{fork,exec,exit}
//   tracepoints, which see the new task itself.
// * Every failed ring-buffer output increments `drops`: loss is counted,
//   never silent.
// * The agent's own process is never recorded; with `target_netns` set
//   (`tomo agent --netns`), neither is any task outside that network
//   namespace, so that one agent records one simulated host.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define REC_SYS 1
#define REC_PIECE 2
#define REC_FORK 3
#define REC_EXEC 4
#define REC_EXIT 5

#define PIECE_STR0 1    /* user path argument 0 */
#define PIECE_STR1 2    /* user path argument 1 */
#define PIECE_BASE0 3   /* directory a relative STR0 is resolved against */
#define PIECE_BASE1 4
#define PIECE_RFD 5     /* path of the descriptor the call returned */
#define PIECE_SOCKADDR 6
#define PIECE_EXE 7
#define PIECE_ARGS 8
#define PIECE_CWD 9
#define PIECE_FD0 10    /* path of the descriptor argument 0 (fd-based calls) */
#define PIECE_MMSG 11   /* per message of sendmmsg/recvmmsg: u32 len, u32 namelen, name[MMSG_SA] */

/* spec.flags */
#define F_SKIP_NOFD0 1  /* drop the call when fd0 is not an open file (anonymous mmap) */
#define F_SKIP_ANON 2   /* drop the call when a descriptor is an anonymous inode */
#define F_FCNTL_DUP 4   /* fcntl: only F_DUPFD / F_DUPFD_CLOEXEC */
#define F_MSGHDR 8      /* spec.sa names a struct msghdr */
#define F_RFD_PATH 16   /* resolve the path of the returned descriptor */
#define F_FD0_PATH 32   /* resolve the path of descriptor 0 (fchdir) */
#define F_CWD_AFTER 64  /* send the working directory after the call (chdir) */
#define F_VICTIM 128    /* record the inodes vfs_unlink/rmdir/rename act on */
/* spec.pad[0] */
#define X_REFS 1        /* u64v[0] = references to fd0's file at entry (close) */
#define X_MMSG 2        /* args[1] is a struct mmsghdr[]: send lengths and names */
#define MMSG_MAX 16
/* spec.pad[1] */
#define E_ENTRY 1       /* needs state from the call's entry (else all of it is read at exit) */
#define E_CLOSE 2       /* close: reported at entry when the descriptor is open */
#define MMSG_SA 112

#define AT_FDCWD -100
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define ANON_INODE_FS_MAGIC 0x09041934

#define WALK_MAX 4096
#define NAME_MAX 256
#define STR_MAX 4096
#define DEPTH_MAX 48
#define DATA_MAX 16384
/* Argument `a` (1-based) of an args[6] array; the mask bounds the index for
 * the verifier (the caller has checked 1 <= a <= 6). */
#define ARG(args, a) ((args)[((a) - 1) & 7])

const volatile __u32 agent_tgid = 0;
/* `tomo agent --netns PATH`: only tasks in the network namespace with this
 * inode number are recorded (0: every task). One agent per namespace is
 * one simulated host on a shared kernel. */
const volatile __u32 target_netns = 0;

struct spec {
	__u8 on;
	__u8 str[2];   /* arg index + 1 of a user path, 0 = none */
	__u8 dir[2];   /* arg index + 1 of its dirfd, 0 = the working directory */
	__u8 fd[2];    /* arg index + 1 of a descriptor to resolve at entry */
	__u8 sa;       /* arg index + 1 of a sockaddr (or msghdr) pointer */
	__u8 salen;    /* arg index + 1 of its length, 0 = read 128 bytes */
	__u8 pair;     /* arg index + 1 of an int[2] the call fills */
	__u8 u64at[2]; /* arg index + 1 of a user pointer to a u64 (read at entry) */
	__u8 flags;
	__u8 pad[3];    /* pad[0]: X_* flags, pad[1]: E_* flags */
};

struct sk {
	__u16 family, type, proto, lport, rport, pad;
	__u8 laddr[16], raddr[16];
};

struct obj {
	__u64 file; /* struct file *: names the open file description */
	__u64 ino;
	__u64 pos;
	__u32 dev;  /* kernel dev_t of the superblock */
	__u32 mode;
	__u32 flags;
	__u32 magic;
	struct sk sk;
	__u32 fmode; /* FMODE_CREATED tells that this open created the file */
};

struct hdr {
	__u32 type;
	__u32 nr;
	__u64 ts;
	__u32 tgid, tid, ppid, pad;
	__u64 start_ns; /* group leader's start_boottime */
	__u32 uid, gid, euid, egid;
};

struct pend {
	__u64 nr;
	__u64 args[6];
	__u64 u64v[2];
	struct obj fd[2];
	__u8 str_base[2]; /* a relative path: send its base directory too */
	__u8 pad[6];
};

struct sys_rec {
	struct hdr h;
	__s64 ret;
	__u64 args[6];
	__u64 u64v[2];
	struct obj fd[2];   /* descriptor arguments, as they were at entry */
	__u64 pos_after[2]; /* their file positions after the call */
	struct obj rfd[2];  /* returned descriptor(s): open, accept, pipe ends */
	__s32 pair[2];
	__u32 at_exit;      /* 1: everything was read at exit (positions are after the call) */
	__u32 pad;
};

struct piece {
	struct hdr h;
	__u32 kind;
	__u32 len;
	char data[DATA_MAX];
};

struct fork_rec {
	struct hdr h;
	__u32 child_tgid, child_tid, child_ppid, pad;
	__u64 child_start_ns;
	__u64 nr;         /* the parent's call (fork, vfork, clone, clone3), or 0 */
	__u64 flags;      /* clone flags */
	__u32 vfork, pad2;
};

struct exec_rec {
	struct hdr h;
	__u32 old_tid, pad;
	struct obj exe;
};

struct exit_rec {
	struct hdr h;
	__u32 group_dead;
	__s32 exit_code;   /* wait status */
	__u64 nr;          /* the call in progress (exit(2)), or 0 */
	__u64 arg0;
};

/* The layouts are a contract with crates/capture-ebpf/src/record.rs. */
_Static_assert(sizeof(struct hdr) == 56, "hdr layout");
_Static_assert(sizeof(struct obj) == 88, "obj layout");
_Static_assert(sizeof(struct sys_rec) == 512, "sys_rec layout");
_Static_assert(__builtin_offsetof(struct piece, data) == 64, "piece layout");
_Static_assert(sizeof(struct fork_rec) == 104, "fork_rec layout");
_Static_assert(sizeof(struct exec_rec) == 152, "exec_rec layout");
_Static_assert(sizeof(struct exit_rec) == 80, "exit_rec layout");
_Static_assert(sizeof(struct spec) == 16, "spec layout");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, struct spec);
} specs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pend);
} pending SEC(".maps");

/* Per-CPU scratch space: records are built here, then copied out with
 * bpf_ringbuf_output so that each takes only the bytes it uses. */
struct scratch {
	struct piece piece;
	struct sys_rec sys;
	struct pend pend;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline struct scratch *scr(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&scratch, &k);
}

/* Whether task `t` is outside the recorded network namespace. Checked
 * wherever the agent's own process is filtered out, per task (setns moves
 * one thread), so a process that enters the namespace (setns, then exec:
 * `ip netns exec`) is recorded from its first event there, and user space
 * introduces it as it does a process running before the start. With no
 * target the test is removed by the verifier (target_netns is read-only). */
static __always_inline int foreign_netns(struct task_struct *t)
{
	if (!target_netns)
		return 0;
	return BPF_CORE_READ(t, nsproxy, net_ns, ns.inum) != target_netns;
}

static __always_inline void count_drop(void)
{
	__u32 k = 0;
	__u64 *d = bpf_map_lookup_elem(&drops, &k);
	if (d)
		*d += 1;
}

/* Wake the reader only once 1 MiB is waiting: a wake-up per record would
 * cost more than the record (the reader also polls every 100 ms). */
#define WAKE_BYTES (1 << 20)

static __always_inline void out(void *rec, __u64 size)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKE_BYTES
		? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, rec, size, flags) != 0)
		count_drop();
}

static __always_inline void fill_hdr(struct hdr *h, __u32 type, __u32 nr)
{
	/* tp_btf programs may load through BTF pointers directly (a plain
	 * load with a fault handler), far cheaper than a probe_read call. */
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 pt = bpf_get_current_pid_tgid();
	h->type = type;
	h->nr = nr;
	h->ts = bpf_ktime_get_boot_ns();
	h->tgid = pt >> 32;
	h->tid = (__u32)pt;
	h->ppid = t->real_parent->tgid;
	h->pad = 0;
	h->start_ns = t->group_leader->start_boottime;
	const struct cred *c = t->cred;
	h->uid = c->uid.val;
	h->gid = c->gid.val;
	h->euid = c->euid.val;
	h->egid = c->egid.val;
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	if (fd < 0 || fd > 1 << 20)
		return NULL;
	struct fdtable *fdt = t->files->fdt;
	unsigned int max = fdt->max_fds;
	if ((unsigned long)fd >= max)
		return NULL;
	struct file **arr = fdt->fd;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* Before 6.13 a file's reference count was `atomic_long_t f_count`. */
struct file___old {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

/* References to an open file description (descriptors, mappings, calls in
 * progress); 1 at a close() means the description goes away with it. */
static __always_inline __u64 file_refs(struct file *f)
{
	if (bpf_core_field_exists(f->f_ref))
		/* file_ref_t counts from 0 for one reference. */
		return BPF_CORE_READ(f, f_ref.refcnt.counter) + 1;
	struct file___old *o = (void *)f;
	return BPF_CORE_READ(o, f_count.counter);
}

static __always_inline void sock_facts(struct file *f, struct sk *o)
{
	struct socket *so = BPF_CORE_READ(f, private_data);
	struct sock *s = BPF_CORE_READ(so, sk);
	if (!s)
		return;
	o->family = BPF_CORE_READ(s, __sk_common.skc_family);
	o->type = BPF_CORE_READ(so, type);
	o->proto = BPF_CORE_READ(s, sk_protocol);
	if (o->family == 2 /* AF_INET */) {
		__u32 l = BPF_CORE_READ(s, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(s, __sk_common.skc_daddr);
		__builtin_memcpy(o->laddr, &l, 4);
		__builtin_memcpy(o->raddr, &r, 4);
	} else if (o->family == 10 /* AF_INET6 */) {
		BPF_CORE_READ_INTO(&o->laddr, s, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&o->raddr, s, __sk_common.skc_v6_daddr);
	}
	o->lport = BPF_CORE_READ(s, __sk_common.skc_num);
	o->rport = bpf_ntohs(BPF_CORE_READ(s, __sk_common.skc_dport));
}

/* Fill `o` from an open file; returns 0 for no file. */
static __always_inline int file_obj(struct file *f, struct obj *o)
{
	__builtin_memset(o, 0, sizeof(*o));
	if (!f)
		return 0;
	struct inode *i = BPF_CORE_READ(f, f_inode);
	o->file = (__u64)f;
	o->ino = BPF_CORE_READ(i, i_ino);
	o->mode = BPF_CORE_READ(i, i_mode);
	o->dev = BPF_CORE_READ(i, i_sb, s_dev);
	o->magic = BPF_CORE_READ(i, i_sb, s_magic);
	o->pos = BPF_CORE_READ(f, f_pos);
	o->flags = BPF_CORE_READ(f, f_flags);
	o->fmode = BPF_CORE_READ(f, f_mode);
	if ((o->mode & S_IFMT) == S_IFSOCK)
		sock_facts(f, &o->sk);
	return 1;
}

/* Names of the path's components, leaf first, each NUL-terminated, into
 * buf[0..WALK_MAX + NAME_MAX). Mount points are crossed up to the root of
 * the initial mount namespace. One step per bpf_loop iteration: the
 * verifier checks the step once instead of every unrolled iteration. */
struct walk_ctx {
	void *d;
	void *vm;
	void *mnt;
	char *buf;
	__u32 off;
	/* Field offsets, relocated (CO-RE) in the calling program: the
	 * loader does not relocate field accesses inside the callback. */
	__u32 o_mnt_root, o_d_parent, o_d_name, o_mnt_parent, o_mountpoint, o_mount_mnt;
};

static __always_inline void *rd_ptr(void *base, __u32 off)
{
	void *v = NULL;
	bpf_probe_read_kernel(&v, sizeof(v), base + off);
	return v;
}

static long walk_step(__u64 i, void *c)
{
	struct walk_ctx *w = c;
	void *d = w->d;
	void *root = rd_ptr(w->vm, w->o_mnt_root);
	void *parent = rd_ptr(d, w->o_d_parent);
	if (d == root || d == parent) {
		void *mnt = w->mnt;
		void *mp = rd_ptr(mnt, w->o_mnt_parent);
		if (mp == mnt || !mp)
			return 1;
		w->d = rd_ptr(mnt, w->o_mountpoint);
		w->mnt = mp;
		w->vm = mp + w->o_mount_mnt;
		return 0;
	}
	__u32 off = w->off;
	if (off > WALK_MAX - 1)
		return 1;
	const void *name = rd_ptr(d, w->o_d_name);
	long n = bpf_probe_read_kernel_str(&w->buf[off & (WALK_MAX - 1)], NAME_MAX, name);
	if (n <= 0)
		return 1;
	w->off = off + n;
	w->d = parent;
	return 0;
}

static __always_inline __u32 walk(struct dentry *d, struct vfsmount *vm, char *buf)
{
	__u32 o_mount_mnt = bpf_core_field_offset(struct mount, mnt);
	struct walk_ctx w = {
		.d = d,
		.vm = vm,
		.mnt = (void *)vm - o_mount_mnt,
		.buf = buf,
		.off = 0,
		.o_mnt_root = bpf_core_field_offset(struct vfsmount, mnt_root),
		.o_d_parent = bpf_core_field_offset(struct dentry, d_parent),
		.o_d_name = bpf_core_field_offset(struct dentry, d_name.name),
		.o_mnt_parent = bpf_core_field_offset(struct mount, mnt_parent),
		.o_mountpoint = bpf_core_field_offset(struct mount, mnt_mountpoint),
		.o_mount_mnt = o_mount_mnt,
	};
	bpf_loop(DEPTH_MAX, walk_step, &w, 0);
	return w.off;
}

static __always_inline void send_piece(struct piece *p, __u32 kind, __u32 nr, __u32 len)
{
	fill_hdr(&p->h, REC_PIECE, nr);
	p->kind = kind;
	if (len > DATA_MAX - 1)
		len = DATA_MAX - 1;
	p->len = len;
	__u64 sz = len;
	/* Keep the mask: the verifier needs it to bound the size, and clang
	 * would drop it as redundant after the clamp above. */
	barrier_var(sz);
	sz &= DATA_MAX - 1;
	out(p, __builtin_offsetof(struct piece, data) + sz);
}

static __always_inline void send_path(struct scratch *s, __u32 kind, __u32 nr, struct path *pp)
{
	struct dentry *d = BPF_CORE_READ(pp, dentry);
	struct vfsmount *vm = BPF_CORE_READ(pp, mnt);
	__u32 n = walk(d, vm, s->piece.data);
	send_piece(&s->piece, kind, nr, n);
}

static __always_inline void send_file_path(struct scratch *s, __u32 kind, __u32 nr, struct file *f)
{
	if (!f)
		return;
	struct path *pp = (void *)f + bpf_core_field_offset(struct file, f_path);
	send_path(s, kind, nr, pp);
}

static __always_inline void send_cwd(struct scratch *s, __u32 kind, __u32 nr)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fs_struct *fs = t->fs;
	struct path *pp = (void *)fs + bpf_core_field_offset(struct fs_struct, pwd);
	send_path(s, kind, nr, pp);
}

static __always_inline void send_user_str(struct scratch *s, __u32 kind, __u32 nr, __u64 ptr)
{
	long n = bpf_probe_read_user_str(s->piece.data, STR_MAX, (void *)ptr);
	if (n < 0)
		n = 0;
	send_piece(&s->piece, kind, nr, n);
}

static __always_inline void send_user_bytes(struct scratch *s, __u32 kind, __u32 nr, __u64 ptr, __u64 len)
{
	if (len > 128)
		len = 128;
	if (bpf_probe_read_user(s->piece.data, len & 0xff, (void *)ptr) != 0)
		len = 0;
	send_piece(&s->piece, kind, nr, len);
}

static __always_inline __u64 reg_arg(struct pt_regs *r, int i)
{
	switch (i) {
	case 0: return r->di;
	case 1: return r->si;
	case 2: return r->dx;
	case 3: return r->r10;
	case 4: return r->r8;
	default: return r->r9;
	}
}

static __always_inline int is_anon(struct obj *o)
{
	return o->file && o->magic == ANON_INODE_FS_MAGIC;
}

/* A call's arguments, descriptor objects and user u64s, into `p`; 0 when
 * the call is filtered out (anonymous mmap, I/O on an anonymous inode,
 * an fcntl that is no dup). */
static __always_inline int capture(struct spec *sp, struct pend *p, struct pt_regs *regs,
				   struct task_struct *t)
{
	for (int i = 0; i < 6; i++)
		p->args[i] = reg_arg(regs, i);
	if ((sp->flags & F_FCNTL_DUP) && p->args[1] != 0 && p->args[1] != 1030)
		return 0;
	for (int i = 0; i < 2; i++) {
		__u8 a = sp->fd[i];
		if (a && a <= 6) {
			file_obj(fd_file(t, (long)(int)ARG(p->args, a)), &p->fd[i]);
			if ((sp->flags & F_SKIP_ANON) && is_anon(&p->fd[i]))
				return 0;
		}
	}
	if ((sp->flags & F_SKIP_NOFD0) && !p->fd[0].file)
		return 0;
	if ((sp->pad[0] & X_REFS) && p->fd[0].file)
		p->u64v[0] = file_refs((struct file *)p->fd[0].file);
	for (int i = 0; i < 2; i++) {
		__u8 a = sp->u64at[i];
		if (a && a <= 6 && ARG(p->args, a))
			bpf_probe_read_user(&p->u64v[i], 8, (void *)ARG(p->args, a));
	}
	return 1;
}

static __always_inline void rec_from(struct sys_rec *r, struct pend *p)
{
	__builtin_memset(r, 0, sizeof(*r));
	__builtin_memcpy(r->args, p->args, sizeof(r->args));
	__builtin_memcpy(r->u64v, p->u64v, sizeof(r->u64v));
	__builtin_memcpy(&r->fd[0], &p->fd[0], sizeof(struct obj));
	__builtin_memcpy(&r->fd[1], &p->fd[1], sizeof(struct obj));
}

/* Most calls need nothing from their entry: their arguments are still in
 * the saved registers at exit, descriptors still open, and a position
 * before the call is the one after it minus the bytes moved. Only the
 * others pay for a pending entry (a hash-map update and delete). */
SEC("tp_btf/sys_enter")
int BPF_PROG(tomo_sys_enter, struct pt_regs *regs, long id)
{
	__u32 nr = id;
	if (nr >= 512)
		return 0;
	struct spec *sp = bpf_map_lookup_elem(&specs, &nr);
	if (!sp || !sp->on || !(sp->pad[1] & E_ENTRY))
		return 0;
	__u64 pt = bpf_get_current_pid_tgid();
	if ((pt >> 32) == agent_tgid)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	/* 32-bit (compat) calls have other numbers: not traced (TS_COMPAT). */
	if (t->thread_info.status & 0x0002)
		return 0;
	if (foreign_netns(t))
		return 0;
	struct scratch *s = scr();
	if (!s)
		return 0;
	struct pend *p = &s->pend;
	__builtin_memset(p, 0, sizeof(*p));
	p->nr = nr;
	if (!capture(sp, p, regs, t))
		return 0;
	if ((sp->pad[1] & E_CLOSE) && p->fd[0].file) {
		/* close() of an open descriptor releases it whatever it returns. */
		struct sys_rec *r = &s->sys;
		rec_from(r, p);
		fill_hdr(&r->h, REC_SYS, nr);
		out(r, sizeof(*r));
		return 0;
	}
	__u32 tid = (__u32)pt;
	bpf_map_update_elem(&pending, &tid, p, BPF_ANY);
	return 0;
}

/* One message of a sendmmsg/recvmmsg (struct mmsghdr: msg_name @0,
 * msg_namelen @8, msg_len @56; 64 bytes): its length and peer name. A
 * bpf_loop step, so the verifier checks it once, not 16 times. */
struct mmsg_ctx {
	__u64 base;
	char *dst;
	long ret;
	__u32 n;
};

static long mmsg_step(__u64 i, void *c)
{
	struct mmsg_ctx *m = c;
	if (i >= MMSG_MAX || (long)i >= m->ret)
		return 1;
	__u64 at = m->base + i * 64;
	__u64 name = 0;
	__u32 namelen = 0, len = 0;
	bpf_probe_read_user(&name, 8, (void *)at);
	bpf_probe_read_user(&namelen, 4, (void *)(at + 8));
	bpf_probe_read_user(&len, 4, (void *)(at + 56));
	char *e = m->dst + i * (8 + MMSG_SA);
	if (namelen > MMSG_SA)
		namelen = MMSG_SA;
	if (!name || bpf_probe_read_user(e + 8, namelen & 0x7f, (void *)name) != 0)
		namelen = 0;
	__builtin_memcpy(e, &len, 4);
	__builtin_memcpy(e + 4, &namelen, 4);
	m->n = i + 1;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tomo_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt;
	struct scratch *s = scr();
	if (!s)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct sys_rec *r = &s->sys;
	struct pend *p = bpf_map_lookup_elem(&pending, &tid);
	__u32 nr;
	__u32 at_exit = 0;
	if (p) {
		rec_from(r, p);
		nr = p->nr;
		bpf_map_delete_elem(&pending, &tid);
	} else {
		__u64 n = regs->orig_ax;
		if (n >= 512)
			return 0;
		nr = n;
		struct spec *sp0 = bpf_map_lookup_elem(&specs, &nr);
		if (!sp0 || !sp0->on || (sp0->pad[1] & E_ENTRY))
			return 0;
		if ((pt >> 32) == agent_tgid || (t->thread_info.status & 0x0002))
			return 0;
		if (foreign_netns(t))
			return 0;
		struct pend *q = &s->pend;
		__builtin_memset(q, 0, sizeof(*q));
		if (!capture(sp0, q, regs, t))
			return 0;
		rec_from(r, q);
		at_exit = 1;
	}
	if (nr >= 512)
		return 0;
	struct spec *sp = bpf_map_lookup_elem(&specs, &nr);
	if (!sp)
		return 0;
	r->ret = ret;
	r->at_exit = at_exit;

	/* Strings and their base directories. */
	for (int i = 0; i < 2; i++) {
		__u8 a = sp->str[i];
		if (!a || a > 6)
			continue;
		__u64 ptr = ARG(r->args, a);
		char first = 0;
		bpf_probe_read_user(&first, 1, (void *)ptr);
		send_user_str(s, i == 0 ? PIECE_STR0 : PIECE_STR1, nr, ptr);
		if (first == '/')
			continue;
		__u8 d = sp->dir[i];
		int dirfd = d && d <= 6 ? (int)ARG(r->args, d) : AT_FDCWD;
		if (dirfd == AT_FDCWD)
			send_cwd(s, i == 0 ? PIECE_BASE0 : PIECE_BASE1, nr);
		else
			send_file_path(s, i == 0 ? PIECE_BASE0 : PIECE_BASE1, nr, fd_file(t, dirfd));
	}
	if (sp->sa && sp->sa <= 6) {
		__u64 ptr = ARG(r->args, sp->sa);
		__u64 len = 128;
		if (sp->flags & F_MSGHDR) {
			struct user_msghdr m = {};
			bpf_probe_read_user(&m, sizeof(m), (void *)ptr);
			ptr = (__u64)m.msg_name;
			len = m.msg_namelen;
		} else if (sp->salen && sp->salen <= 6) {
			len = ARG(r->args, sp->salen);
		}
		if (ptr && len)
			send_user_bytes(s, PIECE_SOCKADDR, nr, ptr, len);
	}
	if ((sp->pad[0] & X_MMSG) && ret > 0) {
		struct mmsg_ctx m = { .base = r->args[1], .dst = s->piece.data, .ret = ret };
		bpf_loop(MMSG_MAX, mmsg_step, &m, 0);
		send_piece(&s->piece, PIECE_MMSG, nr, m.n * (8 + MMSG_SA));
	}
	if ((sp->flags & F_FD0_PATH) && r->fd[0].file)
		send_file_path(s, PIECE_FD0, nr, (struct file *)r->fd[0].file);
	if (sp->flags & F_CWD_AFTER)
		send_cwd(s, PIECE_CWD, nr);

	/* Positions after the call (O_APPEND writes land at the end), and the
	 * socket's addresses after it (bind to port 0, connect's local port). */
	for (int i = 0; i < 2; i++) {
		struct file *f = (struct file *)r->fd[i].file;
		if (at_exit) {
			/* Read just now, by capture(). */
			r->pos_after[i] = r->fd[i].pos;
		} else if (f) {
			r->pos_after[i] = BPF_CORE_READ(f, f_pos);
			if ((r->fd[i].mode & S_IFMT) == S_IFSOCK)
				sock_facts(f, &r->fd[i].sk);
		}
	}
	if (ret >= 0 && (sp->flags & F_RFD_PATH)) {
		struct file *f = fd_file(t, ret);
		if (file_obj(f, &r->rfd[0])) {
			__u32 ty = r->rfd[0].mode & S_IFMT;
			if (ty != S_IFIFO && ty != S_IFSOCK && r->rfd[0].magic != ANON_INODE_FS_MAGIC)
				send_file_path(s, PIECE_RFD, nr, f);
		}
	}
	if (ret >= 0 && sp->pair && sp->pair <= 6) {
		bpf_probe_read_user(r->pair, 8, (void *)ARG(r->args, sp->pair));
		file_obj(fd_file(t, r->pair[0]), &r->rfd[0]);
		file_obj(fd_file(t, r->pair[1]), &r->rfd[1]);
	}
	fill_hdr(&r->h, REC_SYS, nr);
	out(r, sizeof(*r));
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tomo_fork, struct task_struct *parent, struct task_struct *child)
{
	__u64 pt = bpf_get_current_pid_tgid();
	if ((pt >> 32) == agent_tgid)
		return 0;
	/* The child's namespace: the parent's, unless CLONE_NEWNET made it a
	 * new one (then the child is another host's: not recorded). */
	if (foreign_netns(child))
		return 0;
	struct fork_rec r = {};
	fill_hdr(&r.h, REC_FORK, 0);
	r.child_tgid = BPF_CORE_READ(child, tgid);
	r.child_tid = BPF_CORE_READ(child, pid);
	r.child_ppid = BPF_CORE_READ(child, real_parent, tgid);
	r.child_start_ns = BPF_CORE_READ(child, group_leader, start_boottime);
	r.vfork = BPF_CORE_READ(child, vfork_done) != NULL;
	__u32 tid = (__u32)pt;
	struct pend *p = bpf_map_lookup_elem(&pending, &tid);
	if (p) {
		r.nr = p->nr;
		r.flags = p->args[0];
		if (p->nr == 435 /* clone3 */)
			r.flags = p->u64v[0];
	}
	out(&r, sizeof(r));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tomo_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pt = bpf_get_current_pid_tgid();
	if ((pt >> 32) == agent_tgid || foreign_netns(task))
		return 0;
	__u32 tid = (__u32)pt;
	__u32 old = old_pid;
	struct pend *pe = bpf_map_lookup_elem(&pending, &old);
	__u32 call_nr = pe ? pe->nr : 59;
	/* The exec is reported here; its sys_exit must not report it again. */
	bpf_map_delete_elem(&pending, &tid);
	bpf_map_delete_elem(&pending, &old);
	struct scratch *s = scr();
	if (!s)
		return 0;
	struct file *f = BPF_CORE_READ(bprm, file);
	send_file_path(s, PIECE_EXE, 59, f);
	struct mm_struct *mm = task->mm;
	__u64 a0 = BPF_CORE_READ(mm, arg_start);
	__u64 a1 = BPF_CORE_READ(mm, arg_end);
	__u64 len = a1 > a0 ? a1 - a0 : 0;
	if (len > STR_MAX)
		len = STR_MAX;
	if (bpf_probe_read_user(s->piece.data, len & (STR_MAX - 1 | STR_MAX), (void *)a0) != 0)
		len = 0;
	send_piece(&s->piece, PIECE_ARGS, 59, len);
	send_cwd(s, PIECE_CWD, 59);
	struct exec_rec *r = (void *)&s->sys;
	__builtin_memset(r, 0, sizeof(*r));
	fill_hdr(&r->h, REC_EXEC, call_nr);
	r->old_tid = old;
	file_obj(f, &r->exe);
	out(r, sizeof(*r));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tomo_exit, struct task_struct *task, bool group_dead)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt;
	/* The namespaces are still attached here (exit_task_namespaces comes
	 * later in do_exit). */
	if ((pt >> 32) == agent_tgid || foreign_netns(task)) {
		bpf_map_delete_elem(&pending, &tid);
		return 0;
	}
	struct exit_rec r = {};
	fill_hdr(&r.h, REC_EXIT, 0);
	r.group_dead = group_dead;
	r.exit_code = task->exit_code;
	struct pend *p = bpf_map_lookup_elem(&pending, &tid);
	if (p) {
		r.nr = p->nr;
		r.arg0 = p->args[0];
	}
	bpf_map_delete_elem(&pending, &tid);
	out(&r, sizeof(r));
	return 0;
}

/* The object an unlink, rmdir or rename acts on, and the one a rename
 * replaces: looked up by the kernel from the names, so only known here.
 * Stored (inode only, file = 0) in the calling thread's pending call. */
static __always_inline void note_victim(struct dentry *d, int slot)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pend *p = bpf_map_lookup_elem(&pending, &tid);
	if (!p || !d)
		return;
	__u32 nr = p->nr;
	if (nr >= 512)
		return;
	struct spec *sp = bpf_map_lookup_elem(&specs, &nr);
	if (!sp || !(sp->flags & F_VICTIM))
		return;
	struct inode *i = BPF_CORE_READ(d, d_inode);
	if (!i)
		return;
	struct obj *o = &p->fd[slot & 1];
	o->file = 0;
	o->ino = BPF_CORE_READ(i, i_ino);
	o->mode = BPF_CORE_READ(i, i_mode);
	o->dev = BPF_CORE_READ(i, i_sb, s_dev);
	o->magic = BPF_CORE_READ(i, i_sb, s_magic);
}

SEC("fentry/vfs_unlink")
int BPF_PROG(tomo_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry)
{
	note_victim(dentry, 0);
	return 0;
}

SEC("fentry/vfs_rmdir")
int BPF_PROG(tomo_vfs_rmdir, void *idmap, struct inode *dir, struct dentry *dentry)
{
	note_victim(dentry, 0);
	return 0;
}

SEC("fentry/vfs_rename")
int BPF_PROG(tomo_vfs_rename, struct renamedata *rd)
{
	note_victim(BPF_CORE_READ(rd, old_dentry), 0);
	note_victim(BPF_CORE_READ(rd, new_dentry), 1);
	return 0;
}
