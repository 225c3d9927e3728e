//! Handlers, one module per area. Each handler validates its input, calls
//! a domain crate, and shapes the answer; none holds logic of its own.

pub mod accounts;
pub mod admin;
pub mod cards;
pub mod complaints;
pub mod live;
pub mod open311;
pub mod system;
pub mod transit;

/// The client's IP address, when the server was started with connection
/// info (`serve` does; in-process tests do not), for per-address limits.
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}
