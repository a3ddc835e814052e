//! A run killed before its teardown leaves namespaces, processes and a host link behind; the
//! next lab removes them, and leaves alone what live runs own.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use portico_lab::netns::process::command_in;

use crate::{
    LAB_BINARY, have_root, host_link_exists, mk_lab, namespaces_starting_with, sweep_guard,
};

#[test]
fn leftovers_of_a_killed_run_are_removed() {
    if !have_root("leftovers_of_a_killed_run_are_removed") {
        return;
    }
    let guard = sweep_guard();
    let mut run = Command::new(LAB_BINARY)
        .args(["netns", "--nodes", "2", "--pods-per-node", "1"])
        .args(["--node-subnet", "198.18.15.0/24"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // The reader stays open until the kill: closing the pipe early makes the holder's next
    // write fail, and it then tears its lab down on its own, racing the assertions below.
    let mut holder_output = BufReader::new(run.stdout.take().unwrap());
    holder_output.read_line(&mut first).unwrap();
    let mut words = first.split_whitespace();
    assert_eq!(words.next(), Some("ready"), "{first:?}");
    let (start, host_link) = (
        words.next().unwrap().to_owned(),
        words.next().unwrap().to_owned(),
    );
    assert_eq!(namespaces_starting_with(&start).len(), 2 + 2 + 2);
    // A process left running inside the dead run's node namespace.
    let mut stray = command_in(&format!("{start}n0"), "sleep")
        .arg("600")
        .spawn()
        .unwrap();
    // A lab cloud's hosts file for the dead run's client.
    let etc = std::path::Path::new("/etc/netns").join(format!("{start}client"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), "198.51.100.10 nlb.example\n").unwrap();

    run.kill().unwrap(); // SIGKILL: no teardown
    run.wait().unwrap();
    drop(holder_output);
    assert_eq!(
        namespaces_starting_with(&start).len(),
        6,
        "a killed run removes nothing"
    );
    assert!(host_link_exists(&host_link));
    drop(guard);

    // A live lab of this process, created before, must survive the sweep.
    let live = mk_lab(1, 0, 16);
    let next = mk_lab(1, 0, 17);
    assert_eq!(namespaces_starting_with(&start), Vec::<String>::new());
    assert!(
        !host_link_exists(&host_link),
        "host leg {host_link} left behind"
    );
    assert!(!etc.exists(), "{} left behind", etc.display());
    let stray_status = stray.wait().unwrap();
    assert!(
        !stray_status.success(),
        "the stray process was killed: {stray_status}"
    );
    let live_start = live.layout().prefix.namespace_start();
    assert_eq!(namespaces_starting_with(&live_start).len(), 3);
    next.teardown();
    live.teardown();
}
