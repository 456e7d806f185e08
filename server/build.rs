//! Records the commit the server is built from (`AGORA_COMMIT`), so `--version` and each
//! run's `summary.json` say which code made a run: "1a2b3c4d5e6f", "1a2b3c4d5e6f-modified"
//! when the workspace's code differs from that commit, or "unknown" outside a git checkout.
//! Assets and docs are not counted: runs hash their personas, map and templates themselves.

use std::path::Path;
use std::process::Command;

/// The server's code (the client is not built into it).
const CODE: &[&str] = &["Cargo.toml", "Cargo.lock", "server", "shared"];

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let commit = git(&root, &["rev-parse", "--short=12", "HEAD"]);
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(CODE);
    let modified = git(&root, &status).map(|s| !s.is_empty());
    let version = match (commit, modified) {
        (Some(commit), Some(true)) => format!("{commit}-modified"),
        (Some(commit), _) => commit,
        (None, _) => "unknown".into(),
    };
    println!("cargo:rustc-env=AGORA_COMMIT={version}");
    // Again when the commit moves or the code changes (a directory is watched whole).
    if let Some(dir) = git(&root, &["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
        println!("cargo:rerun-if-changed={dir}/refs");
    }
    for path in CODE {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
}
