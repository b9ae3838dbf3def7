//! Who may read `/metrics` when it is served securely
//! (docs/metrics-security.md#how-a-scrape-is-authorized): the scraper's bearer token is
//! reviewed with a TokenReview, and its user must be allowed the request's verb on its path by a
//! SubjectAccessReview, as controller-runtime's `WithAuthenticationAndAuthorization` filter does.
//! Decisions are cached briefly, so that a scrape every few seconds does not ask the API server
//! each time.
//!
//! The decisions are pure ([`bearer_token`], [`token_review`], [`authenticated_user`],
//! [`access_review`], and the remembered decisions with `now` passed in); [`MetricsAccess`] asks the API
//! server and [`require_access`] answers the HTTP request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    middleware::Next,
    response::{IntoResponse, Response},
};
use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec, UserInfo},
    authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

/// How long an allowed scrape is remembered: the original's token cache keeps a review for a
/// minute.
pub const ALLOWED_TTL: Duration = Duration::from_secs(60);

/// How long a refused scrape (401 or 403) is remembered: the original's authorizer forgets a
/// denial after 30 s, so a scraper granted access late waits at most that long.
pub const DENIED_TTL: Duration = Duration::from_secs(30);

/// How many decisions are remembered at most: scrapers are few, and a flood of made-up tokens
/// must not grow the cache.
pub const CAPACITY: usize = 256;

/// The answer to one scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The token's user may do the request.
    Allowed,
    /// No bearer token, or one the API server does not authenticate: 401.
    Unauthenticated,
    /// The token's user `user` may not do the request: 403.
    Forbidden {
        /// The authenticated user's name.
        user: String,
    },
}

impl Decision {
    /// How long this decision is remembered.
    #[must_use]
    pub const fn ttl(&self) -> Duration {
        match self {
            Self::Allowed => ALLOWED_TTL,
            Self::Unauthenticated | Self::Forbidden { .. } => DENIED_TTL,
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case); `None`
/// without one, with another scheme, or with an empty token.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The TokenReview of `token`, for the API server's own audiences.
#[must_use]
pub fn token_review(token: &str) -> TokenReview {
    TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            audiences: None,
        },
        ..TokenReview::default()
    }
}

/// The user a reviewed TokenReview authenticated, if any.
#[must_use]
pub fn authenticated_user(review: &TokenReview) -> Option<UserInfo> {
    let status = review.status.as_ref()?;
    if status.authenticated != Some(true) {
        return None;
    }
    status.user.clone()
}

/// The SubjectAccessReview of whether `user` may `verb` (the lower-case HTTP method) the
/// non-resource URL `path`.
#[must_use]
pub fn access_review(user: &UserInfo, verb: &str, path: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some(path.to_owned()),
                verb: Some(verb.to_owned()),
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

/// What a decision is remembered by: the token's SHA-256 (the token itself is not kept), the
/// verb and the path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    token: [u8; 32],
    verb: String,
    path: String,
}

impl Key {
    /// The key of `verb` on `path` with `token`.
    fn new(token: &str, verb: &str, path: &str) -> Self {
        Self {
            token: Sha256::digest(token.as_bytes()).into(),
            verb: verb.to_owned(),
            path: path.to_owned(),
        }
    }
}

/// Recent decisions, each until its [`Decision::ttl`] has passed, at most [`CAPACITY`].
#[derive(Debug, Default)]
struct Decisions {
    entries: HashMap<Key, (Decision, Instant)>,
}

impl Decisions {
    /// The decision for `key` if it is still fresh at `now`.
    fn get(&self, key: &Key, now: Instant) -> Option<Decision> {
        self.entries
            .get(key)
            .filter(|(_, expires)| now < *expires)
            .map(|(decision, _)| decision.clone())
    }

    /// Remembers `decision` for `key` from `now`. When full, expired decisions are dropped
    /// first, then the one closest to expiry.
    fn insert(&mut self, key: Key, decision: Decision, now: Instant) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, expires)| now < *expires);
            if self.entries.len() >= CAPACITY {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(key, _)| key.clone());
                if let Some(soonest) = soonest {
                    self.entries.remove(&soonest);
                }
            }
        }
        let expires = now + decision.ttl();
        self.entries.insert(key, (decision, expires));
    }
}

