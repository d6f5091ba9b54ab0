//! Where the change being recorded came from: the client address of the HTTP request a use
//! case runs in. The web layer runs each request inside `scope`; the store stamps the address
//! on the audit events a person or an application causes (Steward's own work, run by the
//! worker outside any request, has none). Task-local rather than threaded through every use
//! case, because every audit event, whoever builds it, is written through one store function.

use std::future::Future;

tokio::task_local! {
    static ORIGIN: Origin;
}

/// The origin of the request being served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client's address (after trusted proxies), as text.
    pub ip: Option<String>,
}

/// Runs `f` with `origin` as the origin of what it records.
pub async fn scope<F: Future>(origin: Origin, f: F) -> F::Output {
    ORIGIN.scope(origin, f).await
}

/// The client address of the request being served, if any.
pub fn current_ip() -> Option<String> {
    ORIGIN.try_with(|o| o.ip.clone()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_address_is_known_inside_the_scope_only() {
        assert_eq!(current_ip(), None);
        let inside = scope(Origin { ip: Some("192.0.2.7".into()) }, async { current_ip() }).await;
        assert_eq!(inside.as_deref(), Some("192.0.2.7"));
        assert_eq!(current_ip(), None);
    }
}
