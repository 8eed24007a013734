//! Setting up the ring, and the provided-buffer ring multishot receives draw from.

use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use std::io;

/// Set by tests (and by anyone who wants to see the fallback work) to make ring setup fail as
/// if the kernel refused it: `RINGDIS_URING_FAIL_SETUP=1`. Read at every attach.
pub(crate) const FAIL_SETUP_ENV: &str = "RINGDIS_URING_FAIL_SETUP";

/// `RINGDIS_URING_NO_BUFRING=1` makes the driver do without multishot operations, as on older
/// kernels: single-shot receives into its own buffer, and an eventfd read per wake-up (so those
/// paths stay tested).
pub(crate) const NO_BUFRING_ENV: &str = "RINGDIS_URING_NO_BUFRING";

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The error [`build`] gives when [`FAIL_SETUP_ENV`] is set, or `None`.
pub(crate) fn refused_on_purpose() -> Option<io::Error> {
    env_flag(FAIL_SETUP_ENV).then(|| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("io_uring_setup refused on purpose ({FAIL_SETUP_ENV} is set)"),
        )
    })
}

/// Which task-running mode the kernel accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `SINGLE_ISSUER | DEFER_TASKRUN`: completions run only when this thread enters the ring.
    Deferred,
    /// `COOP_TASKRUN | TASKRUN_FLAG`: completions need no interrupt of the driver thread.
    Coop,
    /// Neither (kernels before 5.19).
    Plain,
}

/// Builds a ring on the calling thread (the one that will submit to it), with the cheapest
/// task-running mode this kernel accepts.
pub(crate) fn build(entries: u32) -> io::Result<(IoUring, Mode)> {
    if let Some(e) = refused_on_purpose() {
        return Err(e);
    }
    let deferred = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_submit_all()
        .build(entries);
    match deferred {
        Ok(ring) => return Ok((ring, Mode::Deferred)),
        Err(e) if e.raw_os_error() != Some(libc::EINVAL) => return Err(explain(e)),
        Err(_) => {}
    }
    match IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(entries)
    {
        Ok(ring) => return Ok((ring, Mode::Coop)),
        Err(e) if e.raw_os_error() != Some(libc::EINVAL) => return Err(explain(e)),
        Err(_) => {}
    }
    IoUring::new(entries)
        .map(|r| (r, Mode::Plain))
        .map_err(explain)
}

/// Checks that the kernel knows every operation the driver uses (a ring from 5.1–5.5 lacks
/// some), so a ring that would fail later fails setup instead, and the client falls back to epoll.
pub(crate) fn probe(ring: &IoUring) -> io::Result<()> {
    use io_uring::opcode;
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let needed = [
        ("CONNECT", opcode::Connect::CODE),
        ("SEND", opcode::Send::CODE),
        ("RECV", opcode::Recv::CODE),
        ("READ", opcode::Read::CODE),
        ("TIMEOUT", opcode::Timeout::CODE),
        ("TIMEOUT_REMOVE", opcode::TimeoutRemove::CODE),
        ("ASYNC_CANCEL", opcode::AsyncCancel2::CODE),
    ];
    match needed.iter().find(|(_, code)| !probe.is_supported(*code)) {
        Some((name, _)) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this kernel's io_uring has no IORING_OP_{name}"),
        )),
        None => Ok(()),
    }
}

/// Adds what `kernel.io_uring_disabled` says to a setup error, when it is the likely reason.
fn explain(e: io::Error) -> io::Error {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| s != "0");
    match disabled {
        Some(v) => io::Error::new(
            e.kind(),
            format!("io_uring_setup: {e} (kernel.io_uring_disabled = {v})"),
        ),
        None => io::Error::new(e.kind(), format!("io_uring_setup: {e}")),
    }
}

/// Whether multishot operations (receives from a provided-buffer ring, the eventfd poll) should
/// be tried.
pub(crate) fn want_multishot() -> bool {
    !env_flag(NO_BUFRING_ENV)
}

/// A provided-buffer ring: `count` buffers of `size` bytes the kernel fills with received data,
/// handed back by the driver as soon as it has copied them out.
///
/// Only the driver thread touches it. The kernel may write into the buffers while the group is
/// registered and a receive is in flight, so it is freed only after the group is unregistered
/// and every receive has completed (see [`BufRing::unregister`] and the driver's exit path).
pub(crate) struct BufRing {
    /// `count` entries, page-aligned, from `mmap`.
    ring: *mut BufRingEntry,
    ring_len: usize,
    bufs: Box<[u8]>,
    size: usize,
    count: u16,
    tail: u16,
    pub bgid: u16,
    registered: bool,
}

impl BufRing {
    /// Maps and registers a ring of `count` (a power of two) buffers of `size` bytes.
    pub fn new(ring: &IoUring, bgid: u16, count: u16, size: usize) -> io::Result<BufRing> {
        assert!(count.is_power_of_two());
        let ring_len = count as usize * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut br = BufRing {
            ring: mem.cast(),
            ring_len,
            bufs: vec![0u8; count as usize * size].into_boxed_slice(),
            size,
            count,
            tail: 0,
            bgid,
            registered: false,
        };
        // SAFETY: `br.ring` is a page-aligned mapping of `count` entries that lives until
        // `br` is dropped, and `Drop` unregisters the group before unmapping it.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(br.ring as u64, count, bgid, 0)?;
        }
        br.registered = true;
        for bid in 0..count {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    /// The bytes the kernel put in buffer `bid`.
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * self.size;
        &self.bufs[start..start + len.min(self.size)]
    }

