import Foundation

/// How this process's allocator treats freed memory (the process edge: called once by the command-line tools).
public enum ProcessMemory {
    /// Keeps freed heap memory in the process (glibc `mallopt`: no `mmap` for large blocks, no trimming of the heap)
    /// so the n × C work arrays the labeling allocates and frees many times per run reuse pages instead of faulting
    /// in and zeroing new ones on one thread each time. RSS then stays at its peak until the process ends.
    /// Measured on 40,000 × 256, 50 classes: labeling 3.16 → 2.75 s on 2 threads (`benchmarks/results/scaling.md`).
    /// Returns false where glibc's `mallopt` is not found (nothing changes).
    @discardableResult
    public static func keepFreedMemory() -> Bool {
        #if os(Linux)
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
        let mallopt = unsafeBitCast(sym, to: Mallopt.self)
        let mmapMax: Int32 = -4, trimThreshold: Int32 = -1   // glibc's M_MMAP_MAX, M_TRIM_THRESHOLD
        return mallopt(mmapMax, 0) == 1 && mallopt(trimThreshold, Int32.max) == 1
        #else
        return false
        #endif
    }
}
