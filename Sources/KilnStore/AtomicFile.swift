import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whole-file replacement that never leaves a torn file: write a sibling temp file, fsync it, rename it
/// over the target, fsync the directory.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temp = "\(directory.isEmpty ? "." : directory)/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw StoreError.io(path: temp, operation: "create", detail: String(cString: strerror(errno)))
        }
        var failure: String?
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure {
            unlink(temp)
            throw StoreError.io(path: path, operation: "write", detail: failure)
        }
        guard rename(temp, path) == 0 else {
            let detail = String(cString: strerror(errno))
            unlink(temp)
            throw StoreError.io(path: path, operation: "replace", detail: detail)
        }
        syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// Makes a rename durable.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
