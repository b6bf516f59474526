use super::*;
use crate::api::http::MAX_HEAD_BYTES;

/// A server whose handler answers `GET /` with the number of requests it
/// has seen, and anything else with 204.
fn server(dir: &Path) -> ApiServer {
    let mut seen = 0u64;
    let handler: Handler = Box::new(move |req| {
        seen += 1;
        match req {
            ApiRequest::GetInstanceInfo => Response::json(&serde_json::json!({ "seen": seen })),
            _ => Response::no_content(),
        }
    });
    ApiServer::start(&dir.join("api.sock"), handler, false).expect("start")
}

/// Reads one response (head and Content-Length body) from `s`.
fn read_response(s: &mut UnixStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).expect("read") == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse::<usize>().expect("length"));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("body");
    head + &String::from_utf8_lossy(&body)
}

fn connect(server: &ApiServer) -> UnixStream {
    UnixStream::connect(server.path()).expect("connect")
}

fn closed(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
}

#[test]
fn keep_alive_pipelining_and_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let mut s = connect(&server);
    s.write_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        .expect("write");
    assert!(read_response(&mut s).ends_with(r#"{"seen":1}"#));
    assert!(read_response(&mut s).ends_with(r#"{"seen":2}"#));
    s.write_all(b"PUT /actions HTTP/1.1\r\nContent-Length: 33\r\nConnection: close\r\n\r\n{\"action_type\": \"InstanceStart\"}\n")
        .expect("write");
    let r = read_response(&mut s);
    assert!(r.starts_with("HTTP/1.1 204 No Content\r\n"), "{r}");
    assert!(r.contains("Connection: close"), "{r}");
    assert!(closed(&mut s));
    let path = server.path().to_owned();
    server.stop();
    assert!(!path.exists(), "socket file removed");
}

#[test]
fn a_bad_request_gets_400_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let bad: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"BREW /coffee HTTP/1.1\r\n\r\n",
        b"PUT /machine-config HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"vcpu\": \"2\"}",
        b"GET / HTTP/1.1\nHost: x\n\n",
    ];
    for req in bad {
        let mut s = connect(&server);
        s.write_all(req).expect("write");
        let r = read_response(&mut s);
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
        assert!(r.contains(r#"{"fault_message":""#), "{r}");
    }
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.resize(MAX_HEAD_BYTES + 64, b'a');
    let mut s = connect(&server);
    // The server may answer and close before reading everything.
    let _ = s.write_all(&huge);
    let r = read_response(&mut s);
    assert!(r.contains("larger than 8192 bytes"), "{r}");
    assert!(closed(&mut s));

    let mut s = connect(&server);
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn unknown_path_keeps_the_connection_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let mut s = connect(&server);
    s.write_all(b"GET /nothing HTTP/1.1\r\n\r\n")
        .expect("write");
    let r = read_response(&mut s);
    assert!(
        r.contains("Invalid request method and/or path: GET /nothing."),
        "{r}"
    );
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn expect_continue_and_a_body_in_pieces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let mut s = connect(&server);
    s.write_all(b"PATCH /vm HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 19\r\n\r\n")
        .expect("write");
    assert_eq!(read_response(&mut s), "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"{\"state\":").expect("write");
    s.write_all(b"\"Paused\"}").expect("write");
    s.write_all(b"\n").expect("write");
    assert!(read_response(&mut s).starts_with("HTTP/1.1 204 No Content\r\n"));
}

#[test]
fn an_existing_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api.sock");
    std::fs::write(&path, b"").expect("file");
    let err = ApiServer::start(&path, Box::new(|_| Response::no_content()), false)
        .expect_err("bound over a file");
    assert!(err.to_string().contains("api.sock"), "{err}");
}

#[test]
fn the_path_accepts_from_the_moment_it_exists_and_nothing_else_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api.sock");
    let s = ApiServer::start(&path, Box::new(|_| Response::no_content()), false).expect("start");
    // Bound and listening before the name appeared: a connect never races.
    let mut c = UnixStream::connect(&path).expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    assert!(read_response(&mut c).starts_with("HTTP/1.1 204 No Content\r\n"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("api.sock")]);
    s.stop();
    assert!(!path.exists(), "the socket is removed at stop");
}
