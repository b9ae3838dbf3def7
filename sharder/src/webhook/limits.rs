//! What one client can hold of the webhook server (docs/sharder.md#the-webhook-under-load): a
//! slot among [`Limits::max_concurrent_requests`], a body of at most
//! [`Limits::max_request_body_bytes`] read within [`Limits::body_read_timeout`], and bytes from
//! a budget shared by every request, [`Limits::max_in_flight_body_bytes`].
//!
//! [`enforce`] applies them in front of the handler and answers what exceeds them at once, with
//! a `metav1.Status` the API server logs: 429 with `Retry-After` when the server is full, 413
//! for a body over the limit (before reading it when its `Content-Length` says so), 408 for a
//! body that does not arrive in time. The API server treats any of these as a failed call and
//! applies the webhook's `failurePolicy: Ignore` (docs/contract.md#webhook).

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt as _;
use operations::http::Readiness;
use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

/// The webhook server's bounds on time and memory; `SharderConfig`'s `webhook.server` holds
/// their defaults (docs/contract.md#sharder-behaviour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers; also bounds the TLS handshake
    /// and how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body, once its headers are read.
    pub body_read_timeout: Duration,
    /// Requests handled at once; more are answered 429 at once.
    pub max_concurrent_requests: u32,
    /// The largest request body; a larger one is answered 413.
    pub max_request_body_bytes: u32,
    /// Request body bytes held at once by all requests together; a request whose body would
    /// exceed it is answered 429.
    pub max_in_flight_body_bytes: u32,
}

use super::metrics::RejectionLabels;

/// The limits' shared state: free request slots and free body bytes, and the count of
/// rejections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Gate {
    limits: Limits,
    ready: Readiness,
    requests: Arc<Semaphore>,
    body_bytes: Arc<Semaphore>,
    rejections: Family<RejectionLabels, Counter>,
}

/// Why a request was answered without reaching the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The sharder's caches are not filled yet: its answers would not know the rings.
    NotReady,
    /// Every request slot is taken.
    TooManyRequests {
        /// [`Limits::max_concurrent_requests`].
        limit: u32,
    },
    /// The body would not fit into the bytes left of the shared budget.
    BodyBudgetExhausted {
        /// [`Limits::max_in_flight_body_bytes`].
        budget: u32,
    },
    /// The body is larger than the limit (by its `Content-Length` or as it streamed in).
    BodyTooLarge {
        /// [`Limits::max_request_body_bytes`].
        limit: u32,
    },
    /// The body did not arrive within the timeout.
    BodyTimeout {
        /// [`Limits::body_read_timeout`].
        timeout: Duration,
    },
    /// Reading the body failed (for example, the client closed the connection).
    BodyUnreadable {
        /// The transport's error.
        message: String,
    },
}

/// A request body read whole, with the bytes of the shared budget it holds until dropped.
#[derive(Debug)]
pub struct BufferedBody {
    /// The body.
    pub bytes: Vec<u8>,
    /// Returns the body's bytes to the budget when dropped.
    reservation: OwnedSemaphorePermit,
}

impl Gate {
    /// The state of `limits`, with every slot and byte free, counting rejections into
    /// `rejections` (`controller_sharding_webhook_rejections_total`), and answering only once
    /// `ready` (the caches are filled).
    #[must_use]
    pub fn new(
        limits: Limits,
        rejections: Family<RejectionLabels, Counter>,
        ready: Readiness,
    ) -> Self {
        Self {
            limits,
            ready,
            requests: Arc::new(Semaphore::new(to_usize(limits.max_concurrent_requests))),
            body_bytes: Arc::new(Semaphore::new(to_usize(limits.max_in_flight_body_bytes))),
            rejections,
        }
    }

    /// Counts `rejection` and answers with it.
    fn reject(&self, rejection: &Rejection) -> Response {
        tracing::debug!(reason = rejection.reason(), message = %rejection.message(), "rejected a webhook request");
        self.rejections
            .get_or_create(&RejectionLabels {
                reason: rejection.reason(),
            })
            .inc();
        rejection.to_response()
    }

