import Foundation
import KilnOCI
import KilnStore
import KilnTestSupport
import Testing

/// A base image whose layer climbs out of the root is refused at pull, as the same member would be from an
/// archive input: the pull fails naming the registry, the blob and the member, and nothing is tagged.
@Suite(.serialized) struct HostileLayerPullTests {
    @Test(arguments: [
        ("add(t, '../../etc/cron.d/evil')", "leaves the image root"),
        ("add(t, 'etc/passwd', kind=tarfile.LNKTYPE, link='/etc/passwd')", "leaves the image root"),
        ("add(t, 'lib/x', kind=tarfile.SYMTYPE, link='../../../../etc/shadow')", "outside the archive"),
        ("add(t, 'dev/sda', kind=tarfile.BLKTYPE)", "is a device, FIFO or socket"),
    ])
    func hostileBaseLayerIsRefusedAtPull(_ member: String, _ message: String) async throws {
        try await withRegistry(scratch: "kiln-hostile-pull") { registry, tmp in
            let (layerDigest, _) = try Self.pushImage(member, registry: registry, tmp: tmp)
            let pulled = try KilnBinary.run(
                ["pull", "\(registry.address)/hostile/evil:1", "--store", tmp.path + "/pulled"], check: false)
            #expect(pulled.status != 0 && pulled.status < 128)
            #expect(pulled.stderr.contains("\(registry.address)/hostile/evil@\(layerDigest)"), "\(pulled.stderr)")
            #expect(pulled.stderr.contains(message), "\(pulled.stderr)")
            let store = try OCILayout(root: tmp.path + "/pulled")
            #expect(try store.tags().isEmpty)
            #expect(!store.hasBlob(layerDigest), "the refused layer is not kept")
        }
    }

    /// A base pulled by digest whose layer is later truncated in the store is not built upon.
    @Test func aTruncatedBaseLayerIsNotReused() async throws {
        try await withRegistry(scratch: "kiln-base-size") { registry, tmp in
            let (layerDigest, manifest) = try Self.pushImage(
                "add(t, 'etc/base', b'base')", registry: registry, tmp: tmp)
            try tmp.write(
                "child.yaml",
                """
                name: child
                version: "1"
                base: \(registry.address)/hostile/evil:1@\(manifest)
                layers:
                  - name: extra
                    files: [{path: /etc/child, content: "child\\n"}]
                """)
            let store = tmp.path + "/images"
            try KilnBinary.run(["build", tmp.path + "/child.yaml", "--store", store])
            let blob = try OCILayout(root: store).blobPath(layerDigest)
            try Data(try Data(contentsOf: URL(fileURLWithPath: blob)).dropLast(10)).write(
                to: URL(fileURLWithPath: blob))
            let again = try KilnBinary.run(["build", tmp.path + "/child.yaml", "--store", store], check: false)
            #expect(again.status != 0 && again.status < 128)
            #expect(again.stderr.contains("the manifest says") && again.stderr.contains("kiln pull"), "\(again.stderr)")
        }
    }

    /// Pushes `hostile/evil:1`: one gzip layer with a file `ok` and `member` (Python tarfile `add(t, …)`).
    /// Returns the layer's and the manifest's digests.
    static func pushImage(_ member: String, registry: RegistryServer, tmp: TemporaryDirectory) throws
        -> (Digest, Digest)
    {
        let layer = tmp.path + "/layer.tar.gz"
        try """
        import tarfile, io, sys
        def add(t, name, data=b'x', kind=tarfile.REGTYPE, link=''):
            i = tarfile.TarInfo(name); i.type = kind; i.linkname = link
            i.size = len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        with tarfile.open(sys.argv[1], 'w:gz') as t:
            add(t, 'ok')
            \(member)
        """.write(toFile: tmp.path + "/make.py", atomically: true, encoding: .utf8)
        try Shell.run(["python3", tmp.path + "/make.py", layer])
        // The hostile image, written into a store by hand and pushed as is.
        let layout = try OCILayout(root: tmp.path + "/source")
        let blob = try Data(contentsOf: URL(fileURLWithPath: layer))
        let layerDigest = try layout.writeBlob(blob)
        let config = try CanonicalJSON.encode(ImageConfig(platform: .linuxAMD64))
        try layout.writeBlob(config)
        let manifest = try CanonicalJSON.encode(
            Manifest(
                config: Descriptor(mediaType: MediaType.imageConfig, bytes: config),
                layers: [Descriptor(mediaType: MediaType.layerGzip, digest: layerDigest, size: Int64(blob.count))]))
        try layout.writeBlob(manifest)
        try layout.tag(Descriptor(mediaType: MediaType.imageManifest, bytes: manifest), as: "evil:1")
        try KilnBinary.run(["push", "evil:1", "--to", "\(registry.address)/hostile", "--store", layout.root])
        return (layerDigest, Digest.sha256(manifest))
    }
}
