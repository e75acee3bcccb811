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

    static func check(_ entries: [LayerEntry], platform: Platform, location: SourceLocation) throws {
        guard let expected = machines[platform.architecture] else { return }
        for entry in entries {
            let header: [UInt8]
            switch entry.kind {
            case .file(.path(let path)): header = readHeader(path)
            case .file(.bytes(let data)): header = Array(data.prefix(20))
            default: continue
            }
            guard let machine = machine(header), machine != expected else { continue }
            let found = machines.first { $0.value == machine }?.key ?? "machine \(machine)"
            throw BuildError.recipe(
                location,
                "\(entry.path) is an ELF binary for \(found), but this image is \(platform). "
                    + "Give this platform its own input, or pass --allow-foreign-binaries if that is intended.")
        }
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
        var buffer = [UInt8](repeating: 0, count: 20)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 20, 0) }
        return n == 20 ? buffer : []
    }
}
