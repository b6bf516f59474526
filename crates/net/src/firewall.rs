//! nftables rules: outbound NAT for each network and DNAT for published
//! ports, all in vessel's own table `ip vessel`, every rule carrying a
//! comment that names its owner (`vessel-net:NAME`, `vessel-ctr:ID`). So
//! removing a container's rules is "delete the rules with its comment",
//! and reconciliation can list the owners of every rule. Rules are applied
//! with `nft -f -` (one transaction per change) and listed with
//! `nft -j -a` (JSON, with handles).

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{NetError, Result};
use crate::ports::{Protocol, PublishedPort};
use crate::store::Network;

/// vessel's table (family `ip`).
pub const TABLE: &str = "vessel";

/// The table and its chains. Every line is an idempotent `add`, so the
/// base goes in front of every change and no check-then-create can race.
/// Port rules sit directly in the nat chains: prerouting for traffic that
/// arrives, output for traffic the host sends itself (`127.0.0.1:PORT`).
const BASE: &str = "add table ip vessel
add chain ip vessel prerouting { type nat hook prerouting priority dstnat; policy accept; }
add chain ip vessel output { type nat hook output priority -100; policy accept; }
add chain ip vessel postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ip vessel forward { type filter hook forward priority filter; policy accept; }
";

/// The comment of a network's rules.
pub fn network_owner(name: &str) -> String {
    format!("vessel-net:{name}")
}

/// The comment of a container's rules.
pub fn container_owner(id: &str) -> String {
    format!("vessel-ctr:{id}")
}

/// One rule of vessel's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its chain.
    pub chain: String,
    /// Its handle (for deletion).
    pub handle: u64,
    /// Its owner comment, if it has one.
    pub comment: Option<String>,
}

