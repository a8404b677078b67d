//! The runtime's data, below the code that drives it: a reactor's connections, upstreams and proxy entries.
//! The reactor (`reactor`) and its handlers (`impl Reactor` blocks in downstream, upstream, ...) import these.

pub(crate) mod conns;
pub(crate) mod proxies;
pub(crate) mod routes;
pub(crate) mod upstreams;

pub(crate) use conns::{
    with_outbox, Conn, Lingering, Listening, Miner, PoolConn, PrevSeat, POOL_OUT_LIMIT,
    VARDIFF_GRACE,
};
pub(crate) use proxies::{timing, Admission, Command, ProxyState, Router};
pub(crate) use upstreams::{Lookup, Req, Upstream};
