//! The per-message cost of the AEAD that seals every SV2 frame (noise_sv2 uses chacha20poly1305's
//! ChaCha20-Poly1305), for the sizes SV2 mining sends, beside ring's for scale. Run: `cargo bench --bench sv2_crypto`.
//!
//! Each SV2 frame is two seals: its 6-byte header and its payload (SubmitSharesExtended ≈ 40 bytes with an
//! 8-byte extranonce, SubmitShares.Success 20), so a forwarded share costs four (two out, two in). This bench
//! is the measurement behind `.cargo/config.toml`'s `poly1305_force_soft`: run it once as is and once as
//! `RUSTFLAGS= cargo bench --target-dir target/avx2 --bench sv2_crypto` (an empty RUSTFLAGS replaces the
//! config's list: poly1305's run-time AVX2 backend) to compare (BENCHMARKS.md).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;

const SIZES: [usize; 4] = [6, 20, 40, 200];

fn nonce(n: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_le_bytes());
    b
}

fn bench_seal(c: &mut Criterion) {
    let key = [7u8; 32];
    let mut g = c.benchmark_group("sv2 seal");
    let rust_crypto = chacha20poly1305::ChaCha20Poly1305::new((&key).into());
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &key).expect("a 32-byte key"),
    );
    for size in SIZES {
        let mut buf = vec![1u8; size];
        let mut n = 0u64;
        g.bench_with_input(BenchmarkId::new("chacha20poly1305", size), &size, |b, _| {
            b.iter(|| {
                n += 1;
                let tag = rust_crypto
                    .encrypt_in_place_detached((&nonce(n)).into(), &[], &mut buf)
                    .expect("seal");
                black_box(tag)
            })
        });
        g.bench_with_input(BenchmarkId::new("ring", size), &size, |b, _| {
            b.iter(|| {
                n += 1;
                let tag = ring_key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce(n)),
                        ring::aead::Aad::empty(),
                        &mut buf,
                    )
                    .expect("seal");
                black_box(tag)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_seal);
criterion_main!(benches);
