import Foundation

/// The project's own folder (where Package.swift is), found from this file's place in it.
public enum ProjectFolder {
    public static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `relative` inside the project (`cloud/dynamodb-table.json`, `.build/debug/dtwin`).
    public static func file(_ relative: String) -> URL { url.appendingPathComponent(relative) }
}

/// `../shared/testdata` beside the project: peers' test data, read in place.
public enum SharedTestData {
    public static var root: URL {
        ProjectFolder.url.deletingLastPathComponent().appendingPathComponent("shared/testdata")
    }

    public static func data(_ path: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(path))
    }
}
