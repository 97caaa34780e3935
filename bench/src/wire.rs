//! HTTP/1.1 on a bare keep-alive socket, the way `wrk` speaks it: each request is bytes
//! serialised before the run, written with one call; each answer is parsed in place with
//! `httparse` into a buffer the connection reuses.
//!
//! A general client (hyper's) builds a `Request`, hands it to a connection task over a channel
//! and collects a `Response` with its own header map: on a 2-core machine that measured
//! 0.68–0.94× of `wrk -t1`'s rate, so the generator, not the server, set the pace. What the
//! bench talks to always answers with `Content-Length` (hyper does for full bodies); chunked
//! answers are refused as an error rather than misread.

use std::net::SocketAddr;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Why an exchange produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("unparseable answer: {0}")]
    Parse(#[from] httparse::Error),
    #[error("unsupported answer framing (only Content-Length is read)")]
    Framing,
}

/// One request, serialised: request line, headers and body.
///
/// `authorization` is the whole header value (`Bearer …`); `extra` are further `name: value`
/// header lines.
#[must_use]
pub fn request(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Bytes {
    let mut out = BytesMut::with_capacity(160 + path.len() + body.len());
    out.put_slice(method.as_bytes());
    out.put_u8(b' ');
    out.put_slice(path.as_bytes());
    out.put_slice(b" HTTP/1.1\r\nhost: flashgate\r\n");
    if let Some(value) = authorization {
        header(&mut out, "authorization", value);
    }
    for (name, value) in extra {
        header(&mut out, name, value);
    }
    if !body.is_empty() || method == "POST" {
        header(&mut out, "content-type", "application/json");
        header(&mut out, "content-length", &body.len().to_string());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out.freeze()
}

fn header(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// An answer, borrowed from the connection's buffer until the next exchange.
#[derive(Debug)]
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
    /// The server will close the connection after this answer.
    pub closing: bool,
}

/// A keep-alive connection with one request in flight at a time (no pipelining, like `wrk`).
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buffer: BytesMut,
    /// Bytes at the front of `buffer` that belong to the previous answer.
    consumed: usize,
}

impl Connection {
    /// # Errors
    /// When the server cannot be reached.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: BytesMut::with_capacity(8192),
            consumed: 0,
        })
    }

    /// Sends `request` and reads its answer.
    ///
    /// # Errors
    /// A broken or closed connection, or an answer that is not HTTP/1.1 with a
    /// `Content-Length`; the connection is then unusable.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Answer<'_>, WireError> {
        if self.consumed == self.buffer.len() {
            self.buffer.clear();
        } else {
            self.buffer.advance(self.consumed);
        }
        self.consumed = 0;
        self.stream.write_all(request).await?;
        loop {
            if let Some((status, head, length, closing)) = parse(&self.buffer)? {
                if self.buffer.len() >= head + length {
                    self.consumed = head + length;
                    return Ok(Answer {
                        status,
                        body: &self.buffer[head..head + length],
                        closing,
                    });
                }
                self.buffer.reserve(head + length - self.buffer.len());
            } else if self.buffer.capacity() - self.buffer.len() < 1024 {
                self.buffer.reserve(8192);
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(WireError::Closed);
            }
        }
    }
}

/// `(status, head length, body length, closing)` once the head is complete.
fn parse(buffer: &[u8]) -> Result<Option<(u16, usize, usize, bool)>, WireError> {
    if buffer.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; 24];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(buffer)? else {
        return Ok(None);
    };
    let (mut length, mut closing) = (None, false);
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(WireError::Framing);
        } else if h.name.eq_ignore_ascii_case("connection") {
            closing = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    let status = response.code.unwrap_or(0);
    // 1xx, 204 and 304 carry no body; anything else must say how long it is.
    let length = match (status, length) {
        (100..=199 | 204 | 304, _) => 0,
        (_, Some(n)) => n,
        (_, None) => return Err(WireError::Framing),
    };
    Ok(Some((status, head, length, closing)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_a_purchase() {
        let r = request(
            "POST",
            "/api/v1/orders",
            Some("Bearer t"),
            &[],
            br#"{"campaign_id":"c"}"#,
        );
        assert_eq!(
            &r[..],
            b"POST /api/v1/orders HTTP/1.1\r\nhost: flashgate\r\nauthorization: Bearer t\r\n\
content-type: application/json\r\ncontent-length: 19\r\n\r\n{\"campaign_id\":\"c\"}"
        );
        let get = request("GET", "/x", None, &[("x-a", "1")], b"");
        assert_eq!(
            &get[..],
            b"GET /x HTTP/1.1\r\nhost: flashgate\r\nx-a: 1\r\n\r\n"
        );
    }

    #[test]
    fn parses_heads_and_refuses_unknown_framing() {
        let ok = b"HTTP/1.1 409 Conflict\r\nContent-Length: 5\r\nconnection: close\r\n\r\nhello";
        assert_eq!(parse(ok).ok().flatten(), Some((409, ok.len() - 5, 5, true)));
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Le").ok().flatten(), None);
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(WireError::Framing)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(WireError::Framing)
        ));
        assert!(parse(b"garbage\r\n\r\n").is_err());
    }
}
