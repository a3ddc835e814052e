use super::*;

/// moto's answer for one Local Service (HTTP check on its healthCheckNodePort) with a UDP
/// listener besides, as `moto_state.py watch` prints it.
fn mk_snapshot() -> Snapshot {
    serde_json::from_value(serde_json::json!({"load_balancers": [{
        "name": "k8s-lab-abc", "dns": "k8s-lab-abc-1.elb.us-east-1.amazonaws.com",
        "listeners": [
            {"protocol": "TCP", "port": 80, "target_group": "arn:tg/web-tcp"},
            {"protocol": "UDP", "port": 53, "target_group": "arn:tg/web-udp"},
        ],
        "target_groups": [{
            "arn": "arn:tg/web-tcp", "name": "k8s-lab-web-tcp", "protocol": "TCP", "port": 30080,
            "health_check": {"protocol": "HTTP", "port": "31234", "path": "/healthz",
                             "interval": 5, "timeout": 2, "healthy": 2, "unhealthy": 2},
            "targets": [["i-0a", 30080], ["i-0b", 30080], ["i-gone", 30080]],
        }, {
            "arn": "arn:tg/web-udp", "name": "k8s-lab-web-udp", "protocol": "UDP", "port": 30053,
            "health_check": {"protocol": "TCP", "port": "traffic-port"},
            "targets": [["i-0a", 30053]],
        }],
    }]}))
    .unwrap()
}

fn instances() -> BTreeMap<String, Ipv4Addr> {
    BTreeMap::from([
        ("i-0a".to_owned(), Ipv4Addr::new(198, 18, 0, 10)),
        ("i-0b".to_owned(), Ipv4Addr::new(198, 18, 0, 11)),
    ])
}

#[test]
fn a_tcp_listener_becomes_a_frontend_on_the_nlbs_address_with_its_targets_checks() {
    let addresses = BTreeMap::from([("k8s-lab-abc".to_owned(), Ipv4Addr::new(198, 51, 100, 10))]);
    let plan = plan(&mk_snapshot(), &instances(), &addresses);
    assert_eq!(
        plan.config.frontends,
        [Frontend {
            name: "k8s-lab-abc-80".into(),
            bind: "198.51.100.10:80".parse().unwrap(),
            backend: "k8s-lab-web-tcp".into(),
        }]
    );
    assert_eq!(plan.config.backends.len(), 1, "the UDP group is not served");
    let backend = &plan.config.backends[0];
    assert_eq!(
        backend.check,
        Check {
            kind: CheckKind::Http {
                path: "/healthz".into()
            },
            port: Some(31234),
            interval_s: 5,
            timeout_s: 2,
            healthy: 2,
            unhealthy: 2,
        }
    );
    let servers: Vec<_> = backend
        .servers
        .iter()
        .map(|s| format!("{} {}", s.name, s.addr))
        .collect();
    assert_eq!(
        servers,
        ["i-0a 198.18.0.10:30080", "i-0b 198.18.0.11:30080"]
    );
    assert_eq!(
        plan.skipped,
        [
            "k8s-lab-web-tcp: target i-gone is none of the lab's nodes",
            "k8s-lab-abc listener UDP/53: the lab cloud (HAProxy) forwards TCP only",
        ]
    );
    assert_eq!(
        hosts_file(&plan.load_balancers),
        "127.0.0.1 localhost\n::1 localhost ip6-localhost\n\
         198.51.100.10 k8s-lab-abc-1.elb.us-east-1.amazonaws.com\n"
    );
}

#[test]
fn a_tcp_check_on_the_traffic_port_takes_awss_defaults_for_what_is_missing() {
    let health = MotoHealthCheck {
        protocol: Some("TCP".into()),
        port: Some("traffic-port".into()),
        ..Default::default()
    };
    assert_eq!(
        check(&health),
        Check {
            kind: CheckKind::Tcp,
            port: None,
            interval_s: 30,
            timeout_s: 10,
            healthy: 5,
            unhealthy: 2,
        }
    );
}

#[test]
fn addresses_stay_with_their_nlb_and_freed_ones_are_reused() {
    let range: Ipv4Net = "198.51.100.0/24".parse().unwrap();
    let first = assign_addresses(&BTreeMap::new(), &["a", "b"], range);
    assert_eq!(first["a"], Ipv4Addr::new(198, 51, 100, 10));
    assert_eq!(first["b"], Ipv4Addr::new(198, 51, 100, 11));
    // "a" goes, "c" comes: "b" keeps its address, "c" takes the one "a" freed.
    let second = assign_addresses(&first, &["b", "c"], range);
    assert_eq!(second["b"], Ipv4Addr::new(198, 51, 100, 11));
    assert_eq!(second["c"], Ipv4Addr::new(198, 51, 100, 10));
    assert!(!second.contains_key("a"));
    // A range too small leaves the rest without (plan() says so).
    let tiny = assign_addresses(&BTreeMap::new(), &["x"], "198.51.100.0/29".parse().unwrap());
    assert!(tiny.is_empty());
}

#[test]
fn target_health_names_the_nlb_of_each_server() {
    let addresses = BTreeMap::from([("k8s-lab-abc".to_owned(), Ipv4Addr::new(198, 51, 100, 10))]);
    let plan = plan(&mk_snapshot(), &instances(), &addresses);
    let stats = super::super::haproxy::parse_stats(
        "# pxname,svname,status,check_status\n\
         k8s-lab-web-tcp,i-0a,UP,L7OK\n\
         k8s-lab-web-tcp,i-0b,DOWN,L7STS\n\
         other,i-0a,UP,L7OK\n",
    );
    let health = target_health(&plan.load_balancers, &stats);
    let rows: Vec<_> = health
        .iter()
        .map(|h| {
            format!(
                "{} {} {} {}",
                h.load_balancer, h.target_group, h.instance, h.status
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "k8s-lab-abc k8s-lab-web-tcp i-0a UP",
            "k8s-lab-abc k8s-lab-web-tcp i-0b DOWN",
        ]
    );
}
