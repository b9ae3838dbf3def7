//! The abuse phase of `loadgen sharder-bench`: the sharder's webhook server under clients that
//! stall or send too much (docs/sharder.md#the-webhook-under-load).
//!
//! It talks to the webhook port directly over TLS, as a misbehaving client in the cluster could,
//! with `connections` connections of each kind:
//!
//! - stalled headers: half a request line, then nothing;
//! - stalled bodies: the headers of a 100-byte review and 10 bytes of it, then nothing;
//! - large bodies: `body_bytes` each, all at once, sent chunked (without a `Content-Length`, so
//!   that the server has to read to find out) as fast as loopback carries them;
//! - reviews at the limit: valid AdmissionReviews just under the default body limit, all at
//!   once, with a `Content-Length`, which the sharder decodes when it admits them.
//!
//! The stalled connections stay open while the bodies are sent. The sharder's VmRSS is sampled
//! every 20 ms throughout, and its VmHWM, reset through `/proc/PID/clear_refs` at the start, is
//! read at the end. The peak is compared with the bound 2 × idle RSS + 64 MiB.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde::Serialize;
use stack::{SharderProcess, Usage};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
    task::JoinSet,
    time::Instant,
};
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{
        self,
        pki_types::{CertificateDer, ServerName, pem::PemObject as _},
    },
};

use super::{REJECTIONS, RING, SHARDED_NAMESPACE, config_map, has_shard_label, progress};
use crate::units::mib;

/// How often the sharder's VmRSS is sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(20);
/// How long a connection may stay open before it counts as never closed: far beyond the
/// server's header and body timeouts.
const PATIENCE: Duration = Duration::from_secs(60);
/// The body of a review at the limit: 64 KiB under the sharder's default
/// `maxRequestBodyBytes` of 7 MiB.
const REVIEW_BYTES: usize = 7 * 1024 * 1024 - 64 * 1024;
/// Bytes per write, and per chunk of a chunked body.
const CHUNK: usize = 64 * 1024;
/// What the bound allows on top of twice the idle RSS.
const ALLOWANCE_BYTES: u64 = 64 * 1024 * 1024;

/// What the phase sends.
#[derive(Debug, Clone, Copy)]
pub struct Abuse {
    /// Connections of each kind.
    pub connections: usize,
    /// Bytes of each large body.
    pub body_bytes: usize,
}

/// The webhook server under abuse.
#[derive(Debug, Clone, Serialize)]
pub struct AbuseReport {
    /// Connections of each kind.
    pub connections: usize,
    /// VmRSS right before the phase.
    pub idle_rss_mib: f64,
    /// The largest resident memory during the phase.
    pub peak_rss_mib: f64,
    /// Where the peak comes from: VmHWM (reset at the start) or only the 20 ms samples when
    /// it could not be reset.
    pub peak_source: &'static str,
    /// 2 × idle + 64 MiB.
    pub bound_mib: f64,
    /// Whether the peak stayed at or below the bound.
    pub within_bound: bool,
    /// Connections that sent half a request line.
    pub stalled_headers: Stalled,
    /// Connections that sent headers and part of the body.
    pub stalled_bodies: Stalled,
    /// The large bodies.
    pub large_bodies: Wave,
    /// The valid reviews just under the body limit.
    pub reviews_at_limit: Wave,
    /// The increase of the sharder's `controller_sharding_webhook_rejections_total`, if scraped.
    pub rejections_counted: Option<f64>,
    /// Whether a ConfigMap created through the API server after the phase got its shard label.
    pub assigns_afterwards: bool,
}

/// Connections that stalled, and when the server closed them.
#[derive(Debug, Clone, Serialize)]
pub struct Stalled {
    /// Connections opened.
    pub connections: usize,
    /// Closed by the server within [`PATIENCE`].
    pub closed: usize,
    /// Still open after [`PATIENCE`].
    pub open: usize,
    /// Could not connect or send.
    pub errors: usize,
    /// The longest time from the last byte sent to the close.
    pub max_seconds_to_close: Option<f64>,
}

/// Requests sent at once, and how the server answered them.
#[derive(Debug, Clone, Serialize)]
pub struct Wave {
    /// Requests sent.
    pub requests: usize,
    /// Bytes of each body.
    pub body_bytes: usize,
    /// From the first connect until every request is answered or closed.
    pub seconds: f64,
    /// Requests by answer: the HTTP status, or how the connection ended without one.
    pub answers: BTreeMap<String, usize>,
}

