//! A TCP proxy in front of a registry that counts blob GETs in flight at
//! once. Every request is passed on with `Connection: close`, so each
//! connection carries one request and its answer ends at the upstream's EOF.
//! A blob GET is held until a second one is in flight too (or two seconds
//! have passed), so downloads that run concurrently are sure to overlap
//! here, and downloads made one after another never do.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Default, Debug, Clone)]
pub struct Counts {
    pub in_flight: usize,
    /// The most blob GETs in flight at one time.
    pub max_in_flight: usize,
    /// The path of every blob GET, in arrival order.
    pub blob_gets: Vec<String>,
}

type Shared = Arc<(Mutex<Counts>, Condvar)>;

pub struct BlobProxy {
    pub port: u16,
    counts: Shared,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl BlobProxy {
    /// A proxy on 127.0.0.1 (a free port) to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> BlobProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let c = c.clone();
                std::thread::spawn(move || serve(conn, upstream, &c));
            }
        });
        BlobProxy {
            port,
            counts,
            stop,
            accept: Some(accept),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn counts(&self) -> Counts {
        self.counts.0.lock().unwrap().clone()
    }
}

impl Drop for BlobProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Pass one request (head only: GET and HEAD have no body) and its answer.
fn serve(client: TcpStream, upstream: u16, counts: &Shared) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut head = line.clone();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if !h.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(&h);
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let blob = method == "GET" && path.contains("/blobs/sha256:");
    let (lock, cv) = &**counts;
    if blob {
        let mut c = lock.lock().unwrap();
        c.in_flight += 1;
        c.max_in_flight = c.max_in_flight.max(c.in_flight);
        c.blob_gets.push(path.to_owned());
        cv.notify_all();
        let _c = cv
            .wait_timeout_while(c, Duration::from_secs(2), |c| c.in_flight < 2)
            .unwrap();
    }
    if let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) {
        if up.write_all(head.as_bytes()).is_ok() {
            let mut client = client;
            let _ = std::io::copy(&mut up, &mut client);
        }
    }
    if blob {
        lock.lock().unwrap().in_flight -= 1;
    }
}
