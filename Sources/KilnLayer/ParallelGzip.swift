import CDeflate
import Dispatch
import Foundation

/// gzip in parallel with output that depends only on the input bytes.
///
/// The tar stream is cut at fixed 1 MiB boundaries of its own offset (never where a write happened to end),
/// and each chunk becomes one complete gzip member compressed by libdeflate at `level`. Concatenated members
/// are a valid gzip file (RFC 1952 §2.2) that gunzip, Go, Python and zlib read as one stream. Because chunks
/// are independent, any number of threads produces the same bytes. A chunk whose byte histogram says it is
/// already compressed (the entropy of a sample of its bytes above 7.9 bits per byte) is stored instead, which costs almost nothing for the
/// zcash parameters and other random data. Members carry mtime 0, no name and OS byte 255.
final class ParallelGzip: LayerCompressor {
    static let chunkSize = 1 << 20
    /// Level 3 (encoding version 5; versions 2–4 used 5, version 1 used 6). Against level 5, libdeflate over
    /// 1 MiB chunks: 25% less CPU on 400 MB of headers, translations and documentation (2.84 against 3.78 CPU-s)
    /// for 1.5% more output (140.5 against 138.4 MB; `gzip -6` gives 138.75), and 27% less on 1 GB of binaries
    /// and libraries (7.96 against 10.90 CPU-s) for 2.8% more (368.1 against 358.2 MB; `gzip -6` 360.1). It is
    /// what takes `kiln build` of many small files to 2× `umoci repack`; level 4 reached 1.9× (bench/RESULTS.md).
    static let level: Int32 = 3

    /// @unchecked: a job's buffers and compressors have one owner at a time, handed over by `done`: the caller fills `input`
    /// and hands the job to one worker; the worker writes `output` and signals; the caller reads it only after
    /// waiting. A lock around each field would add nothing but a cost per 1 MiB chunk.
    private final class Job: @unchecked Sendable {
        let input: UnsafeMutableRawBufferPointer
        var count: Int
        var output: UnsafeMutableRawBufferPointer?
        var outputCount = 0
        let done = DispatchSemaphore(value: 0)
        /// libdeflate compressors are not thread-safe and cost an allocation each: a job keeps one per level it
        /// used, and jobs are reused, so a layer allocates a few.
        private var compressors: [Int32: OpaquePointer] = [:]

        init() {
            input = .allocate(byteCount: ParallelGzip.chunkSize, alignment: 64)
            count = 0
        }

        func compressor(level: Int32) -> OpaquePointer {
            if let compressor = compressors[level] { return compressor }
            let compressor = libdeflate_alloc_compressor(level)!
            compressors[level] = compressor
            return compressor
        }

        deinit {
            input.deallocate()
            output?.deallocate()
            compressors.values.forEach { libdeflate_free_compressor($0) }
        }
    }

    private let threads: Int
    /// nil with one thread: chunks are then compressed on the caller's thread.
    private let workers: WorkerThreads?
    private var current: Job
    private var inFlight: [Job] = []
    private var emittedAny = false
    /// Finished jobs whose buffers are reused: a fixed set of buffers instead of two fresh 1 MiB allocations per
    /// chunk, freed on other threads (which grew glibc's arenas and the RSS).
    private var spare: [Job] = []

    init(threads: Int) throws {
        self.threads = max(1, threads)
        current = Job()
        workers = self.threads > 1 ? WorkerThreads(count: self.threads, name: "kiln-gzip") : nil
    }

    deinit { workers?.stop() }

    func compress(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var offset = 0
        while offset < input.count {
            let n = min(Self.chunkSize - current.count, input.count - offset)
            (current.input.baseAddress! + current.count).copyMemory(from: input.baseAddress! + offset, byteCount: n)
            current.count += n
            offset += n
            if current.count == Self.chunkSize {
                try submit(emit: emit)
            }
        }
    }

