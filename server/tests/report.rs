//! Run reports of the shipped town: a routine day's report has every section, its heatmap
//! accounts for every agent-hour of the log, its timelines have a row per agent, and
//! `--compare` names the first event where two seeds part. A killed run's cut log, a newer
//! log's unknown kinds and a folder that is no run are reported, not fatal or silent.

use agora_server::report::{self, Divergence, ReportOptions, RunFolder};
use agora_server::sim::{self, SimConfig, SimSummary};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn assets() -> PathBuf {
    common::assets()
}

fn run_day(seed: u64, out: &Path) -> SimSummary {
    let config = SimConfig {
        agents: Some(25),
        seed,
        ..SimConfig::routine_day(&assets(), out.to_path_buf())
    };
    sim::run(&config).expect("the day runs")
}

fn options(runs: &[&Path], out: &Path) -> ReportOptions {
    ReportOptions {
        runs: runs.iter().map(|r| r.to_path_buf()).collect(),
        out: out.to_path_buf(),
        map: assets().join("maps/maple_hollow.tmj"),
        personas: assets().join("personas"),
        progress: false,
    }
}

/// The HTML of the section with `id`, up to the next one.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..].find("</section>").unwrap() + start;
    &html[start..end]
}

#[test]
fn a_routine_days_report_shows_every_section_and_accounts_for_every_agent_hour() {
    let runs = tempfile::tempdir().unwrap();
    let (a, b) = (runs.path().join("a"), runs.path().join("b"));
    let summary = run_day(1, &a);
    run_day(2, &b);

    // The log read back: every agent-hour of the day is on some tile, and in some sector.
    let folder = RunFolder::read(
        &a,
        &assets().join("maps/maple_hollow.tmj"),
        &assets().join("personas"),
        false,
    )
    .unwrap();
    assert!(folder.warnings.is_empty(), "{:?}", folder.warnings);
    let agent_hours = summary.agents as f64 * summary.game_hours;
    let on_tiles: f64 = folder.log.heat.values().sum::<u64>() as f64 / 3_600_000.0;
    assert!(
        (on_tiles - agent_hours).abs() < 1e-6,
        "{on_tiles} agent-hours on tiles, {agent_hours} in the day"
    );
    assert_eq!(folder.log.agents.len(), 25);

    let out = runs.path().join("report.html");
    report::write(&options(&[&a], &out)).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: no script, and nothing to fetch (SVG's xmlns names, it loads nothing).
    for fetch in ["<script", "src=", "href=", "<link", "url(", "@import"] {
        assert!(!html.contains(fetch), "the page holds {fetch}");
    }
    for id in [
        "header", "places", "days", "meetings", "cost", "news", "ticks",
    ] {
        section(&html, id);
    }
    assert!(section(&html, "header").contains(&summary.determinism_hash));
    // The sector table adds up to the day's agent-hours.
    let places = section(&html, "places");
    assert!(places.contains("<svg"), "a heatmap is drawn");
    assert!(
        places.contains(&format!("<td>all</td><td>{agent_hours:.1}</td>")),
        "sectors sum to {agent_hours:.1} agent-hours"
    );
    assert!(places.contains("<td>Willow Cafe</td>"));
    // One timeline row per agent: each agent's name labels a row.
    let days = section(&html, "days");
    for agent in &folder.log.agents {
        assert_eq!(
            days.matches(&format!(">\n{}\n</text>", agent.name)).count(),
            1,
            "{} labels one row",
            agent.name
        );
    }
    // A routine day has no conversations and no model: the sections say so.
    assert!(section(&html, "meetings").contains("No conversations"));
    assert!(section(&html, "cost").contains("No language-model calls"));
    assert!(section(&html, "news").contains("Not a diffusion run"));
    assert!(section(&html, "ticks").contains("p99"));

    // Two seeds: the same inputs but the seed, so the logs part at the first seeded choice.
    let divergence =
        report::first_difference(&a.join("events.jsonl"), &b.join("events.jsonl")).unwrap();
    let Divergence::Differ { line, a: la, b: lb } = &divergence else {
        panic!("two seeds gave the same log");
    };
    assert!(
        *line > 1,
        "run_started differs by its seed alone: not an event that differs"
    );
    assert_ne!(la, lb);
    let compared = runs.path().join("compare.html");
    let written = report::write(&options(&[&a, &b], &compared)).unwrap();
    assert_eq!(written.divergence.as_ref(), Some(&divergence));
    let html = std::fs::read_to_string(&compared).unwrap();
    assert!(html.contains(&format!("The logs part at line {line}")));
    assert_eq!(
        section(&html, "places").matches("<svg").count(),
        2,
        "two columns"
    );
}

#[test]
fn a_cut_log_and_unknown_kinds_are_reported_and_a_non_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("events.jsonl"),
        concat!(
            r#"{"tick":0,"time":21600000,"kind":"run_started","format":1,"seed":3,"map":"Maple Hollow","start":21600000,"tick_ms":10000,"agents":1,"brain":"routine"}"#,
            "\n",
            r#"{"tick":0,"time":21600000,"kind":"agent_spawned","agent":"ann","name":"Ann","persona_hash":"00","tile":[10,10],"home":"Maple Hollow:Alvarez House:main bedroom"}"#,
            "\n",
            r#"{"tick":3,"time":21630000,"kind":"weather","sky":"rain"}"#,
            "\n",
            r#"{"tick":6,"time":21660000,"kind":"move","agent":"ann","from":[10,10],"to":[11,10]}"#,
            "\n",
            r#"{"tick":9,"time":21690000,"kind":"mo"#,
        ),
    )
    .unwrap();
    let server = env!("CARGO_BIN_EXE_agora-server");
    let output = Command::new(server)
        .args(["report", "--quiet"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 5, the last, is cut short"),
        "{stderr}"
    );
    assert!(stderr.contains("weather (1)"), "{stderr}");
    assert!(stderr.contains("persona ann is not in"), "{stderr}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("weather (1)"), "the page lists it too");

    let output = Command::new(server)
        .args(["report"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a run folder: it has no events.jsonl"),
        "{stderr}"
    );
    let output = Command::new(server)
        .args(["report", "--compare"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--compare takes two run folders"));
}

/// Runs `browser` headless on `page` with a bounded wait; returns its stderr (the page's
/// console messages are logged there as `CONSOLE` lines).
fn open_in_browser(browser: &str, page: &Path, screenshot: &Path) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2400",
        ])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{browser}: {e} (scripts/install-chromium installs it)"));
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("{browser} did not finish in 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    stderr
}

fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn the_report_opens_in_a_real_browser_with_no_console_errors_and_is_not_blank() {
    let browser = std::env::var("AGORA_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let dir = tempfile::tempdir().unwrap();
    // The check can fail: a page that logs an error is caught.
    let probe = dir.path().join("probe.html");
    std::fs::write(
        &probe,
        "<!DOCTYPE html><html><body><script>console.error('probe-error')</script></body></html>",
    )
    .unwrap();
    let stderr = open_in_browser(&browser, &probe, &dir.path().join("probe.png"));
    assert!(
        console_lines(&stderr)
            .iter()
            .any(|l| l.contains("probe-error")),
        "the browser's console is not seen: {stderr}"
    );

    let run = dir.path().join("run");
    run_day(3, &run);
    let page = run.join("report.html");
    report::write(&options(&[&run], &page)).unwrap();
    let shot = dir.path().join("report.png");
    let stderr = open_in_browser(&browser, &page, &shot);
    assert_eq!(
        console_lines(&stderr),
        Vec::<&str>::new(),
        "console messages"
    );
    // Not blank: the plots put many colours on much of the page.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let pixels = &pixels[..frame.buffer_size()];
    let total = pixels.len() / channels;
    let mut colours = std::collections::BTreeSet::new();
    let mut inked = 0;
    for px in pixels.chunks(channels) {
        colours.insert((px[0] / 8, px[1] / 8, px[2] / 8));
        if px[..3].iter().any(|c| *c < 200) {
            inked += 1;
        }
    }
    assert!((frame.width, frame.height) == (1280, 2400), "{frame:?}");
    assert!(
        inked * 20 > total,
        "only {inked} of {total} pixels are not near-white"
    );
    assert!(colours.len() > 30, "only {} colours", colours.len());
}
