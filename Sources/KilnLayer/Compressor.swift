import CZlib
import CZstd
import Foundation
import KilnOCI

/// How a layer's tar stream is compressed. gzip is the portable default; zstd is smaller and faster but
/// needs a recent runtime; none writes a plain tar.
public enum LayerCompression: String, Sendable, CaseIterable, Codable {
    case gzip, zstd, none

    public var mediaType: String {
        switch self {
        case .gzip: return MediaType.layerGzip
        case .zstd: return MediaType.layerZstd
        case .none: return MediaType.layerTar
        }
    }
}

/// The compression seam: everything that turns the tar stream into blob bytes goes through here, so a
/// faster implementation replaces one type without touching callers. Implementations must produce output
/// that depends only on the input bytes (never on timing or thread count).
protocol LayerCompressor {
    /// Compresses `input`, handing finished output to `emit` (possibly not at once).
    mutating func compress(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Flushes the rest and the trailer.
    mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws
}

func makeCompressor(_ compression: LayerCompression, threads: Int) throws -> any LayerCompressor {
    switch compression {
    case .gzip: return try ParallelGzip(threads: threads)
    case .zstd: return try ZstdCompressor()
    case .none: return Passthrough()
    }
}

struct Passthrough: LayerCompressor {
    mutating func compress(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try emit(input)
    }
    mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {}
}

/// zstd level 3, single-threaded (libzstd's output is only guaranteed identical for one worker setting).
final class ZstdCompressor: LayerCompressor {
    private let context: OpaquePointer
    private var output = [UInt8](repeating: 0, count: Int(ZSTD_CStreamOutSize()))

    init() throws {
        guard let context = ZSTD_createCCtx() else { throw LayerError.compression("zstd: out of memory") }
        self.context = context
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 3)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    func compress(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(input, end: false, emit: emit)
    }

    func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), end: true, emit: emit)
    }

    private func run(_ input: UnsafeRawBufferPointer, end: Bool, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let capacity = output.count
        while true {
            var remaining = 0
            var produced = 0
            try output.withUnsafeMutableBytes { out in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue)
                if ZSTD_isError(remaining) != 0 {
                    throw LayerError.compression("zstd: " + String(cString: ZSTD_getErrorName(remaining)))
                }
                produced = outBuffer.pos
                if produced > 0 { try emit(UnsafeRawBufferPointer(rebasing: out[0..<produced])) }
            }
            if end ? remaining == 0 : inBuffer.pos == inBuffer.size { break }
        }
    }
}
