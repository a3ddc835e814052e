//! The controller image starts as its configured non-root user and, outside a cluster, prints
//! its one-line "no Kubernetes configuration" error.

use crate::build::images;
use crate::sandbox::Netns;

#[test]
fn the_controller_starts_as_nonroot_in_its_image_and_says_it_has_no_kubernetes_configuration() {
    let Some(images) = images() else { return };
    let controller = &images.controller;
    let user = controller.config["config"]["User"].as_str().unwrap();
    assert_eq!(user, "65532:65532");
    let netns = Netns::new();
    let entrypoint = controller.entrypoint();
    let output = netns.run_in(
        controller,
        Some(user),
        &entrypoint[0],
        &["--leader-elect=true"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("no Kubernetes configuration found"),
        "{stderr}"
    );

    // As that user it cannot read what only root may: a kubeconfig in /root (0700) is refused.
    std::fs::write(controller.rootfs.join("root/config"), "apiVersion: v1\n").unwrap();
    let output = netns.run_in(
        controller,
        Some(user),
        &entrypoint[0],
        &["--kubeconfig", "/root/config"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/root/config"), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("permission denied"),
        "a non-root process: {stderr}"
    );
}
