//! NVRTC compile check of the CUDA kernels (`kernels/cuda/*.cu`), no GPU needed.
//!
//! Every `.cu` file is compiled to PTX by NVRTC through cudarc, twice: as the
//! files are laid out on disk (`#include "common.cuh"` found through
//! `--include-path`) and as [`infera_gpu::CudaBackend::open`] compiles its
//! embedded copy (`common.cuh` prepended, the `#include` skipped), with the
//! launcher's own [`infera_gpu::NVRTC_OPTIONS`]. Any error or warning in the
//! NVRTC log fails the test, naming the file. The PTX must define exactly the
//! kernels the launcher's [`infera_gpu::SOURCES`] table lists (`.entry
//! <name>`), use no floating point and no atomics, and the dense and
//! convolution kernels must use `dp4a`.
//!
//! libnvrtc is loaded at run time. Without it the test prints
//! `SKIPPED: ...` and passes, unless `INFERA_REQUIRE_NVRTC=1`, which makes a
//! missing library a failure (CI sets it after `scripts/nvrtc.sh`):
//!
//! ```sh
//! dir="$(bash scripts/nvrtc.sh | tail -n1)"
//! LD_LIBRARY_PATH="$dir" INFERA_REQUIRE_NVRTC=1 cargo test -p infera-gpu --test nvrtc
//! ```
//!
//! `INFERA_NVRTC_PTX_DIR=<dir>` also writes each file's PTX there.

use std::ffi::{CString, c_char};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cudarc::nvrtc::result as nvrtc;

/// Files whose kernels must use the packed int8 dot product.
const DP4A: &[&str] = &["conv2d.cu", "dense.cu"];

fn cuda_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cuda")
}

/// Write past libtest's output capture, so that a skip is visible in CI logs.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Whether libnvrtc can be loaded; panics when it cannot and
/// `INFERA_REQUIRE_NVRTC=1`. Never call a compile function without this:
/// cudarc panics when the library is missing.
fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen libnvrtc under cudarc's candidate names.
    let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    if !present {
        let required = std::env::var("INFERA_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "INFERA_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded: run scripts/nvrtc.sh \
             and set LD_LIBRARY_PATH to the directory it prints"
        );
        say("SKIPPED: libnvrtc not found (run scripts/nvrtc.sh and set LD_LIBRARY_PATH)");
    }
    present
}

fn c_text(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Compile one program; `Ok(ptx)` only when NVRTC succeeds with an empty log.
fn compile(name: &str, src: &str, extra: &[String]) -> Result<String, String> {
    let src_c = CString::new(src).map_err(|e| format!("{name}: NUL in source: {e}"))?;
    let name_c = CString::new(name).map_err(|e| format!("{name}: bad name: {e}"))?;
    let prog = nvrtc::create_program(&src_c, Some(&name_c))
        .map_err(|e| format!("{name}: nvrtcCreateProgram failed: {e:?}"))?;
    let mut opts: Vec<String> = infera_gpu::NVRTC_OPTIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    opts.extend_from_slice(extra);
    // SAFETY: `prog` comes from create_program and is destroyed once, below;
    // `src_c` and `name_c` outlive it.
    let (status, log, ptx) = unsafe {
        let status = nvrtc::compile_program(prog, &opts);
        let log = nvrtc::get_program_log(prog)
            .map(|l| c_text(&l))
            .unwrap_or_else(|e| format!("(no log: {e:?})"));
        let ptx = match status {
            Ok(()) => nvrtc::get_ptx(prog).map(|p| c_text(&p)).ok(),
            Err(_) => None,
        };
        let _ = nvrtc::destroy_program(prog);
        (status, log, ptx)
    };
    let log = log.trim();
    match (status, ptx) {
        (Err(e), _) => Err(format!("{name}: NVRTC error {e:?} with {opts:?}:\n{log}")),
        (Ok(()), None) => Err(format!("{name}: compiled but no PTX could be read")),
        (Ok(()), Some(_)) if !log.is_empty() => Err(format!(
            "{name}: NVRTC log not empty (warnings are errors here) with {opts:?}:\n{log}"
        )),
        (Ok(()), Some(ptx)) => Ok(ptx),
    }
}

/// Names of the kernels a PTX module defines (`.entry <name>(`).
fn entries(ptx: &str) -> Vec<String> {
    ptx.lines()
        .filter_map(|l| {
            let rest = l
                .trim()
                .strip_prefix(".visible .entry ")
                .or_else(|| l.trim().strip_prefix(".entry "))?;
            Some(rest.split('(').next()?.trim().to_string())
        })
        .collect()
}

/// Problems of one file's PTX: missing or extra kernels, floating point,
/// atomics, no dp4a where it belongs.
fn check_ptx(file: &str, want: &[&str], ptx: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let mut got = entries(ptx);
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    if got != want {
        errs.push(format!(
            "{file}: PTX defines kernels {got:?}, expected {want:?}"
        ));
    }
    for (n, line) in ptx.lines().enumerate() {
        let l = line.trim();
        if l.starts_with("//") {
            continue;
        }
        if [".f16", ".f32", ".f64", ".bf16"]
            .iter()
            .any(|t| l.contains(t))
        {
            errs.push(format!("{file}: floating point in PTX line {}: {l}", n + 1));
        }
        if l.starts_with("atom.") || l.starts_with("red.") {
            errs.push(format!("{file}: atomic in PTX line {}: {l}", n + 1));
        }
    }
    if DP4A.contains(&file) && !ptx.contains("dp4a") {
        errs.push(format!("{file}: no dp4a instruction in the PTX"));
    }
    errs
}

#[test]
fn cuda_kernels_compile_with_nvrtc() {
    let dir = cuda_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".cu"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = infera_gpu::SOURCES
        .iter()
        .map(|(f, _, _)| f.to_string())
        .collect();
    assert_eq!(
        on_disk, listed,
        "kernels/cuda/*.cu and infera_gpu::SOURCES differ"
    );
    if !nvrtc_present() {
        return;
    }
    let include = vec![format!("--include-path={}", dir.display())];
    // Optional: where to write the PTX of each file, for inspection.
    let ptx_dir = std::env::var_os("INFERA_NVRTC_PTX_DIR").map(PathBuf::from);
    if let Some(out) = &ptx_dir {
        std::fs::create_dir_all(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
    let start = Instant::now();
    let mut errs = Vec::new();
    for &(file, embedded, want) in infera_gpu::SOURCES {
        let src = std::fs::read_to_string(dir.join(file)).expect("read .cu");
        // As laid out on disk (nvcc-style), then as the launcher compiles it.
        for (label, text, extra) in [
            ("", src, include.clone()),
            (
                " (as CudaBackend::open compiles it)",
                format!("{}\n{embedded}", infera_gpu::COMMON),
                Vec::new(),
            ),
        ] {
            match compile(file, &text, &extra) {
                Ok(ptx) => {
                    if let Some(out) = ptx_dir.as_ref().filter(|_| label.is_empty()) {
                        let path = out.join(file.replace(".cu", ".ptx"));
                        std::fs::write(&path, &ptx)
                            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    }
                    errs.extend(check_ptx(&format!("{file}{label}"), want, &ptx))
                }
                Err(e) => errs.push(e),
            }
        }
    }
    say(&format!(
        "nvrtc: compiled {} CUDA files twice each in {:.2?}",
        infera_gpu::SOURCES.len(),
        start.elapsed()
    ));
    assert!(errs.is_empty(), "{}", errs.join("\n\n"));
}
