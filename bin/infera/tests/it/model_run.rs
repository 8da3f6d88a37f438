//! `infera model run --input x.npy` with arrays that do not fit: each is a
//! clear error and a non-zero exit, never an empty result.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn digits_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/models/digits/digits.infera")
}

/// A version 1.0 `.npy` with any shape text and data.
fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Runs the demo model on `bytes` as an `.npy`; its exit success, stdout, stderr.
fn run(bytes: &[u8]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    std::fs::write(&input, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_infera"))
        .args(["model", "run"])
        .arg(digits_model())
        .arg("--input")
        .arg(&input)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("spawn infera");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn arrays_that_do_not_fit_fail_with_the_reason() {
    let sample = [0u8; 64 * 4];
    let (ok, stdout, _) = run(&npy("<f4", "(1, 1, 8, 8)", &sample));
    assert!(ok && stdout.contains("\"results\""), "{stdout}");

    for (what, bytes, reason) in [
        (
            "overflowing shape",
            npy("<f4", "(4611686018427387904, 4611686018427387904)", &[]),
            "more elements than a machine word",
        ),
        (
            "huge shape",
            npy("<f4", "(1099511627776, 1, 8, 8)", &[]),
            "more than the 268435456 accepted",
        ),
        (
            "truncated data",
            npy("<f4", "(2, 1, 8, 8)", &sample),
            "truncated: shape [2, 1, 8, 8] of <f4 needs 512 bytes, the file holds 256",
        ),
        (
            "wrong shape for the model",
            npy("<f4", "(2, 64)", &[0; 2 * 64 * 4]),
            "array of shape [2, 64] does not match the model's input i8[1, 1, 8, 8]",
        ),
    ] {
        let (ok, stdout, stderr) = run(&bytes);
        assert!(!ok, "{what}: exit 0 with {stdout}");
        assert!(stdout.is_empty(), "{what}: printed {stdout}");
        assert!(stderr.contains(reason), "{what}: {stderr}");
    }
}
