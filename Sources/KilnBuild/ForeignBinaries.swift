import Foundation
import KilnLayer
import KilnOCI
import KilnRecipe

#if canImport(Glibc)
    import Glibc
#endif

/// Refuses ELF files whose machine is not the platform's: an x86-64 binary in an image labelled arm64 runs
/// nowhere it is deployed, and nothing else would notice before a node fails to start.
enum ForeignBinaries {
    /// ELF `e_machine` per OCI architecture.
    static let machines: [String: UInt16] = [
        "amd64": 62, "arm64": 183, "386": 3, "arm": 40, "riscv64": 243, "ppc64le": 21, "s390x": 22, "mips64le": 8,
        "loong64": 258,
    ]

    /// The files of a layer still to be checked, by source path: the layer writer reads them anyway, so it
    /// checks their first bytes as it goes (`inspection`) instead of every input being opened twice. A layer
    /// that is reused instead of written reads them here (`checkFiles`): it may have been written with
    /// `--allow-foreign-binaries`.
    struct Pending: Sendable {
        var platform: Platform
        var files: [String: (path: String, location: SourceLocation)] = [:]

        var inspection: LayerInspection? {
            guard !files.isEmpty else { return nil }
            let pending = self
            return LayerInspection(headerSize: headerSize) { source, header in
                guard let (path, location) = pending.files[source] else { return }
                try ForeignBinaries.check(header, path: path, platform: pending.platform, location: location)
            }
        }

        func checkFiles() throws {
            for (source, (path, location)) in files {
                try ForeignBinaries.check(readHeader(source), path: path, platform: platform, location: location)
            }
        }
    }

    static let headerSize = 20

    /// Checks in-memory entries now and adds the files to `pending`, to be checked from the bytes read later.
    static func check(
        _ entries: [LayerEntry], platform: Platform, location: SourceLocation, pending: inout Pending
    ) throws {
        guard machines[platform.architecture] != nil else { return }
        for entry in entries {
            switch entry.kind {
            case .file(.path(let source)):
                if pending.files[source] == nil { pending.files[source] = (entry.path, location) }
            case .file(.bytes(let data)):
                try check(Array(data.prefix(headerSize)), path: entry.path, platform: platform, location: location)
            default: continue
            }
        }
    }

    static func check(_ header: [UInt8], path: String, platform: Platform, location: SourceLocation) throws {
        guard let expected = machines[platform.architecture], let machine = machine(header), machine != expected
        else { return }
        let found = machines.first { $0.value == machine }?.key ?? "machine \(machine)"
        throw BuildError.recipe(
            location,
            "\(path) is an ELF binary for \(found), but this image is \(platform). "
                + "Give this platform its own input, or pass --allow-foreign-binaries if that is intended.")
    }

    /// `e_machine` of an ELF header, in the byte order the header declares; nil for anything else.
    static func machine(_ header: [UInt8]) -> UInt16? {
        guard header.count >= 20, header[0] == 0x7F, header[1] == 0x45, header[2] == 0x4C, header[3] == 0x46 else {
            return nil
        }
        let (a, b) = (UInt16(header[18]), UInt16(header[19]))
        return header[5] == 2 ? a << 8 | b : b << 8 | a
    }

    static func readHeader(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: headerSize)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, headerSize, 0) }
        return n == headerSize ? buffer : []
    }
}
