//! How the rules backend shapes a program, as data: the optimizer's search (docs/optimizer.md)
//! emits one program per strategy and lets the gate judge each. Every strategy's program must
//! mean the same; the checker, not this module, is what makes that true.

/// The shape of the RPC filter of LANGUAGE.md §4.1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FilterShape {
    /// Field by field through the kernel's header structs, one bounds check per header: the
    /// plainest C, and the program `--no-optimize` emits.
    #[default]
    PerField,
    /// Fused reads (x86 tolerates unaligned packet loads): one bounds check for every
    /// fixed-offset read; the EtherType, IP version and IHL as one byte-swapped word and a
    /// range check; `frag_off` and the protocol in one masked compare; the UDP port and
    /// length as one word whose range check yields the payload length.
    Fused,
}

impl FilterShape {
    pub const ALL: [FilterShape; 2] = [FilterShape::PerField, FilterShape::Fused];

    /// The name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FilterShape::PerField => "per-field",
            FilterShape::Fused => "fused",
        }
    }
}

/// Where the lock of LANGUAGE.md §4.5 lives, for a program that takes one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockPlace {
    /// The value of a one-entry array map, looked up on every request: loads with every
    /// loader, aya 0.14 included (it gives global data no BTF, and the kernel wants BTF for
    /// a lock).
    #[default]
    ArrayMap,
    /// A global in its own section `.data.sb_lock`: no lookup (about 12 instructions
    /// fewer), but the loader must give global data its BTF, as libbpf and bpftool do.
    GlobalData,
}

impl LockPlace {
    pub const ALL: [LockPlace; 2] = [LockPlace::ArrayMap, LockPlace::GlobalData];

    pub fn name(self) -> &'static str {
        match self {
            LockPlace::ArrayMap => "map",
            LockPlace::GlobalData => "global",
        }
    }
}

/// Where the constant operand of an atomic add comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddendPlace {
    /// Wherever clang puts it: a constant used on both sides of a helper call is often
    /// kept in a callee-saved register (r6–r9), which the JIT must push and pop.
    #[default]
    Kept,
    /// Loaded again next to each add: an empty `asm` that clobbers r6–r9 before the add
    /// keeps clang from holding the constant across the call (logging_fault: one JIT
    /// instruction fewer, a `mov` for a push and a pop).
    Reloaded,
}

impl AddendPlace {
    pub const ALL: [AddendPlace; 2] = [AddendPlace::Kept, AddendPlace::Reloaded];

    pub fn name(self) -> &'static str {
        match self {
            AddendPlace::Kept => "kept",
            AddendPlace::Reloaded => "reloaded",
        }
    }
}

/// How the handler's branches are laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BranchShape {
    /// One C `if` per `match`, as the policy nests them.
    #[default]
    AsWritten,
    /// Nested matches that share their other arm merged into one condition, a draw taken
    /// only where a packet test before it passes, and with the fused filter a first payload
    /// size test folded into the filter's length check (`reshape.rs`): fault_condition's
    /// `r < 0.5` then `r < prob and size > min` becomes a filter that refuses payloads of
    /// at most `min` bytes, then one draw and `r < prob`.
    Merged,
}

impl BranchShape {
    pub const ALL: [BranchShape; 2] = [BranchShape::AsWritten, BranchShape::Merged];

    pub fn name(self) -> &'static str {
        match self {
            BranchShape::AsWritten => "as-written",
            BranchShape::Merged => "merged",
        }
    }
}

/// How a test that ends in one of two verdicts is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VerdictShape {
    /// An `if` with a `return` in each arm.
    #[default]
    Branch,
    /// `if (r < K) reject else forward`, with nothing else in either arm, as one
    /// arithmetic return: `XDP_PASS − ((u64)r − K >> 63)`, since `r − K` borrows exactly when
    /// `r < K` and XDP_DROP is XDP_PASS − 1 (fault, fault_condition: one JIT instruction
    /// fewer). Only for a variable known to lie in [0, 2⁶³) and a program without the lock.
    Arithmetic,
}

impl VerdictShape {
    pub const ALL: [VerdictShape; 2] = [VerdictShape::Branch, VerdictShape::Arithmetic];

    pub fn name(self) -> &'static str {
        match self {
            VerdictShape::Branch => "branch",
            VerdictShape::Arithmetic => "arithmetic",
        }
    }
}

/// Everything the rules backend may vary without changing what a program means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Strategy {
    pub filter: FilterShape,
    /// `None` for a program that takes no lock (the array map if one does).
    pub lock: Option<LockPlace>,
    pub addends: AddendPlace,
    pub branches: BranchShape,
    pub verdicts: VerdictShape,
}

impl Strategy {
    /// Every strategy for a program that does or does not take a lock, in the order the
    /// search tries them (the default first).
    pub fn all(takes_lock: bool) -> Vec<Strategy> {
        Strategy::all_within(takes_lock, &LockPlace::ALL)
    }

    /// Every strategy whose lock is in one of `places` (a loader may not load the others:
    /// aya 0.14 and a lock in global data); with no place given, the default one.
    pub fn all_within(takes_lock: bool, places: &[LockPlace]) -> Vec<Strategy> {
        let locks = match (takes_lock, places) {
            (false, _) => vec![None],
            (true, []) => vec![Some(LockPlace::default())],
            (true, places) => places.iter().copied().map(Some).collect(),
        };
        let mut all = Vec::new();
        for lock in locks {
            for filter in FilterShape::ALL {
                for addends in AddendPlace::ALL {
                    for branches in BranchShape::ALL {
                        for verdicts in VerdictShape::ALL {
                            all.push(Strategy {
                                filter,
                                lock,
                                addends,
                                branches,
                                verdicts,
                            });
                        }
                    }
                }
            }
        }
        all
    }

    /// How a report names it: `filter=fused lock=global` (a dimension at its default is
    /// named only for the filter).
    pub fn describe(&self) -> String {
        let mut out = format!("filter={}", self.filter.name());
        if let Some(lock) = self.lock {
            out.push_str(&format!(" lock={}", lock.name()));
        }
        if self.addends != AddendPlace::default() {
            out.push_str(&format!(" addends={}", self.addends.name()));
        }
        if self.branches != BranchShape::default() {
            out.push_str(&format!(" branches={}", self.branches.name()));
        }
        if self.verdicts != VerdictShape::default() {
            out.push_str(&format!(" verdicts={}", self.verdicts.name()));
        }
        out
    }
}
