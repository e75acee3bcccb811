import Foundation
import KilnLayer
import KilnOCI
import KilnStore

/// The store as the sink of a pull: each layer is checked as archive inputs are (no `..` or absolute names, no
/// link out of the root, no devices) while it is still staged, so a hostile base layer never enters the store.
struct CheckedLayout: BlobSink {
    let layout: OCILayout
    /// `REGISTRY/REPOSITORY`, for the error.
    let origin: String

    func has(_ descriptor: Descriptor) async throws -> Bool { try await layout.has(descriptor) }

    func putBlob(_ descriptor: Descriptor, from source: any BlobSource) async throws {
        guard descriptor.mediaType.contains(".layer.") || descriptor.mediaType.contains(".rootfs.") else {
            return try await layout.putBlob(descriptor, from: source)
        }
        let name = "\(origin)@\(descriptor.digest)"
        try await layout.putBlob(descriptor, from: source) { path in _ = try LayerReader.validate(at: path, name: name)
        }
    }

    func putManifest(_ descriptor: Descriptor, data: Data) async throws {
        try await layout.putManifest(descriptor, data: data)
    }

    func tag(_ descriptor: Descriptor, data: Data, as tag: String) async throws {
        try await layout.tag(descriptor, data: data, as: tag)
    }
}
