use super::*;

fn complete(buf: &[u8]) -> (Request, usize) {
    match parse_request(buf) {
        Ok(Parsed::Complete(r, n)) => (r, n),
        other => panic!("expected a complete request, got {other:?}"),
    }
}

fn error(buf: &[u8]) -> HttpError {
    match parse_request(buf) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn get_without_body() {
    let buf = b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n";
    let (r, n) = complete(buf);
    assert_eq!(n, buf.len());
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.path, "/");
    assert!(r.body.is_empty());
    assert!(r.keep_alive);
}

#[test]
fn put_with_body_and_pipelined_next_request() {
    let first = b"PUT /machine-config HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    let mut buf = first.to_vec();
    buf.extend_from_slice(b"GET /version HTTP/1.1\r\n\r\n");
    let (r, n) = complete(&buf);
    assert_eq!(r.method, Method::Put);
    assert_eq!(r.body, b"{}");
    assert_eq!(n, first.len());
    let (r, _) = complete(&buf[n..]);
    assert_eq!(r.path, "/version");
}

#[test]
fn every_prefix_of_a_request_is_incomplete() {
    let buf = b"PATCH /vm HTTP/1.1\r\nContent-Length: 21\r\n\r\n{\"state\": \"Paused\"}\r\n";
    for end in 0..buf.len() {
        assert!(
            matches!(parse_request(&buf[..end]), Ok(Parsed::Incomplete { .. })),
            "prefix of {end} bytes"
        );
    }
    complete(buf);
}

#[test]
fn connection_header_and_http10() {
    let (r, _) = complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(!r.keep_alive);
    let (r, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
    assert!(!r.keep_alive);
    let (r, _) = complete(b"GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n");
    assert!(r.keep_alive);
}

#[test]
fn expect_continue_is_reported_before_the_body() {
    let head = b"PUT /boot-source HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(
        parse_request(head),
        Ok(Parsed::Incomplete {
            expect_continue: true
        })
    );
    let mut buf = head.to_vec();
    buf.extend_from_slice(b"hello");
    assert_eq!(complete(&buf).0.body, b"hello");
    assert!(matches!(
        error(b"PUT / HTTP/1.1\r\nExpect: something-else\r\n\r\n"),
        HttpError::Header(_)
    ));
}

#[test]
fn unknown_method_parses_for_the_router_to_refuse() {
    let (r, _) = complete(b"DELETE /vm HTTP/1.1\r\n\r\n");
    assert_eq!(r.method, Method::Other);
}

#[test]
fn huge_head_is_refused_without_waiting_for_its_end() {
    let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
    while buf.len() <= MAX_HEAD_BYTES + 4 {
        buf.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(error(&buf), HttpError::HeadTooLarge);
    let mut long = b"GET /".to_vec();
    long.resize(MAX_HEAD_BYTES + 100, b'a');
    assert_eq!(error(&long), HttpError::HeadTooLarge);
}

#[test]
fn too_many_headers() {
    let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        buf.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    assert_eq!(error(&buf), HttpError::TooManyHeaders);
}

#[test]
fn bad_content_length() {
    for value in [
        "",
        "-1",
        "+5",
        "0x10",
        "1 2",
        "abc",
        "99999999999999999999999",
    ] {
        let buf = format!("PUT / HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
        assert_eq!(error(buf.as_bytes()), HttpError::ContentLength, "{value:?}");
    }
    assert_eq!(
        error(b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        HttpError::ContentLength
    );
    // The same value twice is harmless.
    complete(b"PUT / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\na");
}

#[test]
fn body_over_the_cap_is_refused_before_it_arrives() {
    let buf = format!(
        "PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    assert_eq!(
        error(buf.as_bytes()),
        HttpError::BodyTooLarge(MAX_BODY_BYTES as u64 + 1)
    );
    let buf = format!("PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", u64::MAX);
    assert!(matches!(error(buf.as_bytes()), HttpError::BodyTooLarge(_)));
}

#[test]
fn chunked_bodies_are_refused() {
    assert_eq!(
        error(b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HttpError::TransferEncoding
    );
}

#[test]
fn malformed_request_lines() {
    for line in [
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        "GET http://host/ HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "\r\n\r\n",
    ] {
        assert!(
            matches!(error(line.as_bytes()), HttpError::RequestLine(_)),
            "{line:?}"
        );
    }
    assert_eq!(error(b"GET / HTTP/2.0\r\n\r\n"), HttpError::Version);
    assert_eq!(error(b"GET / FTP/1.1\r\n\r\n"), HttpError::Version);
}

#[test]
fn bare_line_feeds_and_stray_carriage_returns() {
    assert_eq!(error(b"GET / HTTP/1.1\n"), HttpError::LineEnding);
    assert_eq!(error(b"GET / HTTP/1.1\rX"), HttpError::LineEnding);
    assert_eq!(
        error(b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n"),
        HttpError::LineEnding
    );
}

#[test]
fn malformed_headers() {
    for header in [
        "NoColon",
        ": empty-name",
        " Folded: x",
        "Bad Name: x",
        "X: a\u{1}b",
    ] {
        let buf = format!("GET / HTTP/1.1\r\n{header}\r\n\r\n");
        assert!(
            matches!(error(buf.as_bytes()), HttpError::Header(_)),
            "{header:?}"
        );
    }
}

#[test]
fn responses_on_the_wire() {
    let r = Response::fault(400, "bad \"thing\"");
    let text = String::from_utf8(r.to_bytes(true)).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    let body = r#"{"fault_message":"bad \"thing\""}"#;
    assert!(
        text.ends_with(&format!("Content-Length: {}\r\n\r\n{body}", body.len())),
        "{text}"
    );
    assert!(!text.contains("Connection: close"));
    let text = String::from_utf8(Response::no_content().to_bytes(false)).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 204 No Content\r\nServer: vessel\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn deterministic_garbage_never_panics() {
    let seed = b"PUT /machine-config HTTP/1.1\r\nContent-Length: 30\r\nConnection: keep-alive\r\n\r\n{\"vcpu_count\":2,\"mem_size_mib\":1}";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        let mut buf = seed.to_vec();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let pos = (state % buf.len() as u64) as usize;
            match state >> 60 {
                0..=5 => buf[pos] = (state >> 32) as u8,
                6..=9 => buf.truncate(pos),
                10..=12 => buf.insert(pos, b"\r\n:0 "[(state >> 40) as usize % 5]),
                _ => {
                    buf.remove(pos.min(buf.len() - 1));
                }
            }
            if buf.is_empty() {
                buf.push(b'G');
            }
        }
        if let Ok(Parsed::Complete(r, n)) = parse_request(&buf) {
            assert!(n <= buf.len());
            assert!(r.body.len() <= MAX_BODY_BYTES);
        }
    }
}