    /// A request slot, held until dropped, or a rejection when the caches are not filled yet
    /// or all slots are taken; never waits.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        if !self.ready.is_ready() {
            return Err(Rejection::NotReady);
        }
        Arc::clone(&self.requests)
            .try_acquire_owned()
            .map_err(|_| Rejection::TooManyRequests {
                limit: self.limits.max_concurrent_requests,
            })
    }

    /// Reads `body`, announced with `content_length` bytes if the request says so, within the
    /// limits.
    ///
    /// # Guarantees
    /// Never holds more than [`Limits::max_request_body_bytes`] of the body and takes the
    /// bytes it buffers (its buffer's capacity) from the shared budget before allocating them,
    /// so that all requests together never buffer more than
    /// [`Limits::max_in_flight_body_bytes`]. Never waits for the budget: when it is spent, the
    /// request is rejected.
    pub async fn read_body(
        &self,
        body: Body,
        content_length: Option<u64>,
    ) -> Result<BufferedBody, Rejection> {
        let deadline = Instant::now() + self.limits.body_read_timeout;
        let limit = to_usize(self.limits.max_request_body_bytes);
        let mut buffered = BufferedBody {
            bytes: Vec::new(),
            reservation: self.reserve(0)?,
        };
        if let Some(length) = content_length {
            // Announced too large: rejected before a byte of the body is read.
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if length > limit {
                return Err(self.too_large());
            }
            self.grow(&mut buffered, length)?;
        }
        let mut stream = body.into_data_stream();
        loop {
            let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => {
                    return Err(Rejection::BodyTimeout {
                        timeout: self.limits.body_read_timeout,
                    });
                }
                Ok(None) => return Ok(buffered),
                Ok(Some(Err(error))) => {
                    return Err(Rejection::BodyUnreadable {
                        message: error.to_string(),
                    });
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            let needed = buffered.bytes.len() + chunk.len();
            if needed > limit {
                return Err(self.too_large());
            }
            if needed > buffered.bytes.capacity() {
                // Doubling keeps the copies few; the limit caps what is reserved.
                let capacity = needed.max(buffered.bytes.capacity() * 2).min(limit);
                self.grow(&mut buffered, capacity)?;
            }
            buffered.bytes.extend_from_slice(&chunk);
        }
    }

    /// Raises `buffered`'s capacity to `capacity` bytes, taking the difference from the budget
    /// first.
    fn grow(&self, buffered: &mut BufferedBody, capacity: usize) -> Result<(), Rejection> {
        let additional = capacity.saturating_sub(buffered.bytes.capacity());
        let more = self.reserve(additional)?;
        buffered.reservation.merge(more);
        buffered
            .bytes
            .reserve_exact(capacity - buffered.bytes.len());
        Ok(())
    }

    /// `bytes` of the budget, or a rejection when fewer are left.
    fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Rejection> {
        let exhausted = || Rejection::BodyBudgetExhausted {
            budget: self.limits.max_in_flight_body_bytes,
        };
        let bytes = u32::try_from(bytes).map_err(|_| exhausted())?;
        Arc::clone(&self.body_bytes)
            .try_acquire_many_owned(bytes)
            .map_err(|_| exhausted())
    }

    fn too_large(&self) -> Rejection {
        Rejection::BodyTooLarge {
            limit: self.limits.max_request_body_bytes,
        }
    }
}

/// The middleware that applies the limits of `gate` to every request before the handler:
/// takes a slot, reads the body whole within the limits, and hands the handler the buffered
/// body; the slot and the body's bytes are free again once the handler has answered.
pub async fn enforce(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let _slot = match gate.admit() {
        Ok(slot) => slot,
        Err(rejection) => return gate.reject(&rejection),
    };
    let (parts, body) = request.into_parts();
    let content_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse().ok());
    let buffered = match gate.read_body(body, content_length).await {
        Ok(buffered) => buffered,
        Err(rejection) => return gate.reject(&rejection),
    };
    let BufferedBody {
        bytes,
        reservation: _reservation,
    } = buffered;
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

