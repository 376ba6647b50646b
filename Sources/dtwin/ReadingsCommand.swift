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
            Example: dtwin readings uno1 --since 2026-11-24 --limit 100

            Reads the store the bridge writes (store.kind, store.path in the configuration). \
            Shows the latest LIMIT items in the window, oldest first: --since and --until narrow \
            the window (ISO-8601 such as 2026-11-24T12:00:00Z or 2026-11-24, no zone meaning UTC, \
            or Unix milliseconds); they do not change which end --limit keeps. Items stored in the \
            same millisecond keep the order the bridge received them in.

            A device with no items exits 0 and names the devices the table does hold.
            """
    )

    @OptionGroup var settings: ConfigurationOption

    @Argument(help: "The device name.")
    var device: String

    @Option(help: ArgumentHelp("Only items at or after this time.", valueName: "TIME"))
    var since: String?

    @Option(help: ArgumentHelp("Only items before this time.", valueName: "TIME"))
    var until: String?

    @Option(help: ArgumentHelp("At most this many items: the latest in the window.", valueName: "N"))
    var limit: Int = 20

    @Flag(help: "One JSON object per line instead of a table.")
    var json = false

    func run() async throws {
        try await reportingFailures {
            let name = try validDeviceName(device)
            let sinceMillis = try Self.time(since, option: "--since")
            let untilMillis = try Self.time(until, option: "--until")
            guard limit > 0 else { throw CommandFailure.usage("--limit must be at least 1") }
            let configuration = try settings.loadConfiguration()
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
            var hint: String?
            do {
                items = try await store.items(device: name, since: sinceMillis, until: untilMillis, limit: limit).reversed()
                if items.isEmpty {
                    let latest =
                        sinceMillis == nil && untilMillis == nil ? nil : try await store.items(device: name, since: nil, until: nil, limit: 1).first
                    let known = Set(try await store.devices().map(\.device)).union(configuration.devices.keys.map(\.rawValue))
                    hint = EmptyReadingsHint.text(device: name, latest: latest, known: known)
                }
                try? await store.close()
            } catch {
                try? await store.close()
                throw CommandFailure.runtime("\(error)")
            }
            if let hint { FileHandle.standardError.write(Data("dtwin: \(hint)\n".utf8)) }
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
