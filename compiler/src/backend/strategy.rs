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

/// Everything the rules backend may vary without changing what a program means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Strategy {
    pub filter: FilterShape,
}

impl Strategy {
    /// Every strategy, in the order the search tries them (the default first).
    pub fn all() -> Vec<Strategy> {
        FilterShape::ALL
            .into_iter()
            .map(|filter| Strategy { filter })
            .collect()
    }

    /// How a report names it: `filter=fused`.
    pub fn describe(&self) -> String {
        format!("filter={}", self.filter.name())
    }
}
