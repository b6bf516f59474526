//! A small, strict HTTP/1.1 request parser and response writer: just what
//! the API socket needs (a request line, headers, a `Content-Length` body
//! with a size cap, keep-alive), nothing a client could use to make the
//! VMM buffer without bound or guess at what it meant.
//!
//! The parser is incremental: give it everything received so far on a
//! connection; it answers "need more", "here is a request and how many
//! bytes it used", or an error, after which the connection is answered with
//! 400 and closed (a stream that failed to parse cannot be resynchronised).

/// Largest request line plus headers, in bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;
/// Largest body, in bytes (Firecracker's default API payload limit).
pub const MAX_BODY_BYTES: usize = 51_200;

/// Errors in a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request line and headers exceed [`MAX_HEAD_BYTES`].
    #[error("The request line and headers are larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] headers.
    #[error("More than {MAX_HEADERS} headers")]
    TooManyHeaders,
    /// The request line is not `METHOD /path HTTP/1.x`.
    #[error("Invalid request line: {0}")]
    RequestLine(&'static str),
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("Unsupported HTTP version")]
    Version,
    /// A line that does not end with CRLF, or a stray control byte.
    #[error("Invalid line ending or control character in the request head")]
    LineEnding,
    /// A header that is not `name: value`.
    #[error("Invalid header: {0}")]
    Header(&'static str),
    /// `Content-Length` that is not a decimal number, or given twice with different values.
    #[error("Invalid Content-Length header")]
    ContentLength,
    /// A body larger than [`MAX_BODY_BYTES`].
    #[error("The request body of {0} bytes is larger than the {MAX_BODY_BYTES} bytes accepted")]
    BodyTooLarge(u64),
    /// `Transfer-Encoding` (chunked bodies) is not supported.
    #[error("Transfer-Encoding is not supported; send a Content-Length")]
    TransferEncoding,
}

/// A request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// Any other syntactically valid method (the router refuses it).
    Other,
}

impl Method {
    /// The method's name as Firecracker spells it in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Other => "OTHER",
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target, as sent (`/machine-config`).
    pub path: String,
    /// The body (empty without `Content-Length`).
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

/// What [`parse_request`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole request yet. `expect_continue`: the head is complete and
    /// the client waits for `100 Continue` before sending its body.
    Incomplete {
        /// See above.
        expect_continue: bool,
    },
    /// A request, and the bytes of the buffer it used.
    Complete(Request, usize),
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parses the first request in `buf`.
pub fn parse_request(buf: &[u8]) -> Result<Parsed, HttpError> {
    let Some(head_end) = find_head_end(&buf[..buf.len().min(MAX_HEAD_BYTES + 4)]) else {
        if buf.len() >= MAX_HEAD_BYTES + 4 {
            return Err(HttpError::HeadTooLarge);
        }
        // Fail early on what can never become valid.
        check_partial_head(buf)?;
        return Ok(Parsed::Incomplete {
            expect_continue: false,
        });
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    let head = &buf[..head_end];
    let mut lines = split_crlf(head)?;
    let request_line = lines.next().unwrap_or_default();
    let (method, path, http11) = parse_request_line(request_line)?;

    let mut content_length: Option<u64> = None;
    let mut connection: Option<bool> = None;
    let mut expect_continue = false;
    for (count, line) in lines.enumerate() {
        if count >= MAX_HEADERS {
            return Err(HttpError::TooManyHeaders);
        }
        let (name, value) = parse_header(line)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value)?;
            if content_length.is_some_and(|old| old != n) {
                return Err(HttpError::ContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(HttpError::TransferEncoding);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    connection = Some(false);
                } else if token.eq_ignore_ascii_case(b"keep-alive") && connection.is_none() {
                    connection = Some(true);
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(HttpError::Header(
                    "only `Expect: 100-continue` is supported",
                ));
            }
            expect_continue = true;
        }
    }

    let body_len = content_length.unwrap_or(0);
    if body_len > MAX_BODY_BYTES as u64 {
        return Err(HttpError::BodyTooLarge(body_len));
    }
    // Fits: checked against MAX_BODY_BYTES just above.
    let body_len = body_len as usize;
    let body_start = head_end + 4;
    if buf.len() - body_start < body_len {
        return Ok(Parsed::Incomplete { expect_continue });
    }
    let request = Request {
        method,
        path: path.to_owned(),
        body: buf[body_start..body_start + body_len].to_vec(),
        keep_alive: connection.unwrap_or(http11),
    };
    Ok(Parsed::Complete(request, body_start + body_len))
}

/// Lines of `head`, each of which must end with CRLF (the last one's CRLF
/// is part of the blank line that ended the head).
fn split_crlf(head: &[u8]) -> Result<impl Iterator<Item = &[u8]>, HttpError> {
    // A bare CR or LF inside the head is ambiguous (request smuggling).
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b'\r' if head.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => return Err(HttpError::LineEnding),
            _ => i += 1,
        }
    }
    Ok(head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l)))
}

