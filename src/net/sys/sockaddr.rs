//! Socket addresses as the kernel takes and gives them: `SocketAddr` and
//! std's Unix `SocketAddr` to and from `sockaddr_storage`.

use std::ffi::OsStr;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;

use crate::net::error::invalid_input;

/// An address in the kernel's form.
pub(crate) struct RawAddr {
    /// The address; only the first `len` bytes are meaningful.
    storage: libc::sockaddr_storage,
    /// The address's length in bytes.
    len: libc::socklen_t,
}

impl RawAddr {
    /// A zeroed address, for the kernel to fill in (`len` is the room).
    pub(crate) fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: a zeroed sockaddr_storage is a valid "no address".
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn from_parts(storage: libc::sockaddr_storage, len: libc::socklen_t) -> RawAddr {
        RawAddr { storage, len }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&raw mut self.storage).cast()
    }

    pub(crate) fn len(&self) -> libc::socklen_t {
        self.len
    }

    pub(crate) fn len_mut(&mut self) -> &mut libc::socklen_t {
        &mut self.len
    }

    /// The address family (`AF_INET`...).
    pub(crate) fn family(&self) -> libc::c_int {
        self.storage.ss_family.into()
    }

    /// An IP address in the kernel's form.
    pub(crate) fn from_ip(addr: &SocketAddr) -> RawAddr {
        let mut raw = RawAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // every sockaddr type.
                unsafe { raw.as_mut_ptr().cast::<libc::sockaddr_in>().write(sin) };
                raw.len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo().to_be(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above.
                unsafe { raw.as_mut_ptr().cast::<libc::sockaddr_in6>().write(sin6) };
                raw.len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    /// The IP address this is; `InvalidInput` if it is not one.
    pub(crate) fn to_ip(&self) -> io::Result<SocketAddr> {
        let len = self.len as usize;
        match self.family() {
            libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the kernel wrote a sockaddr_in (family and length
                // say so) into storage aligned for it.
                let sin = unsafe { &*self.as_ptr().cast::<libc::sockaddr_in>() };
                Ok(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for a sockaddr_in6.
                let sin6 = unsafe { &*self.as_ptr().cast::<libc::sockaddr_in6>() };
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                )))
            }
            family => Err(invalid_input(format!(
                "not an IP socket address (family {family})"
            ))),
        }
    }

    /// A Unix socket path in the kernel's form.
    pub(crate) fn from_unix_path(path: &Path) -> io::Result<RawAddr> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.contains(&0) {
            return Err(invalid_input(format!(
                "Unix socket path {path:?} contains a NUL byte"
            )));
        }
        let mut raw = RawAddr::unix_with_path(bytes, &path)?;
        if !bytes.is_empty() {
            // The terminating NUL, as the kernel counts it.
            raw.len += 1;
        }
        Ok(raw)
    }

    /// A Linux abstract Unix socket name in the kernel's form.
    pub(crate) fn from_unix_abstract(name: &[u8]) -> io::Result<RawAddr> {
        let mut with_nul = Vec::with_capacity(name.len() + 1);
        with_nul.push(0);
        with_nul.extend_from_slice(name);
        RawAddr::unix_with_path(&with_nul, &String::from_utf8_lossy(name))
    }

    /// A `sockaddr_un` whose `sun_path` starts with `bytes`; `len` covers
    /// exactly them.
    fn unix_with_path(bytes: &[u8], shown: &dyn std::fmt::Debug) -> io::Result<RawAddr> {
        let mut raw = RawAddr::empty();
        // SAFETY: sockaddr_storage is larger than and aligned for
        // sockaddr_un; zeroed bytes are a valid sockaddr_un.
        let sun = unsafe { &mut *raw.as_mut_ptr().cast::<libc::sockaddr_un>() };
        // One byte stays for a terminating NUL.
        if bytes.len() >= sun.sun_path.len() {
            return Err(invalid_input(format!(
                "Unix socket address {shown:?} is longer than {} bytes",
                sun.sun_path.len() - 1
            )));
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, src) in sun.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        raw.len = (sun_path_offset() + bytes.len()) as libc::socklen_t;
        Ok(raw)
    }

    /// std's Unix socket address in the kernel's form; `InvalidInput` for
    /// an unnamed one, which nothing can bind or send to.
    pub(crate) fn from_unix(addr: &UnixSocketAddr) -> io::Result<RawAddr> {
        if let Some(path) = addr.as_pathname() {
            RawAddr::from_unix_path(path)
        } else if let Some(name) = addr.as_abstract_name() {
            RawAddr::from_unix_abstract(name)
        } else {
            Err(invalid_input(
                "an unnamed Unix socket address cannot be bound or connected to".into(),
            ))
        }
    }

    /// The Unix socket address this is, as std's type.
    pub(crate) fn to_unix(&self) -> io::Result<UnixSocketAddr> {
        let offset = sun_path_offset();
        let len = (self.len as usize).min(mem::size_of::<libc::sockaddr_un>());
        if len <= offset {
            // No path: an unnamed socket (some kernels, gVisor among them,
            // leave even the family out). An empty path is how std spells
            // "unnamed".
            return UnixSocketAddr::from_pathname("");
        }
        if self.family() != libc::AF_UNIX {
            return Err(invalid_input(format!(
                "not a Unix socket address (family {})",
                self.family()
            )));
        }
        // SAFETY: the family says the kernel wrote a sockaddr_un into
        // storage aligned for it.
        let sun = unsafe { &*self.as_ptr().cast::<libc::sockaddr_un>() };
        let path: Vec<u8> = sun.sun_path[..len - offset]
            .iter()
            .map(|&c| c as u8)
            .collect();
        match path.split_first() {
            Some((0, name)) => UnixSocketAddr::from_abstract_name(name),
            _ => {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                UnixSocketAddr::from_pathname(Path::new(OsStr::from_bytes(&path[..end])))
            }
        }
    }
}

/// Offset of `sun_path` in `sockaddr_un`.
fn sun_path_offset() -> usize {
    mem::offset_of!(libc::sockaddr_un, sun_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_round_trip() {
        for s in ["127.0.0.1:80", "[::1]:443", "[fe80::1%3]:8080", "0.0.0.0:0"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(RawAddr::from_ip(&a).to_ip().unwrap(), a);
        }
    }

    #[test]
    fn unix_addresses_round_trip() {
        let raw = RawAddr::from_unix_path(Path::new("/tmp/sock")).unwrap();
        let a = raw.to_unix().unwrap();
        assert_eq!(a.as_pathname(), Some(Path::new("/tmp/sock")));
        let raw = RawAddr::from_unix_abstract(b"name").unwrap();
        let a = raw.to_unix().unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"name"[..]));
        assert!(RawAddr::from_unix(&a).is_ok());
        let unnamed = RawAddr::from_unix_path(Path::new("")).unwrap();
        assert!(unnamed.to_unix().unwrap().is_unnamed());
    }

    #[test]
    fn bad_unix_paths_are_invalid_input() {
        let long = "x".repeat(200);
        let e = RawAddr::from_unix_path(Path::new(&long)).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = RawAddr::from_unix_path(Path::new("a\0b")).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let unnamed = UnixSocketAddr::from_pathname("").unwrap();
        let e = RawAddr::from_unix(&unnamed).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
