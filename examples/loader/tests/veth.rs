//! End to end, through a real interface: two network namespaces joined by a veth pair, the
//! loader attaching a policy's proven program to one end, traffic sent from the other, and
//! the state the loader prints compared with what the traffic must have done.
//!
//! - non-RPC traffic first (UDP to another port, TCP to the service port, ICMP echo, over
//!   IPv4 and IPv6): every probe must come back answered by the far namespace's stack (port
//!   unreachable, a reset, an echo reply), so it passed the program, and the state must not
//!   change;
//! - then `RPCS` datagrams to the service port, half over IPv4, half over IPv6: `logging`
//!   must count every one and every payload byte, `logging_fault` must count every one and
//!   drop a number inside the 99.9 % bounds of the binomial law of `1 − 0.95`.
//!
//! Needs root (namespaces, XDP); without it the test says it did not run, and fails when
//! `SIMPLEBPF_REQUIRE_KERNEL=1`. Everything it creates lives in namespaces it made and is
//! removed when it ends, pass or fail. It runs itself inside a namespace to send.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const LOADER: &str = env!("CARGO_BIN_EXE_simplebpf-loader");

/// The loader's policies are built for this port (build.rs).
const PORT: u16 = 50051;
const OTHER_PORT: u16 = 50052;
const RPCS: u64 = 4000;
const PAYLOAD: usize = 64;

const NEAR_V4: &str = "10.199.0.1";
const FAR_V4: &str = "10.199.0.2";
const NEAR_V6: &str = "fd00:5b::1";
const FAR_V6: &str = "fd00:5b::2";

/// Set when the test runs itself inside the sending namespace: which traffic to send.
const SEND_ENV: &str = "SIMPLEBPF_VETH_SEND";

fn main() {
    match std::env::var(SEND_ENV).as_deref() {
        Ok("non-rpc") => return send_non_rpc(),
        Ok("rpc") => return send_rpcs(),
        _ => {}
    }
    let required = std::env::var("SIMPLEBPF_REQUIRE_KERNEL").as_deref() == Ok("1");
    if let Some(why) = cannot_run() {
        assert!(
            !required,
            "SIMPLEBPF_REQUIRE_KERNEL=1, but the veth test cannot run: {why}"
        );
        println!("veth end-to-end test: not run ({why})");
        return;
    }
    let start = Instant::now();
    for (policy, mode) in [
        (Policy::Logging, "skb"),
        (Policy::LoggingFault, "skb"),
        // veth runs XDP in its driver too.
        (Policy::Logging, "drv"),
    ] {
        run(policy, mode);
    }
    // The generated aya functions for a float, an Instant set from the load time, and a
    // hash map.
    run_ratelimit();
    run_sizes();
    println!(
        "veth end-to-end test: passed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

fn cannot_run() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("it needs root for network namespaces and XDP".to_string());
    }
    for tool in ["ip", "ping"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!("`{tool}` is missing (scripts/setup installs it)"));
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Logging,
    LoggingFault,
    Ratelimit,
    Sizes,
}

impl Policy {
    fn flag(self) -> &'static str {
        match self {
            Policy::Logging => "logging",
            Policy::LoggingFault => "logging-fault",
            Policy::Ratelimit => "ratelimit",
            Policy::Sizes => "sizes",
        }
    }
}

