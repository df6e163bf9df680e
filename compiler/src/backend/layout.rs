//! Where the rules backend puts each state variable (LANGUAGE.md §4.3): its plan for the C
//! it writes. Everything that reads an object back — the report, the loader, the checker —
//! reads the contract from the object (`crate::contract`), not this plan.

use simplebpf_dsl::interp::Value;
use simplebpf_dsl::ir::Type;

pub use crate::contract::{Codec, c_type, is_scalar};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A global variable named after the state variable.
    Global(Codec),
    /// Never written after `init` and known at build time: folded into the code.
    Folded(Value),
    /// A `BPF_MAP_TYPE_HASH` named after the state variable.
    HashMap {
        key: Codec,
        value: Codec,
        capacity: u64,
    },
    /// A `BPF_MAP_TYPE_RINGBUF` named after the state variable, plus its length global
    /// (`contract::len_symbol`).
    RingBuf { element: Codec },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarLayout {
    pub name: String,
    pub ty: Type,
    pub storage: Storage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub vars: Vec<VarLayout>,
    /// Whether the program takes a `bpf_spin_lock` (in the one-entry array map `sb_lock`).
    pub lock: bool,
    /// Whether `init` reads `current_time()`: a loader must run it at load time and write
    /// the result (simplebpf's loader does); the object's initial data is `init` at time 0.
    pub init_reads_time: bool,
    /// A test build: draws and time come from the globals `sb_test_draws`, `sb_test_draw_next`
    /// and `sb_test_now`. Never shipped.
    pub test_hooks: bool,
}

impl Layout {
    pub fn var(&self, name: &str) -> Option<&VarLayout> {
        self.vars.iter().find(|var| var.name == name)
    }
}
