//! The vsock multiplexer: host Unix sockets on one side, the guest's RX
//! and TX queues on the other, one [`Conn`] per (host port, guest port).

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;

use event_manager::{EventOps, EventSet, Events};
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::super::interrupt::Interrupt;
use super::super::queue::{complete, pop, unpop, Chain, Popped};
use super::super::worker::{Activation, FIRST_DEVICE_TAG};
use super::packet::{self, op, shutdown, Header, HEADER_LEN, HOST_CID, MAX_PAYLOAD, TYPE_STREAM};
use super::BUF_ALLOC;

const RX: usize = 0;
const TX: usize = 1;
/// Data tag of the listening socket.
const LISTENER_TAG: u32 = FIRST_DEVICE_TAG;
/// Control packets waiting for RX buffers before TX stops being served
/// (a guest that never gives RX buffers cannot make vessel queue more).
const MAX_CONTROL: usize = 256;
/// Host sockets, connected or waiting for their `CONNECT` line.
const MAX_CONNS: usize = 1024;
/// Longest `CONNECT <port>\n` line.
const MAX_LINE: usize = 32;
/// First host port given to a host-initiated connection (as Firecracker).
const FIRST_LOCAL_PORT: u32 = 1 << 30;

/// (host port, guest port).
type Key = (u32, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Host-initiated, REQUEST sent, waiting for RESPONSE.
    Connecting,
    /// Bytes flow.
    Established,
}

/// One connection.
#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    tag: u32,
    state: State,
    /// Interest registered with the event loop.
    polled: EventSet,
    /// The host socket is readable (or at EOF) and not read yet.
    wants_rx: bool,
    /// The host closed its sending side; SHUTDOWN was sent.
    host_eof: bool,
    /// The guest will send no more: shut the socket once `out` drains.
    guest_eof: bool,
    /// The guest will neither send nor receive: reset the connection once
    /// `out` drains (its last bytes still reach the host).
    closing: bool,
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    /// Bytes sent to the guest.
    tx_cnt: u32,
    /// Bytes of the guest written to the host socket.
    fwd_cnt: u32,
    /// `fwd_cnt` last told to the guest.
    fwd_cnt_sent: u32,
    /// Bytes for the host socket not taken yet: the first `own` are
    /// vessel's (the `OK` line), the rest the guest's.
    out: Vec<u8>,
    own: usize,
}

impl Conn {
    fn new(stream: UnixStream, tag: u32, state: State) -> Conn {
        Conn {
            stream,
            tag,
            state,
            polled: EventSet::empty(),
            wants_rx: false,
            host_eof: false,
            guest_eof: false,
            closing: false,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            tx_cnt: 0,
            fwd_cnt: 0,
            fwd_cnt_sent: 0,
            out: Vec::new(),
            own: 0,
        }
    }

    /// Bytes the guest can still take.
    fn credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    fn wanted(&self) -> EventSet {
        let mut set = EventSet::empty();
        if self.state == State::Established && !self.wants_rx && !self.host_eof && !self.closing {
            set |= EventSet::IN;
        }
        if !self.out.is_empty() {
            set |= EventSet::OUT;
        }
        set
    }

    /// Guest bytes received and not yet written to the host socket: what
    /// the guest has in flight against [`BUF_ALLOC`].
    fn in_flight(&self) -> usize {
        self.out.len() - self.own
    }

    /// Writes what the socket takes of `out`; false on a socket error.
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.drain(..n);
                    // Only the guest's bytes count as forwarded: the
                    // guest's credit knows nothing of the OK line.
                    let own = n.min(self.own);
                    self.own -= own;
                    self.fwd_cnt = self.fwd_cnt.wrapping_add((n - own) as u32);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if self.out.is_empty() && self.guest_eof {
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        true
    }
}

/// A host socket that has not said `CONNECT <port>` yet.
#[derive(Debug)]
struct Pending {
    stream: UnixStream,
    line: Vec<u8>,
}

