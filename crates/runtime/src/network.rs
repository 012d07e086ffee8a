//! The job network (root only): each replica gets a network namespace of its own, joined to
//! the host by a veth pair, with one address from a private range that only this machine
//! routes (default `10.213.0.0/16`).
//!
//! The host side holds the network's host address (default `10.213.0.1`) on a port-less
//! bridge `tf-jobs0`, so the daemon can listen on it before any job runs.
//! Inside a namespace the only route is to that host address (plus a default route through
//! it when NAT is on), so a job reaches the platform's API but not other jobs, and nothing
//! leaves the machine unless `job_nat` adds a masquerading rule.
//!
//! Architecture Invariant: an address is claimed by adding its /32 route; the kernel refuses a
//! second identical route, so two runtimes on one machine never hand out the same address.
//! Everything is done with iproute2 (`ip`) and, for NAT only, `iptables`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{Error, Result};

/// The host-side device that holds the job network's host address.
const HOST_DEVICE: &str = "tf-jobs0";

/// The private network jobs live on, as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobNetwork {
    /// The host's address on it: the daemon listens here for jobs (the API).
    pub host_address: Ipv4Addr,
    /// Its prefix length; replicas get addresses from the rest of the prefix.
    pub prefix_len: u8,
}

impl Default for JobNetwork {
    fn default() -> JobNetwork {
        JobNetwork {
            host_address: Ipv4Addr::new(10, 213, 0, 1),
            prefix_len: 16,
        }
    }
}

impl JobNetwork {
    fn network(self) -> u32 {
        u32::from(self.host_address) & self.mask()
    }

    fn mask(self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        }
    }

    /// The CIDR, e.g. `10.213.0.0/16`.
    pub fn cidr(self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network()), self.prefix_len)
    }

    /// Candidate replica addresses, starting at `start` (a hash, to spread claims) and
    /// skipping the network, host and broadcast addresses.
    fn candidates(self, start: u64) -> impl Iterator<Item = Ipv4Addr> {
        let size = u64::from(!self.mask()) + 1;
        let network = self.network();
        let host = self.host_address;
        (0..size).filter_map(move |step| {
            let offset = (start + step) % size;
            if offset == 0 || offset == size - 1 {
                return None;
            }
            let address = Ipv4Addr::from(network + offset as u32);
            (address != host).then_some(address)
        })
    }
}

/// One replica's place on the job network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachment {
    /// Name of the namespace under `/run/netns`.
    pub(crate) netns: String,
    /// Host side of the veth pair.
    pub(crate) veth: String,
    /// The replica's address.
    pub(crate) address: Ipv4Addr,
}

impl Attachment {
    /// The file to `setns` into.
    pub(crate) fn netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }
}

/// Makes sure the host side exists: the host address on `tf-jobs0`, and NAT when asked for.
pub(crate) async fn prepare_host(network: JobNetwork, nat: bool) -> Result<()> {
    let address = format!("{}/{}", network.host_address, network.prefix_len);
    ip_allow_exists(&["link", "add", HOST_DEVICE, "type", "bridge"]).await?;
    ip_allow_exists(&["addr", "add", &address, "dev", HOST_DEVICE]).await?;
    ip(&["link", "set", HOST_DEVICE, "up"]).await?;
    if nat {
        enable_nat(network).await?;
    }
    Ok(())
}

/// Outbound traffic of jobs leaves through the host's address; jobs still cannot reach each
/// other through the host.
async fn enable_nat(network: JobNetwork) -> Result<()> {
    run("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"]).await?;
    for (table, rule) in nat_rules(network) {
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        let check: Vec<&str> = ["-t", table, "-C"]
            .into_iter()
            .chain(rule.iter().copied())
            .collect();
        if run("iptables", &check).await.is_err() {
            let insert: Vec<&str> = ["-t", table, "-I"]
                .into_iter()
                .chain(rule.iter().copied())
                .collect();
            run("iptables", &insert).await?;
        }
    }
    Ok(())
}

