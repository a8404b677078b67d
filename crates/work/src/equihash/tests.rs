//! Unit tests of the Equihash share math: the Zcash genesis block verified from notify fields, parameters and
//! solution lengths, compactSize and solution parsing, strict notify parsing, targets and nonces.

use super::test_vectors::genesis;
use super::*;

/// Zcash mainnet genesis block, height 0, hash
/// 00040fe8ec8471911baa1db1266ea15dd06b4a8a5c453883c000b031973dce08: built from notify fields and a
/// NONCE_1 || NONCE_2 split, its solution verifies with (200, 9) and it hashes to the genesis hash.
#[test]
fn zcash_genesis_block() {
    let g = genesis();
    assert_eq!(g.job.to_notify_params()[1], json!("04000000"));
    assert_eq!(hex::encode(&g.job.time), "90041358"); // 1477641360 little-endian
    assert_eq!(hex::encode(&g.job.bits), "ffff071f"); // 0x1f07ffff little-endian
    assert_eq!(g.solution_with_prefix.len(), 1347);
    assert_eq!(&g.solution_with_prefix[..3], &[0xfd, 0x40, 0x05]);

    // A pool's NONCE_1 (4 bytes) and the miner's NONCE_2 (28 bytes), as hex on the wire.
    let nonce1_hex = hex::encode(&g.nonce[..4]);
    let nonce2_hex = hex::encode(&g.nonce[4..]);
    assert_eq!(nonce1_hex, "57120000");
    let nonce1 = hex::decode(&nonce1_hex).unwrap_or_default();
    let nonce2 = hex::decode(&nonce2_hex).unwrap_or_default();
    let nonce = nonce_from_parts(&nonce1, &nonce2).expect("32 bytes");
    assert_eq!(nonce, g.nonce);

    let time = hex::decode_array::<4>("90041358").expect("time");
    let header = g.job.header_with_time(&time, &nonce);
    assert_eq!(header, g.job.header(&nonce));
    assert_eq!(&header[..4], &[4, 0, 0, 0]);
    assert_eq!(&header[108..], &nonce);
    let solution = parse_solution_hex(&hex::encode(&g.solution_with_prefix), &Params::ZCASH)
        .expect("well-formed solution");
    assert_eq!(solution, g.solution_with_prefix);

    let without_nonce = g.job.header_without_nonce(&time);
    assert_eq!(without_nonce.as_slice(), &header[..108]);
    verify_solution(&Params::ZCASH, &without_nonce, &nonce, &solution).expect("valid");
    verify_solution(&Params::ZCASH, &without_nonce, &nonce, &solution[3..])
        .expect("valid without prefix too");

    let hash = block_hash(&header, &solution);
    assert_eq!(hash, g.hash);
    assert_eq!(
        work::display_hex(&hash),
        "00040fe8ec8471911baa1db1266ea15dd06b4a8a5c453883c000b031973dce08"
    );
    assert!(hash_meets_target(&hash, &g.pow_limit));
    assert!(hash_meets_target(
        &hash,
        &work::target_from_nbits(0x1f07_ffff)
    ));
    let harder = target_from_hex(&format!("0003{}", "f".repeat(60))).expect("target");
    assert!(!hash_meets_target(&hash, &harder));

    let checked = check_share(
        &g.job,
        &Params::ZCASH,
        &time,
        &nonce,
        &solution,
        &g.pow_limit,
        true,
    );
    assert_eq!(checked, Ok(g.hash));

    // One byte of the nonce changed: the solution no longer verifies and the hash changes.
    let mut bad_nonce = nonce;
    bad_nonce[31] ^= 1;
    assert!(verify_solution(&Params::ZCASH, &without_nonce, &bad_nonce, &solution).is_err());
    assert_ne!(block_hash(&g.job.header(&bad_nonce), &solution), g.hash);
    let checked = check_share(
        &g.job,
        &Params::ZCASH,
        &time,
        &bad_nonce,
        &solution,
        &g.pow_limit,
        true,
    );
    assert_eq!(checked.map_err(|e| e.code()), Err(20));
    // The same for a prefix byte (NONCE_1) and for the time.
    let mut bad_prefix = nonce;
    bad_prefix[3] ^= 0xff;
    assert!(verify_solution(&Params::ZCASH, &without_nonce, &bad_prefix, &solution).is_err());
    let other_time = g.job.header_without_nonce(&[0x91, 0x04, 0x13, 0x58]);
    assert!(verify_solution(&Params::ZCASH, &other_time, &nonce, &solution).is_err());
    // One bit of the solution flipped.
    let mut bad_solution = solution.clone();
    bad_solution[100] ^= 0x10;
    assert!(verify_solution(&Params::ZCASH, &without_nonce, &nonce, &bad_solution).is_err());
    // Wrong parameters.
    let other = Params { n: 144, k: 5 };
    assert!(verify_solution(&other, &without_nonce, &nonce, &solution).is_err());
    // Without verification the wrong nonce is not seen as an invalid solution: only the hash counts.
    let unverified = check_share(
        &g.job,
        &Params::ZCASH,
        &time,
        &bad_nonce,
        &solution,
        &g.pow_limit,
        false,
    );
    assert!(unverified.is_ok() || unverified == Err(ShareError::AboveTarget));
    let low = check_share(
        &g.job,
        &Params::ZCASH,
        &time,
        &nonce,
        &solution,
        &harder,
        true,
    );
    assert_eq!(
        low.map_err(|e| (e.code(), e.message())),
        Err((23, "Low difficulty share"))
    );
}

