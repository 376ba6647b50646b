import ArgumentParser
import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinStore
import Foundation

struct ReadingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readings",
        abstract: "Show what the twin table holds for a device, oldest first.",
        discussion: """
            Reads the store the bridge writes (store.kind, store.path in the configuration). \
            --since and --until take ISO-8601 (2026-11-24T12:00:00Z, 2026-11-24; no zone means UTC) or Unix \
            milliseconds. \
            Without --since the latest LIMIT items are shown.
            """
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: "The device name.")
    var device: String

    @Option(help: "Only items at or after this time.")
    var since: String?

    @Option(help: "Only items before this time.")
    var until: String?

    @Option(help: "At most this many items.")
    var limit: Int = 20

    @Flag(help: "One JSON object per line instead of a table.")
    var json = false

    func run() async throws {
        try await reportingFailures {
            let name: DeviceName
            do { name = try DeviceName(validating: device) } catch { throw CommandFailure.usage("\(error)") }
            let sinceMillis = try Self.time(since, option: "--since")
            let untilMillis = try Self.time(until, option: "--until")
            guard limit > 0 else { throw CommandFailure.usage("--limit must be at least 1") }
            let configuration = try common.loadConfiguration()
            guard configuration.store.kind != .sqlite || FileManager.default.fileExists(atPath: configuration.store.path) else {
                throw CommandFailure.runtime("no twin table at \(configuration.store.path) (store.path); has the bridge run here?")
            }
            let store: any TwinStore
            do {
                store = try BridgeApplication.openStore(configuration)
            } catch let error as ConfigurationError {
                throw CommandFailure.usage("\(error)")  // exit 2: the settings need fixing
            } catch {
                throw CommandFailure.runtime("\(error)")
            }
            let items: [TwinItem]
            do {
                items = try await store.items(device: name, since: sinceMillis, until: untilMillis, limit: limit).reversed()
                try? await store.close()
            } catch {
                throw CommandFailure.runtime("\(error)")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                for item in items { print(String(decoding: try encoder.encode(item), as: UTF8.self)) }
            } else {
                print(Self.table(items))
            }
        }
    }

    static func time(_ text: String?, option: String) throws -> Int64? {
        guard let text else { return nil }
        guard let millis = Timestamp.parseMillis(text) else {
            throw CommandFailure.usage("\(option) \(text.debugDescription) is not an ISO-8601 time or Unix milliseconds")
        }
        return millis
    }

    static func table(_ items: [TwinItem]) -> String {
        guard !items.isEmpty else { return "(no items)" }
        let rows = items.map { item -> [String] in
            [
                item.ts, item.kind.rawValue, item.value.map(\.readingText) ?? "", item.seq.map(String.init) ?? "",
                item.payloadEncoding == nil ? String(item.payload.prefix(40)).debugDescription : "(binary)",
                item.messageId,
            ]
        }
        let header = ["TIME", "KIND", "VALUE", "SEQ", "PAYLOAD", "MESSAGE ID"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
