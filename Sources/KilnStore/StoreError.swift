import KilnOCI

/// What can go wrong with the image layout on disk.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case notALayout(path: String, reason: String)
    /// A read-only command found no layout: nothing was built or pulled into this directory yet.
    case noLayout(path: String)
    case missingBlob(digest: Digest, layout: String)
    case corruptBlob(path: String, expected: Digest, actual: Digest)
    case unknownTag(reference: String, layout: String, known: [String])
    case io(path: String, operation: String, detail: String)

    public var description: String {
        switch self {
        case .notALayout(let path, let reason):
            return
                "\(path) is not a usable OCI image layout: \(reason). Point --store at an empty or Kiln-made directory."
        case .noLayout(let path):
            return
                "no image store at \(path): nothing was built or pulled there yet. Run `kiln build` or `kiln pull`, or point --store (or KILN_STORE) at your store."
        case .missingBlob(let digest, let layout):
            return "blob \(digest) is missing from \(layout). Rebuild or pull the image that needs it."
        case .corruptBlob(let path, let expected, let actual):
            return
                "blob \(expected) is corrupt: \(path) hashes to \(actual). Run `kiln fsck` to list the damaged blobs and the tags that reach them, then rebuild or pull those images again."
        case .unknownTag(let reference, let layout, let known):
            let list = known.isEmpty ? "the store has no images yet" : "known: " + known.joined(separator: ", ")
            return "no image tagged '\(reference)' in \(layout) (\(list)). Run `kiln images` to see what is stored."
        case .io(let path, let operation, let detail):
            return "could not \(operation) \(path): \(detail)"
        }
    }
}
