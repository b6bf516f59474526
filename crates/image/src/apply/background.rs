//! Decompression on a thread of its own, so that inflating a layer overlaps
//! with hashing its tar stream and writing its files (a layer unpack is
//! otherwise one core doing three things in turn; measured by bench/pull.sh).

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// Bytes per message between the threads.
const CHUNK: usize = 256 * 1024;
/// Messages in flight: bounds the memory the decompressor may run ahead by.
const DEPTH: usize = 8;

/// A reader of the uncompressed stream of `reader`, decompressed (gzip,
/// zstd, or passed through) on a background thread. Dropping it stops the
/// thread at its next chunk.
pub fn decompress_in_background<R: Read + Send + 'static>(reader: R) -> BackgroundReader {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
    let thread = std::thread::Builder::new()
        .name("decompress".into())
        .spawn(move || {
            let mut stream = match super::decompress(reader) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            loop {
                let mut buf = vec![0u8; CHUNK];
                match read_full(&mut stream, &mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        // The reader is gone: nobody wants the rest.
                        if tx.send(Ok(buf)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
    match thread {
        Ok(handle) => BackgroundReader {
            rx: Some(rx),
            current: Vec::new(),
            pos: 0,
            thread: Some(handle),
        },
        Err(e) => BackgroundReader::failed(e),
    }
}

/// Fill `buf` as far as the stream goes (a short read only at its end).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The reading end; see [`decompress_in_background`].
#[derive(Debug)]
pub struct BackgroundReader {
    rx: Option<Receiver<io::Result<Vec<u8>>>>,
    current: Vec<u8>,
    pos: usize,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundReader {
    fn failed(e: io::Error) -> Self {
        let (tx, rx) = sync_channel(1);
        let _ = tx.send(Err(e));
        BackgroundReader {
            rx: Some(rx),
            current: Vec::new(),
            pos: 0,
            thread: None,
        }
    }
}

impl Read for BackgroundReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let Some(rx) = &self.rx else { return Ok(0) };
            match rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.rx = None;
                    return Err(e);
                }
                // The thread finished and dropped its sender: end of stream.
                Err(_) => {
                    self.rx = None;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for BackgroundReader {
    fn drop(&mut self) {
        // Closing the channel first makes a running decompressor stop.
        self.rx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn yields_the_uncompressed_stream_across_chunks() {
        let data: Vec<u8> = (0..(CHUNK * 3 + 17)).map(|i| (i * 7 % 251) as u8).collect();
        for input in [gzip(&data), data.clone()] {
            let mut out = Vec::new();
            decompress_in_background(io::Cursor::new(input))
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn a_corrupt_stream_is_an_error_not_a_short_read() {
        let mut z = gzip(&vec![b'x'; CHUNK * 2]);
        let mid = z.len() / 2;
        z.truncate(mid);
        let mut out = Vec::new();
        let e = decompress_in_background(io::Cursor::new(z))
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn dropping_the_reader_early_stops_the_thread() {
        let data = vec![0u8; CHUNK * (DEPTH + 4)];
        let mut r = decompress_in_background(io::Cursor::new(gzip(&data)));
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        drop(r); // joins: would hang if the thread kept blocking on a full channel
    }
}
