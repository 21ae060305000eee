// Placeholder until the kernel counters land; replaced by the first real file.
