//! Builds the policies the loader can attach: each a proven object and a Rust module with
//! its state and the aya functions that read and initialise it.

fn main() {
    for policy in [
        "../bench/logging_fault.appnet",
        "../bench/logging.appnet",
        "../ratelimit.appnet",
        "../acl.appnet",
        "policies/sizes.appnet",
    ] {
        simplebpf::Builder::new(policy)
            .port(50051)
            .aya(true)
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
    }
}