/// Runs the phase against `sharder`, whose serving certificate `ca_pem` issued, and checks
/// through `client` that the webhook still assigns afterwards.
pub async fn run(
    client: &Client,
    sharder: &mut SharderProcess,
    ca_pem: &str,
    abuse: Abuse,
) -> anyhow::Result<AbuseReport> {
    let target = Arc::new(Target::new(sharder.webhook_port(), ca_pem)?);
    let pid = sharder.pid();
    let idle = sharder.usage()?.rss_bytes;
    let rejections_before = sharder.metric_sum(REJECTIONS).await;
    // Linux resets VmHWM to the current RSS when "5" is written (proc(5)).
    let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let sampler = Sampler::start(pid);

    let n = abuse.connections;
    progress(&format!(
        "abuse: {n} connections with stalled headers, {n} with stalled bodies"
    ));
    let stalled_headers = spawn_n(n, &target, |target| {
        stall(
            target,
            format!("POST /webhooks/sharder/controllerring/{RING} HTT"),
        )
    });
    let stalled_bodies = spawn_n(n, &target, |target| {
        stall(target, format!("{}{{\"apiVersion\"", head(Some(100))))
    });
    progress(&format!(
        "abuse: {n} bodies of {} bytes at once, chunked",
        abuse.body_bytes
    ));
    let large_bodies = wave(n, &target, Body::Chunked(abuse.body_bytes)).await;
    progress(&format!(
        "abuse: {n} reviews of {REVIEW_BYTES} bytes at once"
    ));
    let reviews_at_limit = wave(n, &target, Body::Review(REVIEW_BYTES)).await;
    progress("abuse: waiting for the stalled connections to be closed");
    let stalled_headers = stalled(n, stalled_headers).await;
    let stalled_bodies = stalled(n, stalled_bodies).await;

    let largest_sample = sampler.stop();
    let usage = sharder.usage()?;
    let (peak, peak_source) = if hwm_reset {
        (usage.peak_rss_bytes.max(largest_sample), "VmHWM")
    } else {
        (largest_sample, "VmRSS sampled every 20 ms")
    };
    let bound = 2 * idle + ALLOWANCE_BYTES;
    let rejections_after = sharder.metric_sum(REJECTIONS).await;
    Ok(AbuseReport {
        connections: n,
        idle_rss_mib: mib(idle),
        peak_rss_mib: mib(peak),
        peak_source,
        bound_mib: mib(bound),
        within_bound: peak <= bound,
        stalled_headers,
        stalled_bodies,
        large_bodies,
        reviews_at_limit,
        rejections_counted: rejections_before
            .zip(rejections_after)
            .map(|(before, after)| after - before),
        assigns_afterwards: assigns(client).await?,
    })
}

/// Whether a ConfigMap created in the sharded namespace gets its shard label.
async fn assigns(client: &Client) -> anyhow::Result<bool> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), SHARDED_NAMESPACE);
    let created = api
        .create(&PostParams::default(), &config_map("after-abuse"))
        .await?;
    api.delete("after-abuse", &DeleteParams::default()).await?;
    Ok(has_shard_label(&created.metadata))
}

/// The webhook's address on loopback and a TLS connector that trusts its CA.
struct Target {
    address: SocketAddr,
    connector: TlsConnector,
}

impl Target {
    fn new(port: u16, ca_pem: &str) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    async fn connect(&self) -> io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.address).await?;
        let name = ServerName::from(std::net::IpAddr::from(Ipv4Addr::LOCALHOST));
        self.connector.connect(name, tcp).await
    }
}

/// The headers of a review request to the ring's webhook, with a `Content-Length` or chunked.
fn head(content_length: Option<usize>) -> String {
    let length = content_length.map_or_else(
        || "Transfer-Encoding: chunked".to_owned(),
        |length| format!("Content-Length: {length}"),
    );
    format!(
        "POST /webhooks/sharder/controllerring/{RING} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\n{length}\r\nConnection: close\r\n\r\n"
    )
}

/// Spawns `n` copies of `task` on `target`.
fn spawn_n<F, Fut, T>(n: usize, target: &Arc<Target>, task: F) -> JoinSet<T>
where
    F: Fn(Arc<Target>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    for _ in 0..n {
        set.spawn(task(Arc::clone(target)));
    }
    set
}

/// How a stalled connection ended.
enum Stall {
    /// The server closed it this long after the last byte was sent.
    Closed(Duration),
    /// Still open after [`PATIENCE`].
    Open,
    /// It could not connect or send.
    Error,
}

