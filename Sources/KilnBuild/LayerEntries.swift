import Foundation
import KilnDebian
import KilnLayer
import KilnOCI
import KilnRecipe
import KilnSandbox

/// The concrete entries of a planned layer: recipe items, downloaded files and archive members, unpacked
/// Debian packages with their dpkg status, or the accounts files.
extension Builder {
    /// Unpacked package sets of one image × platform, so a set split into many layers is unpacked once.
    typealias Unpacked = [String: [(pin: PinnedPackage, unpacked: UnpackedPackage)]]

    /// Also returns the files still to be checked for foreign binaries when they are read (none when allowed).
    func entries(_ layer: PlannedLayer, platform: Platform, unpacked: inout Unpacked) throws -> (
        [LayerEntry], ForeignBinaries.Pending
    ) {
        guard layer.pending != true else {
            throw BuildError.internalError("layer \(layer.name) was not settled by prepare")
        }
        var result: [LayerEntry] = []
        var pending = ForeignBinaries.Pending(platform: platform)
        for content in layer.contents {
            switch content {
            case .entry(let entry):
                result.append(entry)
            case .debs(let key, let location):
                let packages = try packages(key, location: location, unpacked: &unpacked).map(\.unpacked)
                result +=
                    try packages.flatMap(\.entries) + StatusDatabase.entries(packages) + PostInstall.entries(packages)
            case .package(let key, let name, let location):
                guard
                    let package = try packages(key, location: location, unpacked: &unpacked).first(where: {
                        $0.pin.name == name
                    })
                else { throw BuildError.internalError("package layer \(layer.name) was not prepared") }
                let one = [package.unpacked]
                result += try package.unpacked.entries + StatusDatabase.entries(one) + PostInstall.entries(one)
            case .files(let files, let placement):
                result += try checked(
                    LocalSources.entries(
                        matching: files.paths, isGlob: files.isGlob, destination: placement.to,
                        mode: placement.ownership.mode, uid: placement.ownership.uid, gid: placement.ownership.gid),
                    placement: placement, pending: &pending)
            case .download(let url, let digest, let extract, let placement):
                result += try checked(
                    remoteEntries(placement, url: url, digest: digest ?? prepared.inputs[url], extract: extract),
                    placement: placement, pending: &pending)
            case .buildOutput(let build, let name, let path, let placement):
                result += try checked(
                    buildOutputEntries(placement, build: build, name: name, path: path), placement: placement,
                    pending: &pending)
            }
        }
        return (result, pending)
    }

    /// What an `add` placed, refused when it holds ELF files for another machine (unless allowed): in-memory
    /// entries now, files as they are read.
    private func checked(_ entries: [LayerEntry], placement: Placement, pending: inout ForeignBinaries.Pending)
        throws -> [LayerEntry]
    {
        if !options.allowForeignBinaries {
            try ForeignBinaries.check(
                entries, platform: pending.platform, location: placement.location, pending: &pending)
        }
        return entries
    }

    private func packages(_ key: String, location: SourceLocation, unpacked: inout Unpacked) throws -> [(
        pin: PinnedPackage, unpacked: UnpackedPackage
    )] {
        if let done = unpacked[key] { return done }
        guard let resolved = prepared.packages[key] else {
            throw BuildError.internalError("package set \(key) was not resolved before the build")
        }
        do {
            unpacked[key] = try resolved.unpack()
        } catch {
            throw BuildError.recipe(location, "\(error)")
        }
        return unpacked[key] ?? []
    }

    /// A downloaded file (placed at `to`, or `to/<file name>` when `to` ends with `/`), or members of a
    /// downloaded archive.
    func remoteEntries(_ add: Placement, url: String, digest: Digest?, extract: [String]?) throws -> [LayerEntry] {
        let downloads = options.inputs.cache
        guard let digest, downloads.contains(digest) else {
            throw BuildError.recipe(
                add.location, "input \(url) has not been fetched: run `kiln build` with network or --sources")
        }
        let file = downloads.path(for: digest)
        // The cache names files by their verified content: no need to read them again to key the layer.
        digests.record(file, digest: digest)
        guard let extract else {
            let name = URL(string: url)?.lastPathComponent ?? "download"
            let path = add.to.hasSuffix("/") ? LocalSources.join(add.to, name) : add.to
            return [
                LayerEntry(
                    path: path, kind: .file(.path(file)), mode: add.ownership.mode ?? 0o644, uid: add.ownership.uid,
                    gid: add.ownership.gid)
            ]
        }
        let unpacked: ArchiveInputs.Unpacked
        do {
            unpacked = try ArchiveInputs.unpack(digest, patterns: extract, limit: add.unpackLimit, cache: downloads)
        } catch let error as LayerError {
            throw BuildError.recipe(add.location, "archive \(url): \(error)")
        }
        return try ArchiveInputs.entries(
            unpacked, patterns: extract, destination: add.to, ownership: add.ownership, archiveURL: url,
            location: add.location)
    }
}

extension Builder {
    /// `add: {from: BUILD, src: PATH, to: DEST}`: the output as `compile` stored it, placed like a local file
    /// or directory.
    func buildOutputEntries(_ add: Placement, build: String, name: String, path: String) throws -> [LayerEntry] {
        guard let compiled = outputs[build] else {
            throw BuildError.internalError("build \(build) has not run (run compile before build)")
        }
        let resolved: String
        do {
            resolved = try StepOutputs.resolve(path, in: compiled.directory, build: name)
        } catch let error as SandboxError {
            throw BuildError.recipe(add.location, "\(error)")
        }
        return try LocalSources.entries(
            matching: [resolved], isGlob: false, destination: add.to, mode: add.ownership.mode,
            uid: add.ownership.uid, gid: add.ownership.gid)
    }
}