/// The iptables rules (table, chain and match) NAT needs: masquerade what leaves the job
/// network, and drop what one job sends to another through the host.
fn nat_rules(network: JobNetwork) -> [(&'static str, Vec<String>); 2] {
    let cidr = network.cidr();
    let rule = |words: &[&str]| {
        words
            .iter()
            .map(|w| (*w).to_owned())
            .collect::<Vec<String>>()
    };
    [
        (
            "nat",
            rule(&[
                "POSTROUTING",
                "-s",
                &cidr,
                "!",
                "-d",
                &cidr,
                "-j",
                "MASQUERADE",
            ]),
        ),
        (
            "filter",
            rule(&["FORWARD", "-s", &cidr, "-d", &cidr, "-j", "DROP"]),
        ),
    ]
}

/// Creates the namespace `netns` and its veth pair `veth`, and claims an address.
///
/// The caller owns the id (it created the workload's cgroup), so a namespace of that name is
/// a leftover of a daemon that died while releasing it, and is replaced.
pub(crate) async fn attach(
    network: JobNetwork,
    nat: bool,
    netns: &str,
    veth: &str,
    start: u64,
) -> Result<Attachment> {
    if exists(netns) {
        tracing::warn!(netns, "removing a leftover network namespace");
        remove(netns, veth).await;
    }
    let res = configure(network, nat, netns, veth, start).await;
    if res.is_err() {
        remove(netns, veth).await;
    }
    res
}

async fn configure(
    network: JobNetwork,
    nat: bool,
    netns: &str,
    veth: &str,
    start: u64,
) -> Result<Attachment> {
    // Each `ip` process costs milliseconds before it does anything, so the host side is one
    // batch that also claims the first candidate address (its fourth line).
    let host = network.host_address;
    let mut candidates = network.candidates(start);
    let first = candidates.next().ok_or(Error::NetworkExhausted)?;
    let host_side = format!(
        "netns add {netns}\n\
         link add {veth} type veth peer name eth0 netns {netns}\n\
         link set {veth} up\n\
         route add {first}/32 dev {veth} src {host}\n"
    );
    let address = match ip_batch(None, &host_side).await {
        Ok(()) => first,
        Err(Error::Command { stderr, .. }) if claim_failed(&stderr, 4) => {
            claim(candidates, veth, host).await?
        }
        Err(err) => return Err(err),
    };
    let mut inside = format!(
        "addr add {address}/32 dev eth0\nlink set lo up\nlink set eth0 up\nroute add {host}/32 dev eth0\n"
    );
    if nat {
        inside.push_str(&format!("route add default via {host} dev eth0\n"));
    }
    ip_batch(Some(netns), &inside).await?;
    Ok(Attachment {
        netns: netns.to_owned(),
        veth: veth.to_owned(),
        address,
    })
}

/// Whether a batch failed only because line `line`, a route claim, found the address taken.
fn claim_failed(stderr: &str, line: usize) -> bool {
    stderr.contains("File exists") && stderr.contains(&format!("Command failed -:{line}"))
}

/// Claims the first free address among `candidates` for `veth`.
async fn claim(
    candidates: impl Iterator<Item = Ipv4Addr>,
    veth: &str,
    host: Ipv4Addr,
) -> Result<Ipv4Addr> {
    let host = host.to_string();
    for candidate in candidates {
        let route = format!("{candidate}/32");
        match ip(&["route", "add", &route, "dev", veth, "src", &host]).await {
            Ok(()) => return Ok(candidate),
            Err(Error::Command { stderr, .. }) if stderr.contains("File exists") => continue,
            Err(err) => return Err(err),
        }
    }
    Err(Error::NetworkExhausted)
}

/// Finds an existing namespace's attachment (after a daemon restart).
pub(crate) async fn find(netns: &str, veth: &str) -> Option<Attachment> {
    if !exists(netns) {
        return None;
    }
    let output = Command::new("ip")
        .args(["-n", netns, "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let address = text
        .split_whitespace()
        .skip_while(|word| *word != "inet")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()?;
    Some(Attachment {
        netns: netns.to_owned(),
        veth: veth.to_owned(),
        address,
    })
}

/// Whether the namespace `netns` exists.
pub(crate) fn exists(netns: &str) -> bool {
    PathBuf::from("/run/netns").join(netns).exists()
}

/// Removes the namespace and the veth pair (the route goes with the link), if they exist.
///
/// The link goes first: deleting it is synchronous, while the namespace's own interfaces
/// are destroyed in the background after `netns del`, and a start of the same id right
/// after must find the name free.
pub(crate) async fn remove(netns: &str, veth: &str) {
    if PathBuf::from("/sys/class/net").join(veth).exists()
        && let Err(err) = ip(&["link", "del", veth]).await
    {
        tracing::debug!(veth, error = %err, "veth already gone");
    }
    if exists(netns)
        && let Err(err) = ip(&["netns", "del", netns]).await
    {
        tracing::warn!(netns, error = %err, "could not remove a job's network namespace");
    }
}

/// Whether `ip` can manage namespaces here (it exists and `/run/netns` can be used).
pub(crate) async fn available() -> bool {
    Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn ip(args: &[&str]) -> Result<()> {
    run("ip", args).await
}

async fn ip_allow_exists(args: &[&str]) -> Result<()> {
    match ip(args).await {
        Err(Error::Command { stderr, .. })
            if stderr.contains("File exists") || stderr.contains("already") =>
        {
            Ok(())
        }
        res => res,
    }
}

/// Runs `ip -batch -` (inside `netns` when given) with `batch` on its standard input.
async fn ip_batch(netns: Option<&str>, batch: &str) -> Result<()> {
    let mut args = Vec::new();
    if let Some(netns) = netns {
        args.extend(["-n", netns]);
    }
    args.extend(["-batch", "-"]);
    let command = format!("ip {}", args.join(" "));
    let mut child = Command::new("ip")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| Error::Command {
            command: command.clone(),
            stderr: err.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(batch.as_bytes())
            .await
            .map_err(|err| Error::Command {
                command: command.clone(),
                stderr: err.to_string(),
            })?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|err| Error::Command {
            command: command.clone(),
            stderr: err.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

async fn run(program: &str, args: &[&str]) -> Result<()> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|err| Error::Command {
            command: command.clone(),
            stderr: err.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::network::{JobNetwork, claim_failed, nat_rules};

    #[test]
    fn candidates_stay_inside_the_network_and_skip_reserved_addresses() {
        let network = JobNetwork {
            host_address: Ipv4Addr::new(10, 213, 0, 1),
            prefix_len: 29,
        };
        assert_eq!(network.cidr(), "10.213.0.0/29");
        let all: Vec<String> = network.candidates(5).map(|a| a.to_string()).collect();
        assert_eq!(
            all,
            [
                "10.213.0.5",
                "10.213.0.6",
                "10.213.0.2",
                "10.213.0.3",
                "10.213.0.4"
            ]
        );
    }

    #[test]
    fn nat_masquerades_only_traffic_leaving_the_job_network_and_drops_job_to_job_forwarding() {
        let rules: Vec<String> = nat_rules(JobNetwork::default())
            .iter()
            .map(|(table, rule)| format!("-t {table} {}", rule.join(" ")))
            .collect();
        assert_eq!(
            rules,
            [
                "-t nat POSTROUTING -s 10.213.0.0/16 ! -d 10.213.0.0/16 -j MASQUERADE",
                "-t filter FORWARD -s 10.213.0.0/16 -d 10.213.0.0/16 -j DROP",
            ]
        );
    }

    #[test]
    fn a_taken_address_is_told_apart_from_other_batch_failures() {
        let taken = "RTNETLINK answers: File exists\nCommand failed -:4";
        assert!(claim_failed(taken, 4));
        let stale_namespace =
            "Cannot create namespace file \"/run/netns/x\": File exists\nCommand failed -:1";
        assert!(!claim_failed(stale_namespace, 4));
        assert!(!claim_failed(
            "Error: Nexthop device is not up.\nCommand failed -:4",
            4
        ));
    }
}