#[test]
fn params_and_solution_lengths() {
    assert_eq!(Params::ZCASH.solution_len(), 1344);
    assert_eq!(Params::ZCASH.solution_prefix(), vec![0xfd, 0x40, 0x05]);
    assert_eq!(Params::ZCASH.solution_with_prefix_len(), 1347);
    assert_eq!(Params::default(), Params::ZCASH);
    assert_eq!(Params { n: 144, k: 5 }.solution_len(), 100);
    assert_eq!(Params { n: 144, k: 5 }.solution_prefix(), vec![100]);
    assert_eq!(Params { n: 192, k: 7 }.solution_len(), 400);
    assert_eq!(Params { n: 96, k: 5 }.solution_len(), 68);
    assert_eq!(Params { n: 48, k: 5 }.solution_len(), 36);
    for good in [(200, 9), (144, 5), (192, 7), (96, 5), (48, 5)] {
        assert!(
            Params {
                n: good.0,
                k: good.1
            }
            .check()
            .is_ok(),
            "{good:?}"
        );
    }
    for bad in [
        (201, 9),
        (200, 2),
        (200, 8),
        (0, 0),
        (8, 8),
        (1024, 15),
        (256, 255),
        (16, 1),
        (210, 9),
    ] {
        assert!(Params { n: bad.0, k: bad.1 }.check().is_err(), "{bad:?}");
    }
    let weird = Params {
        n: 512,
        k: u32::MAX,
    };
    assert_eq!(weird.solution_len(), 0);
    assert!(weird.check().is_err());
    let header = [0u8; HEADER_WITHOUT_NONCE_LEN];
    assert!(verify_solution(&weird, &header, &[0; 32], &[0; 10]).is_err());
    // Parameters the crate would panic on are refused before reaching it.
    let too_wide = Params { n: 208, k: 7 }; // 26-bit collisions
    assert!(too_wide.check().is_err());
    assert!(verify_solution(
        &too_wide,
        &header,
        &[0; 32],
        &vec![0; too_wide.solution_len()]
    )
    .is_err());
}

#[test]
fn compact_sizes_and_solution_parsing() {
    for (n, enc) in [
        (0u64, "00"),
        (252, "fc"),
        (253, "fdfd00"),
        (1344, "fd4005"),
        (0xffff, "fdffff"),
        (0x1_0000, "fe00000100"),
        (0x1_0000_0000, "ff0000000001000000"),
    ] {
        assert_eq!(hex::encode(&compact_size(n)), enc);
        let bytes = hex::decode(enc).unwrap_or_default();
        assert_eq!(read_compact_size(&bytes), Some((n, bytes.len())));
    }
    assert_eq!(read_compact_size(&[]), None);
    assert_eq!(read_compact_size(&[0xfd, 0x40]), None, "cut short");
    assert_eq!(
        read_compact_size(&[0xfd, 0x10, 0x00]),
        None,
        "not canonical"
    );
    assert_eq!(
        read_compact_size(&[0xfe, 0xff, 0xff, 0, 0]),
        None,
        "not canonical"
    );

    let p = Params::ZCASH;
    let good = format!("fd4005{}", "ab".repeat(1344));
    assert_eq!(parse_solution_hex(&good, &p).map(|s| s.len()), Ok(1347));
    let upper = format!("FD4005{}", "AB".repeat(1344));
    assert!(parse_solution_hex(&upper, &p).is_ok());
    assert!(parse_solution_hex(&format!("fd4005{}", "ab".repeat(1343)), &p).is_err());
    assert!(parse_solution_hex(&format!("fd4005{}", "ab".repeat(1345)), &p).is_err());
    assert!(parse_solution_hex(&format!("fd4105{}", "ab".repeat(1344)), &p).is_err());
    assert!(parse_solution_hex(&format!("fe400500{}", "ab".repeat(1343)), &p).is_err());
    assert!(
        parse_solution_hex(&"ab".repeat(1347), &p).is_err(),
        "no prefix"
    );
    assert!(parse_solution_hex(&format!("fd4005{}zz", "ab".repeat(1343)), &p).is_err());
    assert!(parse_solution_hex(&format!("fd4005{}a", "ab".repeat(1343)), &p).is_err());
    let small = Params { n: 144, k: 5 };
    assert!(parse_solution_hex(&format!("64{}", "00".repeat(100)), &small).is_ok());

    let body = [7u8; 1344];
    assert_eq!(solution_body(&body, &p).map(<[u8]>::len), Ok(1344));
    assert!(solution_body(&body[..1343], &p).is_err());

    // check_share wants the prefix.
    let job = sample_job();
    let target = [0xff; 32];
    let res = check_share(&job, &p, &job.time, &[0; 32], &body, &target, false);
    assert_eq!(res.map_err(|e| e.code()), Err(20));
    let with = [&p.solution_prefix()[..], &body[..]].concat();
    assert!(check_share(&job, &p, &job.time, &[0; 32], &with, &target, false).is_ok());
    let res = check_share(&job, &p, &job.time, &[0; 32], &with, &[0; 32], false);
    assert_eq!(res, Err(ShareError::AboveTarget));
}

