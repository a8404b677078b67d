//! Running under systemd (`Type=notify`): the sd_notify messages READY=1 once the listeners are bound, RELOADING=1
//! and READY=1 around a SIGHUP reload, STOPPING=1 on shutdown; nothing at all when NOTIFY_SOCKET is unset.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends the state lines to the service manager, if there is one: `Ok(false)` when NOTIFY_SOCKET is unset
/// (not started by systemd, or by a manager without the protocol), `Ok(true)` once sent.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) if !socket.is_empty() => send(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Tells the manager that miners can connect now. Call after every listener is bound and listening, and after
/// the signal handlers are installed (so an early `systemctl reload` does not kill the process).
pub fn ready() {
    log_failure(notify("READY=1"), "READY=1");
}

/// Tells the manager a reload started; [`ready`] ends it, whether the reload was applied or refused.
pub fn reloading() {
    let state = format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec());
    log_failure(notify(&state), "RELOADING=1");
}

/// Tells the manager the proxy is shutting down (draining shares in flight).
pub fn stopping() {
    log_failure(notify("STOPPING=1"), "STOPPING=1");
}

fn log_failure(result: io::Result<bool>, what: &str) {
    if let Err(e) = result {
        log::warn!("cannot send {what} to the service manager (NOTIFY_SOCKET): {e}");
    }
}

/// One datagram to a socket path, or to an abstract socket when the name starts with `@`.
fn send(socket: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let name = socket.as_bytes();
    let sock = UnixDatagram::unbound()?;
    let sent = match name.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), socket)?,
        #[cfg(target_os = "linux")]
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name[1..])?;
            sock.send_to_addr(state.as_bytes(), &addr)?
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("unsupported address {}", socket.to_string_lossy()),
            ))
        }
    };
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
    }
    Ok(())
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC against.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, which lives for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("fastproxy-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        assert_eq!(recv(&listener), "READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("fastproxy-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        assert_eq!(recv(&listener), "STOPPING=1");
    }

    #[test]
    fn refuses_an_address_it_cannot_reach() {
        let err = send(std::ffi::OsStr::new("vsock:2:1234"), "READY=1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_usec();
        std::thread::sleep(Duration::from_millis(2));
        assert!(monotonic_usec() > a);
    }
}
