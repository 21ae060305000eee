#ifndef SYNWATCH_CPREFETCH_H
#define SYNWATCH_CPREFETCH_H

/// Asks the CPU to bring the cache line holding `address` in, to be written soon. A hint only: it never faults,
/// whatever the address. Inlined into Swift callers (Swift has no prefetch of its own).
static inline __attribute__((always_inline)) void synwatch_prefetch(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