    func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        if current.count > 0 || !emittedAny && inFlight.isEmpty {
            try submit(emit: emit)
        }
        while !inFlight.isEmpty { try emitOldest(emit: emit) }
    }

    /// Hands the full chunk to a worker. At most two chunks per thread are in flight: enough that a worker
    /// finds the next chunk ready while the caller is still busy emitting, and memory stays bounded.
    private func submit(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let job = current
        current = spare.popLast() ?? Job()
        current.count = 0
        inFlight.append(job)
        // A chunk that will be stored costs a copy and a CRC: cheaper done here than handed to a worker and
        // back (on two cores the hand-offs cost more CPU than they saved for the 777 MB layer).
        let stored = Self.looksCompressed(UnsafeRawBufferPointer(rebasing: job.input[0..<job.count]))
        if let workers, !stored {
            workers.run { Self.run(job, level: Self.level) }
        } else {
            Self.run(job, level: stored ? 0 : Self.level)
        }
        while inFlight.count > 2 * threads - 1 { try emitOldest(emit: emit) }
    }

    private func emitOldest(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let job = inFlight.removeFirst()
        job.done.wait()
        guard let output = job.output, job.outputCount > 0 else {
            throw LayerError.compression("libdeflate could not compress a chunk")
        }
        emittedAny = true
        try emit(UnsafeRawBufferPointer(rebasing: output[0..<job.outputCount]))
        spare.append(job)
    }

    /// Level 0 stores the chunk (deflate's stored blocks), for chunks that `looksCompressed`.
    private static func run(_ job: Job, level: Int32) {
        defer { job.done.signal() }
        let input = UnsafeRawBufferPointer(rebasing: job.input[0..<job.count])
        let compressor = job.compressor(level: level)
        let bound = libdeflate_gzip_compress_bound(compressor, job.count)
        if (job.output?.count ?? 0) < bound {
            job.output?.deallocate()
            job.output = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 64)
        }
        let output = job.output!
        job.outputCount = libdeflate_gzip_compress(compressor, input.baseAddress, job.count, output.baseAddress, bound)
    }

    /// The histogram counts the first `sampleLength` bytes of every `sampleStride`: a quarter of the chunk,
    /// spread over all of it. Counting every byte cost 15% of a 777 MB incompressible build's CPU; the
    /// estimate from 256 KiB of a 1 MiB chunk is within a thousandth of a bit of the whole chunk's for random
    /// data, far from the 7.9 threshold either way for text and code (encoding version 3).
    static let sampleStride = 4096
    static let sampleLength = 1024

    /// Shannon entropy of the sampled byte histogram above 7.9 bits per byte: deflate would gain (almost)
    /// nothing. The decision depends on the chunk's bytes alone, so it is the same for any thread count.
    /// Four interleaved histograms keep consecutive equal bytes from stalling on one counter.
    static func looksCompressed(_ chunk: UnsafeRawBufferPointer) -> Bool {
        guard chunk.count >= sampleStride, let base = chunk.baseAddress else { return false }
        let counts = UnsafeMutablePointer<UInt32>.allocate(capacity: 1024)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: 1024)
        var sampled = 0
        var block = 0
        while block &+ sampleStride <= chunk.count {
            // Eight bytes per load, spread over four tables.
            var offset = block
            let end = block &+ sampleLength
            while offset < end {
                let v = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                counts[Int(truncatingIfNeeded: v & 0xff)] &+= 1
                counts[256 &+ Int(truncatingIfNeeded: (v >> 8) & 0xff)] &+= 1
                counts[512 &+ Int(truncatingIfNeeded: (v >> 16) & 0xff)] &+= 1
                counts[768 &+ Int(truncatingIfNeeded: (v >> 24) & 0xff)] &+= 1
                counts[Int(truncatingIfNeeded: (v >> 32) & 0xff)] &+= 1
                counts[256 &+ Int(truncatingIfNeeded: (v >> 40) & 0xff)] &+= 1
                counts[512 &+ Int(truncatingIfNeeded: (v >> 48) & 0xff)] &+= 1
                counts[768 &+ Int(truncatingIfNeeded: v >> 56)] &+= 1
                offset &+= 8
            }
            sampled &+= sampleLength
            block &+= sampleStride
        }
        let total = Double(sampled)
        var entropy = 0.0
        for k in 0..<256 {
            let c = Int(counts[k]) + Int(counts[256 + k]) + Int(counts[512 + k]) + Int(counts[768 + k])
            guard c > 0 else { continue }
            let p = Double(c) / total
            entropy -= p * log2(p)
        }
        return entropy > 7.9
    }
}
