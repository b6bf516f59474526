//! A plain HTTP/1.1 client for the VMM's API on its Unix socket, as a
//! Firecracker client speaks it: one request per connection
//! (`Connection: close`), the response read to EOF.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// One request on a fresh connection: the status code and the body.
pub fn call(sock: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(sock)
        .unwrap_or_else(|e| panic!("connect to the API socket {}: {e}", sock.display()));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send the request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response");
    let status = raw
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// As [`call`], with the body parsed as JSON (`Null` when empty).
pub fn call_json(sock: &Path, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, body) = call(sock, method, path, body);
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    };
    (status, json)
}
