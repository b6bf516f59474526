//! The API socket: one thread that polls the listening socket, every open
//! connection and a shutdown socket; it parses requests as bytes arrive,
//! hands each complete one to a handler (in vessel, a channel to the VMM
//! thread) and writes the answer. A bad request gets a 400 and its
//! connection is closed; the server keeps serving the others.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::http::{parse_request, Parsed, Response, CONTINUE};
use super::request::{route, ApiRequest};
use crate::seccomp::{self, ThreadKind};

/// Most connections served at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client that does not read its answer may block the server.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Errors starting the API server.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    /// The socket cannot be created.
    #[error("Cannot create the API socket {}", path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The shutdown socket pair or the thread cannot be created.
    #[error("Cannot start the API server thread")]
    Start(#[source] std::io::Error),
}

/// Answers one request (called on the API thread).
pub type Handler = Box<dyn FnMut(ApiRequest) -> Response + Send>;

/// A running API server; [`ApiServer::stop`] ends its thread and removes
/// the socket file.
#[derive(Debug)]
pub struct ApiServer {
    path: PathBuf,
    /// Writing a byte (or closing it) stops the server thread.
    shutdown: UnixStream,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Binds `path` (which must not exist) and serves it on a new thread,
    /// which first installs the API seccomp filter when `seccomp` is set.
    pub fn start(path: &Path, handler: Handler, seccomp: bool) -> Result<Self, ApiServerError> {
        let listener = bind_listening(path).map_err(|source| ApiServerError::Bind {
            path: path.to_owned(),
            source,
        })?;
        let (shutdown, stop) = UnixStream::pair().map_err(ApiServerError::Start)?;
        let thread = std::thread::Builder::new()
            .name("vessel-api".into())
            .spawn(move || {
                if seccomp {
                    if let Err(e) = seccomp::install(ThreadKind::Api) {
                        // Fail closed: no API rather than an unconfined one.
                        eprintln!("vessel: the API server did not start: {e}");
                        return;
                    }
                }
                serve(&listener, &stop, handler);
            })
            .map_err(ApiServerError::Start)?;
        Ok(ApiServer {
            path: path.to_owned(),
            shutdown,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the server thread and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.shutdown.write_all(&[1]);
            let _ = t.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// One client connection and what it has sent so far.
struct Connection {
    stream: UnixStream,
    buf: Vec<u8>,
    continue_sent: bool,
}

enum Next {
    Keep,
    Close,
}

/// A listening socket at `path`, which must not exist, that accepts
/// connections from the moment the path appears.
///
/// `bind` creates the file before `listen` makes the socket accept, so a
/// client that waits for the file (as Firecracker's users do) could connect
/// in between and be refused. The socket is bound and listening under a
/// private name first, then linked to `path` (link, unlike rename, refuses
/// an existing `path`) and the private name removed. Where the private name
/// would not fit in a socket address, `path` is bound directly.
fn bind_listening(path: &Path) -> std::io::Result<UnixListener> {
    const SUN_PATH_MAX: usize = 107;
    let private = path.with_file_name(format!(".vessel-api.{}", std::process::id()));
    if private.as_os_str().len() > SUN_PATH_MAX {
        return UnixListener::bind(path);
    }
    // A leftover of a killed process that had this pid: never a live socket.
    let _ = std::fs::remove_file(&private);
    let listener = UnixListener::bind(&private)?;
    let linked = std::fs::hard_link(&private, path);
    let _ = std::fs::remove_file(&private);
    linked.map(|()| listener)
}

fn serve(listener: &UnixListener, shutdown: &UnixStream, mut handler: Handler) {
    let mut conns: Vec<Connection> = Vec::new();
    loop {
        let (stop, accept, ready) = {
            let mut fds = Vec::with_capacity(conns.len() + 2);
            fds.push(PollFd::new(shutdown.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            for c in &conns {
                fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            let is_set = |fd: &PollFd| !fd.revents().unwrap_or(PollFlags::empty()).is_empty();
            let ready: Vec<bool> = fds[2..].iter().map(is_set).collect();
            (is_set(&fds[0]), is_set(&fds[1]), ready)
        };
        if stop {
            return;
        }
        // Back to front, so that removing one keeps the others' indices.
        for i in (0..ready.len()).rev() {
            if ready[i] {
                if let Next::Close = service(&mut conns[i], &mut handler) {
                    conns.swap_remove(i);
                }
            }
        }
        if accept {
            if let Ok((stream, _)) = listener.accept() {
                if conns.len() < MAX_CONNECTIONS
                    && stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok()
                {
                    conns.push(Connection {
                        stream,
                        buf: Vec::new(),
                        continue_sent: false,
                    });
                }
            }
        }
    }
}

/// Reads what is there and answers every complete request in it.
fn service(conn: &mut Connection, handler: &mut Handler) -> Next {
    let mut chunk = [0u8; 4096];
    match conn.stream.read(&mut chunk) {
        Ok(0) | Err(_) => return Next::Close,
        Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
    }
    loop {
        match parse_request(&conn.buf) {
            Ok(Parsed::Incomplete { expect_continue }) => {
                if expect_continue && !conn.continue_sent {
                    conn.continue_sent = true;
                    if conn.stream.write_all(CONTINUE).is_err() {
                        return Next::Close;
                    }
                }
                return Next::Keep;
            }
            Ok(Parsed::Complete(request, used)) => {
                conn.buf.drain(..used);
                conn.continue_sent = false;
                let response = match route(&request) {
                    Ok(api) => handler(api),
                    Err(fault) => Response::fault(400, &fault),
                };
                let keep = request.keep_alive;
                if conn.stream.write_all(&response.to_bytes(keep)).is_err() || !keep {
                    return Next::Close;
                }
            }
            Err(e) => {
                let _ = conn
                    .stream
                    .write_all(&Response::fault(400, &e.to_string()).to_bytes(false));
                return Next::Close;
            }
        }
    }
}

#[cfg(test)]
mod tests;
