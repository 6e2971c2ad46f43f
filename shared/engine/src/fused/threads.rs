//! The thread policy of the fused kernels: matrix products split over threads only when
//! they are large enough to pay for it, and two independent computations run side by side,
//! each keeping its products on its own thread.

use std::cell::Cell;

/// Products smaller than this many multiply-adds run on one thread: below it, waking
/// other threads costs more than they save.
pub(super) const PARALLEL_GEMM_MIN: usize = 1 << 24;

thread_local! {
    /// Set while this thread runs one of [`side_by_side`]'s halves: the other core is busy
    /// with the other half, so matrix products stay on this thread.
    static SERIAL_GEMM: Cell<bool> = const { Cell::new(false) };
}

#[cfg(test)]
thread_local! {
    /// Set by [`in_sequence`]: [`side_by_side`] runs its halves one after the other.
    static IN_SEQUENCE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every [`side_by_side`] it calls on this thread running its halves one
/// after the other, so tests can check that running them at once changes nothing.
#[cfg(test)]
pub(crate) fn in_sequence<T>(f: impl FnOnce() -> T) -> T {
    IN_SEQUENCE.set(true);
    let out = f();
    IN_SEQUENCE.set(false);
    out
}

pub(super) fn gemm_threads(macs: usize) -> usize {
    if macs < PARALLEL_GEMM_MIN || SERIAL_GEMM.get() {
        return 1;
    }
    candle_core::utils::get_num_threads()
}

/// Whether two independent products of `macs` multiply-adds each are worth running side
/// by side: where one of them alone would be split over threads, and this thread is not
/// already one half of a pair.
pub(super) fn split_pays(macs: usize) -> bool {
    gemm_threads(macs) > 1
}

/// Runs two independent computations at once on rayon's pool, each keeping its matrix
/// products on its own thread (two coarse tasks use two cores better than one task whose
/// products are split finely). The results come back in argument order, whichever
/// finishes first.
pub(crate) fn side_by_side<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    /// Puts the thread's setting back when the half ends, even by unwinding.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL_GEMM.set(self.0);
        }
    }
    fn serial<T>(f: impl FnOnce() -> T) -> T {
        let _restore = Restore(SERIAL_GEMM.replace(true));
        f()
    }
    #[cfg(test)]
    if IN_SEQUENCE.get() {
        return (a(), b());
    }
    rayon::join(|| serial(a), || serial(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_by_side_keeps_each_half_on_its_thread_and_returns_in_order() {
        let half = |v: u32| move || (SERIAL_GEMM.get(), gemm_threads(usize::MAX), v);
        let (a, b) = side_by_side(half(1), half(2));
        assert_eq!((a, b), ((true, 1, 1), (true, 1, 2)));
        // The caller's own setting is untouched.
        assert!(!SERIAL_GEMM.get());
        assert_eq!(
            gemm_threads(usize::MAX),
            candle_core::utils::get_num_threads()
        );
    }
}
