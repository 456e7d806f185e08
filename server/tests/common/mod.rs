//! Fixtures shared by the server's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

pub fn shipped_map() -> PathBuf {
    assets().join("maps/maple_hollow.tmj")
}

/// A small valid persona living in the shipped town.
pub const ANN: &str = r#"name = "Ann Example"
age = 30
traits = ["kind", "curious"]
backstory = "Ann moved to Maple Hollow last year."
lifestyle = "Early riser."
speech_style = "Plain."
wake = "06:00"
sleep = "22:00"
home = "Alvarez House:main bedroom"
author = "tests"
license = "CC0-1.0"

[work]
place = "Willow Cafe:kitchen"
start = "08:00"
end = "16:00"
activity = "cooking"

[[visits]]
place = "Riverside Park"
at = "17:00"
minutes = 60
activity = "walking by the river"

[[relationships]]
with = "bob"
kind = "friend"
notes = "Her oldest friend."
"#;

/// Ann's friend, a night owl.
pub fn bob() -> String {
    ANN.replace("Ann Example", "Bob Example")
        .replace("wake = \"06:00\"", "wake = \"10:00\"")
        .replace("sleep = \"22:00\"", "sleep = \"01:30\"")
        .replace("main bedroom", "second bedroom")
        .replace("start = \"08:00\"", "start = \"17:00\"")
        .replace("end = \"16:00\"", "end = \"01:00\"")
        .replace("Willow Cafe:kitchen", "Copper Kettle Bar")
        .replace("at = \"17:00\"", "at = \"11:00\"")
        .replace("with = \"bob\"", "with = \"ann\"")
}

/// A folder holding Ann and Bob.
pub fn two_personas() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ann.toml"), ANN).unwrap();
    std::fs::write(dir.path().join("bob.toml"), bob()).unwrap();
    dir
}
