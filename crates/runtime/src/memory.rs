//! Memory goes back to the system after a burst. glibc malloc serves allocations above a
//! threshold with mmap and returns them on free, but it raises that threshold to the size of
//! the largest block freed so far (up to 32 MiB): after the first argon2id hash freed its
//! 19 MiB, later ones came from the arenas and stayed resident (3.4 GB after 200 sign-ups).
//! Setting the threshold explicitly turns that adjustment off. After a burst, what the arenas
//! still hold free is handed back with `malloc_trim`.

/// Called once per process before any service starts; later calls do nothing.
pub fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
        unsafe {
            // 1 MiB: small and medium allocations stay in the arenas (fast), hash memory and
            // other large buffers are mapped and unmapped.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    });
}

/// Returns the free memory malloc still holds to the system. Takes a few milliseconds on a
/// large heap: call it from a blocking thread, after a burst rather than per request.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}
