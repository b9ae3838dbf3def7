//! `rest_client_requests_total`: the API requests of a process, counted by a layer on its kube
//! client.

use std::future::Future;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestLabels {
    code: String,
    method: String,
    host: String,
}

/// `rest_client_requests_total{code, method, host}`: the API requests a process makes, counted
/// by a layer on its kube client (see [`RestClientMetrics::layer`]).
#[derive(Clone, Debug, Default)]
pub struct RestClientMetrics {
    requests: Family<RestLabels, Counter>,
}

impl RestClientMetrics {
    /// Registers the counter in `registry`; create the metrics before the client, register
    /// them with the rest of the process's metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            self.requests.clone(),
        );
    }

    /// A layer for `kube::client::ClientBuilder::with_layer` that counts every request to the
    /// API server at `host` (kube sets the request's authority below this layer).
    #[must_use]
    pub fn layer(&self, host: &str) -> RestClientLayer {
        RestClientLayer {
            requests: self.requests.clone(),
            host: host.to_owned(),
        }
    }
}

/// See [`RestClientMetrics::layer`].
#[derive(Clone, Debug)]
pub struct RestClientLayer {
    requests: Family<RestLabels, Counter>,
    host: String,
}

impl<S> tower::Layer<S> for RestClientLayer {
    type Service = RestClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RestClientService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RestClientLayer`].
#[derive(Clone, Debug)]
pub struct RestClientService<S> {
    inner: S,
    layer: RestClientLayer,
}

impl<S, B, R> tower::Service<http::Request<B>> for RestClientService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.method().as_str().to_owned();
        let (requests, host) = (self.layer.requests.clone(), self.layer.host.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // controller-runtime counts requests that got no response under "<error>".
            let code = response.as_ref().map_or_else(
                |_| "<error>".to_owned(),
                |response| response.status().as_u16().to_string(),
            );
            requests
                .get_or_create(&RestLabels { code, method, host })
                .inc();
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_code_method_and_host() {
        use tower::{Layer as _, ServiceExt as _};
        let mut registry = Registry::default();
        let metrics = RestClientMetrics::default();
        metrics.register(&mut registry);
        let api = tower::service_fn(|request: http::Request<()>| async move {
            let status = if request.uri().path() == "/missing" {
                404
            } else {
                200
            };
            Ok::<_, std::convert::Infallible>(
                http::Response::builder().status(status).body(()).unwrap(),
            )
        });
        let service = metrics.layer("127.0.0.1:6443").layer(api);
        for (method, path) in [("GET", "/ok"), ("GET", "/missing"), ("PATCH", "/ok")] {
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap();
            service.clone().oneshot(request).await.unwrap();
        }
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            r#"rest_client_requests_total{code="200",method="GET",host="127.0.0.1:6443"} 1"#,
            r#"rest_client_requests_total{code="404",method="GET",host="127.0.0.1:6443"} 1"#,
            r#"rest_client_requests_total{code="200",method="PATCH",host="127.0.0.1:6443"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