impl Rejection {
    /// The bound it exceeded, as the `reason` label of
    /// `controller_sharding_webhook_rejections_total`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotReady => "not_ready",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::BodyBudgetExhausted { .. } => "body_budget_exhausted",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::BodyUnreadable { .. } => "body_unreadable",
        }
    }

    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } | Self::BodyBudgetExhausted { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::BodyUnreadable { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// What the answer says.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::NotReady => {
                "the sharder's caches are not filled yet, it cannot assign objects".to_owned()
            }
            Self::TooManyRequests { limit } => {
                format!("the webhook is handling its limit of {limit} requests, retry later")
            }
            Self::BodyBudgetExhausted { budget } => format!(
                "the webhook holds its limit of {budget} bytes of request bodies, retry later"
            ),
            Self::BodyTooLarge { limit } => {
                format!("the request body is larger than the webhook's limit of {limit} bytes")
            }
            Self::BodyTimeout { timeout } => format!(
                "the request body did not arrive within the webhook's timeout of {timeout:?}"
            ),
            Self::BodyUnreadable { message } => {
                format!("cannot read the request body: {message}")
            }
        }
    }
}

impl Rejection {
    /// The answer: a `metav1.Status`, which client-go (and so the API server's webhook client)
    /// reports with its message; busy answers ask to retry after a second.
    #[must_use]
    pub fn to_response(&self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": self.message(),
            "code": status.as_u16(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

fn to_usize(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Bytes;

    use super::*;

    fn gate() -> Gate {
        Gate::new(limits(), Family::default(), ready())
    }

    fn ready() -> Readiness {
        let ready = Readiness::default();
        ready.set_ready();
        ready
    }

    #[test]
    fn nothing_is_admitted_before_the_caches_are_filled() {
        let not_ready = Gate::new(limits(), Family::default(), Readiness::default());
        let rejection = not_ready.admit().unwrap_err();
        assert_eq!(rejection, Rejection::NotReady);
        // Not an admission answer: the API server applies the failure policy.
        assert_eq!(rejection.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(ready().is_ready() && gate().admit().is_ok());
    }

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_concurrent_requests: 2,
            max_request_body_bytes: 100,
            max_in_flight_body_bytes: 150,
        }
    }

    /// A body that streams `chunks` and then ends.
    fn body(chunks: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<Bytes, Infallible>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Body::from_stream(futures::stream::iter(chunks))
    }

    /// A body that streams `chunk` and then never sends more.
    fn stalled(chunk: &'static [u8]) -> Body {
        let first = futures::stream::iter([Ok::<_, Infallible>(Bytes::from_static(chunk))]);
        Body::from_stream(first.chain(futures::stream::pending()))
    }

    /// Bytes left of the budget.
    fn free(gate: &Gate) -> usize {
        gate.body_bytes.available_permits()
    }

    #[tokio::test]
    async fn a_body_within_the_limits_is_read_whole_and_holds_its_bytes_until_dropped() {
        let gate = gate();
        let buffered = gate
            .read_body(body(&[b"hello ", b"world"]), None)
            .await
            .unwrap();
        assert_eq!(buffered.bytes, b"hello world");
        assert!(free(&gate) <= 150 - 11, "{}", free(&gate));
        drop(buffered);
        assert_eq!(free(&gate), 150);
    }

    #[tokio::test]
    async fn an_announced_length_is_reserved_exactly() {
        let gate = gate();
        let buffered = gate
            .read_body(body(&[b"0123456789"]), Some(10))
            .await
            .unwrap();
        assert_eq!(buffered.bytes.capacity(), 10);
        assert_eq!(free(&gate), 140);
    }

    #[tokio::test]
    async fn a_body_announced_over_the_limit_is_rejected_without_reading_it() {
        let gate = gate();
        // A stalled body would time out if it were read.
        let rejection = gate.read_body(stalled(b"x"), Some(101)).await.unwrap_err();
        assert_eq!(rejection, Rejection::BodyTooLarge { limit: 100 });
        assert_eq!(rejection.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(free(&gate), 150);
    }

    #[tokio::test]
    async fn a_body_streaming_past_the_limit_is_rejected_at_the_limit() {
        let gate = gate();
        let chunk: &'static [u8] = &[b'x'; 60];
        // The second chunk would be 120 bytes: rejected before the third is waited for.
        let streaming = Body::from_stream(
            futures::stream::iter(
                [chunk, chunk].map(|c| Ok::<_, Infallible>(Bytes::from_static(c))),
            )
            .chain(futures::stream::pending()),
        );
        let rejection = gate.read_body(streaming, None).await.unwrap_err();
        assert_eq!(rejection, Rejection::BodyTooLarge { limit: 100 });
        assert_eq!(free(&gate), 150, "the rejected body's bytes are returned");
    }

    #[tokio::test]
    async fn bodies_that_together_exceed_the_budget_are_rejected_as_busy() {
        let gate = gate();
        let first = gate
            .read_body(body(&[&[b'a'; 90]]), Some(90))
            .await
            .unwrap();
        let rejection = gate
            .read_body(body(&[&[b'b'; 90]]), Some(90))
            .await
            .unwrap_err();
        assert_eq!(rejection, Rejection::BodyBudgetExhausted { budget: 150 });
        assert_eq!(rejection.status(), StatusCode::TOO_MANY_REQUESTS);
        // Without a length, the growing buffer runs into the budget the same way.
        let rejection = gate
            .read_body(body(&[&[b'c'; 40], &[b'c'; 40]]), None)
            .await
            .unwrap_err();
        assert_eq!(rejection, Rejection::BodyBudgetExhausted { budget: 150 });
        drop(first);
        assert!(gate.read_body(body(&[&[b'b'; 90]]), Some(90)).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_rejected_after_the_timeout() {
        let gate = gate();
        let started = Instant::now();
        let rejection = gate
            .read_body(stalled(b"{\"kind\":"), None)
            .await
            .unwrap_err();
        assert_eq!(
            rejection,
            Rejection::BodyTimeout {
                timeout: Duration::from_secs(10)
            }
        );
        assert_eq!(rejection.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(free(&gate), 150);
    }

    #[test]
    fn requests_beyond_the_slots_are_rejected_until_one_is_freed() {
        let gate = gate();
        let first = gate.admit().unwrap();
        let _second = gate.admit().unwrap();
        assert_eq!(
            gate.admit().unwrap_err(),
            Rejection::TooManyRequests { limit: 2 }
        );
        drop(first);
        assert!(gate.admit().is_ok());
    }

    #[test]
    fn rejections_are_counted_by_reason() {
        let gate = gate();
        let response = gate.reject(&Rejection::BodyTimeout {
            timeout: Duration::from_secs(10),
        });
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        gate.reject(&Rejection::BodyTooLarge { limit: 100 });
        gate.reject(&Rejection::BodyTooLarge { limit: 100 });
        let count = |reason| {
            gate.rejections
                .get_or_create(&RejectionLabels { reason })
                .get()
        };
        assert_eq!(count("body_timeout"), 1);
        assert_eq!(count("body_too_large"), 2);
        assert_eq!(count("too_many_requests"), 0);
    }

    #[tokio::test]
    async fn a_rejection_is_a_status_and_busy_ones_ask_to_retry() {
        let response = Rejection::TooManyRequests { limit: 2 }.to_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            status,
            serde_json::json!({
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "the webhook is handling its limit of 2 requests, retry later",
                "code": 429,
            })
        );
        let response = Rejection::BodyTooLarge { limit: 100 }.to_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
