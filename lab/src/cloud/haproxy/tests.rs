use super::*;

fn paths() -> Paths {
    Paths {
        dir: PathBuf::from("/run/lab-cloud"),
    }
}

fn mk_backend(kind: CheckKind, port: Option<u16>) -> Backend {
    Backend {
        name: "k8s-lab-web-tcp".into(),
        check: Check {
            kind,
            port,
            interval_s: 5,
            timeout_s: 2,
            healthy: 2,
            unhealthy: 3,
        },
        servers: vec![
            Server {
                name: "i-0a".into(),
                addr: "198.18.0.10:30080".parse().unwrap(),
            },
            Server {
                name: "i-0b".into(),
                addr: "198.18.0.11:30080".parse().unwrap(),
            },
        ],
    }
}

#[test]
fn an_http_check_renders_with_the_target_groups_timers_and_keeps_the_client_ip() {
    let config = Config {
        frontends: vec![Frontend {
            name: "web-80".into(),
            bind: "198.51.100.10:80".parse().unwrap(),
            backend: "k8s-lab-web-tcp".into(),
        }],
        backends: vec![mk_backend(
            CheckKind::Http {
                path: "/healthz".into(),
            },
            Some(31234),
        )],
    };
    let text = render(&config, &paths());
    for expected in [
        "    stats socket /run/lab-cloud/stats.sock mode 600 level admin\n",
        "    server-state-file /run/lab-cloud/server-state\n",
        "    load-server-state-from-file global\n",
        "\nfrontend web-80\n    bind 198.51.100.10:80\n    default_backend k8s-lab-web-tcp\n",
        "\nbackend k8s-lab-web-tcp\n",
        "    source 0.0.0.0 usesrc clientip\n",
        "    timeout check 2s\n",
        "    option httpchk\n    http-check send meth GET uri /healthz\n",
        "    default-server check port 31234 inter 5s rise 2 fall 3\n",
        "    server i-0a 198.18.0.10:30080\n    server i-0b 198.18.0.11:30080\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[test]
fn a_tcp_check_on_the_traffic_port_has_no_http_and_no_port() {
    let config = Config {
        frontends: vec![],
        backends: vec![mk_backend(CheckKind::Tcp, None)],
    };
    let text = render(&config, &paths());
    assert!(!text.contains("httpchk"), "{text}");
    assert!(
        text.contains("    default-server check inter 5s rise 2 fall 3\n"),
        "{text}"
    );
    // The stats page keeps a listener even without load balancers.
    assert!(text.contains(&format!("bind {STATS_PAGE}")), "{text}");
    assert_eq!(
        config.server_keys().into_iter().collect::<Vec<_>>(),
        [
            ("k8s-lab-web-tcp".to_owned(), "i-0a".to_owned()),
            ("k8s-lab-web-tcp".to_owned(), "i-0b".to_owned()),
        ]
    );
}

#[test]
fn show_stat_gives_each_servers_state_and_last_check() {
    let csv = "# pxname,svname,qcur,status,weight,check_status,check_code\n\
        lab-cloud-stats,FRONTEND,,OPEN,,,\n\
        lab-cloud-stats,BACKEND,0,UP,0,,\n\
        web-80,FRONTEND,,OPEN,,,\n\
        k8s-lab-web-tcp,i-0a,0,UP,1,L7OK,200\n\
        k8s-lab-web-tcp,i-0b,0,DOWN,1,L7STS,503\n\
        k8s-lab-web-tcp,i-0c,0,UP 1/3,1,L7STS,503\n\
        k8s-lab-web-tcp,BACKEND,0,UP,2,,\n";
    let stats = parse_stats(csv);
    let rows: Vec<_> = stats
        .iter()
        .map(|s| {
            (
                s.server.as_str(),
                s.status.as_str(),
                s.check_status.as_str(),
                s.in_service(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("i-0a", "UP", "L7OK", true),
            ("i-0b", "DOWN", "L7STS", false),
            ("i-0c", "UP 1/3", "L7STS", true),
        ]
    );
    assert!(parse_stats("Unknown command\n").is_empty());
}

#[test]
fn the_tproxy_plumbing_marks_answers_for_transparent_sockets() {
    let cmds: Vec<String> = transparent_setup("ptl-1-0-cloud", "198.51.100.0/24".parse().unwrap())
        .iter()
        .map(|argv| argv.join(" "))
        .collect();
    assert_eq!(
        cmds,
        [
            "ip -n ptl-1-0-cloud rule add fwmark 1 lookup 100",
            "ip -n ptl-1-0-cloud route replace local 0.0.0.0/0 dev lo table 100",
            "ip -n ptl-1-0-cloud route replace local 198.51.100.0/24 dev lo",
            "ip netns exec ptl-1-0-cloud nft add table ip portico_lab_cloud",
            "ip netns exec ptl-1-0-cloud nft add chain ip portico_lab_cloud prerouting { type filter hook prerouting priority mangle ; }",
            "ip netns exec ptl-1-0-cloud nft add rule ip portico_lab_cloud prerouting meta l4proto tcp socket transparent 1 meta mark set 1",
        ]
    );
}
