//! Fiber stacks for engines that allocate on demand, each one memory mapping instead of wasmtime's two.
//!
//! Every store that has made an async call keeps its fiber stack for the next call, so each long-lived instance
//! (an active agent) holds one. wasmtime maps a stack as a `PROT_NONE` region and makes all of it but the lowest
//! page writable, which splits it into two mappings. Linux caps the mappings of a process (`vm.max_map_count`,
//! 65 530 by default), and that cap, not memory, decided how many idle agents fit in a process (BENCHMARKS.md).
//! Where the kernel has `MADV_GUARD_INSTALL` (Linux 6.13+), the guard page is installed inside one writable
//! mapping instead, which does not split it; elsewhere the guard page is made with `mprotect`, as wasmtime does.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::{StackCreator, StackMemory};

/// `madvise` advice that makes a range fault on access without splitting its mapping (Linux 6.13+; not yet in
/// the `libc` crate).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Creates fiber stacks with an in-mapping guard page where the kernel supports it.
pub(crate) struct GuardedStacks {
    /// Cleared after the kernel refused `MADV_GUARD_INSTALL` once, so later stacks go straight to `mprotect`.
    guard_install: AtomicBool,
}

impl GuardedStacks {
    pub(crate) fn new() -> GuardedStacks {
        GuardedStacks {
            guard_install: AtomicBool::new(true),
        }
    }
}

/// One fiber stack: a guard page at the bottom, then `size` writable bytes.
struct GuardedStack {
    base: *mut u8,
    len: usize,
    guard: usize,
}

// SAFETY: the stack is plain memory owned by this value; wasmtime uses it from one thread at a time.
unsafe impl Send for GuardedStack {}
// SAFETY: as above; `GuardedStack` hands out addresses only, never references into the memory.
unsafe impl Sync for GuardedStack {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

// SAFETY: each stack is a fresh, page-aligned, zero-filled anonymous mapping of `size` bytes (rounded up to whole
// pages) above a guard page that faults on access; it is unmapped only when wasmtime drops it.
unsafe impl StackCreator for GuardedStacks {
    fn new_stack(
        &self,
        size: usize,
        _zeroed: bool,
    ) -> Result<Box<dyn StackMemory>, wasmtime::Error> {
        // A fresh anonymous mapping is zero-filled, so `zeroed` needs no extra work; stacks are never reused here
        // (the store keeps one and returns it to the allocator, which unmaps it).
        let guard = page_size();
        let size = size.div_ceil(guard) * guard;
        let len = size
            .checked_add(guard)
            .ok_or_else(|| wasmtime::format_err!("fiber stack size {size} overflows"))?;
        // SAFETY: a new private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(wasmtime::format_err!(
                "cannot map a {len}-byte fiber stack: {}",
                std::io::Error::last_os_error()
            ));
        }
        let stack = GuardedStack {
            base: base.cast(),
            len,
            guard,
        };
        // SAFETY: the lowest page of the mapping made above, not yet handed to anyone.
        let installed = self.guard_install.load(Ordering::Relaxed)
            && unsafe { libc::madvise(base, guard, MADV_GUARD_INSTALL) } == 0;
        if !installed {
            self.guard_install.store(false, Ordering::Relaxed);
            // SAFETY: as above.
            if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
                return Err(wasmtime::format_err!(
                    "cannot protect the guard page of a fiber stack: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        Ok(Box::new(stack))
    }
}

// SAFETY: `top` and `range` describe the writable part of the mapping, page aligned; `guard_range` the faulting
// page below it. The mapping lives as long as this value.
unsafe impl StackMemory for GuardedStack {
    fn top(&self) -> *mut u8 {
        self.base.wrapping_add(self.len)
    }

    fn range(&self) -> Range<usize> {
        let start = self.base as usize + self.guard;
        start..self.base as usize + self.len
    }

    fn guard_range(&self) -> Range<*mut u8> {
        self.base..self.base.wrapping_add(self.guard)
    }
}

impl Drop for GuardedStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new_stack`, unmapped once; wasmtime no longer runs on it.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of this process's mappings overlap `range`.
    fn mappings_over(range: Range<usize>) -> usize {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .filter_map(|line| {
                let (start, end) = line.split_whitespace().next()?.split_once('-')?;
                Some((
                    usize::from_str_radix(start, 16).ok()?,
                    usize::from_str_radix(end, 16).ok()?,
                ))
            })
            .filter(|&(start, end)| start < range.end && range.start < end)
            .count()
    }

    #[test]
    fn stack_is_writable_above_its_guard_page() {
        let stacks = GuardedStacks::new();
        let stack = stacks.new_stack(64 << 10, true).unwrap();
        let range = stack.range();
        let guard = stack.guard_range();
        assert_eq!(range.len(), 64 << 10);
        assert_eq!(guard.end as usize, range.start);
        assert_eq!(stack.top() as usize, range.end);
        assert_eq!(range.start % page_size(), 0);
        // The whole range is zero and writable.
        for addr in [range.start, range.end - 1] {
            let p = addr as *mut u8;
            // SAFETY: inside the stack's writable range, which nothing else uses.
            unsafe {
                assert_eq!(p.read_volatile(), 0);
                p.write_volatile(7);
                assert_eq!(p.read_volatile(), 7);
            }
        }
        // One mapping where the kernel installs guard pages in place, two (guard + stack) where it does not.
        let whole = guard.start as usize..range.end;
        let expected = if stacks.guard_install.load(Ordering::Relaxed) {
            1
        } else {
            2
        };
        assert_eq!(mappings_over(whole), expected);
    }
}
