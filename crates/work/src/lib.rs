//! fastproxy-work: the share math under the proxy, its simulator and its tools: hex, jobs and targets
//! (`work`), the SHA-256 kernels (`sha256x2`, `sha256x16`), the batched share hash, and Equihash.
//!
//! The proxy library re-exports each module under its old path (`fastproxy::work`, `fastproxy::hex`, ...).
//! Layers, lowest first (`tests/layering.rs` of the workspace root checks them): base (hex) → hash (work,
//! sha256x2, sha256x16, share_hash, equihash) → this file, which holds only `mod` lines.

pub mod equihash;
pub mod hex;
pub mod sha256x16;
pub mod sha256x2;
pub mod share_hash;
pub mod work;