/// Reviews scrapers with the API server and remembers the decisions. Its client needs `create`
/// on `tokenreviews.authentication.k8s.io` and `subjectaccessreviews.authorization.k8s.io`.
#[derive(Clone)]
pub struct MetricsAccess {
    client: Client,
    decisions: Arc<Mutex<Decisions>>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess").finish_non_exhaustive()
    }
}

impl MetricsAccess {
    /// Reviews with `client`, remembering nothing yet.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self {
            client,
            decisions: Arc::default(),
        }
    }

    /// Whether the holder of `token` may `verb` on `path`, from a fresh remembered decision or
    /// else from the API server.
    ///
    /// # Errors
    /// A review could not be made; nothing is remembered then.
    pub async fn decide(
        &self,
        token: &str,
        verb: &str,
        path: &str,
    ) -> Result<Decision, kube::Error> {
        let key = Key::new(token, verb, path);
        if let Some(decision) = self.decisions().get(&key, Instant::now()) {
            return Ok(decision);
        }
        let decision = self.review(token, verb, path).await?;
        self.decisions()
            .insert(key, decision.clone(), Instant::now());
        Ok(decision)
    }

    async fn review(&self, token: &str, verb: &str, path: &str) -> Result<Decision, kube::Error> {
        let params = PostParams::default();
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&params, &token_review(token))
            .await?;
        let Some(user) = authenticated_user(&reviewed) else {
            return Ok(Decision::Unauthenticated);
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&params, &access_review(&user, verb, path))
            .await?;
        Ok(if answer.status.is_some_and(|status| status.allowed) {
            Decision::Allowed
        } else {
            Decision::Forbidden {
                user: user.username.unwrap_or_default(),
            }
        })
    }

    fn decisions(&self) -> std::sync::MutexGuard<'_, Decisions> {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An axum middleware that lets a request through only if [`MetricsAccess`] allows it: 401
