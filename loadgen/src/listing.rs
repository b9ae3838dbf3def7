//! Lists by label selector that stay cheap over thousands of objects: in pages, or one item
//! to learn whether any is left.

use std::fmt::Debug;

use kube::{
    Api, Resource,
    api::{ListParams, ObjectList},
};
use serde::de::DeserializeOwned;

/// The page size of lists.
const PAGE: u32 = 500;

/// Every object of `api` matching `selector` (all without one), from paginated lists.
pub async fn all<K>(api: &Api<K>, selector: Option<&str>) -> kube::Result<Vec<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    paged(selector, |params| async move { api.list(&params).await }).await
}

/// The number of objects of `api` matching `selector` (all without one), from paginated
/// metadata lists.
pub async fn count<K>(api: &Api<K>, selector: Option<&str>) -> kube::Result<usize>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let items = paged(selector, |params| async move {
        api.list_metadata(&params).await
    })
    .await?;
    Ok(items.len())
}

/// Whether any object of `api` matches `selector` (one item is listed at most).
pub async fn any<K>(api: &Api<K>, selector: &str) -> kube::Result<bool>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let page = api
        .list_metadata(&ListParams::default().labels(selector).limit(1))
        .await?;
    Ok(!page.items.is_empty())
}

/// The items of every page that `list` returns, following the continue tokens.
async fn paged<T, F, Fut>(selector: Option<&str>, mut list: F) -> kube::Result<Vec<T>>
where
    T: Clone,
    F: FnMut(ListParams) -> Fut,
    Fut: Future<Output = kube::Result<ObjectList<T>>>,
{
    let mut params = ListParams::default().limit(PAGE);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let mut items = Vec::new();
    loop {
        let page = list(params.clone()).await?;
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(items),
        }
    }
}
