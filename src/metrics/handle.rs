//! The handle of an HTTP server thread (the metrics endpoint and the control API): its address, a stop flag the
//! thread looks at, and the thread, joined when the handle is stopped or dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running server thread; dropping it stops the thread and waits for it.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// A handle over `thread`, which serves on `addr` until `stop` is set.
    pub fn new(addr: SocketAddr, stop: Arc<AtomicBool>, thread: JoinHandle<()>) -> ServerHandle {
        ServerHandle {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// The address the server listens on (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shut();
    }
}