/// A counting policy: non-RPC traffic changes nothing, RPCs are all counted.
fn run(policy: Policy, mode: &str) {
    let started = Instant::now();
    let net = Namespaces::create();
    let mut loader = Loader::start(&net, policy, mode);
    let quiet = loader.next_state();
    assert!(
        quiet.values().all(|v| *v == 0),
        "{policy:?} before traffic: {quiet:?}"
    );

    net.send("non-rpc");
    // A state printed after every probe was answered.
    loader.next_state();
    let after_non_rpc = loader.next_state();
    assert_eq!(
        after_non_rpc, quiet,
        "{policy:?}: non-RPC traffic changed the state"
    );

    net.send("rpc");
    std::thread::sleep(Duration::from_millis(200));
    let last = loader.stop();
    let mut expected = String::new();
    let count = |name: &str| {
        *last
            .get(name)
            .unwrap_or_else(|| panic!("{policy:?}: no `{name}` in {last:?}"))
    };
    assert_eq!(count("req_count"), RPCS as i64, "{policy:?}: {last:?}");
    match policy {
        Policy::Logging => {
            assert_eq!(count("total_bytes"), (RPCS as usize * PAYLOAD) as i64);
        }
        Policy::LoggingFault => {
            let (low, high) = binomial_bounds(RPCS, 1.0 - 0.95, 0.999);
            let dropped = count("drop_count");
            assert!(
                (low as i64..=high as i64).contains(&dropped),
                "{dropped} of {RPCS} dropped, outside [{low}, {high}]"
            );
            expected = format!("; 99.9 % bounds of the drops: [{low}, {high}]");
        }
        Policy::Ratelimit | Policy::Sizes => unreachable!("they have their own runs"),
    }
    println!(
        "veth {} ({mode}): {RPCS} RPCs of {PAYLOAD} bytes and 26 non-RPC probes: {}{expected} ({:.1} s)",
        policy.flag(),
        last.iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
}

/// The smallest and largest counts outside which a Binomial(n, p) falls with probability at
/// most `1 − level`, split evenly between the tails.
fn binomial_bounds(n: u64, p: f64, level: f64) -> (u64, u64) {
    let tail = (1.0 - level) / 2.0;
    let ln_pmf = |k: u64| {
        let ln_choose = ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k);
        ln_choose + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()
    };
    let pmf: Vec<f64> = (0..=n).map(|k| ln_pmf(k).exp()).collect();
    let mut below = 0.0;
    let mut low = 0;
    while below + pmf[low as usize] <= tail {
        below += pmf[low as usize];
        low += 1;
    }
    let mut above = 0.0;
    let mut high = n;
    while above + pmf[high as usize] <= tail {
        above += pmf[high as usize];
        high -= 1;
    }
    (low, high)
}

fn ln_factorial(n: u64) -> f64 {
    (2..=n).map(|k| (k as f64).ln()).sum()
}

/// Two namespaces joined by a veth pair, removed (with the pair) when dropped.
struct Namespaces {
    near: String,
    far: String,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("`ip` runs");
    assert!(status.success(), "ip {} failed", args.join(" "));
}

