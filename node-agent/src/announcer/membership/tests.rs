//! Real UDP on loopback between three memberships in one process.

use std::net::UdpSocket as StdUdpSocket;

use super::*;

/// A free loopback port (bound and released; the test binds it again at once).
fn free_addr() -> SocketAddr {
    StdUdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
}

async fn cluster(names: &[&str]) -> Vec<Membership> {
    let addrs: Vec<SocketAddr> = names.iter().map(|_| free_addr()).collect();
    cluster_at(names, &addrs).await
}

async fn cluster_at(names: &[&str], addrs: &[SocketAddr]) -> Vec<Membership> {
    let peers: Vec<(String, SocketAddr)> = names
        .iter()
        .map(|n| n.to_string())
        .zip(addrs.iter().copied())
        .collect();
    let mut members = Vec::new();
    for (name, addr) in names.iter().zip(addrs) {
        let membership = Membership::start(name, *addr, *addr).await.unwrap();
        membership.set_peers(peers.clone()).await;
        members.push(membership);
    }
    members
}

/// Waits (up to a generous bound, so a slow machine does not fail the test) until `member`
/// sees exactly `expected` alive.
async fn wait_for(member: &Membership, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|n| n.to_string()).collect();
    let mut alive = member.alive();
    let reached = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if alive.borrow_and_update().as_ref() == Some(&expected) {
                return;
            }
            if alive.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        reached.is_ok() && alive.borrow().as_ref() == Some(&expected),
        "alive is {:?}, wanted {expected:?}",
        alive.borrow()
    );
}

#[tokio::test]
async fn agents_find_each_other_and_a_dead_one_drops_out() {
    let mut members = cluster(&["node-a", "node-b", "node-c"]).await;
    for member in &members {
        wait_for(member, &["node-a", "node-b", "node-c"]).await;
    }
    // Dropping the handle stops the agent without a goodbye, as a crash would.
    drop(members.remove(2));
    for member in &members {
        wait_for(member, &["node-a", "node-b"]).await;
    }
}

#[tokio::test]
async fn a_leaving_agent_is_dropped() {
    let names = ["node-a", "node-b", "node-c"];
    let members = cluster(&names).await;
    for member in &members {
        wait_for(member, &names).await;
    }
    members[0].leave().await;
    for member in &members[1..] {
        wait_for(member, &["node-b", "node-c"]).await;
    }
}

#[tokio::test]
async fn a_restarted_agent_rejoins_on_the_same_address() {
    let names = ["node-a", "node-b", "node-c"];
    let addrs: Vec<SocketAddr> = names.iter().map(|_| free_addr()).collect();
    let mut members = cluster_at(&names, &addrs).await;
    for member in &members {
        wait_for(member, &names).await;
    }
    drop(members.remove(2));
    for member in &members {
        wait_for(member, &["node-a", "node-b"]).await;
    }
    // Same node, same address, a new process: a newer generation, which the others accept.
    let peers: Vec<(String, SocketAddr)> = names
        .iter()
        .map(|n| n.to_string())
        .zip(addrs.iter().copied())
        .collect();
    let mut bound = None;
    for _ in 0..50 {
        match Membership::start("node-c", addrs[2], addrs[2]).await {
            Ok(membership) => {
                bound = Some(membership);
                break;
            }
            // The dropped agent's socket closes once its task has noticed.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let restarted = bound.expect("the address is free again");
    restarted.set_peers(peers).await;
    members.push(restarted);
    for member in &members {
        wait_for(member, &names).await;
    }
}

#[test]
fn a_restarted_agent_wins_over_its_earlier_self() {
    let old = Peer {
        node: "node-a".into(),
        addr: "127.0.0.1:7946".parse().unwrap(),
        generation: 1,
    };
    let new = old.renew().unwrap();
    assert!(new.win_addr_conflict(&old));
    assert!(!old.win_addr_conflict(&new));
    assert_eq!(new.addr(), old.addr());
}