/// Sets O_NONBLOCK with fcntl(2): std's `set_nonblocking` is an ioctl
/// (FIONBIO) the VMM and device threads' seccomp filters do not allow.
pub(super) fn nonblocking(stream: &impl std::os::fd::AsRawFd) -> std::io::Result<()> {
    let fd = stream.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor `stream` owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Parses `CONNECT <port>\n` (the newline already stripped).
pub fn parse_connect(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?;
    let port = text.strip_prefix("CONNECT ")?.trim_end_matches('\r');
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse().ok()
}

/// The device state of the vsock backend.
#[derive(Debug)]
pub struct Muxer {
    guest_cid: u64,
    uds_path: PathBuf,
    listener: UnixListener,
    interrupt: Arc<Interrupt>,
    active: Option<(GuestMemoryMmap, Vec<Queue>)>,
    pending: HashMap<u32, Pending>,
    conns: HashMap<Key, Conn>,
    tags: HashMap<u32, Key>,
    control: VecDeque<Header>,
    next_tag: u32,
    next_local_port: u32,
    /// Bytes read from a host socket on their way into an RX buffer
    /// (allocated once: a packet is up to 64 KiB).
    rx_buf: Vec<u8>,
}

impl Muxer {
    /// Not active yet; `listener` is bound to `uds_path`.
    pub fn new(
        guest_cid: u64,
        uds_path: PathBuf,
        listener: UnixListener,
        interrupt: Arc<Interrupt>,
    ) -> Muxer {
        Muxer {
            guest_cid,
            uds_path,
            listener,
            interrupt,
            active: None,
            pending: HashMap::new(),
            conns: HashMap::new(),
            tags: HashMap::new(),
            control: VecDeque::new(),
            next_tag: LISTENER_TAG + 1,
            next_local_port: FIRST_LOCAL_PORT,
            rx_buf: vec![0; MAX_PAYLOAD as usize],
        }
    }

    /// Takes the queues and starts accepting host connections.
    pub fn activate(&mut self, a: Activation, ops: &mut EventOps) {
        if a.queues.len() < 2 {
            return;
        }
        self.active = Some((a.mem, a.queues));
        let _ = ops.add(Events::with_data(
            &self.listener,
            LISTENER_TAG,
            EventSet::IN,
        ));
        self.process(ops);
    }

    /// Drops every connection and the queues.
    pub fn reset(&mut self, ops: &mut EventOps) {
        let _ = ops.remove(Events::with_data(
            &self.listener,
            LISTENER_TAG,
            EventSet::IN,
        ));
        for (tag, p) in self.pending.drain() {
            let _ = ops.remove(Events::with_data(&p.stream, tag, EventSet::IN));
        }
        let keys: Vec<Key> = self.conns.keys().copied().collect();
        for key in keys {
            self.close(key, ops);
        }
        self.control.clear();
        self.active = None;
    }

    fn new_tag(&mut self) -> u32 {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.checked_add(1).unwrap_or(LISTENER_TAG + 1);
        tag
    }

    fn header(&self, key: Key, op: u16, flags: u32) -> Header {
        Header {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: key.0,
            dst_port: key.1,
            len: 0,
            type_: TYPE_STREAM,
            op,
            flags,
            buf_alloc: BUF_ALLOC,
            fwd_cnt: self.conns.get(&key).map_or(0, |c| c.fwd_cnt),
        }
    }

    fn send(&mut self, key: Key, op: u16, flags: u32) {
        let h = self.header(key, op, flags);
        if let Some(c) = self.conns.get_mut(&key) {
            c.fwd_cnt_sent = c.fwd_cnt;
        }
        self.control.push_back(h);
    }

    fn rst(&mut self, key: Key) {
        self.send(key, op::RST, 0);
    }

    fn close(&mut self, key: Key, ops: &mut EventOps) {
        if let Some(c) = self.conns.remove(&key) {
            if !c.polled.is_empty() {
                let _ = ops.remove(Events::with_data(&c.stream, c.tag, c.polled));
            }
            self.tags.remove(&c.tag);
        }
    }

    /// Brings `key`'s event interest in line with its state.
    fn repoll(&mut self, key: Key, ops: &mut EventOps) {
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        let want = c.wanted();
        if want == c.polled {
            return;
        }
        let ev = |set| Events::with_data(&c.stream, c.tag, set);
        let ok = if c.polled.is_empty() {
            ops.add(ev(want)).is_ok()
        } else if want.is_empty() {
            ops.remove(ev(c.polled)).is_ok()
        } else {
            ops.modify(ev(want)).is_ok()
        };
        if ok {
            c.polled = want;
        }
    }

    /// A registered host descriptor is ready.
    pub fn host_event(&mut self, tag: u32, events: EventSet, ops: &mut EventOps) {
        if self.active.is_none() {
            return;
        }
        if tag == LISTENER_TAG {
            self.accept(ops);
        } else if self.pending.contains_key(&tag) {
            self.read_connect(tag, ops);
        } else if let Some(&key) = self.tags.get(&tag) {
            let mut broken = false;
            if let Some(c) = self.conns.get_mut(&key) {
                if events.intersects(EventSet::IN | EventSet::HANG_UP | EventSet::ERROR) {
                    c.wants_rx = true;
                }
                if events.contains(EventSet::OUT) {
                    broken = !c.flush();
                }
                // A closing connection ends once its last bytes are out.
                broken |= c.closing && c.out.is_empty();
            }
            if broken {
                self.rst(key);
                self.close(key, ops);
            } else {
                self.credit_update_if_due(key);
                self.repoll(key, ops);
            }
        }
    }

    fn accept(&mut self, ops: &mut EventOps) {
        while let Ok((stream, _)) = self.listener.accept() {
            if self.pending.len() + self.conns.len() >= MAX_CONNS || nonblocking(&stream).is_err() {
                continue;
            }
            let tag = self.new_tag();
            if ops
                .add(Events::with_data(&stream, tag, EventSet::IN))
                .is_ok()
            {
                self.pending.insert(
                    tag,
                    Pending {
                        stream,
                        line: Vec::new(),
                    },
                );
            }
        }
    }

    fn read_connect(&mut self, tag: u32, ops: &mut EventOps) {
        let Some(p) = self.pending.get_mut(&tag) else {
            return;
        };
        let mut byte = [0u8; 1];
        // Byte by byte, so nothing after the newline (the client's first
        // bytes for the guest) is taken out of the socket here.
        let port = loop {
            match p.stream.read(&mut byte) {
                Ok(1) if byte[0] == b'\n' => break parse_connect(&p.line),
                Ok(1) if p.line.len() < MAX_LINE => p.line.push(byte[0]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => break None,
            }
        };
        let Some(p) = self.pending.remove(&tag) else {
            return;
        };
        let _ = ops.remove(Events::with_data(&p.stream, tag, EventSet::IN));
        let Some(port) = port else {
            return;
        };
        let local = self.next_local_port;
        self.next_local_port = self.next_local_port.wrapping_add(1).max(FIRST_LOCAL_PORT);
        let key = (local, port);
        if self.conns.contains_key(&key) {
            return;
        }
        self.conns
            .insert(key, Conn::new(p.stream, tag, State::Connecting));
        self.tags.insert(tag, key);
        self.send(key, op::REQUEST, 0);
    }

    /// Serves TX and RX until neither moves.
    pub fn process(&mut self, ops: &mut EventOps) {
        for _ in 0..64 {
            let tx = self.serve_tx(ops);
            let rx = self.serve_rx(ops);
            if !tx && !rx {
                break;
            }
        }
    }

    fn with_queue<T>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut Queue, &GuestMemoryMmap) -> T,
    ) -> Option<T> {
        let (mem, queues) = self.active.as_mut()?;
        let q = queues.get_mut(index)?;
        Some(f(q, mem))
    }

    fn finish(&mut self, index: usize, head: u16, len: u32) {
        let done = self.with_queue(index, |q, mem| complete(q, mem, head, len));
        match done {
            Some(Ok(true)) => self.interrupt.signal_used_queue(),
            Some(Ok(false)) | None => {}
            Some(Err(_)) => self.broken(),
        }
    }

    fn broken(&mut self) {
        self.interrupt.set_needs_reset();
        self.active = None;
    }

    /// Takes packets from the guest; whether any was taken.
    fn serve_tx(&mut self, ops: &mut EventOps) -> bool {
        let mut any = false;
        while self.control.len() < MAX_CONTROL {
            let popped = self.with_queue(TX, pop);
            let chain = match popped {
                None | Some(Ok(None)) => break,
                Some(Err(_)) => {
                    self.broken();
                    break;
                }
                Some(Ok(Some(Popped::Bad(bad)))) => {
                    self.finish(TX, bad.head, 0);
                    any = true;
                    continue;
                }
                Some(Ok(Some(Popped::Chain(c)))) => c,
            };
            any = true;
            let parsed = self
                .active
                .as_ref()
                .map(|(mem, _)| packet::parse(&chain, mem, self.guest_cid));
            match parsed {
                Some(Ok(p)) => self.handle(p.header, p.payload, ops),
                Some(Err(refused)) => {
                    // Answer a readable header with a RST (never to a RST).
                    if let Some(h) = refused.header.filter(|h| h.op != op::RST) {
                        let key = (h.dst_port, h.src_port);
                        self.rst(key);
                        self.close(key, ops);
                    }
                }
                None => break,
            }
            // Used only once acted on: a driver that sees its packet back
            // knows the device has taken it into account.
            self.finish(TX, chain.head, 0);
        }
        any
    }

    /// Acts on one packet from the guest.
    fn handle(&mut self, h: Header, payload: Vec<u8>, ops: &mut EventOps) {
        let key = (h.dst_port, h.src_port);
        if h.op == op::REQUEST {
            self.guest_connect(key, &h, ops);
            return;
        }
        let Some(c) = self.conns.get_mut(&key) else {
            if h.op != op::RST {
                self.rst(key);
            }
            return;
        };
        c.peer_buf_alloc = h.buf_alloc;
        c.peer_fwd_cnt = h.fwd_cnt;
        match (h.op, c.state) {
            (op::RESPONSE, State::Connecting) => {
                c.state = State::Established;
                let ok = format!("OK {}\n", key.0);
                c.own += ok.len();
                c.out.extend_from_slice(ok.as_bytes());
                if !c.flush() {
                    self.rst(key);
                    self.close(key, ops);
                    return;
                }
            }
            (op::RW, State::Established) => {
                // Past the credit vessel gave: the guest broke the protocol.
                if c.in_flight() + payload.len() > BUF_ALLOC as usize || c.guest_eof {
                    self.rst(key);
                    self.close(key, ops);
                    return;
                }
                c.out.extend_from_slice(&payload);
                if !c.flush() {
                    self.rst(key);
                    self.close(key, ops);
                    return;
                }
                self.credit_update_if_due(key);
            }
            (op::CREDIT_UPDATE, _) => {}
            (op::CREDIT_REQUEST, _) => self.send(key, op::CREDIT_UPDATE, 0),
            (op::SHUTDOWN, State::Established) => {
                if h.flags & shutdown::SEND != 0 {
                    c.guest_eof = true;
                }
                let both = shutdown::RCV | shutdown::SEND;
                c.closing |= h.flags & both == both;
                // Flushing shuts the socket's sending side once `out`
                // drains; a closing connection is then reset (the RST the
                // guest waits for), at once or when the host took the rest.
                let ok = c.flush();
                if !ok || (c.closing && c.out.is_empty()) {
                    self.rst(key);
                    self.close(key, ops);
                    return;
                }
            }
            (op::RST, _) => {
                self.close(key, ops);
                return;
            }
            _ => {
                self.rst(key);
                self.close(key, ops);
                return;
            }
        }
        self.repoll(key, ops);
    }

    /// The guest connects to host port `key.0`: `uds_path_PORT`.
    fn guest_connect(&mut self, key: Key, h: &Header, ops: &mut EventOps) {
        if self.conns.contains_key(&key) || self.conns.len() + self.pending.len() >= MAX_CONNS {
            self.rst(key);
            return;
        }
        let mut path = self.uds_path.clone().into_os_string();
        path.push(format!("_{}", key.0));
        let stream = match UnixStream::connect(&path) {
            Ok(s) if nonblocking(&s).is_ok() => s,
            _ => {
                self.rst(key);
                return;
            }
        };
        let tag = self.new_tag();
        let mut c = Conn::new(stream, tag, State::Established);
        c.peer_buf_alloc = h.buf_alloc;
        c.peer_fwd_cnt = h.fwd_cnt;
        self.conns.insert(key, c);
        self.tags.insert(tag, key);
        self.send(key, op::RESPONSE, 0);
        self.repoll(key, ops);
    }

    fn credit_update_if_due(&mut self, key: Key) {
        let due = self
            .conns
            .get(&key)
            .is_some_and(|c| c.fwd_cnt.wrapping_sub(c.fwd_cnt_sent) >= BUF_ALLOC / 2);
        if due {
            self.send(key, op::CREDIT_UPDATE, 0);
        }
    }

    /// Whether something waits for an RX buffer.
    fn rx_ready(&self) -> bool {
        !self.control.is_empty()
            || self
                .conns
                .values()
                .any(|c| c.wants_rx && !c.closing && (c.credit() > 0 || c.host_eof))
    }

    /// Gives the guest packets; whether any was given.
    fn serve_rx(&mut self, ops: &mut EventOps) -> bool {
        let mut any = false;
        while self.rx_ready() {
            let popped = self.with_queue(RX, pop);
            let chain = match popped {
                None | Some(Ok(None)) => break,
                Some(Err(_)) => {
                    self.broken();
                    break;
                }
                Some(Ok(Some(Popped::Bad(bad)))) => {
                    self.finish(RX, bad.head, 0);
                    continue;
                }
                Some(Ok(Some(Popped::Chain(c)))) => c,
            };
            if chain.writable_len() < HEADER_LEN as u64 {
                self.finish(RX, chain.head, 0);
                continue;
            }
            match self.fill_rx(&chain, ops) {
                Some(len) => {
                    self.finish(RX, chain.head, len);
                    any = true;
                }
                None => {
                    let _ = self.with_queue(RX, |q, _| unpop(q));
                    break;
                }
            }
        }
        any
    }

    /// Writes one packet into `chain`: a control packet, or data read from
    /// a host socket. `None` when there was nothing after all.
    fn fill_rx(&mut self, chain: &Chain, ops: &mut EventOps) -> Option<u32> {
        let (mem, _) = self.active.as_ref()?;
        let mem = mem.clone();
        if let Some(h) = self.control.pop_front() {
            return Some(chain.write_at(&mem, 0, &h.encode()) as u32);
        }
        let room = chain.writable_len() - HEADER_LEN as u64;
        let keys: Vec<Key> = self
            .conns
            .iter()
            .filter(|(_, c)| c.wants_rx && !c.closing && (c.credit() > 0 || c.host_eof))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let c = self.conns.get_mut(&key)?;
            if c.host_eof {
                c.wants_rx = false;
                continue;
            }
            if room == 0 {
                // A bare header buffer holds no data, and a read of 0
                // bytes would look like the socket's end: given back empty.
                return Some(0);
            }
            let n = u64::from(c.credit().min(MAX_PAYLOAD)).min(room) as usize;
            let buf = &mut self.rx_buf[..n];
            let read = loop {
                match c.stream.read(buf) {
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            match read {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    c.wants_rx = false;
                    self.repoll(key, ops);
                }
                Ok(read) if read > 0 => {
                    c.tx_cnt = c.tx_cnt.wrapping_add(read as u32);
                    let mut h = self.header(key, op::RW, 0);
                    h.len = read as u32;
                    if let Some(c) = self.conns.get_mut(&key) {
                        c.fwd_cnt_sent = c.fwd_cnt;
                    }
                    let head = chain.write_at(&mem, 0, &h.encode());
                    let body = chain.write_at(&mem, HEADER_LEN as u64, &self.rx_buf[..read]);
                    return Some((head + body) as u32);
                }
                // EOF or a broken socket: the host sends no more.
                _ => {
                    c.wants_rx = false;
                    c.host_eof = true;
                    let h = self.header(key, op::SHUTDOWN, shutdown::RCV | shutdown::SEND);
                    self.repoll(key, ops);
                    return Some(chain.write_at(&mem, 0, &h.encode()) as u32);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_lines_are_parsed_strictly() {
        assert_eq!(parse_connect(b"CONNECT 52"), Some(52));
        assert_eq!(parse_connect(b"CONNECT 4294967295\r"), Some(u32::MAX));
        for bad in [
            &b"CONNECT"[..],
            b"CONNECT ",
            b"CONNECT 4294967296",
            b"CONNECT -1",
            b"CONNECT +1",
            b"connect 52",
            b"CONNECT 52 53",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_connect(bad), None, "{bad:?}");
        }
    }
}
