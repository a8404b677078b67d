//! Says which SIMD share-hash paths this CPU runs, so a run on a CPU without them cannot pass silently:
//! the SHA-NI pair and AVX-512 sixteen-lane tests fall back quietly when a feature is missing.
//!
//! `FASTPROXY_EXPECT_SHA_NI=1` / `FASTPROXY_EXPECT_AVX512=1` (set by `.ci/run` from /proc/cpuinfo) make a
//! missing path a failure: then the fast paths are known to be the ones tested, not only the fallback.

use fastproxy::{sha256x16, sha256x2};

fn expected(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

#[test]
fn the_simd_share_hash_paths_run_where_the_cpu_has_them() {
    let header_a: [u8; 80] = std::array::from_fn(|i| i as u8);
    let header_b: [u8; 80] = std::array::from_fn(|i| (i * 7) as u8);
    let sha_ni = sha256x2::sha256d_80_pair(&header_a, &header_b);
    if let Some((a, b)) = sha_ni {
        assert_eq!(
            (a, b),
            (
                fastproxy::work::sha256d(&header_a),
                fastproxy::work::sha256d(&header_b)
            ),
            "the SHA-NI pair hashes like the reference"
        );
    }
    let avx512 = sha256x16::available();
    eprintln!(
        "SIMD paths on this CPU: SHA-NI pairs {}, AVX-512 groups {}",
        if sha_ni.is_some() {
            "tested"
        } else {
            "SKIPPED (fallback only)"
        },
        if avx512 {
            "tested"
        } else {
            "SKIPPED (fallback only)"
        },
    );
    assert!(
        sha_ni.is_some() || !expected("FASTPROXY_EXPECT_SHA_NI"),
        "FASTPROXY_EXPECT_SHA_NI=1 but the SHA-NI pair path did not run: the SHA-NI tests tested only the fallback"
    );
    assert!(
        avx512 || !expected("FASTPROXY_EXPECT_AVX512"),
        "FASTPROXY_EXPECT_AVX512=1 but the AVX-512 path is not available: the sixteen-lane tests tested only the fallback"
    );
}