/// without a valid bearer token, 403 when its user may not do the request, 500 when the API
/// server cannot be asked (as in controller-runtime's filter).
pub async fn require_access(
    State(access): State<MetricsAccess>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_token(request.headers()) else {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    };
    let verb = request.method().as_str().to_ascii_lowercase();
    match access.decide(token, &verb, request.uri().path()).await {
        Ok(Decision::Allowed) => next.run(request).await,
        Ok(Decision::Unauthenticated) => (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
        Ok(Decision::Forbidden { user }) => (
            StatusCode::FORBIDDEN,
            format!("Authorization denied for user {user}"),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(error = %crate::error_chain(&error), "cannot review a scrape");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot review the request with the API server",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::authentication::v1::TokenReviewStatus;

    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    #[test]
    fn a_bearer_token_is_read_with_the_scheme_in_any_case() {
        assert_eq!(bearer_token(&headers("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("BEARER  abc ")), Some("abc"));
    }

    #[test]
    fn no_token_is_read_without_a_bearer_header() {
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer   ",
            "abc",
        ] {
            assert_eq!(bearer_token(&headers(value)), None, "{value}");
        }
    }

    fn user(name: &str) -> UserInfo {
        UserInfo {
            username: Some(name.to_owned()),
            uid: Some("uid-1".to_owned()),
            groups: Some(vec!["system:authenticated".to_owned()]),
            extra: None,
        }
    }

    fn reviewed(authenticated: Option<bool>, user: Option<UserInfo>) -> TokenReview {
        TokenReview {
            status: Some(TokenReviewStatus {
                authenticated,
                user,
                ..TokenReviewStatus::default()
            }),
            ..token_review("t")
        }
    }

    #[test]
    fn only_an_authenticated_review_names_a_user() {
        let alice = user("alice");
        assert_eq!(
            authenticated_user(&reviewed(Some(true), Some(alice.clone()))),
            Some(alice.clone())
        );
        assert_eq!(
            authenticated_user(&reviewed(Some(false), Some(alice))),
            None
        );
        assert_eq!(authenticated_user(&reviewed(None, None)), None);
        assert_eq!(authenticated_user(&token_review("t")), None);
    }

    #[test]
    fn the_access_review_asks_for_the_verb_on_the_path_as_the_user() {
        let review = access_review(&user("alice"), "get", "/metrics");
        assert_eq!(review.spec.user.as_deref(), Some("alice"));
        assert_eq!(review.spec.uid.as_deref(), Some("uid-1"));
        assert_eq!(
            review.spec.groups,
            Some(vec!["system:authenticated".to_owned()])
        );
        assert_eq!(
            review.spec.non_resource_attributes,
            Some(NonResourceAttributes {
                path: Some("/metrics".to_owned()),
                verb: Some("get".to_owned()),
            })
        );
        assert_eq!(review.spec.resource_attributes, None);
    }

    #[test]
    fn an_allowed_scrape_is_remembered_for_a_minute() {
        let start = Instant::now();
        let key = Key::new("token", "get", "/metrics");
        let mut decisions = Decisions::default();
        decisions.insert(key.clone(), Decision::Allowed, start);
        assert_eq!(
            decisions.get(&key, start + Duration::from_secs(59)),
            Some(Decision::Allowed)
        );
        assert_eq!(decisions.get(&key, start + Duration::from_secs(60)), None);
    }

    #[test]
    fn a_refused_scrape_is_remembered_for_30_seconds() {
        let start = Instant::now();
        let forbidden = Decision::Forbidden {
            user: "bob".to_owned(),
        };
        let mut decisions = Decisions::default();
        let key = Key::new("token", "get", "/metrics");
        let unknown = Key::new("made-up", "get", "/metrics");
        decisions.insert(key.clone(), forbidden.clone(), start);
        decisions.insert(unknown.clone(), Decision::Unauthenticated, start);
        let later = start + Duration::from_secs(29);
        assert_eq!(decisions.get(&key, later), Some(forbidden));
        assert_eq!(
            decisions.get(&unknown, later),
            Some(Decision::Unauthenticated)
        );
        let expired = start + Duration::from_secs(30);
        assert_eq!(decisions.get(&key, expired), None);
        assert_eq!(decisions.get(&unknown, expired), None);
    }

    #[test]
    fn decisions_are_told_apart_by_token_verb_and_path() {
        let start = Instant::now();
        let mut decisions = Decisions::default();
        decisions.insert(Key::new("a", "get", "/metrics"), Decision::Allowed, start);
        for other in [
            Key::new("b", "get", "/metrics"),
            Key::new("a", "post", "/metrics"),
            Key::new("a", "get", "/debug"),
        ] {
            assert_eq!(decisions.get(&other, start), None, "{other:?}");
        }
    }

    #[test]
    fn a_full_cache_drops_the_expired_then_the_soonest_to_expire() {
        let start = Instant::now();
        let mut decisions = Decisions::default();
        // One refusal (expires at 30 s), then allowed scrapes (at 61 s and later).
        decisions.insert(
            Key::new("refused", "get", "/metrics"),
            Decision::Unauthenticated,
            start,
        );
        for i in 1..CAPACITY {
            let at = start + Duration::from_secs(1) + Duration::from_millis(i as u64);
            decisions.insert(
                Key::new(&i.to_string(), "get", "/metrics"),
                Decision::Allowed,
                at,
            );
        }
        assert_eq!(decisions.entries.len(), CAPACITY);

        // At 31 s the refusal has expired and makes room.
        let at = start + Duration::from_secs(31);
        decisions.insert(Key::new("new", "get", "/metrics"), Decision::Allowed, at);
        assert_eq!(decisions.entries.len(), CAPACITY);
        assert_eq!(
            decisions.get(&Key::new("1", "get", "/metrics"), at),
            Some(Decision::Allowed)
        );

        // Nothing has expired at 32 s: the first allowed scrape (expiring at 61.001 s) goes.
        let at = start + Duration::from_secs(32);
        decisions.insert(Key::new("newer", "get", "/metrics"), Decision::Allowed, at);
        assert_eq!(decisions.entries.len(), CAPACITY);
        assert_eq!(decisions.get(&Key::new("1", "get", "/metrics"), at), None);
        assert_eq!(
            decisions.get(&Key::new("2", "get", "/metrics"), at),
            Some(Decision::Allowed)
        );
        assert_eq!(
            decisions.get(&Key::new("newer", "get", "/metrics"), at),
            Some(Decision::Allowed)
        );
    }
}
