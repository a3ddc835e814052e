//! Every annotation, label, finalizer, class and event reason Portico reads or writes.
//! Keeping them in one place is what lets `grep` find every user-facing name.

/// `spec.loadBalancerClass` of the Services Portico acts on.
pub const LOAD_BALANCER_CLASS: &str = "portico.dev/lb";

/// Finalizer the controller adds before it allocates anything, and removes after cleanup.
pub const FINALIZER: &str = "portico.dev/load-balancer-cleanup";

/// Field manager for every server-side apply Portico makes.
pub const CONTROLLER_FIELD_MANAGER: &str = "portico-controller";
pub const AGENT_FIELD_MANAGER: &str = "portico-agent";
/// The type of the condition Portico keeps in every Service's `status.conditions`.
pub const LOAD_BALANCER_READY_CONDITION: &str = "portico.dev/LoadBalancerReady";

/// Service annotations.
pub mod service {
    /// Name of the `AddressPool` to allocate from (also the only way to use `autoAssign: false` pools).
    pub const ADDRESS_POOL: &str = "portico.dev/address-pool";
    /// Requested addresses, comma separated, at most one per IP family.
    pub const LOAD_BALANCER_IPS: &str = "portico.dev/load-balancer-ips";
    /// Sharing key: Services with the same key may share an address when their ports do not clash.
    pub const ALLOW_SHARED_IP: &str = "portico.dev/allow-shared-ip";

    /// `"true"`: an internal NLB instead of an internet-facing one.
    pub const AWS_INTERNAL: &str = "portico.dev/aws-internal";
    /// Subnet IDs for the NLB, comma separated; without it, the subnets tagged
    /// `kubernetes.io/cluster/<cluster>` (one per availability zone).
    pub const AWS_SUBNETS: &str = "portico.dev/aws-subnets";
    /// Elastic IP allocation IDs, comma separated, one per subnet.
    pub const AWS_EIP_ALLOCATIONS: &str = "portico.dev/aws-eip-allocations";
    /// Health check interval in seconds.
    pub const AWS_HEALTHCHECK_INTERVAL: &str = "portico.dev/aws-healthcheck-interval";
    /// Health check timeout in seconds.
    pub const AWS_HEALTHCHECK_TIMEOUT: &str = "portico.dev/aws-healthcheck-timeout";
    /// Consecutive successes before a target is healthy.
    pub const AWS_HEALTHCHECK_HEALTHY_THRESHOLD: &str =
        "portico.dev/aws-healthcheck-healthy-threshold";
    /// Consecutive failures before a target is unhealthy.
    pub const AWS_HEALTHCHECK_UNHEALTHY_THRESHOLD: &str =
        "portico.dev/aws-healthcheck-unhealthy-threshold";
}

/// Tags on every AWS resource Portico creates (the first two are the cloud controllers').
pub mod aws_tag {
    /// `kubernetes.io/cluster/<cluster>` = `owned`; also the subnet discovery tag.
    pub const CLUSTER_PREFIX: &str = "kubernetes.io/cluster/";
    /// `<namespace>/<name>` of the Service.
    pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
    /// The Service's UID (a Service deleted and created again is another load balancer).
    pub const SERVICE_UID: &str = "portico.dev/service-uid";
}

/// Node labels and taints that keep a node out of load balancers (KEP-3458).
pub mod node {
    /// Label whose value, parsed as a bool, excludes the node from external load balancers.
    pub const EXCLUDE_FROM_EXTERNAL_LB: &str =
        "node.kubernetes.io/exclude-from-external-load-balancers";
    /// Taint the cluster autoscaler puts on a node it is about to delete.
    pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";
}

/// Labels Portico puts on what it creates.
pub mod label {
    /// Marks objects managed by Portico (the conventional `app.kubernetes.io/managed-by`).
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGED_BY_VALUE: &str = "portico";
}

/// Event reasons. The first group are the cloud-provider service controller's, kept for the same
/// moments because operators already grep for them; the second group are Portico's own.
pub mod reason {
    pub const ENSURING_LOAD_BALANCER: &str = "EnsuringLoadBalancer";
    pub const ENSURED_LOAD_BALANCER: &str = "EnsuredLoadBalancer";
    pub const SYNC_LOAD_BALANCER_FAILED: &str = "SyncLoadBalancerFailed";
    pub const DELETING_LOAD_BALANCER: &str = "DeletingLoadBalancer";
    pub const DELETED_LOAD_BALANCER: &str = "DeletedLoadBalancer";
    pub const UPDATED_LOAD_BALANCER: &str = "UpdatedLoadBalancer";
    pub const UPDATE_LOAD_BALANCER_FAILED: &str = "UpdateLoadBalancerFailed";
    pub const UNAVAILABLE_LOAD_BALANCER: &str = "UnAvailableLoadBalancer";

    pub const IP_ALLOCATED: &str = "IPAllocated";
    pub const ALLOCATION_FAILED: &str = "AllocationFailed";
    pub const NODE_ANNOUNCING: &str = "NodeAnnouncing";
    /// A VIP in a pool that no L2Announcement covers: assigned, but nobody answers ARP/NDP for it.
    pub const NOT_ANNOUNCED: &str = "NotAnnounced";
    /// A Service keeps an address that its pool no longer contains (the pool shrank or went away).
    pub const ADDRESS_OUTSIDE_POOL: &str = "AddressOutsidePool";
    /// An AddressPool whose spec cannot be used; its addresses are not handed out.
    pub const INVALID_ADDRESS_POOL: &str = "InvalidAddressPool";
    /// An L2Announcement the agents cannot read; they announce as if it did not exist.
    pub const INVALID_L2_ANNOUNCEMENT: &str = "InvalidL2Announcement";
    /// An AddressPool that shares addresses with another (each address is still given out once).
    pub const OVERLAPPING_ADDRESS_POOL: &str = "OverlappingAddressPool";
    /// kube-proxy's reason when a health check node port cannot be bound.
    pub const FAILED_TO_START_SERVICE_HEALTHCHECK: &str = "FailedToStartServiceHealthcheck";
}
