//! Embeds the built web UI (`web/dist`, made by `make web`) in the binary, so a `ferrocast` copied
//! anywhere serves its pages without a directory beside it. Source maps stay out (they are for a
//! developer's browser, and several times the size of what they map); the precompressed `.br` and
//! `.gz` copies go in. Without a build at compile time the binary embeds nothing and serves
//! `FERROCAST_WEB_DIR`, or `web/dist` under the working directory, as before.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = root.join("web").join("dist");
    // A new web build (any file under dist changing) re-embeds.
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
    }
    files.sort();
    let mut code = String::from("/// The built web UI: (path under `web/dist`, contents).\npub static WEB_FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        writeln!(code, "    ({name:?}, include_bytes!({:?})),", path.display().to_string()).expect("writing to a String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("web_files.rs");
    std::fs::write(out, code).expect("write web_files.rs");
}

fn collect(dist: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(dist, &path, files);
        } else if path.extension().is_none_or(|ext| ext != "map") {
            let name = path.strip_prefix(dist).expect("under dist").to_string_lossy().replace('\\', "/");
            files.push((name, path));
        }
    }
}