    /// Gives buffer `bid` back to the kernel (visible after [`BufRing::publish`]).
    pub fn push(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let idx = (self.tail & (self.count - 1)) as usize;
        let addr = self.bufs.as_ptr() as u64 + bid as u64 * self.size as u64;
        // SAFETY: `idx < count`, so the entry lies inside the mapping; the kernel reads entries
        // only between head and the published tail, and this one is past the published tail.
        let entry = unsafe { &mut *self.ring.add(idx) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the buffers pushed since the last call.
    pub fn publish(&mut self) {
        // SAFETY: `ring` points at the first entry of the mapping, whose `resv` field is the
        // ring's tail; the kernel reads it atomically, so it is written with a release store.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    /// Unregisters the group: the kernel picks no more buffers from it. Receives that already
    /// picked one still complete into it, so the driver waits for them before dropping this.
    pub fn unregister(&mut self, ring: &IoUring) {
        if self.registered {
            let _ = ring.submitter().unregister_buf_ring(self.bgid);
            self.registered = false;
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // If still registered here, the ring itself is being torn down with it (setup failed
        // half way); no receive was ever armed on it then.
        // SAFETY: the mapping was made by `new` with this length and nothing uses it any more.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_len);
        }
    }
}

/// `IORING_REGISTER_RING_FDS` and `IORING_ENTER_REGISTERED_RING` (uapi, since 5.18).
const IORING_REGISTER_RING_FDS: libc::c_uint = 20;
const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;

/// `struct io_uring_rsrc_update` from the uapi header.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// How `io_uring_enter` names the ring: by a registered index where the kernel allows it, which
/// spares it a file-table lookup on every enter.
#[derive(Clone, Copy)]
pub(crate) struct Enter {
    fd: libc::c_int,
    flags: u32,
    /// The kernel takes `IORING_ENTER_EXT_ARG` (a timeout on the wait; since 5.11).
    ext_arg: bool,
}

/// `IORING_ENTER_EXT_ARG` (uapi, since 5.11).
const IORING_ENTER_EXT_ARG: u32 = 1 << 3;

/// `struct io_uring_getevents_arg` from the uapi header.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

impl Enter {
    pub fn new(ring: &IoUring) -> Enter {
        use std::os::fd::AsRawFd;
        let raw = ring.as_raw_fd();
        let mut up = RsrcUpdate {
            offset: u32::MAX,
            resv: 0,
            data: raw as u64,
        };
        // SAFETY: io_uring_register with one `io_uring_rsrc_update` that outlives the call; on
        // success the kernel writes the chosen index into `offset`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                raw,
                IORING_REGISTER_RING_FDS,
                &mut up as *mut RsrcUpdate,
                1 as libc::c_uint,
            )
        };
        let ext_arg = ring.params().is_feature_ext_arg();
        if r == 1 {
            Enter {
                fd: up.offset as libc::c_int,
                flags: IORING_ENTER_REGISTERED_RING,
                ext_arg,
            }
        } else {
            Enter {
                fd: raw,
                flags: 0,
                ext_arg,
            }
        }
    }

    /// `io_uring_enter(to_submit, min_complete, GETEVENTS)`.
    pub fn enter(self, to_submit: u32, min_complete: u32) -> io::Result<()> {
        let flags = io_uring::EnterFlags::GETEVENTS.bits() | self.flags;
        self.syscall(to_submit, min_complete, flags, None)
    }

    /// The `io_uring_enter` system call, with the extended argument `arg` if any.
    fn syscall(
        self,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        arg: Option<&GeteventsArg>,
    ) -> io::Result<()> {
        let (ptr, size) = match arg {
            Some(a) => (
                a as *const GeteventsArg,
                std::mem::size_of::<GeteventsArg>(),
            ),
            None => (std::ptr::null(), 0usize),
        };
        // SAFETY: `arg` (and the timespec it points at, which the caller keeps alive across this
        // call) is borrowed for the whole call, and the kernel copies both before it waits; with
        // no argument, a null pointer of size 0 is passed. The ring named by `fd` belongs to the
        // calling thread's driver, and every entry it submits points at memory the driver keeps
        // alive until the entry's completion is reaped.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.fd,
                to_submit,
                min_complete,
                flags,
                ptr,
                size,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Like [`Enter::enter`], but the wait ends after `limit` even if fewer than `min_complete`
    /// completions came (`ETIME` then, unless something was submitted). A kernel without
    /// `IORING_ENTER_EXT_ARG` waits for one completion instead.
    pub fn enter_within(
        self,
        to_submit: u32,
        min_complete: u32,
        limit: std::time::Duration,
    ) -> io::Result<()> {
        if !self.ext_arg {
            return self.enter(to_submit, min_complete.min(1));
        }
        let ts = KernelTimespec {
            tv_sec: limit.as_secs() as i64,
            tv_nsec: i64::from(limit.subsec_nanos()),
        };
        let arg = GeteventsArg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: 0,
            ts: &ts as *const KernelTimespec as u64,
        };
        let flags = io_uring::EnterFlags::GETEVENTS.bits() | IORING_ENTER_EXT_ARG | self.flags;
        self.syscall(to_submit, min_complete, flags, Some(&arg))
    }
}