impl Namespaces {
    fn create() -> Namespaces {
        let id = std::process::id();
        let net = Namespaces {
            near: format!("sbpf-near-{id}"),
            far: format!("sbpf-far-{id}"),
        };
        // Made before anything is created, so that whatever was created goes.
        ip(&["netns", "add", &net.near]);
        ip(&["netns", "add", &net.far]);
        ip(&[
            "link", "add", "sbpf0", "netns", &net.near, "type", "veth", "peer", "name", "sbpf1",
            "netns", &net.far,
        ]);
        for (ns, dev, v4, v6) in [
            (&net.near, "sbpf0", NEAR_V4, NEAR_V6),
            (&net.far, "sbpf1", FAR_V4, FAR_V6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // Every probe is answered, however quickly they come.
        let status = Command::new("ip")
            .args(["netns", "exec", &net.near, "sysctl", "-q", "-w"])
            .args(["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"])
            .status()
            .expect("sysctl runs");
        assert!(status.success(), "sysctl in {} failed", net.near);
        net
    }

    /// Runs this test inside the far namespace to send `what`; it must succeed.
    fn send(&self, what: &str) {
        let exe = std::env::current_exe().expect("the test knows its path");
        let output = Command::new("ip")
            .args(["netns", "exec", &self.far])
            .arg(exe)
            .env(SEND_ENV, what)
            .output()
            .expect("the sender runs");
        assert!(
            output.status.success(),
            "sending {what} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.near, &self.far] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The loader attached in the near namespace, its output read line by line; killed if the
/// test ends before it is stopped.
struct Loader {
    child: Child,
    lines: Receiver<String>,
}

impl Loader {
    fn start(net: &Namespaces, policy: Policy, mode: &str) -> Loader {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.near, LOADER])
            .args(["--iface", "sbpf0", "--mode", mode, "--interval-ms", "100"])
            .args(["--policy", policy.flag()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the loader starts");
        let stdout = child.stdout.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut loader = Loader { child, lines };
        let attached = loader.line();
        assert!(attached.starts_with("attached "), "{attached}");
        loader
    }

    fn line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => panic!(
                "the loader said nothing for 30 s (exit: {:?})",
                self.child.try_wait()
            ),
        }
    }

    fn next_state(&mut self) -> BTreeMap<String, i64> {
        parse_state(&self.line())
    }

    /// Ctrl-C: the loader detaches and prints the final state.
    fn stop(&mut self) -> BTreeMap<String, i64> {
        parse_state(&self.stop_line())
    }

    /// Ctrl-C: the loader detaches; its final state line as printed.
    fn stop_line(&mut self) -> String {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        loop {
            let line = self.line();
            if let Some(state) = line.strip_prefix("detached; final: ") {
                let exit = self.child.wait().expect("the loader exits");
                assert!(exit.success(), "the loader exited with {exit}");
                return state.to_string();
            }
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `req_count 12, drop_count 1` as names and values.
fn parse_state<T: std::str::FromStr>(line: &str) -> BTreeMap<String, T> {
    line.split(", ")
        .map(|pair| {
            let (name, value) = pair
                .split_once(' ')
                .unwrap_or_else(|| panic!("not a state line: {line}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("not a state line: {line}"));
            (name.to_string(), value)
        })
        .collect()
}

fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The token bucket: `write_init` put the load time in `last` (a `u64` read back from
/// `.bss`) and the bucket starts full (a float at its scale, read back from `.data`); a
/// burst of RPCs far above 1 000/s empties it.
fn run_ratelimit() {
    let net = Namespaces::create();
    let before = monotonic_ns();
    let mut loader = Loader::start(&net, Policy::Ratelimit, "skb");
    let after = monotonic_ns();
    let first: BTreeMap<String, f64> = parse_state(&loader.line());
    assert_eq!(first["tokens"], 100.0, "{first:?}");
    let last = first["last"] as u64;
    assert!(
        (before..=after).contains(&last),
        "{last} not in [{before}, {after}]"
    );
    net.send("rpc");
    let end: BTreeMap<String, f64> = parse_state(&loader.stop_line());
    assert!((0.0..50.0).contains(&end["tokens"]), "{end:?}");
    assert!(end["last"] as u64 > last, "{end:?}");
    println!(
        "veth ratelimit: loaded with tokens 100, last = the load time; after {RPCS} RPCs: tokens {}",
        end["tokens"]
    );
}

/// A hash map the program writes: after RPCs of `PAYLOAD` bytes it holds that size, read
/// back through the generated `State::read`.
fn run_sizes() {
    let net = Namespaces::create();
    let mut loader = Loader::start(&net, Policy::Sizes, "skb");
    assert_eq!(loader.line(), "seen {}");
    net.send("rpc");
    let end = loader.stop_line();
    let prefix = format!("seen {{{PAYLOAD}: ");
    assert!(end.starts_with(&prefix) && !end.contains(','), "{end}");
    println!("veth sizes: after {RPCS} RPCs: {end}");
}

/// In the far namespace: probes that the near namespace's stack must answer.
fn send_non_rpc() {
    let timeout = Duration::from_secs(2);
    for near in [NEAR_V4, NEAR_V6] {
        let ip: IpAddr = near.parse().expect("an address");
        for _ in 0..5 {
            // A connected UDP socket hears the port-unreachable as a refusal.
            let socket = UdpSocket::bind(local(ip)).expect("bind");
            socket.connect((ip, OTHER_PORT)).expect("connect");
            socket.set_read_timeout(Some(timeout)).expect("timeout");
            socket.send(&[0; PAYLOAD]).expect("send");
            let answer = socket.recv(&mut [0; 64]).map_err(|e| e.kind());
            assert_eq!(
                answer,
                Err(ErrorKind::ConnectionRefused),
                "UDP to {near}:{OTHER_PORT}"
            );
        }
        for _ in 0..3 {
            // TCP to the service port: a SYN is not an RPC; the reset proves it passed.
            let answer = TcpStream::connect_timeout(&SocketAddr::new(ip, PORT), timeout)
                .map(drop)
                .map_err(|e| e.kind());
            assert_eq!(
                answer,
                Err(ErrorKind::ConnectionRefused),
                "TCP to {near}:{PORT}"
            );
        }
        let ping = Command::new("ping")
            .args(["-c", "5", "-i", "0.01", "-W", "2", "-q", near])
            .output()
            .expect("ping runs");
        assert!(
            ping.status.success(),
            "ping {near}: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
    }
}

/// In the far namespace: `RPCS` datagrams of `PAYLOAD` bytes to the service port, half over
/// IPv4 and half over IPv6, paced so that no queue on the way overflows.
fn send_rpcs() {
    for near in [NEAR_V4, NEAR_V6] {
        let ip: IpAddr = near.parse().expect("an address");
        let socket = UdpSocket::bind(local(ip)).expect("bind");
        for i in 0..RPCS / 2 {
            socket.send_to(&[0x5b; PAYLOAD], (ip, PORT)).expect("send");
            if i % 16 == 15 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

fn local(peer: IpAddr) -> SocketAddr {
    let far: IpAddr = match peer {
        IpAddr::V4(_) => FAR_V4.parse().expect("an address"),
        IpAddr::V6(_) => FAR_V6.parse().expect("an address"),
    };
    SocketAddr::new(far, 0)
}