fn nft(what: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NetError::NftSpawn)?;
    if let (Some(script), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(script.as_bytes())
            .map_err(NetError::NftSpawn)?;
    }
    let out = child.wait_with_output().map_err(NetError::NftSpawn)?;
    if !out.status.success() {
        return Err(NetError::Nft {
            what: what.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Apply an nft script as one transaction.
fn apply(what: &str, script: &str) -> Result<()> {
    nft(what, &["-f", "-"], Some(script)).map(drop)
}

/// The rules of vessel's table; `None` when the table does not exist.
pub fn rules() -> Result<Option<Vec<Rule>>> {
    let out = match nft(
        "list table ip vessel",
        &["-j", "-a", "list", "table", "ip", TABLE],
        None,
    ) {
        Ok(out) => out,
        Err(NetError::Nft { stderr, .. }) if stderr.contains("No such file or directory") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    Ok(Some(parse_rules(&out)?))
}

/// The rules in `nft -j -a list table` output.
pub fn parse_rules(json: &str) -> Result<Vec<Rule>> {
    let value: Value = serde_json::from_str(json).map_err(|e| NetError::Nft {
        what: "list table ip vessel".into(),
        stderr: format!("unreadable JSON output: {e}"),
    })?;
    let items = value
        .get("nftables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|item| {
            let rule = item.get("rule")?;
            Some(Rule {
                chain: rule.get("chain")?.as_str()?.to_owned(),
                handle: rule.get("handle")?.as_u64()?,
                comment: rule
                    .get("comment")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect())
}

/// The rules of network `net` (outbound NAT, or the fence of an internal
/// one, and the NAT that lets the host reach published ports on
/// 127.0.0.1), as `add rule` lines.
fn network_script(net: &Network) -> String {
    let owner = network_owner(&net.name);
    let s = net.subnet;
    let mut script = format!(
        "add rule ip vessel postrouting ip saddr 127.0.0.0/8 ip daddr {s} masquerade comment \"{owner}\"\n"
    );
    if net.internal {
        script.push_str(&format!(
            "add rule ip vessel forward ip saddr {s} ip daddr != {s} drop comment \"{owner}\"\n\
             add rule ip vessel forward ip daddr {s} ip saddr != {s} drop comment \"{owner}\"\n"
        ));
    } else {
        script.push_str(&format!(
            "add rule ip vessel postrouting ip saddr {s} ip daddr != {s} masquerade comment \"{owner}\"\n"
        ));
    }
    script
}

/// Make sure vessel's table and network `net`'s rules exist (they vanish
/// at reboot; a network's rules are made on its first use). Call with the
/// network store's lock held, so two callers never both add them.
pub fn ensure_network(net: &Network) -> Result<()> {
    let owner = network_owner(&net.name);
    let rules = rules()?.unwrap_or_default();
    if rules.iter().any(|r| r.comment.as_deref() == Some(&owner)) {
        return Ok(());
    }
    let script = format!("{BASE}{}", network_script(net));
    apply(&format!("add the rules of network {}", net.name), &script)
}

/// DNAT rules for container `id` at `ip`: one per published port.
pub fn add_ports(id: &str, ip: Ipv4Addr, ports: &[PublishedPort]) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let owner = container_owner(id);
    let mut script = BASE.to_owned();
    for p in ports {
        // Every address of the host, or the one asked for.
        let daddr = if p.host_ip.is_unspecified() {
            "fib daddr type local".to_owned()
        } else {
            format!("ip daddr {}", p.host_ip)
        };
        for chain in ["prerouting", "output"] {
            script.push_str(&format!(
                "add rule ip vessel {chain} {daddr} {proto} dport {hp} dnat to {ip}:{cp} comment \"{owner}\"\n",
                proto = p.protocol.as_str(),
                hp = p.host_port,
                cp = p.container_port,
            ));
        }
    }
    apply(&format!("publish the ports of container {id}"), &script)?;
    forget_udp_flows(ports);
    Ok(())
}

/// Makes the kernel forget its UDP connection-tracking entries towards the
/// host ports of `ports`. A UDP "connection" keeps the translation it got
/// at its first datagram until it has been idle for 120 s: a client that
/// sent to the port before it was published (no DNAT then), or to the
/// container that had it before a restart (an address since released),
/// would go on missing the container. Docker flushes them the same way.
/// Best effort: without the `conntrack` tool the entries only expire.
pub fn forget_udp_flows(ports: &[PublishedPort]) {
    for p in ports.iter().filter(|p| p.protocol == Protocol::Udp) {
        let port = p.host_port.to_string();
        // Exit 1 with "0 flow entries have been deleted" is the usual case.
        let _ = Command::new("conntrack")
            .args(["-D", "-p", "udp", "--orig-port-dst", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Delete every rule whose comment is `owner`. None is not an error.
pub fn remove_owned(owner: &str) -> Result<()> {
    let Some(rules) = rules()? else {
        return Ok(());
    };
    let script: String = rules
        .iter()
        .filter(|r| r.comment.as_deref() == Some(owner))
        .map(|r| format!("delete rule ip vessel {} handle {}\n", r.chain, r.handle))
        .collect();
    if script.is_empty() {
        return Ok(());
    }
    apply(&format!("delete the rules of {owner}"), &script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_from_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "ip", "table": "vessel", "name": "ports", "handle": 1}},
            {"rule": {"family": "ip", "table": "vessel", "chain": "ports", "handle": 5,
                      "comment": "vessel-ctr:abc", "expr": []}},
            {"rule": {"family": "ip", "table": "vessel", "chain": "output", "handle": 7, "expr": []}}]}"#;
        let rules = parse_rules(json).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].comment.as_deref(), Some("vessel-ctr:abc"));
        assert_eq!(rules[0].handle, 5);
        assert_eq!(rules[1].comment, None);
        assert!(parse_rules("not json").is_err());
        assert!(parse_rules("{}").unwrap().is_empty());
    }

    #[test]
    fn network_rules_depend_on_internal() {
        let mut net = Network::predefined();
        let open = network_script(&net);
        assert!(open.contains("ip saddr 10.87.0.0/16 ip daddr != 10.87.0.0/16 masquerade"));
        assert!(!open.contains("drop"));
        net.internal = true;
        let internal = network_script(&net);
        assert!(!internal.contains("ip daddr != 10.87.0.0/16 masquerade"));
        assert!(internal.contains("drop comment \"vessel-net:bridge\""));
    }
}