fn check_partial_head(buf: &[u8]) -> Result<(), HttpError> {
    // A bare LF, or a CR followed by anything but LF, can never be valid.
    for (i, &b) in buf.iter().enumerate() {
        let next = buf.get(i + 1);
        if (b == b'\r' && next.is_some_and(|&n| n != b'\n'))
            || (b == b'\n' && (i == 0 || buf[i - 1] != b'\r'))
        {
            return Err(HttpError::LineEnding);
        }
    }
    Ok(())
}

fn parse_request_line(line: &[u8]) -> Result<(Method, &str, bool), HttpError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::RequestLine("expected `METHOD /path HTTP/1.1`"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::RequestLine("invalid method"));
    }
    let method = match method {
        b"GET" => Method::Get,
        b"PUT" => Method::Put,
        b"PATCH" => Method::Patch,
        _ => Method::Other,
    };
    if target.first() != Some(&b'/') || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(HttpError::RequestLine(
            "the target must be a path starting with /",
        ));
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err(HttpError::Version),
    };
    // Checked above: every byte is graphic ASCII.
    let target = std::str::from_utf8(target).map_err(|_| HttpError::RequestLine("invalid path"))?;
    Ok((method, target, http11))
}

fn parse_header(line: &[u8]) -> Result<(&[u8], &[u8]), HttpError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HttpError::Header("missing `:`"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        // Also refuses obsolete line folding (a line starting with a space).
        return Err(HttpError::Header("invalid header name"));
    }
    if !value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
    {
        return Err(HttpError::Header("control character in a header value"));
    }
    Ok((name, value.trim_ascii()))
}

fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::ContentLength);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::ContentLength)
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// JSON body, if any.
    pub body: Option<Vec<u8>>,
}

impl Response {
    /// `204 No Content`.
    pub fn no_content() -> Self {
        Response {
            status: 204,
            body: None,
        }
    }

    /// `200 OK` with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        Response {
            status: 200,
            body: Some(value.to_string().into_bytes()),
        }
    }

    /// An error with Firecracker's body, `{"fault_message": "..."}`.
    pub fn fault(status: u16, message: &str) -> Self {
        let body = serde_json::json!({ "fault_message": message });
        Response {
            status,
            body: Some(body.to_string().into_bytes()),
        }
    }

    /// The bytes on the wire; `keep_alive` false adds `Connection: close`.
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let reason = match self.status {
            100 => "Continue",
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Unknown",
        };
        let mut out = format!("HTTP/1.1 {} {reason}\r\nServer: vessel\r\n", self.status);
        if !keep_alive {
            out.push_str("Connection: close\r\n");
        }
        if let Some(body) = &self.body {
            out.push_str("Content-Type: application/json\r\n");
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body);
        }
        bytes
    }
}

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests;