/// Connects, sends `sent`, then only waits for the server to close the connection.
async fn stall(target: Arc<Target>, sent: String) -> Stall {
    let Ok(mut stream) = target.connect().await else {
        return Stall::Error;
    };
    if stream.write_all(sent.as_bytes()).await.is_err() || stream.flush().await.is_err() {
        return Stall::Error;
    }
    let started = Instant::now();
    let mut sink = [0; 4096];
    let closed = tokio::time::timeout(PATIENCE, async {
        while let Ok(read) = stream.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
    closed.map_or(Stall::Open, |()| Stall::Closed(started.elapsed()))
}

/// Waits for the stalled connections and summarizes them.
async fn stalled(connections: usize, mut set: JoinSet<Stall>) -> Stalled {
    let mut summary = Stalled {
        connections,
        closed: 0,
        open: 0,
        errors: 0,
        max_seconds_to_close: None,
    };
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Stall::Closed(after)) => {
                summary.closed += 1;
                let seconds = after.as_secs_f64();
                summary.max_seconds_to_close = Some(
                    summary
                        .max_seconds_to_close
                        .map_or(seconds, |max| max.max(seconds)),
                );
            }
            Ok(Stall::Open) => summary.open += 1,
            Ok(Stall::Error) | Err(_) => summary.errors += 1,
        }
    }
    summary
}

/// A request body the phase sends.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// This many bytes of filler in chunked encoding.
    Chunked(usize),
    /// A valid AdmissionReview of a ConfigMap of this many bytes, with a `Content-Length`.
    Review(usize),
}

impl Body {
    fn bytes(self) -> usize {
        match self {
            Self::Chunked(bytes) | Self::Review(bytes) => bytes,
        }
    }

    /// Writes the request's headers and this body to `writer`.
    async fn send(self, writer: &mut (impl AsyncWrite + Unpin)) -> io::Result<()> {
        let filler = vec![b'a'; CHUNK];
        match self {
            Self::Chunked(bytes) => {
                writer.write_all(head(None).as_bytes()).await?;
                let mut left = bytes;
                while left > 0 {
                    let chunk = left.min(CHUNK);
                    writer
                        .write_all(format!("{chunk:x}\r\n").as_bytes())
                        .await?;
                    writer.write_all(&filler[..chunk]).await?;
                    writer.write_all(b"\r\n").await?;
                    left -= chunk;
                }
                writer.write_all(b"0\r\n\r\n").await?;
            }
            Self::Review(bytes) => {
                let (prefix, suffix) = review_parts();
                let mut left = bytes.saturating_sub(prefix.len() + suffix.len());
                writer
                    .write_all(head(Some(prefix.len() + left + suffix.len())).as_bytes())
                    .await?;
                writer.write_all(prefix.as_bytes()).await?;
                while left > 0 {
                    let chunk = left.min(CHUNK);
                    writer.write_all(&filler[..chunk]).await?;
                    left -= chunk;
                }
                writer.write_all(suffix.as_bytes()).await?;
            }
        }
        writer.flush().await
    }
}

/// A review of a ConfigMap in the sharded namespace, around the value of its one data key.
fn review_parts() -> (String, &'static str) {
    let prefix = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"abuse","kind":{{"group":"","version":"v1","kind":"ConfigMap"}},"resource":{{"group":"","version":"v1","resource":"configmaps"}},"namespace":"{SHARDED_NAMESPACE}","operation":"CREATE","userInfo":{{}},"object":{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"abuse","namespace":"{SHARDED_NAMESPACE}"}},"data":{{"blob":""#
    );
    (prefix, r#""}}}}"#)
}

/// Sends `n` requests with `body` at once and counts their answers.
async fn wave(n: usize, target: &Arc<Target>, body: Body) -> Wave {
    let started = Instant::now();
    let mut set = spawn_n(n, target, move |target| exchange(target, body));
    let mut answers = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let answer = joined.unwrap_or_else(|error| format!("task failed: {error}"));
        *answers.entry(answer).or_default() += 1;
    }
    Wave {
        requests: n,
        body_bytes: body.bytes(),
        seconds: started.elapsed().as_secs_f64(),
        answers,
    }
}

