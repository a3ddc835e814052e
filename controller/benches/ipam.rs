//! How long the allocator takes for 10,000 Services, printed as a table
//! (`cargo bench -p portico-controller --bench ipam`). Pure code only: the end-to-end aim of
//! 10,000 Services in under 10 s leaves the API server most of the budget.

use std::hint::black_box;
use std::time::{Duration, Instant};

use portico_api::{AddressPool, AddressPoolSpec, IpFamily};
use portico_controller::ipam::{
    Allocator, IpFamilyPolicy, ServiceKey, ServicePort, ServiceRequest,
};

const SERVICES: usize = 10_000;

fn pool(name: &str, addresses: &[&str]) -> AddressPool {
    AddressPool::new(
        name,
        AddressPoolSpec {
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            auto_assign: true,
            avoid_buggy_ips: true,
            service_allocation: None,
        },
    )
}

fn services(families: &[IpFamily], policy: IpFamilyPolicy) -> Vec<ServiceRequest> {
    (0..SERVICES)
        .map(|i| ServiceRequest {
            ports: vec![ServicePort::new(80, "TCP")],
            ip_families: families.to_vec(),
            ip_family_policy: policy,
            ..ServiceRequest::new(ServiceKey::new(
                format!("ns-{}", i % 100),
                format!("svc-{i}"),
            ))
        })
        .collect()
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn row(case: &str, elapsed: Duration) {
    let per_service = elapsed / SERVICES as u32;
    println!(
        "| {case:<50} | {:>10.2} ms | {:>8.2} µs |",
        elapsed.as_secs_f64() * 1e3,
        per_service.as_secs_f64() * 1e6
    );
}

fn scenario(label: &str, pools: &[AddressPool], families: &[IpFamily], policy: IpFamilyPolicy) {
    let requests = services(families, policy);
    let mut allocator = Allocator::new();
    allocator.set_pools(pools);
    row(
        &format!("{label}: assign, empty pool"),
        timed(|| {
            for request in &requests {
                black_box(allocator.assign(request).expect("pool large enough"));
            }
        }),
    );
    row(
        &format!("{label}: assign again (steady state)"),
        timed(|| {
            for request in &requests {
                black_box(allocator.assign(request).expect("still fits"));
            }
        }),
    );
    let restored: Vec<ServiceRequest> = requests
        .iter()
        .map(|request| ServiceRequest {
            current_ips: allocator.addresses_of(&request.key),
            ..request.clone()
        })
        .collect();
    let mut restarted = Allocator::new();
    restarted.set_pools(pools);
    row(
        &format!("{label}: restore after restart"),
        timed(|| {
            for request in &restored {
                black_box(restarted.restore(request).expect("no conflicts"));
            }
        }),
    );
    row(
        &format!("{label}: release"),
        timed(|| {
            for request in &requests {
                black_box(allocator.release(&request.key));
            }
        }),
    );
}

fn main() {
    println!(
        "| {SERVICES} Services{:<36} | {:>13} | {:>11} |",
        "", "total", "per Service"
    );
    println!("|{:-<52}|{:-<15}|{:-<13}|", "", "", "");
    scenario(
        "IPv4 /16",
        &[pool("v4", &["10.1.0.0/16"])],
        &[IpFamily::V4],
        IpFamilyPolicy::SingleStack,
    );
    scenario(
        "IPv6 /64",
        &[pool("v6", &["2001:db8::/64"])],
        &[IpFamily::V6],
        IpFamilyPolicy::SingleStack,
    );
    scenario(
        "dual stack /16 + /64",
        &[pool("dual", &["10.1.0.0/16", "2001:db8::/64"])],
        &[IpFamily::V4, IpFamily::V6],
        IpFamilyPolicy::RequireDualStack,
    );
}
