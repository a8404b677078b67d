//! The YAML configuration: its types (`types`), loading with line numbers and the template (`load`), the
//! checks `--check-config` runs (`check`), and weighted routes (`routes`).
//!
//! After parsing, every semantic problem (bad address, bad URL, impossible limit, bad route weight) is
//! collected with its line, so one run of `--check-config` lists them all.

mod check;
mod load;
mod routes;
mod sv2;
mod types;

pub use load::{template, Problem};
pub use routes::{Route, DEFAULT_ROUTE, DEFAULT_WEIGHT};
pub use types::{
    ApiConfig, Config, ListenConfig, MetricsConfig, PoolConfig, PoolUrl, ProtocolKind, ProxyConfig,
    RouteConfig, ShareReply, TlsListenConfig, VardiffConfig, SV2_SCHEME,
};

#[cfg(test)]
mod tests;
