//! Gives the kernel back the memory the allocator holds but no longer uses.
//!
//! The first sync at scale is the agent's peak: the initial lists deserialize whole objects
//! (managedFields and all) before `trim` drops most of them, and the first render and restore
//! build every chain's text at once. glibc's malloc keeps the pages freed after that peak in its
//! arenas (it returns only the free top of each heap), so the agent's RSS would stay at its
//! peak for its whole life. `malloc_trim(0)` returns every whole free page of every arena
//! (`madvise(MADV_DONTNEED)`); it walks the free lists, milliseconds at 10,000 Services, so it
//! runs after full syncs only (the first one, then hourly).

/// Returns free heap pages to the kernel; true when some were returned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes a plain integer and works only on the allocator's own state,
    // under the allocator's own locks; glibc documents it as safe to call from any thread
    // (MT-Safe). No Rust object is touched, and the pages it releases are free, so no live
    // allocation can lose its contents.
    unsafe { libc::malloc_trim(0) != 0 }
}

/// Other allocators return memory on their own terms; nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Resident bytes of this process (`/proc/self/statm`, field 2, in pages).
    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn memory_freed_after_a_peak_goes_back_to_the_kernel() {
        const BLOCKS: usize = 200_000;
        // Many small blocks, as deserialized objects are, written so that their pages are
        // resident; then one block after them, so the freed ones are not the top of the heap
        // (glibc gives back the top of a heap by itself, but nothing below a live block).
        let peak: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8 | 1; 512]).collect();
        let pin = vec![1u8; 512];
        drop(peak);
        let freed = resident_bytes();
        assert!(release_free_memory());
        let released = resident_bytes();
        drop(pin);
        let peak_bytes = (BLOCKS * 512) as u64;
        assert!(
            released + peak_bytes / 2 < freed,
            "resident {freed} after free, {released} after release ({peak_bytes} freed)"
        );
    }
}
