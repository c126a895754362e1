//! A minimal HTTP/1.1 client for one job: POSTing a form to an OIDC token endpoint.
//!
//! Why not `reqwest`? Even with its default features off it brings hyper, hyper-util, http,
//! http-body, tower and `url` (with idna and the ICU crates behind it): some forty crates, to
//! send one form a few times an hour. A token request is the simplest HTTP there is — one
//! request per connection (`Connection: close`), a small JSON answer — so this file speaks it
//! directly on tokio, through the same rustls (ring) stack the broker connections use. It
//! reads `Content-Length`, chunked and close-delimited bodies, caps the answer at 1 MiB, and
//! follows no redirects (a token endpoint that redirects a POST carrying a client secret is
//! better reported than followed).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::pool::{Connector, TcpConnector};
use crate::security::tls::TlsConnector;

/// The largest response accepted.
const MAX_RESPONSE: usize = 1 << 20;

/// An `http://` or `https://` URL split into what a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
}

impl Url {
    /// Parses `http[s]://host[:port][/path][?query]`; `[v6]` hosts are accepted.
    pub(crate) fn parse(url: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("the URL does not start with http:// or https://".into());
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err("user information in the URL is not supported".into());
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| "bad port")?,
                None if after.is_empty() => default_port,
                None => return Err("bad host".into()),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| "bad port")?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        Ok(Url {
            https,
            host,
            port,
            path,
        })
    }

    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn host_header(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            self.address()
        }
    }
}

/// A response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// POSTs `body` (`application/x-www-form-urlencoded`) to `url` with the extra `headers`,
/// within `timeout`. `tls` is used for `https://` URLs.
pub(crate) async fn post_form(
    url: &Url,
    headers: &[(&str, &str)],
    body: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> io::Result<Response> {
    let work = async {
        let tcp: Arc<dyn Connector> = Arc::new(TcpConnector);
        let mut stream = match (url.https, tls) {
            (true, Some(config)) => {
                TlsConnector::new(tcp, config)
                    .connect(&url.address())
                    .await?
            }
            (true, None) => return Err(io::Error::other("no TLS configuration for https")),
            (false, _) => tcp.connect(&url.address()).await?,
        };
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\nUser-Agent: ferrokafka/{}\r\n",
            url.path,
            url.host_header(),
            body.len(),
            env!("CARGO_PKG_VERSION"),
        );
        for (k, v) in headers {
            req.push_str(k);
            req.push_str(": ");
            req.push_str(v);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream.write_all(req.as_bytes()).await?;
        stream.flush().await?;
        let mut raw = Vec::new();
        let mut limited = (&mut stream).take(MAX_RESPONSE as u64 + 1);
        // A TLS peer that closes without close_notify is common among HTTP servers; whatever
        // arrived is parsed and judged by its framing.
        match limited.read_to_end(&mut raw).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e),
        }
        if raw.len() > MAX_RESPONSE {
            return Err(io::Error::other("the response is larger than 1 MiB"));
        }
        parse_response(&raw)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no response within {} ms", timeout.as_millis()),
        )),
    }
}

fn bad(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad HTTP response: {why}"),
    )
}

/// Parses a whole HTTP/1.x response read until the server closed the connection.
pub(crate) fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad("no status line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    let status: u16 = code.parse().map_err(|_| bad("bad status code"))?;
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        if rest.len() < n {
            return Err(bad("the body is shorter than Content-Length"));
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

/// Decodes a chunked body (RFC 9112 §7.1); trailers are ignored.
fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("unterminated chunk size"))?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| bad("chunk size"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err(bad("truncated chunk"));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        let u = Url::parse("https://idp.example.com/oauth2/token?x=1").unwrap();
        assert_eq!(
            u,
            Url {
                https: true,
                host: "idp.example.com".into(),
                port: 443,
                path: "/oauth2/token?x=1".into()
            }
        );
        assert_eq!(u.host_header(), "idp.example.com");
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        assert_eq!(u.address(), "127.0.0.1:8080");
        let u = Url::parse("http://[::1]:9/t").unwrap();
        assert_eq!(u.address(), "[::1]:9");
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("http://user:pw@x/").is_err());
        assert!(Url::parse("http://x:port/").is_err());
    }

    #[test]
    fn responses_parse_with_each_framing() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (401, &b"{\"a\":1}"[..]));
        let r = parse_response(b"HTTP/1.0 500 Oops\r\n\r\nall of it").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"all of it"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
