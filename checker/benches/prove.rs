//! How long the checker takes to prove each example (ISSUE 4's target: every check under
//! 1 s, the median under 200 ms). Prints numbers; asserts nothing, because timing on a
//! shared VM is not a test. Run with `cargo bench -p simplebpf-checker --bench prove`;
//! extra arguments are more `.appnet` files to time (absolute paths: cargo runs benches in
//! the crate's directory).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

use simplebpf_checker::Verdict;
use simplebpf_compiler::clang::ClangOptions;

const RUNS: usize = 5;

fn main() {
    let mut files: Vec<PathBuf> = support::EXAMPLES
        .iter()
        .map(|name| support::example_path(name))
        .collect();
    files.extend(
        std::env::args()
            .skip(1)
            .filter(|a| a.ends_with(".appnet"))
            .map(PathBuf::from),
    );
    println!(
        "{:<28} {:>6} {:>8} {:>8} {:>8}  verdict",
        "policy", "paths", "min ms", "median", "max ms"
    );
    let mut medians = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let Ok(source) = std::fs::read_to_string(path) else {
            // Cargo runs benches in the crate's directory: give absolute paths.
            println!("{name:<28} cannot be read ({})", path.display());
            continue;
        };
        let Some((program, c)) = support::emit(&source) else {
            println!("{name:<28} does not compile");
            continue;
        };
        let elf = support::compile(&c, &ClangOptions::default());
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..RUNS {
            let started = std::time::Instant::now();
            let verdict = support::verdict(&program, &elf);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            last = Some(verdict);
        }
        times.sort_by(f64::total_cmp);
        let median = times[RUNS / 2];
        medians.push(median);
        let (paths, verdict) = match last.expect("at least one run") {
            Verdict::Equivalent { paths, .. } => (paths.to_string(), "equivalent".to_string()),
            Verdict::NotEquivalent { .. } => ("-".to_string(), "NOT equivalent".to_string()),
            Verdict::Race { variable, .. } => ("-".to_string(), format!("race on {variable}")),
            Verdict::Unknown { reason } => ("-".to_string(), format!("unknown: {reason}")),
        };
        println!(
            "{name:<28} {paths:>6} {:>8.0} {median:>8.0} {:>8.0}  {verdict}",
            times[0],
            times[RUNS - 1]
        );
    }
    medians.sort_by(f64::total_cmp);
    if !medians.is_empty() {
        let overall = medians[medians.len() / 2];
        let worst = medians[medians.len() - 1];
        println!(
            "median of medians {overall:.0} ms (target < 200), slowest median {worst:.0} ms (target < 1000)"
        );
    }
}
