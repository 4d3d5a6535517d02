//! Builds dau's torch operator library (`python/dau/libdau_ops.so`) next to the
//! extension module, so one `pip install --no-build-isolation .` (or `maturin build`)
//! produces both native parts. The op library is compiled by `csrc/build_ops.py`,
//! run with the target Python interpreter against *its* torch (stable ABI).
//!
//! Environment: `DAU_BUILD_OPS=0` skips it (used for `cargo test`/`clippy`);
//! `DAU_CUDA=auto|0|1` and `DAU_CUDA_ARCH` are passed on to the build script.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn python() -> String {
    for var in ["PYO3_PYTHON", "PYTHON_SYS_EXECUTABLE"] {
        if let Ok(value) = env::var(var) {
            if !value.is_empty() {
                return value;
            }
        }
    }
    if let Ok(venv) = env::var("VIRTUAL_ENV") {
        let candidate = PathBuf::from(venv).join("bin").join("python");
        if candidate.exists() {
            return candidate.to_string_lossy().into_owned();
        }
    }
    "python3".to_owned()
}

fn main() {
    for var in [
        "DAU_BUILD_OPS",
        "DAU_CUDA",
        "DAU_CUDA_ARCH",
        "PYO3_PYTHON",
        "PYTHON_SYS_EXECUTABLE",
        "VIRTUAL_ENV",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.join("..").join("..");
    let csrc = root.join("csrc");
    println!("cargo:rerun-if-changed={}", csrc.display());
    if env::var("DAU_BUILD_OPS").is_ok_and(|v| v == "0") {
        println!("cargo:warning=DAU_BUILD_OPS=0: the torch op library was not built");
        return;
    }
    let script = csrc.join("build_ops.py");
    if !script.exists() {
        println!(
            "cargo:warning={} not found: building from a source tree without csrc/?",
            script.display()
        );
        return;
    }
    let out_dir = root.join("python").join("dau");
    let python = python();
    let output = Command::new(&python)
        .arg(&script)
        .arg("--out-dir")
        .arg(&out_dir)
        .output();
    match output {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                println!("cargo:warning=ops: {line}");
            }
        }
        Ok(out) => panic!(
            "building the torch op library with `{python} {}` failed.\n\
             The op library needs torch (>= 2.10) importable by that interpreter: build with \
             `pip install --no-build-isolation .` in an environment that has torch, or set \
             DAU_BUILD_OPS=0 to build without it.\n--- stdout ---\n{}\n--- stderr ---\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(err) => panic!("cannot run `{python}` to build the torch op library: {err}"),
    }
}