fn sample_job() -> EquihashJob {
    EquihashJob {
        job_id: "j".into(),
        version: [4, 0, 0, 0],
        prevhash: [1; 32],
        merkleroot: [2; 32],
        reserved: [3; 32],
        time: [5, 6, 7, 8],
        bits: [9, 10, 11, 12],
        clean_jobs: false,
    }
}

#[test]
fn notify_params_parse_strictly() {
    let job = sample_job();
    let params = job.to_notify_params();
    assert_eq!(params.as_array().map(Vec::len), Some(8));
    assert_eq!(params[1], json!("04000000"));
    assert_eq!(params[5], json!("05060708"));
    assert_eq!(EquihashJob::from_notify_params(&params), Ok(job.clone()));
    let header = job.header(&[0xee; 32]);
    assert_eq!(&header[4..36], &[1; 32]);
    assert_eq!(&header[36..68], &[2; 32]);
    assert_eq!(&header[68..100], &[3; 32]);
    assert_eq!(&header[100..104], &[5, 6, 7, 8]);
    assert_eq!(&header[104..108], &[9, 10, 11, 12]);
    assert_eq!(&header[108..], &[0xee; 32]);

    // A 9th element is accepted and ignored; a fork's version passes unchanged.
    let mut nine = params.as_array().cloned().unwrap_or_default();
    nine.push(json!(true));
    nine[1] = json!("00000020");
    let forked = EquihashJob::from_notify_params(&Value::Array(nine.clone())).expect("9 params");
    assert_eq!(forked.version, [0, 0, 0, 0x20]);
    assert_eq!(forked.to_notify_params()[1], json!("00000020"));

    let broken = |i: usize, v: Value| {
        let mut p = nine.clone();
        p[i] = v;
        EquihashJob::from_notify_params(&Value::Array(p)).is_err()
    };
    assert!(broken(0, json!(1)));
    assert!(broken(1, json!("040000")));
    assert!(broken(2, json!("00".repeat(31))));
    assert!(broken(3, json!("00".repeat(33))));
    assert!(broken(4, json!("zz".repeat(32))));
    assert!(broken(5, json!("0506070")));
    assert!(broken(6, json!(null)));
    assert!(broken(7, json!("true")));
    let short = Value::Array(nine[..7].to_vec());
    assert!(EquihashJob::from_notify_params(&short).is_err());
    assert!(EquihashJob::from_notify_params(&json!({"a": 1})).is_err());
}

#[test]
fn targets_and_nonces() {
    let t = target_from_hex(&format!("00ff{}", "f".repeat(60))).expect("target");
    assert_eq!(t[0], 0);
    assert_eq!(t[1], 0xff);
    assert!(target_from_hex(&"f".repeat(63)).is_none());
    assert!(target_from_hex(&"f".repeat(66)).is_none());
    let mut hash = [0xff; 32];
    hash[31] = 0; // little-endian: the most significant byte
    assert!(hash_meets_target(&hash, &t));
    hash[31] = 1;
    assert!(!hash_meets_target(&hash, &t));
    assert_eq!(
        nonce_from_parts(&[1; 4], &[2; 28]).map(|n| n[3..5].to_vec()),
        Some(vec![1, 2])
    );
    assert_eq!(nonce_from_parts(&[], &[2; 32]), Some([2; 32]));
    assert_eq!(nonce_from_parts(&[1; 4], &[2; 27]), None);
    assert_eq!(nonce_from_parts(&[1; 4], &[2; 29]), None);
}
