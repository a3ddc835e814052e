//! Which eligible node owns a VIP: rendezvous (highest random weight) hashing of node name and
//! address. Every agent computes it alike from the same inputs, so the steady state needs no
//! coordination; VIPs spread over the nodes; and a node leaving the set moves only the VIPs it
//! owned, because every other node's score for every VIP is unchanged.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// A node that may own the VIP; `preferred` nodes win over the others while any is eligible
/// (a soft preference: without a preferred node the VIP still has an owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub node: &'a str,
    pub preferred: bool,
}

/// The weight of `node` for `vip`. SHA-256 rather than std's hasher: the value must be the same
/// in every agent of every version, and std's `DefaultHasher` promises neither.
pub fn score(node: &str, vip: IpAddr) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(node.as_bytes());
    // The separator keeps ("ab", 1.x) and ("a", b1.x) apart.
    hasher.update([0]);
    match vip {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The owner of `vip` among `candidates`, or `None` when there is none. Preferred candidates
/// first; among equals the highest score, then the smallest name (a tie is all but impossible,
/// but the answer must not depend on the order the candidates come in).
pub fn choose_owner<'a>(
    vip: IpAddr,
    candidates: impl IntoIterator<Item = Candidate<'a>>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .max_by(|a, b| {
            (a.preferred, score(a.node, vip))
                .cmp(&(b.preferred, score(b.node, vip)))
                .then_with(|| b.node.cmp(a.node))
        })
        .map(|winner| winner.node)
}

/// The owner of `vip` and the node that would own it if the owner were gone (the next in the
/// same order): where its connections go when it fails.
pub fn choose_owner_and_runner_up<'a>(
    vip: IpAddr,
    candidates: impl IntoIterator<Item = Candidate<'a>> + Clone,
) -> (Option<&'a str>, Option<&'a str>) {
    let owner = choose_owner(vip, candidates.clone());
    let runner_up = owner
        .and_then(|owner| choose_owner(vip, candidates.into_iter().filter(|c| c.node != owner)));
    (owner, runner_up)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn plain(nodes: &[&'static str]) -> Vec<Candidate<'static>> {
        nodes
            .iter()
            .map(|node| Candidate {
                node,
                preferred: false,
            })
            .collect()
    }

    fn vips(count: u32) -> Vec<IpAddr> {
        (0..count)
            .map(|i| IpAddr::from([198, 19, (i / 256) as u8, (i % 256) as u8]))
            .collect()
    }

    fn owners(nodes: &[&'static str], vips: &[IpAddr]) -> BTreeMap<IpAddr, &'static str> {
        vips.iter()
            .map(|vip| (*vip, choose_owner(*vip, plain(nodes)).unwrap()))
            .collect()
    }

    #[test]
    fn no_candidate_means_no_owner() {
        assert_eq!(choose_owner("198.19.0.1".parse().unwrap(), []), None);
    }

    #[test]
    fn owner_does_not_depend_on_candidate_order() {
        let vip: IpAddr = "198.19.0.7".parse().unwrap();
        let forward = choose_owner(vip, plain(&["a", "b", "c", "d"]));
        let backward = choose_owner(vip, plain(&["d", "c", "b", "a"]));
        assert_eq!(forward, backward);
    }

    #[test]
    fn score_is_fixed_across_versions() {
        // Agents of different versions must agree: the values are pinned (computed with
        // Python's hashlib over the same bytes).
        assert_eq!(
            score("node-a", "198.18.0.200".parse().unwrap()),
            0xa1cb_0642_8eb9_6b3e
        );
        assert_eq!(
            score("node-a", "fd00::200".parse().unwrap()),
            0xa85b_f37c_7373_ba93
        );
    }

    #[test]
    fn vips_spread_over_the_nodes() {
        let nodes = ["node-a", "node-b", "node-c", "node-d"];
        let owners = owners(&nodes, &vips(400));
        for node in nodes {
            let held = owners.values().filter(|owner| **owner == node).count();
            assert!((50..=150).contains(&held), "{node} owns {held} of 400");
        }
    }

    #[test]
    fn a_dead_node_moves_only_its_own_vips() {
        let nodes = ["node-a", "node-b", "node-c", "node-d", "node-e"];
        let vips = vips(300);
        let before = owners(&nodes, &vips);
        for dead in nodes {
            let alive: Vec<&'static str> = nodes.iter().copied().filter(|n| *n != dead).collect();
            let after = owners(&alive, &vips);
            for vip in &vips {
                if before[vip] == dead {
                    assert_ne!(after[vip], dead);
                } else {
                    assert_eq!(after[vip], before[vip], "{vip} moved when {dead} died");
                }
            }
            // And when the node comes back, exactly its VIPs return to it.
            assert_eq!(owners(&nodes, &vips), before);
        }
    }

    #[test]
    fn the_runner_up_is_the_owner_once_the_owner_is_gone() {
        let nodes = ["node-a", "node-b", "node-c", "node-d"];
        for vip in vips(50) {
            let (owner, runner_up) = choose_owner_and_runner_up(vip, plain(&nodes));
            let owner = owner.unwrap();
            let rest: Vec<&'static str> = nodes.iter().copied().filter(|n| *n != owner).collect();
            assert_eq!(runner_up, choose_owner(vip, plain(&rest)));
            assert_ne!(runner_up, Some(owner));
        }
        assert_eq!(
            choose_owner_and_runner_up("198.19.0.1".parse().unwrap(), plain(&["node-a"])),
            (Some("node-a"), None)
        );
    }

    #[test]
    fn a_new_node_takes_vips_only_for_itself() {
        let vips = vips(300);
        let before = owners(&["node-a", "node-b", "node-c"], &vips);
        let after = owners(&["node-a", "node-b", "node-c", "node-d"], &vips);
        for vip in &vips {
            assert!(after[vip] == before[vip] || after[vip] == "node-d");
        }
    }

    #[test]
    fn preferred_nodes_win_and_the_preference_still_fails_over() {
        let vip: IpAddr = "198.19.0.9".parse().unwrap();
        let nodes = ["node-a", "node-b", "node-c"];
        for preferred in nodes {
            let candidates = nodes.iter().map(|node| Candidate {
                node,
                preferred: *node == preferred,
            });
            assert_eq!(choose_owner(vip, candidates), Some(preferred));
            let without_it: Vec<Candidate> = nodes
                .iter()
                .filter(|node| **node != preferred)
                .map(|node| Candidate {
                    node,
                    preferred: false,
                })
                .collect();
            let fallback = choose_owner(vip, without_it).unwrap();
            assert_ne!(fallback, preferred);
        }
    }
}
