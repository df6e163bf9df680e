//! The optimizer's progress as a build reports it: one report per variant after the first,
//! in order, and the best cost so far never rising.

mod common;

use std::sync::{Arc, Mutex};

use simplebpf::pipeline::{self, BuildOptions};
use simplebpf_optimizer::KernelUse;
use simplebpf_optimizer::search::{Progress, ProgressSink};

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Progress>>);

impl ProgressSink for Recorder {
    fn progress(&self, progress: &Progress) {
        self.0.lock().unwrap().push(*progress);
    }
}

#[test]
fn the_search_reports_every_variant_and_its_best_only_improves() {
    let recorder = Arc::new(Recorder::default());
    let options = BuildOptions {
        kernel: KernelUse::Skip,
        progress: Some(recorder.clone()),
        ..BuildOptions::default()
    };
    let source = std::fs::read(common::root().join("examples/ratelimit.appnet")).unwrap();
    let built = pipeline::build("ratelimit", &source, &options).unwrap();
    let seen = recorder.0.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    let total = seen[0].total;
    for (i, progress) in seen.iter().enumerate() {
        assert_eq!(progress.done, i + 1, "{seen:?}");
        assert_eq!(progress.total, total);
    }
    assert_eq!(seen.last().unwrap().done, total - 1);
    for pair in seen.windows(2) {
        assert!(pair[1].best <= pair[0].best, "{pair:?}");
    }
    let optimizer = built.report.optimizer.as_ref().unwrap();
    assert_eq!(seen[0].best.elf, optimizer.before_elf);
    assert!(seen.last().unwrap().best.elf >= built.report.elf_insns);
}
