//! Gives the kernel back the memory the allocator holds but no longer uses.
//!
//! The first sync at scale is the agent's peak: the initial lists deserialize whole objects
//! (managedFields and all) before `trim` drops most of them, and the first render and restore
//! build every chain's text at once. glibc's malloc keeps the pages freed after that peak in its
//! arenas (it returns only the free top of each heap), so the agent's RSS would stay at its
//! peak for its whole life. `malloc_trim(0)` returns every whole free page of every arena
//! (`madvise(MADV_DONTNEED)`); it walks the free lists, milliseconds at 10,000 Services, so it
//! runs after full syncs and drift checks, never after the partial syncs of each change.
//!
//! `tune_allocator` keeps glibc from holding freed memory in the first place. By default glibc
//! raises its mmap threshold to the size of the largest block freed (up to 32 MiB) and its trim
//! threshold to twice that: once the first sync has freed its restore text, every later sync's
//! transient blocks of a few MiB (the desired state, the rule text) come from the heap and stay
//! resident after they are freed. It also makes up to 8 arenas per core, each holding its own
//! freed memory, on a node with many cores. Fixed thresholds and two arenas keep the agent's
//! RSS near what it holds live.

/// Blocks from this size up are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Free memory above this much at the top of a heap goes back to the kernel at once.
const TRIM_THRESHOLD: i32 = 1024 * 1024;
/// The agent's threads are a few tokio workers; they share two arenas.
const ARENA_MAX: i32 = 2;

/// Sets glibc's allocator to give memory back rather than keep it (see the module doc); call
/// once, first thing in `main`, before any other thread exists (a thread keeps the arena its
/// first allocation picked). True when glibc took every setting.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() -> bool {
    [
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (libc::M_ARENA_MAX, ARENA_MAX),
    ]
    .into_iter()
    // SAFETY: mallopt takes two plain integers and changes only the allocator's own tuning
    // parameters, under its own lock; live allocations are not touched (a block keeps the way
    // it was allocated, mapped or from a heap, until freed).
    .all(|(param, value)| unsafe { libc::mallopt(param, value) } == 1)
}

/// Other allocators have their own tuning; nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() -> bool {
    false
}

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

    /// Left alone, glibc would serve the second block from the heap (its threshold having risen
    /// to the first one's size when that was freed) and keep it resident after the free.
    #[test]
    fn a_large_block_freed_after_a_larger_one_goes_back_to_the_kernel() {
        const MIB: usize = 1024 * 1024;
        assert!(tune_allocator());
        drop(std::hint::black_box(vec![1u8; 24 * MIB]));
        let before = resident_bytes();
        let block = std::hint::black_box(vec![1u8; 20 * MIB]);
        let held = resident_bytes();
        drop(block);
        let after = resident_bytes();
        assert!(held > before + 15 * MIB as u64, "the block was resident");
        assert!(
            after + 15 * MIB as u64 <= held,
            "resident {before} before, {held} with the block, {after} after its free"
        );
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
