//! The `agora-server` binary as users run it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn agora(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agora-server"))
        .args(args)
        .env("AGORA_ASSETS", common::assets())
        .output()
        .expect("agora-server runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn shipped_personas_pass_the_check() {
    let out = agora(&["persona", "check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("persona check: 25 personas valid"),
        "{stdout}"
    );
}

/// Before: an empty folder passed (`0 personas valid`, exit 0), yet `sim` refused it.
#[test]
fn an_empty_persona_folder_fails_the_check_as_it_fails_sim() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let check = agora(&["persona", "check", folder]);
    assert!(!check.status.success());
    assert!(
        text(&check.stderr).contains("no persona files (*.toml) in"),
        "{}",
        text(&check.stderr)
    );
    let out = dir.path().join("run");
    let sim = agora(&[
        "sim",
        "--hours",
        "0.1",
        "--personas",
        folder,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!sim.status.success());
    assert!(
        text(&sim.stderr).contains("no persona files in"),
        "{}",
        text(&sim.stderr)
    );
}

#[test]
fn shipped_map_passes_the_check() {
    let out = agora(&["map", "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("map check: ok, 17 sectors"));
}

/// One broken copy of a shipped persona: the edit, and the field the error must name.
struct Broken {
    what: &'static str,
    edit: fn(&str) -> String,
    /// Text on the line the error must point at.
    line_with: &'static str,
    says: &'static str,
}

fn replace_line(text: &str, key: &str, with: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(key) {
                done = true;
                with.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const BROKEN: &[Broken] = &[
    Broken {
        what: "misspelled field",
        edit: |t| replace_line(t, "wake =", "wak = \"06:00\""),
        line_with: "wak =",
        says: "unknown field `wak`",
    },
    Broken {
        what: "wake hour of 27",
        edit: |t| replace_line(t, "wake =", "wake = \"27:00\""),
        line_with: "wake =",
        says: "field `wake`: hour 27 is out of range",
    },
    Broken {
        what: "unknown home",
        edit: |t| replace_line(t, "home =", "home = \"Atlantis\""),
        line_with: "home =",
        says: "field `home`: no sector \"Atlantis\"",
    },
    Broken {
        what: "relationship to a missing persona",
        edit: |t| replace_line(t, "with =", "with = \"nobody_here\""),
        line_with: "with =",
        says: "no persona \"nobody_here\"",
    },
    Broken {
        what: "age out of range",
        edit: |t| replace_line(t, "age =", "age = 400"),
        line_with: "age =",
        says: "field `age`: 400 is out of range",
    },
    Broken {
        what: "unknown place in a visit",
        edit: |t| replace_line(t, "place =", "place = \"Willow Cafe:attic\""),
        line_with: "place =",
        says: "no arena \"attic\"",
    },
    Broken {
        what: "bedtime too early",
        edit: |t| replace_line(t, "sleep =", "sleep = \"07:00\""),
        line_with: "sleep =",
        says: "expected at least 8 hours later",
    },
    Broken {
        what: "TOML syntax error",
        edit: |t| replace_line(t, "age =", "age = = 3"),
        line_with: "age =",
        says: "",
    },
    Broken {
        what: "wrong type",
        edit: |t| replace_line(t, "age =", "age = \"old\""),
        line_with: "age =",
        says: "",
    },
];

#[test]
fn each_broken_copy_fails_naming_file_and_line() {
    let shipped = common::assets().join("personas");
    for case in BROKEN {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        let victim = dir.path().join("marisol_alvarez.toml");
        let original = std::fs::read_to_string(&victim).unwrap();
        let broken = (case.edit)(&original);
        assert_ne!(broken, original, "{}: the edit changed nothing", case.what);
        std::fs::write(&victim, &broken).unwrap();
        let line = broken
            .lines()
            .position(|l| l.contains(case.line_with))
            .unwrap()
            + 1;

        let out = agora(&["persona", "check", dir.path().to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{}: check passed", case.what);
        let location = format!("{}:{line}:", victim.display());
        assert!(
            stderr.contains(&location),
            "{}: expected {location} in:\n{stderr}",
            case.what
        );
        assert!(
            stderr.contains(case.says),
            "{}: expected {:?} in:\n{stderr}",
            case.what,
            case.says
        );
        assert!(
            stderr.contains("1 error(s) in 1 of 25 file(s)"),
            "{}: {stderr}",
            case.what
        );
    }
}

#[test]
fn sim_reports_bad_arguments_clearly() {
    let out = agora(&["sim", "--hours", "0", "--out", "/tmp/never-written"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--hours must be more than 0"));
    assert!(!Path::new("/tmp/never-written").exists());
    let out = agora(&["sim", "--start", "25:00"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("hour 25 is out of range"));
    let out = agora(&["sim", "--personas", "/nonexistent/personas"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read persona folder"));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["sim", "--help"],
        &["persona", "check", "--help"],
        &["map", "check", "--help"],
        &["llm", "generate", "--help"],
        &["llm", "score", "--help"],
    ] {
        let out = agora(args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            text(&out.stdout).contains("Usage: agora-server"),
            "{args:?}"
        );
    }
}

/// With no --brain, `sim` thinks with the language model when it is in the cache, and follows
/// the routine otherwise, saying so.
#[test]
fn sim_brain_is_the_model_when_it_is_there_else_the_routine() {
    let dir = tempfile::tempdir().unwrap();
    let personas = common::two_personas();
    let run = |out: &str, models: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agora-server"));
        command
            .args(["sim", "--hours", "0.05", "--start", "07:00", "--quiet"])
            .args(["--personas", personas.path().to_str().unwrap()])
            .arg("--out")
            .arg(dir.path().join(out))
            .env("AGORA_ASSETS", common::assets())
            .env_remove("AGORA_MODEL");
        if let Some(models) = models {
            command.env("AGORA_MODELS", models);
        }
        let output = command.output().expect("agora-server runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(out).join("summary.json")).unwrap(),
        )
        .unwrap();
        (
            summary["brain"].as_str().unwrap().to_string(),
            text(&output.stderr),
        )
    };
    let empty = tempfile::tempdir().unwrap();
    let (brain, stderr) = run("bare", Some(empty.path()));
    assert_eq!(brain, "routine");
    assert!(
        stderr.contains("note: agents follow their routines") && stderr.contains("fetch-models"),
        "{stderr}"
    );
    // The cache scripts/fetch-models fills (the test suite's, as for every real-model test).
    let (brain, stderr) = run("cached", None);
    assert_eq!(brain, "llm", "{stderr}");
    assert!(!stderr.contains("note: agents follow"), "{stderr}");
}

#[test]
fn sim_writes_events_and_summary() {
    let out_dir = tempfile::tempdir().unwrap();
    let personas = common::two_personas();
    // A flag given twice takes its last value: scripts/run-day passes its defaults first.
    let out = agora(&[
        "sim",
        "--brain",
        "routine",
        "--hours",
        "24",
        "--seed",
        "5",
        "--hours",
        "2",
        "--personas",
        personas.path().to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Not a terminal here: plain progress lines.
    assert!(
        stderr.contains("sim: 100% game time day 1 08:00:00"),
        "a first run starts at 06:00, when the town wakes: {stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["agents"], 2);
    assert_eq!(summary["ticks"], 720);
    assert_eq!(summary["game_hours"], 2.0);
    // The routine brain makes no model calls; the fields are there for the brains that do.
    assert_eq!(summary["llm"], serde_json::json!({}));
    assert_eq!(summary["llm_tokens_per_agent_hour"], 0.0);
    let events = std::fs::read_to_string(out_dir.path().join("events.jsonl")).unwrap();
    assert_eq!(
        events.lines().count() as u64,
        summary["events_total"].as_u64().unwrap()
    );
    let first: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "run_started");
    assert_eq!(first["seed"], 5);
    assert_eq!(first["start"], 6 * 3_600_000);
    assert!(
        events.contains("\"kind\":\"move\""),
        "the town is awake in a first run: someone walks"
    );
    assert!(text(&out.stdout).contains(summary["determinism_hash"].as_str().unwrap()));
}

#[test]
fn llm_score_ranks_candidates_with_the_real_model() {
    let out = agora(&["llm", "score", "1, 2, 3, 4,", "-c", " cat", "-c", " 5"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.ends_with("\" 5\""),
        "best candidate should be \" 5\":\n{stdout}"
    );
    let out = agora(&["llm", "generate", "hello", "--model", "/nonexistent.gguf"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent.gguf does not exist"));
}

#[test]
fn token_writes_a_connect_token_and_creates_the_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("server.key");
    let out_file = dir.path().join("ada.token");
    let args = |player: &str| {
        vec![
            "token".to_string(),
            "--player".into(),
            player.into(),
            "--key".into(),
            key.display().to_string(),
            "--out".into(),
            out_file.display().to_string(),
        ]
    };
    let run = |player: &str| {
        let owned = args(player);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        agora(&refs)
    };
    let first = run("ada");
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("created a new one"));
    assert!(text(&first.stdout).contains("token for \"ada\""));
    let token = std::fs::read(&out_file).unwrap();
    assert!(token.len() > 1000, "netcode tokens are 2 KiB");
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(
        !text(&first.stdout).contains(key_text.trim())
            && !text(&first.stderr).contains(key_text.trim()),
        "the key is never printed"
    );

    let second = run("ada");
    assert!(second.status.success());
    assert!(
        !text(&second.stderr).contains("created"),
        "the key is reused"
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), key_text);

    let bad = run("<script>");
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("player name"),
        "{}",
        text(&bad.stderr)
    );

    // A token lets anyone in as its player: owner-only, like the key (before: world-readable),
    // also when it replaces a file that was not.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(run("ada").status.success());
    let mode = std::fs::metadata(&out_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "token file mode {mode:o}");

    // Before: u64::MAX overflowed into a token that expired before it was made (and reported
    // success), and 0 was reported as 0 s but made 1 s.
    for ttl in ["0", "18446744073709551615", "2592001"] {
        let mut owned = args("ada");
        owned.extend(["--ttl".to_string(), ttl.to_string()]);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let out = agora(&refs);
        assert!(!out.status.success(), "--ttl {ttl} was accepted");
        assert!(
            text(&out.stderr).contains("--ttl") && text(&out.stderr).contains("1..=2592000"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// The determinism hash a `sim` printed.
fn printed_hash(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains("determinism_hash"))
        .unwrap_or_else(|| panic!("no hash in {stdout}"));
    line.rsplit(' ').next().unwrap().to_string()
}

/// A run with memory journals every model call (here MiniLM's); `--journal` re-runs it from
/// the journal alone and prints the same determinism hash. A journal that lacks an answer
/// (another seed) makes a run that differs, never a crash.
#[test]
fn sim_journal_replays_a_recorded_run_to_the_same_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (first, replay) = (dir.path().join("first"), dir.path().join("replay"));
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["sim", "--agents", "4", "--hours", "0.5", "--start", "07:00"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--memory", "--quiet", "--out"].map(String::from));
        a.push(out.display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| agora(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // The replays take the recorded run's brain (routine, with memory) without being told.
    let recorded = printed_hash(&run(args(&first, &["--brain", "routine"])));
    assert!(first.join("journal.jsonl").metadata().unwrap().len() > 0);
    let first_dir = first.display().to_string();
    let replayed = printed_hash(&run(args(&replay, &["--journal", &first_dir])));
    assert_eq!(recorded, replayed);
    let summary = std::fs::read_to_string(replay.join("summary.json")).unwrap();
    assert!(summary.contains("\"replayed\""), "{summary}");

    let other_seed = run(args(
        &dir.path().join("seed9"),
        &["--journal", &first_dir, "--seed", "9"],
    ));
    assert!(other_seed.status.success(), "{}", text(&other_seed.stderr));
    assert_ne!(printed_hash(&other_seed), recorded);
    assert!(
        text(&other_seed.stderr).contains("no answer for this call"),
        "{}",
        text(&other_seed.stderr)
    );

    let missing = run(args(
        &dir.path().join("x"),
        &["--journal", "/nonexistent", "--brain", "routine"],
    ));
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("cannot open journal"),
        "{}",
        text(&missing.stderr)
    );
}

/// `interview` answers from a run's memories on the real models: the party question draws on
/// Marisol's memory of her harvest party (her first seed memory, id 0); a question nothing in
/// her memory answers gets "I don't remember", without asking the model.
#[test]
fn interview_answers_from_the_agents_memory_and_cites_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_arg = run.display().to_string();
    let sim = [
        "sim", "--brain", "routine", "--hours", "0.2", "--start", "07:00", "--memory", "--quiet",
        "--out",
    ];
    let out = agora(&[&sim[..], &[run_arg.as_str()]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ask = |agent: &str, question: &str| {
        agora(&["interview", "--world", &run_arg, "--agent", agent, question])
    };

    let party = ask("Marisol Alvarez", "Is there a party coming up?");
    let said = text(&party.stdout);
    assert!(party.status.success(), "{said}\n{}", text(&party.stderr));
    assert!(said.starts_with("Marisol Alvarez: "), "{said}");
    assert!(said.contains("interview: drawn from memory 0"), "{said}");
    assert!(said.contains("* memory    0"), "{said}");

    let peru = ask("marisol_alvarez", "What is the capital of Peru?");
    let said = text(&peru.stdout);
    assert!(
        said.contains("I don't remember anything about that."),
        "{said}"
    );
    assert!(said.contains("the model was not asked"), "{said}");

    let nobody = ask("Nobody Here", "Hello?");
    assert!(!nobody.status.success());
    let err = text(&nobody.stderr);
    assert!(
        err.contains("no agent \"Nobody Here\"") && err.contains("marisol_alvarez"),
        "{err}"
    );
}

/// `eval diffusion`, short, on the real models: it runs, interviews every agent about both
/// items, and the agents who hold a piece of news in their seed memories are found informed
/// of it (Marisol of her party, Gabriel of his candidacy).
#[test]
fn eval_diffusion_interviews_everyone_and_finds_the_seeded_informed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("diffusion");
    let args = [
        "eval",
        "diffusion",
        "--agents",
        "17",
        "--hours",
        "0.05",
        "--start",
        "18:00",
    ];
    let run = agora(&[&args[..], &["--quiet", "--out", &out.display().to_string()]].concat());
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("diffusion: informed="), "{stdout}");
    assert!(last.contains("/34 hallucinated="), "{last}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("diffusion.json")).unwrap())
            .unwrap();
    let informed = |agent: &str, item: &str| {
        report["answers"].as_array().unwrap().iter().any(|a| {
            a["agent"] == agent && a["item"] == item && a["informed"] == true && a["seeded"] == true
        })
    };
    assert!(informed("marisol_alvarez", "party"), "{report:#}");
    assert!(informed("gabriel_reyes", "candidacy"), "{report:#}");
    // Judged again without a new day: the same answers, the same count.
    let again = agora(&[
        "eval",
        "diffusion",
        "--rejudge",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout).lines().last(), Some(last));
    let nothing = dir.path().join("nothing");
    let refused = agora(&[
        "eval",
        "diffusion",
        "--rejudge",
        "--out",
        &nothing.display().to_string(),
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("holds no run (no events.jsonl)"),
        "{}",
        text(&refused.stderr)
    );
}

/// `sim --db`, killed outright (SIGKILL) mid-morning and run again on its database: it resumes
/// at the saved clock, every agent with the memories it had (the same rows, then more) and
/// the plan it had made for the day, which it follows instead of planning the day again. On
/// the real models.
#[test]
fn a_killed_sim_resumes_on_its_database_with_every_agents_memories_and_plan() {
    use agora_server::persist::Store;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("world.sqlite");
    let args = |out: &str, hours: &str| -> Vec<String> {
        let mut a: Vec<String> = ["sim", "--agents", "3", "--brain", "llm", "--start", "07:00"]
            .map(String::from)
            .to_vec();
        a.extend(["--quiet", "--hours", hours, "--db"].map(String::from));
        a.push(db.display().to_string());
        a.extend(["--out".into(), dir.path().join(out).display().to_string()]);
        a
    };
    let mut first = Command::new(env!("CARGO_BIN_EXE_agora-server"))
        .args(args("first", "8"))
        .env("AGORA_ASSETS", common::assets())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until all three have a plan saved, and memories.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "no plans were saved");
        assert!(first.try_wait().unwrap().is_none(), "the sim ended early");
        std::thread::sleep(Duration::from_millis(500));
        let Ok(saved) = Store::open(&db).and_then(|s| s.load()) else {
            continue;
        };
        if saved.plans.len() == 3 && saved.clock.is_some() {
            break;
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // What the database held when the run died (it may have saved more after the check above).
    let before = Store::open(&db).unwrap().load().unwrap();

    let second = agora(
        &args("second", "0.2")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(second.status.success(), "{}", text(&second.stderr));
    let stderr = text(&second.stderr);
    assert!(stderr.contains("sim: resuming from"), "{stderr}");
    let events = std::fs::read_to_string(dir.path().join("second/events.jsonl")).unwrap();
    let started: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(
        started["start"].as_u64(),
        before.clock.map(|c| c.0),
        "{started}"
    );
    let after = Store::open(&db).unwrap().load().unwrap();
    // The places each agent knew are kept (and may have grown).
    assert_eq!(before.known_places.len(), 3, "{:?}", before.known_places);
    for (agent, old) in &before.known_places {
        assert!(
            old.is_subset(&after.known_places[agent]),
            "{agent} forgot places"
        );
    }
    for (agent, old) in &before.memories {
        let new = &after.memories[agent];
        assert!(new.len() >= old.len(), "{agent} lost memories");
        for ((was, was_vector), (is, vector)) in old.iter().zip(new) {
            assert_eq!(
                (was.id, &was.description),
                (is.id, &is.description),
                "{agent}"
            );
            // An embedding saved before the kill is kept bit for bit.
            if was_vector.is_some() {
                assert!(vector == was_vector, "{agent}: memory {} changed", was.id.0);
            }
        }
    }
    let plan = |json: &str| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        (
            v["day"].clone(),
            v["intent"].clone(),
            v["slots"].as_array().unwrap().len(),
        )
    };
    for (agent, old) in &before.plans {
        let (day, intent, _) = plan(old);
        let (new_day, new_intent, slots) = plan(&after.plans[agent]);
        assert!(slots > 0);
        // Reacting to something it perceived re-plans the rest of the day (`because` says
        // why); planning the day afresh would mean the saved plan was not resumed.
        let made: Vec<serde_json::Value> = (events.lines())
            .filter(|l| l.contains(&format!("\"kind\":\"plan_made\",\"agent\":\"{agent}\"")))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            made.iter().all(|e| !e["because"].is_null()),
            "{agent} planned its day again: {made:?}"
        );
        assert_eq!(new_day, day, "{agent}: the day of its plan changed");
        if made.is_empty() {
            assert_eq!(new_intent, intent, "{agent}: its plan changed");
        }
    }
}

/// The README's synopsis of each `agora-server` command names exactly the flags its `--help`
/// lists (`--help`, `--version` and the global `--assets` aside), so neither drifts from the
/// other unseen.
#[test]
fn the_readme_synopsis_names_every_flag_of_each_command() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    let block = readme
        .split("## The server: `agora-server`\n\n```\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's synopsis block");
    // Each entry: its first line ("agora-server llm generate PROMPT [...]") and the indented
    // lines that continue it.
    let mut entries: Vec<String> = Vec::new();
    for line in block.lines() {
        match entries.last_mut() {
            Some(entry) if line.starts_with(' ') => entry.push_str(line),
            _ => entries.push(line.to_string()),
        }
    }
    let flags = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(String::from)
            .filter(|f| !["--help", "--version", "--assets"].contains(&f.as_str()))
            .collect()
    };
    let mut checked = 0;
    for entry in entries.iter().filter(|e| e.starts_with("agora-server ")) {
        let words: Vec<&str> = (entry.split_whitespace().skip(1))
            .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
            .collect();
        let mut args = words.clone();
        args.push("--help");
        let help = agora(&args);
        assert!(help.status.success(), "{words:?}");
        let listed: std::collections::BTreeSet<String> = (text(&help.stdout).lines())
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .flat_map(|l| flags(l.split("  ").next().unwrap_or_default()))
            .collect();
        assert_eq!(
            flags(entry),
            listed,
            "README vs `agora-server {}`",
            words.join(" ")
        );
        checked += 1;
    }
    assert!(
        checked >= 9,
        "only {checked} commands in the README's synopsis"
    );
}

/// The template map beside docs/maps.md is a town a first persona can live in: it passes
/// `map check`, a persona of it passes `persona check`, and a day runs on it.
#[test]
fn the_template_map_is_a_town_to_start_from() {
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/template.tmj");
    let template = template.to_str().unwrap();
    let out = agora(&["map", "check", template]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kitchen: stove, dining table, sofa"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rosa.toml"),
        r#"
name = "Rosa Delgado"
age = 31
traits = ["patient", "curious"]
backstory = "Rosa runs the cafe."
lifestyle = "Up early."
speech_style = "Warm."
wake = "06:30"
sleep = "22:00"
home = "Cottage:bedroom"
author = "tests"
license = "CC0-1.0"

[work]
place = "Cafe:cafe:counter"
start = "08:00"
end = "15:00"
activity = "making coffee"

[[visits]]
place = "Green"
at = "16:00"
minutes = 60
activity = "reading on the bench"
"#,
    )
    .unwrap();
    let personas = dir.path().to_str().unwrap();
    let out = agora(&["persona", "check", personas, "--map", template]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = dir.path().join("run");
    let out = agora(&[
        "sim",
        "--map",
        template,
        "--personas",
        personas,
        "--brain",
        "routine",
        "--hours",
        "3",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(
        events.contains("Template Town:Cafe:cafe:counter"),
        "Rosa works at the counter"
    );
}

/// Warnings of what a valid persona does unexpectedly reach the modder on stderr, with the
/// file and field, and the check still passes.
#[test]
fn persona_check_warns_of_a_moved_visit_and_a_shared_bed() {
    let dir = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(common::assets().join("personas")).unwrap() {
        let file = file.unwrap().path();
        if file.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&file, dir.path().join(file.file_name().unwrap())).unwrap();
        }
    }
    // A 09:00 errand inside Gabriel's 07:00-12:00 work.
    let gabriel = dir.path().join("gabriel_reyes.toml");
    let errand = "\n[[visits]]\nplace = \"Willow Cafe\"\nat = \"09:00\"\nminutes = 30\nactivity = \"coffee\"\n";
    let text_of = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    std::fs::write(&gabriel, text_of(&gabriel) + errand).unwrap();
    // A newcomer given Jordan Lee's room.
    let jordan = text_of(&dir.path().join("jordan_lee.toml"));
    let home = jordan.lines().find(|l| l.starts_with("home = ")).unwrap();
    std::fs::write(
        dir.path().join("twin.toml"),
        jordan.replace("name = \"Jordan Lee\"", "name = \"Jordan Twin\""),
    )
    .unwrap();
    let out = agora(&["persona", "check", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "gabriel_reyes.toml: field `visits[4]`: starts at 09:00 while work (07:00-12:00)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("twin.toml: field `home`") && stderr.contains("in jordan_lee's bed"),
        "{home}: {stderr}"
    );
}
