use super::*;

fn allocator() -> ServiceAllocator {
    ServiceAllocator::new("10.96.0.0/16".parse().unwrap(), 30000..=32767)
}

fn lb(policy: &str) -> Value {
    json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy, "ports": [{"port": 80}]}})
}

#[test]
fn load_balancer_with_local_policy_gets_cluster_ip_node_port_and_health_check_port() {
    let mut alloc = allocator();
    let mut svc = lb("Local");
    alloc.prepare(None, &mut svc).unwrap();
    let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    assert!(alloc.cidr().contains(&ip));
    assert!(svc["spec"]["ports"][0]["nodePort"].as_u64().is_some());
    assert!(svc["spec"]["healthCheckNodePort"].as_u64().is_some());
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
}

#[test]
fn headless_and_cluster_ip_services_get_no_node_ports() {
    let mut alloc = allocator();
    let mut headless = json!({"spec": {"clusterIP": "None", "ports": [{"port": 80}]}});
    alloc.prepare(None, &mut headless).unwrap();
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    assert!(headless["spec"]["ports"][0]["nodePort"].is_null());
}

#[test]
fn load_balancer_without_node_port_allocation_gets_none() {
    let mut alloc = allocator();
    let mut svc = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}});
    alloc.prepare(None, &mut svc).unwrap();
    assert!(svc["spec"]["ports"][0]["nodePort"].is_null());
}

#[test]
fn policy_change_to_cluster_releases_the_health_check_port() {
    let mut alloc = allocator();
    let mut svc = lb("Local");
    alloc.prepare(None, &mut svc).unwrap();
    let hc = svc["spec"]["healthCheckNodePort"].as_u64().unwrap();
    let mut updated = svc.clone();
    updated["spec"]["externalTrafficPolicy"] = json!("Cluster");
    alloc.prepare(Some(&svc), &mut updated).unwrap();
    assert!(updated["spec"]["healthCheckNodePort"].is_null());
    let mut other = json!({"spec": {"type": "NodePort", "ports": [{"port": 1, "nodePort": hc}]}});
    alloc
        .prepare(None, &mut other)
        .expect("the released port is free again");
}

#[test]
fn taken_and_out_of_range_node_ports_are_invalid_with_their_field_path() {
    let mut alloc = allocator();
    let mut first =
        json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}});
    alloc.prepare(None, &mut first).unwrap();
    let mut second = json!({"spec": {"type": "NodePort", "ports": [{"port": 1, "name": "a"}, {"port": 80, "name": "b", "nodePort": 30080}, {"port": 2, "name": "c", "nodePort": 40000}]}});
    let errors = alloc.prepare(None, &mut second).unwrap_err();
    assert_eq!(errors[0].field, "spec.ports[1].nodePort");
    assert!(errors[0].detail.contains("already allocated"));
    assert_eq!(errors[1].field, "spec.ports[2].nodePort");
    assert!(errors[1].detail.contains("not in the valid range"));
}

#[test]
fn update_without_allocated_values_keeps_them() {
    let mut alloc = allocator();
    let mut svc = lb("Local");
    alloc.prepare(None, &mut svc).unwrap();
    let mut bare = lb("Local");
    alloc.prepare(Some(&svc), &mut bare).unwrap();
    assert_eq!(bare["spec"]["clusterIP"], svc["spec"]["clusterIP"]);
    assert_eq!(
        bare["spec"]["ports"][0]["nodePort"],
        svc["spec"]["ports"][0]["nodePort"]
    );
    assert_eq!(
        bare["spec"]["healthCheckNodePort"],
        svc["spec"]["healthCheckNodePort"]
    );
}
