import Foundation

/// A new, empty folder under the system's temporary folder, named `<prefix>-<UUID>` so
/// concurrent tests never share one. The caller removes it.
public func makeTemporaryFolder(_ prefix: String) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}