/// Sends one request while reading the answer, and returns the answer's status code or how
/// the connection ended without one.
async fn exchange(target: Arc<Target>, body: Body) -> String {
    let stream = match target.connect().await {
        Ok(stream) => stream,
        Err(error) => return format!("cannot connect: {}", error.kind()),
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    // The server may answer before the body is sent; writing stops when it closes.
    let writing = tokio::spawn(async move { body.send(&mut writer).await });
    let answer = read_status(&mut reader).await;
    writing.abort();
    answer
}

/// The status code of the answer on `reader`, read until the server closes the connection.
async fn read_status(reader: &mut (impl AsyncRead + Unpin)) -> String {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) => return "closed",
                Ok(read) => received.extend_from_slice(&buffer[..read]),
                Err(_) => return "reset",
            }
        }
    })
    .await
    .unwrap_or("open");
    let text = String::from_utf8_lossy(&received);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .map_or_else(|| format!("no answer ({ended})"), str::to_owned)
}

/// The largest VmRSS of a process, sampled in the background until stopped.
struct Sampler {
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let max = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let max = Arc::clone(&max);
            async move {
                loop {
                    if let Ok(usage) = Usage::of_pid(pid) {
                        max.fetch_max(usage.rss_bytes, Ordering::Relaxed);
                    }
                    tokio::time::sleep(SAMPLE_INTERVAL).await;
                }
            }
        });
        Self { max, task }
    }

    fn stop(self) -> u64 {
        self.task.abort();
        self.max.load(Ordering::Relaxed)
    }
}

impl AbuseReport {
    /// The report's section as text.
    pub fn table(&self) -> String {
        let mut text = format!(
            "webhook server under abuse ({} connections of each kind)\n",
            self.connections
        );
        for (name, stalled) in [
            ("stalled headers", &self.stalled_headers),
            ("stalled bodies", &self.stalled_bodies),
        ] {
            let _ = writeln!(
                text,
                "  {name}: {} connections, {} closed by the server (the last {} s after its last byte), {} still open after {} s, {} errors",
                stalled.connections,
                stalled.closed,
                crate::units::format_optional(stalled.max_seconds_to_close, 1),
                stalled.open,
                PATIENCE.as_secs(),
                stalled.errors
            );
        }
        for (name, wave) in [
            ("bodies, chunked", &self.large_bodies),
            ("reviews with Content-Length", &self.reviews_at_limit),
        ] {
            let answers = wave
                .answers
                .iter()
                .map(|(answer, count)| format!("{answer} ×{count}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                text,
                "  {} {}-byte {name} at once, done in {:.1} s: {answers}",
                wave.requests, wave.body_bytes, wave.seconds
            );
        }
        let _ = writeln!(
            text,
            "  sharder memory: idle {:.1} MiB, peak {:.1} MiB ({}), bound 2 × idle + 64 MiB = {:.1} MiB: {}",
            self.idle_rss_mib,
            self.peak_rss_mib,
            self.peak_source,
            self.bound_mib,
            if self.within_bound {
                "within"
            } else {
                "EXCEEDED"
            }
        );
        let _ = writeln!(
            text,
            "  {REJECTIONS} +{}",
            crate::units::format_optional(self.rejections_counted, 0)
        );
        let _ = writeln!(
            text,
            "  a ConfigMap created afterwards {} its shard label",
            if self.assigns_afterwards {
                "got"
            } else {
                "did NOT get"
            }
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chunked_body_frames_every_chunk_and_ends_with_a_zero_chunk() {
        let mut sent = Vec::new();
        Body::Chunked(CHUNK + 3).send(&mut sent).await.unwrap();
        let text = String::from_utf8_lossy(&sent);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        assert!(body.starts_with("10000\r\naaa"), "{}", &body[..10]);
        assert!(body.ends_with("aaa\r\n3\r\naaa\r\n0\r\n\r\n"));
    }

    #[tokio::test]
    async fn a_review_is_valid_json_of_the_announced_length() {
        let mut sent = Vec::new();
        Body::Review(10_000).send(&mut sent).await.unwrap();
        let text = String::from_utf8(sent).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Content-Length: 10000\r\n"), "{head}");
        assert_eq!(body.len(), 10_000);
        let review: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(review["request"]["object"]["kind"], "ConfigMap");
    }

    #[tokio::test]
    async fn the_status_is_read_from_the_answer_or_says_how_the_connection_ended() {
        let answer: &[u8] = b"HTTP/1.1 413 Payload Too Large\r\n\r\n";
        assert_eq!(read_status(&mut &answer[..]).await, "413");
        assert_eq!(read_status(&mut &b""[..]).await, "no answer (closed)");
    }
}
