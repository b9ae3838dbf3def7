//! A process's loopback HTTP endpoints (`/metrics`, `/readyz`).

use std::{
    io::{self, Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

/// How long one request to a local endpoint may take to connect, and then to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The status code and body of `GET <path>` on 127.0.0.1:`port`.
///
/// Plain blocking HTTP/1.0 on a worker thread: no HTTP client is needed for one GET on
/// loopback, and HTTP/1.0 makes the server close the connection after the body.
pub(crate) async fn get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || get_blocking(port, &path))
        .await
        .map_err(io::Error::other)?
}

fn get_blocking(port: u16, path: &str) -> io::Result<(u16, String)> {
    let address = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&address, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    parse_response(&String::from_utf8_lossy(&response))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))
}

/// The status code and body of an HTTP/1.x response.
fn parse_response(response: &str) -> Option<(u16, String)> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    parts.next()?.strip_prefix("HTTP/")?;
    let code = parts.next()?.parse().ok()?;
    Some((code, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_split_into_status_and_body() {
        assert_eq!(
            parse_response("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"),
            Some((200, "ok".to_owned()))
        );
        assert_eq!(
            parse_response("HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Some((503, String::new()))
        );
        assert_eq!(parse_response("garbage"), None);
        assert_eq!(parse_response("SSH-2.0 x\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn a_get_returns_the_status_and_body_of_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0; 1024];
            let read = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.0 503 Service Unavailable\r\n\r\nnot ready")
                .unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        let response = get(port, "/readyz").await.unwrap();
        assert_eq!(response, (503, "not ready".to_owned()));
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("GET /readyz HTTP/1.0\r\n")
        );
    }
}
