//! Sockets for the ring engine: created non-blocking, connected by the ring.

use crate::config::Addr;
use crate::engine::resolve;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// One address to try.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Ip(SocketAddr),
    Unix(PathBuf),
}

/// The addresses `addr` names when that needs no lookup (a unix path, an IP literal), or `None`
/// for a host name, which is looked up off the engine thread (`ring::resolve`).
pub(crate) fn literal(addr: &Addr) -> Option<Vec<Target>> {
    match addr {
        Addr::Tcp { host, port } => resolve::literal(host, *port).map(|ip| vec![Target::Ip(ip)]),
        Addr::Unix(path) => Some(vec![Target::Unix(path.clone())]),
    }
}

/// A socket address in the form `connect(2)` takes.
pub(crate) struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    pub fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub fn len(&self) -> libc::socklen_t {
        self.len
    }
}

fn raw_addr(target: &Target) -> io::Result<RawAddr> {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid (unspecified) value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match target {
        Target::Ip(SocketAddr::V4(a)) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        Target::Ip(SocketAddr::V6(a)) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
        Target::Unix(path) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
            let sun = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_un>()
            };
            let bytes = path.as_os_str().as_bytes();
            if bytes.len() >= sun.sun_path.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "unix socket path is too long",
                ));
            }
            sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
                *d = *s as libc::c_char;
            }
            std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1
        }
    };
    Ok(RawAddr {
        storage,
        len: len as libc::socklen_t,
    })
}

/// A new non-blocking, close-on-exec stream socket for `target` and its address.
pub(crate) fn socket(target: &Target, nodelay: bool) -> io::Result<(OwnedFd, Box<RawAddr>)> {
    let addr = Box::new(raw_addr(target)?);
    let family = match target {
        Target::Ip(SocketAddr::V4(_)) => libc::AF_INET,
        Target::Ip(SocketAddr::V6(_)) => libc::AF_INET6,
        Target::Unix(_) => libc::AF_UNIX,
    };
    // SAFETY: a plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if nodelay && matches!(target, Target::Ip(_)) {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `&on`, which outlives it.
        // Best effort: a socket without NODELAY still works, only slower.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    Ok((fd, addr))
}

/// Ends both directions of a socket, so any receive still armed on it completes.
pub(crate) fn shutdown(fd: &OwnedFd) {
    // SAFETY: shutdown(2) on a descriptor we own; errors (not connected) do not matter.
    unsafe {
        libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
    }
}
